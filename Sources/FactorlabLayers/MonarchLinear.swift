import Foundation
import FactorlabAutograd
import FactorlabTensor

/// The Monarch accelerator (Dao et al. 2022, "Monarch: Expressive Structured Matrices for
/// Efficient and Accurate Training"): M = P L P^T R with R = blkdiag1 and L = blkdiag2
/// block-diagonal and P the reshape-transpose permutation.
///
/// Shapes follow the reference implementation (HazyResearch `MonarchLinear`), with k = nblocks,
/// p = in / k:
///   in <= out:  blkdiag1 [k, p, p],        blkdiag2 [k, out/k, p]
///   in >  out:  blkdiag1 [k, out/k, p],    blkdiag2 [k, out/k, out/k]
/// so for d = 768, k = 4: 768->3072 has [4,192,192] and [4,768,192]; 3072->768 has
/// [4,192,768] and [4,192,192]: 737,280 weights each, 31.25% of dense.
///
/// Computation for x [N, in], never forming M (q = blkdiag1.shape[1], s = blkdiag2.shape[1]):
///   1. Y1[:, b, :] = X[:, b, :] blkdiag1[b]^T           (k GEMMs, X viewed as [N, k, p])
///   2. Z = Y1 viewed as [N, q, k], transposed to [N, k, q]       (the permutation P^T)
///   3. Y2[:, b, :] = Z[:, b, :] blkdiag2[b]^T           (k GEMMs)
///   4. out = Y2 [N, k, s] transposed to [N, s, k]               (the permutation P)
///
/// Init rule: both factors from N(0, s^2) with s^4 = in * std^2 / (q * p); for unit-variance
/// inputs the output variance is then q * s^2 * p * s^2 = in * std^2, as for the dense layer.
public final class MonarchLinear: LinearLayer {
    public let blkdiag1: Parameter
    public let blkdiag2: Parameter
    public let bias: Parameter?
    public let inFeatures: Int
    public let outFeatures: Int
    public var nblocks: Int { blkdiag1.shape[0] }
    public var kind: LinearKind { .monarch(nblocks: nblocks) }
    public var parameters: [Parameter] { [blkdiag1, blkdiag2] + (bias.map { [$0] } ?? []) }
    public var parameterNames: [String] { ["monarch.blkdiag1", "monarch.blkdiag2", "bias"] }
    /// Run the block products one after another, each a multithreaded GEMM, instead of one
    /// single-threaded GEMM per worker thread (the default, faster at GPT-2's shapes); for
    /// comparisons (`factorlab bench --monarch-serial-blocks`).
    public var serialBlocks = false
    public var macsPerToken: Int { blkdiag1.value.count + blkdiag2.value.count }

    /// Factor shapes for a layer, or an error when `nblocks` does not divide both sizes.
    public static func factorShapes(inFeatures n: Int, outFeatures m: Int, nblocks k: Int) throws -> ([Int], [Int]) {
        guard k >= 1, n % k == 0, m % k == 0 else {
            throw LayerError("monarch:\(k) \(n)->\(m)", "nblocks \(k) must divide both in_features \(n) and out_features \(m)")
        }
        let p = n / k, s = m / k
        return n <= m ? ([k, p, p], [k, s, p]) : ([k, s, p], [k, s, s])
    }

    public convenience init(inFeatures: Int, outFeatures: Int, nblocks: Int, bias: Bool = true, std: Float = 0.02,
                            rng: inout RandomGenerator) throws {
        var weights = WeightInit.random(rng)
        defer { rng = weights.generator! }
        try self.init(inFeatures: inFeatures, outFeatures: outFeatures, nblocks: nblocks, bias: bias, std: std, weights: &weights)
    }

    public init(inFeatures: Int, outFeatures: Int, nblocks: Int, bias: Bool = true, std: Float = 0.02,
                weights: inout WeightInit) throws {
        let (s1, s2) = try MonarchLinear.factorShapes(inFeatures: inFeatures, outFeatures: outFeatures, nblocks: nblocks)
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        let q = s1[1], p = s1[2]
        let s = (Float(inFeatures) * std * std / Float(q * p)).squareRoot().squareRoot()
        blkdiag1 = Parameter("monarch.blkdiag1", weights.normal(s1, std: s))
        blkdiag2 = Parameter("monarch.blkdiag2", weights.normal(s2, std: s))
        self.bias = bias ? Parameter("bias", Tensor(zeros: [outFeatures])) : nil
    }

