import FactorlabAutograd
import FactorlabTensor

/// The computation Monarch and block tensor-train share: two block-diagonal products with a
/// permutation between them (and, for Monarch, one after), as batched GEMMs. Nothing of size
/// in x out is ever formed.
///
/// For x [N, in]:
///   1. Y1[:, b, :] = X[:, b, :] W1[b]^T       W1 [blocks1, out1, in1], X viewed as [N, blocks1, in1]
///   2. Z = each row of Y1 viewed as [midA, midB, midChunk], transposed to [midB, midA, midChunk]
///   3. Y2[:, b, :] = Z[:, b, :] W2[b]^T       W2 [blocks2, out2, in2], Z viewed as [N, blocks2, in2]
///   4. out = Y2, or each row of Y2 viewed as [finalA, finalB] transposed to [finalB, finalA];
///      plus the bias.
struct BlockFactorPair {
    let blocks1: Int, out1: Int, in1: Int
    let midA: Int, midB: Int, midChunk: Int
    let blocks2: Int, out2: Int, in2: Int
    /// The final transposition's [a, b], or nil for none.
    let final: (a: Int, b: Int)?
    /// One GEMM per block after another, each multithreaded (see ``MonarchLinear/serialBlocks``).
    var serialBlocks = false

    var inFeatures: Int { blocks1 * in1 }
    var outFeatures: Int { blocks2 * out2 }

    /// Checks that the pieces fit together and `w1`, `w2` and `x` have the shapes they imply.
    func check(_ name: String, x: [Int], w1: [Int], w2: [Int], bias: [Int]?) throws {
        guard w1 == [blocks1, out1, in1], w2 == [blocks2, out2, in2], midA * midB * midChunk == blocks1 * out1,
              blocks2 * in2 == blocks1 * out1, final.map({ $0.a * $0.b == outFeatures }) ?? true else {
            throw LayerError(name, "factors \(describe(w1)), \(describe(w2)) do not fit together")
        }
        guard x.last == inFeatures else {
            throw LayerError(name, "input \(describe(x)) does not end in the layer's \(inFeatures) input features")
        }
        if let bias, bias != [outFeatures] {
            throw LayerError(name, "bias \(describe(bias)) does not match \(outFeatures) outputs")
        }
    }

