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
            // The family name (`mlp.monarch.*`), or the whole kind when two kinds of a family are compared (`mlp.btt2`, `mlp.btt4`).
            let name = kinds.filter({ kindKey($0) == kindKey(kind) }).count > 1
                ? kind.description.replacingOccurrences(of: ":", with: "").replacingOccurrences(of: "-", with: "") : kindKey(kind)
            if kind == .dense { denseTime = m.median }
            out.append(BenchFigure("mlp.\(name).ms", m.median * 1e3, "ms"))
            out.append(BenchFigure("mlp.\(name).spread", m.spread, "ratio"))
            out.append(BenchFigure("mlp.\(name).gflops", 6 * macs / m.median / 1e9, "GFLOP/s"))
            out.append(BenchFigure("mlp.\(name).params", Double(fc.parameterCount + proj.parameterCount), "count"))
            out.append(BenchFigure("mlp.\(name).flop_ratio", Double(2 * d * 4 * d) / Double(fc.macsPerToken + proj.macsPerToken), "x"))
            if denseTime.isFinite {
                let speedup = denseTime / m.median, ratio = Double(2 * d * 4 * d) / Double(fc.macsPerToken + proj.macsPerToken)
                out.append(BenchFigure("mlp.\(name).speedup", speedup, "x"))
                // 1 when every FLOP runs as fast as dense's; below, the kind's kernels are slower per FLOP.
                out.append(BenchFigure("mlp.\(name).efficiency", speedup / ratio, "speed-up / FLOP ratio"))
            }
            if kind == .dense { out += try rawDenseMLP(d: d, tokens: tokens, repeats: repeats, framework: m.median) }
            if let f = fc as? BlockFactorLayer, let p = proj as? BlockFactorLayer {
                out += rawBlockMLP(name, fc: f, proj: p, tokens: tokens, repeats: repeats, framework: m.median)
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
                BenchFigure("mlp.dense.raw_blas_gflops", 6 * Double(2 * d * h4 * tokens) / m.median / 1e9, "GFLOP/s of the GEMMs alone"),
                BenchFigure("mlp.dense.overhead_pct", (framework / m.median - 1) * 100, "%")]
    }

    /// The twelve block-GEMM batches of a Monarch or BTT MLP forward+backward (two per layer
    /// forward, four per layer backward), through the same BLAS calls as the layers, without the
    /// permutations, bias, GELU or autodiff: what is left is the framework's overhead, and the
    /// GEMMs' own GFLOP/s says how fast blocks of these shapes run at all.
    static func rawBlockMLP(_ name: String, fc: BlockFactorLayer, proj: BlockFactorLayer, tokens: Int, repeats: Int,
                            framework: Double) -> [BenchFigure] {
        let width = max(fc.inFeatures, fc.outFeatures, proj.outFeatures) * 4 // the widest intermediate, with room
        let scratch = BlockGEMMScratch(rows: tokens, width: width, factorSize: max(fc.parameterCount, proj.parameterCount))
        let m = Measurement.of(repeats: repeats) {
            fc.runBlockGEMMs(rows: tokens, scratch: scratch)
            proj.runBlockGEMMs(rows: tokens, scratch: scratch)
        }
        let macs = Double(fc.macsPerToken + proj.macsPerToken) * Double(tokens)
        return [BenchFigure("mlp.\(name).raw_blas_ms", m.median * 1e3, "ms"),
                BenchFigure("mlp.\(name).raw_blas_gflops", 6 * macs / m.median / 1e9, "GFLOP/s of the block GEMMs alone"),
                BenchFigure("mlp.\(name).overhead_pct", (framework / m.median - 1) * 100, "%")]
    }

    /// Forward+backward of the fused causal attention core (12 heads, d 768), B*T = `tokens`,
    /// through the tape at the library's row block, and beside it the same GEMM calls alone
    /// (``attentionGEMMs``): what the core would take if its elementwise work cost nothing, the
    /// floor this design can reach with this BLAS. `rowBlocks` adds the kernels at other row
    /// blocks (`attention.T<t>.block<n>.ms`), each with its own GEMM floor
    /// (`attention.T<t>.block<n>.gemm_floor_ms`: larger blocks give sgemm longer panels), to
    /// choose the default on a machine and to bound what any block could reach.
    public static func attention(seqLens: [Int] = [128, 256, 512, 1024], heads: Int = 12, d: Int = 768, tokens: Int = 2048,
                                 rowBlocks: [Int] = [], repeats: Int, progress: (String) -> Void) throws -> [BenchFigure] {
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
            let floor = Measurement.of(repeats: repeats) {
                attentionGEMMs(qkv: qkv, dout: seed, heads: heads, rowBlock: Kernels.attentionRowBlock)
            }
            out.append(BenchFigure("attention.T\(t).gemm_floor_ms", floor.median * 1e3, "ms (its GEMM calls alone)"))
            out.append(BenchFigure("attention.T\(t).gemm_share_pct", floor.median / m.median * 100, "% of the core's time"))
            for block in rowBlocks {
                let mb = try Measurement.of(repeats: repeats) {
                    let (y, saved) = try Kernels.attentionForward(qkv: qkv, heads: heads, rowBlock: block)
                    _ = try Kernels.attentionBackward(qkv: qkv, heads: heads, saved: saved, dout: seed, rowBlock: block)
                    withExtendedLifetime(y) {}
                }
                out.append(BenchFigure("attention.T\(t).block\(block).ms", mb.median * 1e3, "ms"))
                let fb = Measurement.of(repeats: repeats) { attentionGEMMs(qkv: qkv, dout: seed, heads: heads, rowBlock: block) }
                out.append(BenchFigure("attention.T\(t).block\(block).gemm_floor_ms", fb.median * 1e3, "ms (its GEMM calls alone)"))
            }
        }
        return out
    }

    /// The seven GEMM calls per row block of ``Kernels/attentionForward`` and
    /// ``Kernels/attentionBackward`` (forward S and E V; backward S, dP, dV, dQ, dK) with the
    /// same shapes, leading dimensions, betas and threads, and none of their elementwise work.
    /// The operands are whatever the buffers hold: only the time means anything.
    static func attentionGEMMs(qkv: Tensor, dout: Tensor, heads: Int, rowBlock: Int) {
        let (b, t, c3) = (qkv.shape[0], qkv.shape[1], qkv.shape[2])
        let c = c3 / 3, hd = c / heads, blk = max(1, min(rowBlock, t))
        let result = Tensor(uninitializedShape: [b, t, c3]), output = Tensor(uninitializedShape: [b, t, c])
        let (sx, sdy, sr, so) = (SendablePointer(qkv.unsafeBase), SendablePointer(dout.unsafeBase), SendablePointer(result.unsafeBase),
                                 SendablePointer(output.unsafeBase))
        Kernels.forEachHead(batch: b, heads: heads, scratchCount: 2 * blk * t) { bi, h, p in
            let dP = p + blk * t
            let q = sx.p + bi * t * c3 + h * hd, k = q + c, v = q + 2 * c
            let dq = sr.p + bi * t * c3 + h * hd, dk = dq + c, dv = dq + 2 * c
            let dO = sdy.p + bi * t * c + h * hd, o = so.p + bi * t * c + h * hd
            var r0 = 0
            while r0 < t {
                let rows = min(blk, t - r0), keys = r0 + rows
                BLAS.sgemm(transA: false, transB: true, m: rows, n: keys, k: hd, a: q + r0 * c3, lda: c3, b: k, ldb: c3, c: p, ldc: t)
                BLAS.sgemm(transA: false, transB: false, m: rows, n: hd, k: keys, a: p, lda: t, b: v, ldb: c3, c: o + r0 * c, ldc: c)
                r0 = keys
            }
            r0 = ((t - 1) / blk) * blk
            while r0 >= 0 {
                let rows = min(blk, t - r0), keys = r0 + rows
                let beta: Float = keys == t ? 0 : 1
                BLAS.sgemm(transA: false, transB: true, m: rows, n: keys, k: hd, a: q + r0 * c3, lda: c3, b: k, ldb: c3, c: p, ldc: t)
                BLAS.sgemm(transA: false, transB: true, m: rows, n: keys, k: hd, a: dO + r0 * c, lda: c, b: v, ldb: c3, c: dP, ldc: t)
                BLAS.sgemm(transA: true, transB: false, m: keys, n: hd, k: rows, a: p, lda: t, b: dO + r0 * c, ldb: c,
                           beta: beta, c: dv, ldc: c3)
                BLAS.sgemm(transA: false, transB: false, m: rows, n: hd, k: keys, a: dP, lda: t, b: k, ldb: c3, c: dq + r0 * c3, ldc: c3)
                BLAS.sgemm(transA: true, transB: false, m: keys, n: hd, k: rows, a: dP, lda: t, b: q + r0 * c3, ldb: c3,
                           beta: beta, c: dk, ldc: c3)
                r0 -= blk
            }
        }
        withExtendedLifetime((qkv, dout, result, output)) {}
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