    /// Wraps existing factors, checking their shapes.
    public init(inFeatures: Int, outFeatures: Int, blkdiag1: Tensor, blkdiag2: Tensor, bias: Tensor?) throws {
        let k = blkdiag1.rank == 3 ? blkdiag1.shape[0] : 0
        let (s1, s2) = try MonarchLinear.factorShapes(inFeatures: inFeatures, outFeatures: outFeatures, nblocks: max(k, 1))
        guard blkdiag1.shape == s1, blkdiag2.shape == s2 else {
            throw LayerError("monarch:\(k) \(inFeatures)->\(outFeatures)",
                             "factors \(describe(blkdiag1.shape)) and \(describe(blkdiag2.shape)) do not match the expected \(describe(s1)) and \(describe(s2))")
        }
        if let b = bias, b.shape != [outFeatures] {
            throw LayerError("monarch", "bias \(describe(b.shape)) does not match \(outFeatures) outputs")
        }
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.blkdiag1 = Parameter("monarch.blkdiag1", blkdiag1.contiguous())
        self.blkdiag2 = Parameter("monarch.blkdiag2", blkdiag2.contiguous())
        self.bias = bias.map { Parameter("bias", $0.contiguous()) }
    }

    public func callAsFunction(_ x: Variable) throws -> Variable {
        try checkInput(x, "monarch:\(nblocks) \(inFeatures)->\(outFeatures)")
        return try MonarchLinear.multiply(x, blkdiag1.variable, blkdiag2.variable, outFeatures: outFeatures, bias: bias?.variable,
                                          serialBlocks: serialBlocks)
    }

    public func denseMatrix() throws -> Tensor {
        var eye = Tensor(zeros: [inFeatures, inFeatures])
        eye.withUnsafeMutablePointer { p in for i in 0..<inFeatures { p[i * inFeatures + i] = 1 } }
        // Rows of the identity through the layer give the rows of W^T.
        let wt = try Tape.withoutRecording {
            try MonarchLinear.multiply(Variable(eye), Variable(blkdiag1.value), Variable(blkdiag2.value), outFeatures: outFeatures)
        }
        return wt.value.transposed().contiguous()
    }

    /// The differentiable Monarch product x -> P L P^T R x (+ bias) for x [..., in]. The bias is
    /// added by the last permutation's pass over the output, not by a pass of its own.
    /// `serialBlocks` runs the block products one after another with multithreaded GEMMs
    /// instead of one single-threaded GEMM per thread (see ``MonarchLinear/serialBlocks``).
    public static func multiply(_ x: Variable, _ w1v: Variable, _ w2v: Variable, outFeatures m: Int,
                                bias: Variable? = nil, serialBlocks: Bool = false) throws -> Variable {
        let w1 = w1v.value.contiguous(), w2 = w2v.value.contiguous()
        let k = w1.shape[0], q = w1.shape[1], p = w1.shape[2], s = w2.shape[1], r = w2.shape[2]
        let n = k * p
        guard r == q, k * s == m, x.shape.last == n else {
            throw LayerError("monarch", "factors \(describe(w1.shape)), \(describe(w2.shape)) do not fit input \(describe(x.shape)) -> \(m)")
        }
        if let b = bias, b.shape != [m] {
            throw LayerError("monarch", "bias \(describe(b.shape)) does not match \(m) outputs")
        }
        let biasValue = bias?.value.contiguous()
        let rows = x.value.count / n
        let xin = try x.value.reshaped([rows, n]).contiguous()
        let y1 = Tensor(uninitializedShape: [rows, k * q])
        let z = Tensor(uninitializedShape: [rows, k * q])
        let y2 = Tensor(uninitializedShape: [rows, k * s])
        let out = Tensor(uninitializedShape: [rows, m])
        withExtendedLifetime((xin, w1, w2, biasValue)) {
            // 1. Y1 block b = X block b * blkdiag1[b]^T
            monarchGEMM(serial: serialBlocks, batch: k, transA: false, transB: true, m: rows, n: q, k: p,
                                     a: xin.unsafeBase, lda: n, strideA: p, b: w1.unsafeBase, ldb: p, strideB: q * p,
                                     c: y1.unsafeBase, ldc: k * q, strideC: q)
            // 2. [N, q, k] -> [N, k, q]
            transposeLastTwo(y1.unsafeBase, z.unsafeBase, rows: rows, a: q, b: k)
            // 3. Y2 block b = Z block b * blkdiag2[b]^T
            monarchGEMM(serial: serialBlocks, batch: k, transA: false, transB: true, m: rows, n: s, k: r,
                                     a: z.unsafeBase, lda: k * r, strideA: r, b: w2.unsafeBase, ldb: r, strideB: s * r,
                                     c: y2.unsafeBase, ldc: k * s, strideC: s)
            // 4. [N, k, s] -> [N, s, k], plus the bias
            transposeLastTwo(y2.unsafeBase, out.unsafeBase, rows: rows, a: k, b: s,
                             adding: biasValue.map { UnsafePointer($0.unsafeBase) })
        }
        var outShape = x.shape
        outShape[outShape.count - 1] = m
        let needX = x.requiresGrad
        let inputs = bias.map { [x, w1v, w2v, $0] } ?? [x, w1v, w2v]
        return Variable.record(try out.reshaped(outShape), inputs: inputs, name: "monarch") { g in
            let gOut = try g.reshaped([rows, m]).contiguous()
            let dY2 = Tensor(uninitializedShape: [rows, k * s])
            let dZ = Tensor(uninitializedShape: [rows, k * r])
            let dY1 = Tensor(uninitializedShape: [rows, k * q])
            let dW1 = Tensor(uninitializedShape: w1.shape), dW2 = Tensor(uninitializedShape: w2.shape)
            let dX = needX ? Tensor(uninitializedShape: [rows, n]) : nil
            withExtendedLifetime((gOut, xin, z, w1, w2)) {
                transposeLastTwo(gOut.unsafeBase, dY2.unsafeBase, rows: rows, a: s, b: k)          // [N,s,k] -> [N,k,s]
                // dW2[b] = dY2_b^T Z_b ; dZ_b = dY2_b W2[b]
                monarchGEMM(serial: serialBlocks, batch: k, transA: true, transB: false, m: s, n: r, k: rows,
                                         a: dY2.unsafeBase, lda: k * s, strideA: s, b: z.unsafeBase, ldb: k * r, strideB: r,
                                         c: dW2.unsafeBase, ldc: r, strideC: s * r)
                monarchGEMM(serial: serialBlocks, batch: k, transA: false, transB: false, m: rows, n: r, k: s,
                                         a: dY2.unsafeBase, lda: k * s, strideA: s, b: w2.unsafeBase, ldb: r, strideB: s * r,
                                         c: dZ.unsafeBase, ldc: k * r, strideC: r)
                transposeLastTwo(dZ.unsafeBase, dY1.unsafeBase, rows: rows, a: k, b: q)            // [N,k,q] -> [N,q,k]
                // dW1[b] = dY1_b^T X_b ; dX_b = dY1_b W1[b]
                monarchGEMM(serial: serialBlocks, batch: k, transA: true, transB: false, m: q, n: p, k: rows,
                                         a: dY1.unsafeBase, lda: k * q, strideA: q, b: xin.unsafeBase, ldb: n, strideB: p,
                                         c: dW1.unsafeBase, ldc: p, strideC: q * p)
                if let dX {
                    monarchGEMM(serial: serialBlocks, batch: k, transA: false, transB: false, m: rows, n: p, k: q,
                                             a: dY1.unsafeBase, lda: k * q, strideA: q, b: w1.unsafeBase, ldb: p, strideB: q * p,
                                             c: dX.unsafeBase, ldc: n, strideC: p)
                }
            }
            let grads = [try dX?.reshaped(x.shape), dW1, dW2]
            return bias == nil ? grads : grads + [try gOut.sum(toShape: [m])]
        }
    }
}