    /// The differentiable product x -> out (+ bias) for x [..., in].
    func multiply(_ x: Variable, _ w1v: Variable, _ w2v: Variable, bias: Variable?, name: String) throws -> Variable {
        try check(name, x: x.shape, w1: w1v.shape, w2: w2v.shape, bias: bias?.shape)
        let n = inFeatures, m = outFeatures, mid = blocks1 * out1
        let rows = x.value.count / n
        // One row (batch-1 generation): streaming matrix-vector products instead of GEMMs with M = 1.
        // Quantized factors and few rows (generation): the packed products, which read each packed
        // row once for all rows; the factors' float32 values are then never formed.
        // With more rows, a packed factor is dequantized once per call: a factor is a fraction of
        // the layer, and its GEMMs over 17 or more rows cost many times the dequantization.
        let single = rows == 1
        // Float32 factors and a few rows (batched generation): the batched kernel per block.
        let fewFloatRows = rows <= Variable.fewRowLimit
        let fewRows = rows <= Variable.packedRowLimit
        let f1 = Factor(w1v, packedIfAny: fewRows), f2 = Factor(w2v, packedIfAny: fewRows)
        let w1Read = f1.float, w2Read = f2.float
        let biasValue = bias?.value.contiguous()
        let xin = try x.value.reshaped([rows, n]).contiguous()
        let y1 = Tensor(uninitializedShape: [rows, mid])
        let z = Tensor(uninitializedShape: [rows, mid])
        let out = Tensor(uninitializedShape: [rows, m])
        let y2 = final == nil ? out : Tensor(uninitializedShape: [rows, m])
        withExtendedLifetime((xin, w1Read, w2Read, biasValue)) {
            switch f1 {
            case .packed(let p1):
                Kernels.packedMatMul(p1, xin.unsafeBase, ldx: n, y1.unsafeBase, ldy: mid, inputRows: rows, blocks: blocks1,
                                     xStride: in1, yStride: out1, accumulate: false)
            case .float(let w1) where single:
                Kernels.blockMatVec(w1.unsafeBase, xin.unsafeBase, y1.unsafeBase, blocks: blocks1, rowsPerBlock: out1, cols: in1,
                                    xStride: in1, yStride: out1, accumulate: false)
            case .float(let w1) where fewFloatRows:
                Kernels.blockMatVecRows(w1.unsafeBase, xin.unsafeBase, ldx: n, y1.unsafeBase, ldy: mid, blocks: blocks1,
                                        rowsPerBlock: out1, cols: in1, xStride: in1, yStride: out1, inputRows: rows, accumulate: false)
            case .float(let w1):
                gemm(batch: blocks1, transA: false, transB: true, m: rows, n: out1, k: in1, a: xin.unsafeBase, lda: n, strideA: in1,
                     b: w1.unsafeBase, ldb: in1, strideB: out1 * in1, c: y1.unsafeBase, ldc: mid, strideC: out1)
            }
            transposeLastTwo(y1.unsafeBase, z.unsafeBase, rows: rows, a: midA, b: midB, chunk: midChunk)
            var beta: Float = 0
            if final == nil, let biasValue {
                // No pass of its own for the bias: the last GEMM accumulates onto it.
                fillRows(out.unsafeBase, rows: rows, with: UnsafePointer(biasValue.unsafeBase), count: m)
                beta = 1
            }
            switch f2 {
            case .packed(let p2):
                Kernels.packedMatMul(p2, z.unsafeBase, ldx: mid, y2.unsafeBase, ldy: m, inputRows: rows, blocks: blocks2,
                                     xStride: in2, yStride: out2, accumulate: beta == 1)
            case .float(let w2) where single:
                Kernels.blockMatVec(w2.unsafeBase, z.unsafeBase, y2.unsafeBase, blocks: blocks2, rowsPerBlock: out2, cols: in2,
                                    xStride: in2, yStride: out2, accumulate: beta == 1)
            case .float(let w2) where fewFloatRows:
                Kernels.blockMatVecRows(w2.unsafeBase, z.unsafeBase, ldx: mid, y2.unsafeBase, ldy: m, blocks: blocks2,
                                        rowsPerBlock: out2, cols: in2, xStride: in2, yStride: out2, inputRows: rows,
                                        accumulate: beta == 1)
            case .float(let w2):
                gemm(batch: blocks2, transA: false, transB: true, m: rows, n: out2, k: in2, a: z.unsafeBase, lda: mid, strideA: in2,
                     b: w2.unsafeBase, ldb: in2, strideB: out2 * in2, beta: beta, c: y2.unsafeBase, ldc: m, strideC: out2)
            }
            if let final {
                transposeLastTwo(y2.unsafeBase, out.unsafeBase, rows: rows, a: final.a, b: final.b,
                                 adding: biasValue.map { UnsafePointer($0.unsafeBase) })
            }
        }
        var outShape = x.shape
        outShape[outShape.count - 1] = m
        let needX = x.requiresGrad
        let inputs = bias.map { [x, w1v, w2v, $0] } ?? [x, w1v, w2v]
        return Variable.record(try out.reshaped(outShape), inputs: inputs, name: name) { g in
            let w1 = w1Read ?? w1v.value.contiguous(), w2 = w2Read ?? w2v.value.contiguous()
            let gOut = try g.reshaped([rows, m]).contiguous()
            let dY2: Tensor
            if let final {
                dY2 = Tensor(uninitializedShape: [rows, m])
                transposeLastTwo(gOut.unsafeBase, dY2.unsafeBase, rows: rows, a: final.b, b: final.a)
            } else {
                dY2 = gOut
            }
            let dZ = Tensor(uninitializedShape: [rows, mid])
            let dY1 = Tensor(uninitializedShape: [rows, mid])
            let dW1 = Tensor(uninitializedShape: w1.shape), dW2 = Tensor(uninitializedShape: w2.shape)
            let dX = needX ? Tensor(uninitializedShape: [rows, n]) : nil
            withExtendedLifetime((gOut, dY2, xin, z, w1, w2)) {
                // dW2[b] = dY2_b^T Z_b ; dZ_b = dY2_b W2[b]
                gemm(batch: blocks2, transA: true, transB: false, m: out2, n: in2, k: rows, a: dY2.unsafeBase, lda: m, strideA: out2,
                     b: z.unsafeBase, ldb: mid, strideB: in2, c: dW2.unsafeBase, ldc: in2, strideC: out2 * in2)
                gemm(batch: blocks2, transA: false, transB: false, m: rows, n: in2, k: out2, a: dY2.unsafeBase, lda: m, strideA: out2,
                     b: w2.unsafeBase, ldb: in2, strideB: out2 * in2, c: dZ.unsafeBase, ldc: mid, strideC: in2)
                transposeLastTwo(dZ.unsafeBase, dY1.unsafeBase, rows: rows, a: midB, b: midA, chunk: midChunk)
                // dW1[b] = dY1_b^T X_b ; dX_b = dY1_b W1[b]
                gemm(batch: blocks1, transA: true, transB: false, m: out1, n: in1, k: rows, a: dY1.unsafeBase, lda: mid, strideA: out1,
                     b: xin.unsafeBase, ldb: n, strideB: in1, c: dW1.unsafeBase, ldc: in1, strideC: out1 * in1)
                if let dX {
                    gemm(batch: blocks1, transA: false, transB: false, m: rows, n: in1, k: out1, a: dY1.unsafeBase, lda: mid,
                         strideA: out1, b: w1.unsafeBase, ldb: in1, strideB: out1 * in1, c: dX.unsafeBase, ldc: n, strideC: in1)
                }
            }
            let grads = [try dX?.reshaped(x.shape), dW1, dW2]
            return bias == nil ? grads : grads + [try gOut.sum(toShape: [m])]
        }
    }

