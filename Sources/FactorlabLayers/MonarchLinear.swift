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
public final class MonarchLinear: BlockFactorLayer {
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
    public var macsPerToken: Int { blkdiag1.count + blkdiag2.count }
    public var factorFanIns: [Int?] { [blkdiag1.shape[2], blkdiag2.shape[2]] + (bias == nil ? [] : [nil]) }

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

    public func runBlockGEMMs(rows: Int, scratch: BlockGEMMScratch) {
        let k = nblocks, q = blkdiag1.shape[1], p = blkdiag1.shape[2], s = blkdiag2.shape[1]
        var pair = BlockFactorPair(blocks1: k, out1: q, in1: p, midA: q, midB: k, midChunk: 1, blocks2: k, out2: s, in2: q,
                                   final: (a: k, b: s))
        pair.serialBlocks = serialBlocks
        pair.runGEMMsOnly(rows: rows, w1: blkdiag1.value, w2: blkdiag2.value, scratch: scratch)
    }

    /// The differentiable Monarch product x -> P L P^T R x (+ bias) for x [..., in]. The bias is
    /// added by the last permutation's pass over the output, not by a pass of its own.
    /// `serialBlocks` runs the block products one after another with multithreaded GEMMs
    /// instead of one single-threaded GEMM per thread (see ``MonarchLinear/serialBlocks``).
    public static func multiply(_ x: Variable, _ w1v: Variable, _ w2v: Variable, outFeatures m: Int,
                                bias: Variable? = nil, serialBlocks: Bool = false) throws -> Variable {
        guard w1v.shape.count == 3, w2v.shape.count == 3 else {
            throw LayerError("monarch", "factors \(describe(w1v.shape)), \(describe(w2v.shape)) must be [blocks, out, in]")
        }
        let k = w1v.shape[0], q = w1v.shape[1], p = w1v.shape[2], s = w2v.shape[1], r = w2v.shape[2]
        guard w2v.shape[0] == k, r == q, k * s == m else {
            throw LayerError("monarch", "factors \(describe(w1v.shape)), \(describe(w2v.shape)) do not fit input \(describe(x.shape)) -> \(m)")
        }
        // Y1 rows [k, q] read as [q, k] and transposed (P^T); Y2 rows [k, s] transposed to [s, k] (P).
        var pair = BlockFactorPair(blocks1: k, out1: q, in1: p, midA: q, midB: k, midChunk: 1, blocks2: k, out2: s, in2: r,
                                   final: (a: k, b: s))
        pair.serialBlocks = serialBlocks
        return try pair.multiply(x, w1v, w2v, bias: bias, name: "monarch")
    }
}
