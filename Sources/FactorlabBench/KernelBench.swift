import COpenBLAS
import FactorlabAutograd
import FactorlabLayers
import FactorlabTensor
import Foundation

/// Benchmarks of the core: GEMM through the framework against raw `cblas_sgemm`, the GPT-2-small
/// MLP forward+backward per linear kind, and the fused attention block.
public enum KernelBench {
    /// Square GEMMs: framework `matmul` and raw `cblas_sgemm` on the same operands.
    public static func gemm(sizes: [Int] = [512, 1024, 2048], repeats: Int, progress: (String) -> Void) -> [BenchFigure] {
        var out: [BenchFigure] = []
        var rng = RandomGenerator(seed: 1)
        for n in sizes {
            progress("gemm \(n)^3")
            let a = Tensor.randomNormal([n, n], using: &rng), b = Tensor.randomNormal([n, n], using: &rng)
            let flops = 2 * Double(n) * Double(n) * Double(n)
            let framework = Measurement.of(repeats: repeats) { _ = try! a.matmul(b) }
            let c = Tensor(uninitializedShape: [n, n])
            let raw = Measurement.of(repeats: repeats) {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(n), Int32(n), 1,
                            a.unsafeBase, Int32(n), b.unsafeBase, Int32(n), 0, c.unsafeBase, Int32(n))
            }
            out.append(BenchFigure("gemm.\(n).framework_gflops", flops / framework.median / 1e9, "GFLOP/s"))
            out.append(BenchFigure("gemm.\(n).raw_gflops", flops / raw.median / 1e9, "GFLOP/s"))
        }
        return out
    }

    /// Forward+backward of a GPT-2 MLP (d -> 4d -> d with GELU), `tokens` rows, for each kind.
    /// Speedups are relative to dense; GFLOP/s counts 6 * MACs * tokens (forward and both
    /// backward products). For dense, the six GEMMs alone through raw BLAS give the overhead.
    public static func mlp(d: Int = 768, tokens: Int = 2048, kinds: [LinearKind], repeats: Int, monarchSerialBlocks: Bool = false,
                           progress: (String) -> Void) throws -> [BenchFigure] {
        var out: [BenchFigure] = []
        var rng = RandomGenerator(seed: 2)
        let x = Tensor.randomNormal([tokens, d], using: &rng)
        var denseTime = Double.nan
        for kind in kinds {
            progress("mlp \(kind)")
            let fc = try makeLinear(kind, inFeatures: d, outFeatures: 4 * d, rng: &rng)
            let proj = try makeLinear(kind, inFeatures: 4 * d, outFeatures: d, rng: &rng)
            for l in [fc, proj] { (l as? MonarchLinear)?.serialBlocks = monarchSerialBlocks }
            let seed = Tensor(shape: [tokens, d], repeating: 1)
            let m = try Measurement.of(repeats: repeats) {
                let tape = Tape()
                let xv = tape.watch(x)
                let y = try tape.record { try proj(try fc(xv).gelu()) }
                try tape.backward(y, seed: seed)
                for p in fc.parameters + proj.parameters { p.zeroGrad() }
            }
            let macs = Double(fc.macsPerToken + proj.macsPerToken) * Double(tokens)
            let name = kindKey(kind)
            if kind == .dense { denseTime = m.median }
            out.append(BenchFigure("mlp.\(name).ms", m.median * 1e3, "ms"))
            out.append(BenchFigure("mlp.\(name).spread", m.spread, "ratio"))
            out.append(BenchFigure("mlp.\(name).gflops", 6 * macs / m.median / 1e9, "GFLOP/s"))
            out.append(BenchFigure("mlp.\(name).params", Double(fc.parameterCount + proj.parameterCount), "count"))
            out.append(BenchFigure("mlp.\(name).flop_ratio", Double(2 * d * 4 * d) / Double(fc.macsPerToken + proj.macsPerToken), "x"))
            if denseTime.isFinite { out.append(BenchFigure("mlp.\(name).speedup", denseTime / m.median, "x")) }
            if kind == .dense { out += try rawDenseMLP(d: d, tokens: tokens, repeats: repeats, framework: m.median) }
            if case .monarch(let blocks) = kind {
                out += rawMonarchMLP(d: d, tokens: tokens, nblocks: blocks, repeats: repeats, framework: m.median)
            }
        }
        return out
    }

    /// The six GEMMs of a dense MLP forward+backward, straight through cblas_sgemm.
    static func rawDenseMLP(d: Int, tokens: Int, repeats: Int, framework: Double) throws -> [BenchFigure] {
        var rng = RandomGenerator(seed: 3)
        let x = Tensor.randomNormal([tokens, d], using: &rng), w1 = Tensor.randomNormal([4 * d, d], using: &rng)
        let w2 = Tensor.randomNormal([d, 4 * d], using: &rng)
        let h = Tensor(uninitializedShape: [tokens, 4 * d]), y = Tensor(uninitializedShape: [tokens, d])
        let dh = Tensor(uninitializedShape: [tokens, 4 * d]), dx = Tensor(uninitializedShape: [tokens, d])
        let dw1 = Tensor(uninitializedShape: [4 * d, d]), dw2 = Tensor(uninitializedShape: [d, 4 * d])
        let h4 = 4 * d
        let m = Measurement.of(repeats: repeats) {
            BLAS.sgemm(transA: false, transB: true, m: tokens, n: h4, k: d, a: x.unsafeBase, lda: d, b: w1.unsafeBase, ldb: d, c: h.unsafeBase, ldc: h4)
            BLAS.sgemm(transA: false, transB: true, m: tokens, n: d, k: h4, a: h.unsafeBase, lda: h4, b: w2.unsafeBase, ldb: h4, c: y.unsafeBase, ldc: d)
            BLAS.sgemm(transA: false, transB: false, m: tokens, n: h4, k: d, a: y.unsafeBase, lda: d, b: w2.unsafeBase, ldb: h4, c: dh.unsafeBase, ldc: h4)
            BLAS.sgemm(transA: true, transB: false, m: d, n: h4, k: tokens, a: y.unsafeBase, lda: d, b: h.unsafeBase, ldb: h4, c: dw2.unsafeBase, ldc: h4)
            BLAS.sgemm(transA: false, transB: false, m: tokens, n: d, k: h4, a: dh.unsafeBase, lda: h4, b: w1.unsafeBase, ldb: d, c: dx.unsafeBase, ldc: d)
            BLAS.sgemm(transA: true, transB: false, m: h4, n: d, k: tokens, a: dh.unsafeBase, lda: h4, b: x.unsafeBase, ldb: d, c: dw1.unsafeBase, ldc: d)
        }
        return [BenchFigure("mlp.dense.raw_blas_ms", m.median * 1e3, "ms"),
                BenchFigure("mlp.dense.overhead_pct", (framework / m.median - 1) * 100, "%")]
    }

    /// The twelve block-GEMM batches of a Monarch MLP forward+backward (two per layer forward,
    /// four per layer backward), through the same thread-per-block BLAS calls as the layer,
    /// without the permutations, bias, GELU or autodiff: what is left is the framework's overhead.
    static func rawMonarchMLP(d: Int, tokens: Int, nblocks k: Int, repeats: Int, framework: Double) -> [BenchFigure] {
        var rng = RandomGenerator(seed: 4)
        // (n -> m): R blocks (k, q, p), L blocks (k, s, q) with p = n/k, s = m/k, q = min(n, m)/k.
        let layers = [(d, 4 * d), (4 * d, d)].map { (n, m) -> (p: Int, q: Int, s: Int, w1: Tensor, w2: Tensor) in
            let p = n / k, s = m / k, q = min(n, m) / k
            return (p, q, s, Tensor.randomNormal([k, q, p], using: &rng), Tensor.randomNormal([k, s, q], using: &rng))
        }
        let x = Tensor.randomNormal([tokens, 4 * d], using: &rng)
        let buffers = (0..<6).map { _ in Tensor.randomNormal([tokens, 4 * d], using: &rng) }
        let dw = (0..<2).map { _ in Tensor(uninitializedShape: [4 * d * d]) } // holds any factor's gradient
        let m = Measurement.of(repeats: repeats) {
            for l in layers {
                let (p, q, s) = (l.p, l.q, l.s)
                let (a, y1, y2) = (x.unsafeBase, buffers[0].unsafeBase, buffers[1].unsafeBase)
                BLAS.sgemmBatchedAcrossThreads(batch: k, transA: false, transB: true, m: tokens, n: q, k: p, a: a, lda: k * p, strideA: p,
                                               b: l.w1.unsafeBase, ldb: p, strideB: q * p, c: y1, ldc: k * q, strideC: q)
                BLAS.sgemmBatchedAcrossThreads(batch: k, transA: false, transB: true, m: tokens, n: s, k: q, a: y1, lda: k * q, strideA: q,
                                               b: l.w2.unsafeBase, ldb: q, strideB: s * q, c: y2, ldc: k * s, strideC: s)
            }
            for l in layers.reversed() {
                let (p, q, s) = (l.p, l.q, l.s)
                let (dy2, z, dz, xin, dx) = (buffers[2].unsafeBase, buffers[3].unsafeBase, buffers[4].unsafeBase, x.unsafeBase,
                                            buffers[5].unsafeBase)
                BLAS.sgemmBatchedAcrossThreads(batch: k, transA: true, transB: false, m: s, n: q, k: tokens, a: dy2, lda: k * s, strideA: s,
                                               b: z, ldb: k * q, strideB: q, c: dw[0].unsafeBase, ldc: q, strideC: s * q)
                BLAS.sgemmBatchedAcrossThreads(batch: k, transA: false, transB: false, m: tokens, n: q, k: s, a: dy2, lda: k * s, strideA: s,
                                               b: l.w2.unsafeBase, ldb: q, strideB: s * q, c: dz, ldc: k * q, strideC: q)
                BLAS.sgemmBatchedAcrossThreads(batch: k, transA: true, transB: false, m: q, n: p, k: tokens, a: dz, lda: k * q, strideA: q,
                                               b: xin, ldb: k * p, strideB: p, c: dw[1].unsafeBase, ldc: p, strideC: q * p)
                BLAS.sgemmBatchedAcrossThreads(batch: k, transA: false, transB: false, m: tokens, n: p, k: q, a: dz, lda: k * q, strideA: q,
                                               b: l.w1.unsafeBase, ldb: p, strideB: q * p, c: dx, ldc: k * p, strideC: p)
            }
        }
        withExtendedLifetime((layers, x, buffers, dw)) {}
        return [BenchFigure("mlp.monarch.raw_blas_ms", m.median * 1e3, "ms"),
                BenchFigure("mlp.monarch.overhead_pct", (framework / m.median - 1) * 100, "%")]
    }

    /// Forward+backward of the fused causal attention core (12 heads, d 768), B*T = `tokens`.
    public static func attention(seqLens: [Int] = [128, 256, 512, 1024], heads: Int = 12, d: Int = 768, tokens: Int = 2048,
                                 repeats: Int, progress: (String) -> Void) throws -> [BenchFigure] {
        var out: [BenchFigure] = []
        var rng = RandomGenerator(seed: 4)
        for t in seqLens {
            progress("attention T=\(t)")
            let b = max(1, tokens / t)
            let qkv = Tensor.randomNormal([b, t, 3 * d], using: &rng)
            let seed = Tensor(shape: [b, t, d], repeating: 1)
            let m = try Measurement.of(repeats: repeats) {
                let tape = Tape()
                let v = tape.watch(qkv)
                let y = try tape.record { try Variable.causalSelfAttention(v, heads: heads) }
                try tape.backward(y, seed: seed)
            }
            // Full-square GEMMs: 2 forward and 4 backward, each 2 * T^2 * hd per head.
            let flops = 12 * Double(b * heads) * Double(t * t) * Double(d / heads)
            out.append(BenchFigure("attention.T\(t).ms", m.median * 1e3, "ms"))
            out.append(BenchFigure("attention.T\(t).gflops", flops / m.median / 1e9, "GFLOP/s"))
        }
        return out
    }

    public static func kindKey(_ kind: LinearKind) -> String {
        switch kind {
        case .dense: return "dense"
        case .lowRank: return "lowrank"
        case .monarch: return "monarch"
        case .butterfly: return "butterfly"
        case .btt: return "btt"
        }
    }
}