    /// A factor as the forward product reads it: packed (few rows of a quantized model) or its
    /// float32 values, contiguous.
    enum Factor {
        case packed(PackedWeights)
        case float(Tensor)

        init(_ w: Variable, packedIfAny: Bool) {
            if packedIfAny, let p = w.packed { self = .packed(p) } else { self = .float(w.value.contiguous()) }
        }

        var float: Tensor? {
            if case .float(let t) = self { return t }
            return nil
        }
    }

    /// The block products: one single-threaded GEMM per block, split across the worker threads (the
    /// default), or with `serialBlocks`, one multithreaded GEMM per block after another.
    @inline(__always)
    private func gemm(batch: Int, transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                      a: UnsafePointer<Float>, lda: Int, strideA: Int, b: UnsafePointer<Float>, ldb: Int, strideB: Int,
                      beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int, strideC: Int) {
        if serialBlocks {
            BLAS.sgemmStridedBatched(batch: batch, transA: transA, transB: transB, m: m, n: n, k: k, a: a, lda: lda, strideA: strideA,
                                     b: b, ldb: ldb, strideB: strideB, beta: beta, c: c, ldc: ldc, strideC: strideC)
        } else {
            BLAS.sgemmBatchedAcrossThreads(batch: batch, transA: transA, transB: transB, m: m, n: n, k: k, a: a, lda: lda,
                                           strideA: strideA, b: b, ldb: ldb, strideB: strideB, beta: beta, c: c, ldc: ldc,
                                           strideC: strideC)
        }
    }
}

extension BlockFactorPair {
    /// For benchmarks: the six GEMM batches of one forward+backward (two forward, four backward)
    /// with this product's shapes, on `scratch`, without the permutations, bias or autodiff.
    func runGEMMsOnly(rows: Int, w1: Tensor, w2: Tensor, scratch: BlockGEMMScratch) {
        let n = inFeatures, m = outFeatures, mid = blocks1 * out1
        let b = scratch.buffers.map(\.unsafeBase), dw = scratch.factorGradient.unsafeBase
        withExtendedLifetime((w1, w2, scratch)) {
            gemm(batch: blocks1, transA: false, transB: true, m: rows, n: out1, k: in1, a: b[0], lda: n, strideA: in1,
                 b: w1.unsafeBase, ldb: in1, strideB: out1 * in1, c: b[1], ldc: mid, strideC: out1)
            gemm(batch: blocks2, transA: false, transB: true, m: rows, n: out2, k: in2, a: b[1], lda: mid, strideA: in2,
                 b: w2.unsafeBase, ldb: in2, strideB: out2 * in2, c: b[2], ldc: m, strideC: out2)
            gemm(batch: blocks2, transA: true, transB: false, m: out2, n: in2, k: rows, a: b[2], lda: m, strideA: out2,
                 b: b[1], ldb: mid, strideB: in2, c: dw, ldc: in2, strideC: out2 * in2)
            gemm(batch: blocks2, transA: false, transB: false, m: rows, n: in2, k: out2, a: b[2], lda: m, strideA: out2,
                 b: w2.unsafeBase, ldb: in2, strideB: out2 * in2, c: b[3], ldc: mid, strideC: in2)
            gemm(batch: blocks1, transA: true, transB: false, m: out1, n: in1, k: rows, a: b[3], lda: mid, strideA: out1,
                 b: b[0], ldb: n, strideB: in1, c: dw, ldc: in1, strideC: out1 * in1)
            gemm(batch: blocks1, transA: false, transB: false, m: rows, n: in1, k: out1, a: b[3], lda: mid, strideA: out1,
                 b: w1.unsafeBase, ldb: in1, strideB: out1 * in1, c: b[4], ldc: n, strideC: in1)
        }
    }
}