/// The block products: one single-threaded GEMM per block, split across the worker threads (the
/// default), or with `serial`, one multithreaded GEMM per block after another (for comparisons).
@inline(__always)
func monarchGEMM(serial: Bool, batch: Int, transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                 a: UnsafePointer<Float>, lda: Int, strideA: Int, b: UnsafePointer<Float>, ldb: Int, strideB: Int,
                 c: UnsafeMutablePointer<Float>, ldc: Int, strideC: Int) {
    if serial {
        BLAS.sgemmStridedBatched(batch: batch, transA: transA, transB: transB, m: m, n: n, k: k, a: a, lda: lda, strideA: strideA,
                                 b: b, ldb: ldb, strideB: strideB, c: c, ldc: ldc, strideC: strideC)
    } else {
        BLAS.sgemmBatchedAcrossThreads(batch: batch, transA: transA, transB: transB, m: m, n: n, k: k, a: a, lda: lda,
                                       strideA: strideA, b: b, ldb: ldb, strideB: strideB, c: c, ldc: ldc, strideC: strideC)
    }
}

/// dst[i][j][l] = src[i][l][j] (+ add[j * a + l]) for `rows` matrices of shape [a, b] (src) ->
/// [b, a] (dst). Parallel over rows; each worker writes only its own rows. The inner loop runs
/// along the longer side (Monarch's shapes are [q, k] and [k, s] with k = nblocks small):
/// contiguous writes and interleaved reads when b is the short side, the other way round when a is.
func transposeLastTwo(_ src: UnsafeMutablePointer<Float>, _ dst: UnsafeMutablePointer<Float>, rows: Int, a: Int, b: Int,
                      adding add: UnsafePointer<Float>? = nil) {
    let s = SendablePointer(src), d = SendablePointer(dst), bias = add.map { SendablePointer($0) }
    Parallel.forRange(rows, costPerItem: a * b) { range in
        for i in range {
            let sp = s.p + i * a * b, dp = d.p + i * a * b
            if b <= a {
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
                for e in 0..<(a * b) { dp[e] += bias.p[e] }
            }
        }
    }
}