/// Buffers for ``BlockFactorLayer/runBlockGEMMs(rows:scratch:)``, allocated once outside a timed loop.
public final class BlockGEMMScratch {
    let buffers: [Tensor]
    let factorGradient: Tensor

    /// Room for `rows` rows of up to `width` values in each buffer, and a factor of up to `factorSize` values.
    public init(rows: Int, width: Int, factorSize: Int) {
        var rng = RandomGenerator(seed: 4)
        buffers = (0..<5).map { _ in Tensor.randomNormal([rows, width], using: &rng) }
        factorGradient = Tensor(zeros: [factorSize])
    }
}

/// Layers made of two block-diagonal products (Monarch, BTT).
public protocol BlockFactorLayer: LinearLayer {
    /// For benchmarks: the layer's six GEMM batches of one forward+backward alone (no
    /// permutations, bias, normalization or autodiff), so that the framework's overhead and the
    /// speed of the block GEMMs themselves can be told apart.
    func runBlockGEMMs(rows: Int, scratch: BlockGEMMScratch)
}

/// Copies `count` values from `src` into each of `rows` rows of `dst` (parallel over rows).
func fillRows(_ dst: UnsafeMutablePointer<Float>, rows: Int, with src: UnsafePointer<Float>, count: Int) {
    let d = SendablePointer(dst), s = SendablePointer(src)
    Parallel.forRange(rows, costPerItem: count) { range in
        for i in range { (d.p + i * count).update(from: s.p, count: count) }
    }
}

/// dst[i][j][l][c] = src[i][l][j][c] (+ add[(j * a + l) * chunk + c]) for `rows` arrays of shape
/// [a, b, chunk] (src) -> [b, a, chunk] (dst). Parallel over rows; each worker writes only its own
/// rows. With chunk 1 the inner loop runs along the longer side (Monarch's shapes are [q, k] and
/// [k, s] with k = nblocks small): contiguous writes and interleaved reads when b is the short
/// side, the other way round when a is. Chunks longer than 1 are copied whole.
func transposeLastTwo(_ src: UnsafeMutablePointer<Float>, _ dst: UnsafeMutablePointer<Float>, rows: Int, a: Int, b: Int,
                      chunk: Int = 1, adding add: UnsafePointer<Float>? = nil) {
    let s = SendablePointer(src), d = SendablePointer(dst), bias = add.map { SendablePointer($0) }
    let size = a * b * chunk
    Parallel.forRange(rows, costPerItem: size) { range in
        for i in range {
            let sp = s.p + i * size, dp = d.p + i * size
            if chunk > 1 {
                // Chunks are a BTT rank (a few floats): an inline loop, not a memmove call per chunk.
                for j in 0..<b {
                    for l in 0..<a {
                        let o = dp + (j * a + l) * chunk, q = sp + (l * b + j) * chunk
                        for c in 0..<chunk { o[c] = q[c] }
                    }
                }
            } else if b <= a {
                for j in 0..<b {
                    let out = dp + j * a
                    for l in 0..<a { out[l] = sp[l * b + j] }
                }
            } else {
                for l in 0..<a {
                    let row = sp + l * b
                    for j in 0..<b { dp[j * a + l] = row[j] }
                }
            }
            if let bias {
                for e in 0..<size { dp[e] += bias.p[e] }
            }
        }
    }
}
