import FactorlabAutograd
import FactorlabTensor
import Foundation

/// Block tensor-train with two cores (Qiu et al., "Compute Better Spent: Replacing Dense Layers
/// with Structured Matrices", ICML 2024; Potapczynski et al., NeurIPS 2024): the structured family
/// of which Monarch is the rank-1 case.
///
/// The sizes factor as in = m0 * m1 and out = n0 * n1 (the most even split, smaller factor first,
/// as the authors' `factorize` picks it: 768 = 16 * 48, 3072 = 32 * 96). With input index
/// i = i1 * m0 + i0, output index o = j0 * n1 + j1 and rank r:
///
///   W[o, i] = sum_t core2[j0, j1, i1 * r + t] * core1[i1, j0 * r + t, i0]
///
/// core1 [m1, n0 * r, m0] maps each contiguous input chunk (m1 chunks of m0) to n0 * r values;
/// core2 [n0, n1, m1 * r] maps, for each j0, the r values of every chunk to a contiguous output
/// chunk of n1. These are the authors' cores (`W0` [m1, m0, r n0], `W1` [n0, r m1, n1]) with their
/// last two axes swapped into the [out, in] orientation Factorlab's layers use.
///
/// Cost: in * r * n0 + out * r * m1 multiply-accumulates per token (768 -> 3072 at r = 1:
/// 172,032, 7.3% of dense).
///
/// Init: the authors' rule gives each core N(0, sigma^2) with sigma = sqrt(1/d_in) *
/// min(1, sqrt(d_out/d_in)) for the core's own d_in and d_out (m0 -> r n0, then r m1 -> n1). We
/// keep the rule's balance between the two cores and scale both by one factor t so that, for
/// unit-variance inputs, the output variance is the dense layer's in * std^2, as for every other
/// kind here: in r (t sigma1)^2 (t sigma2)^2 = in std^2. The rule alone (a muP scale) would start
/// GPT-2's BTT layers at a different output variance from the dense layers they replace: 1.0 /
/// (in std^2) times dense for 768 -> 3072 at std 0.02 (3.3x), and half of what its own dense
/// counterpart gives for 256 -> 512 at rank 4 (`LayerTests.testInitKeepsDenseOutputVariance`
/// measures the matched variance).
///
/// `normalized` (the authors' `btt_norm`, which they needed for GPT-2) rescales each core in the
/// forward by gamma / max(1, rms(core) / max_rms), max_rms = sqrt(min(d_in, d_out)) / d_in, with a
/// learned scalar gamma per core (initially 1).
public final class BTTLinear: BlockFactorLayer {
    public let core1: Parameter
    public let core2: Parameter
    /// The learned core scales of the normalized variant, shape [1] each.
    public let gamma1: Parameter?, gamma2: Parameter?
    public let bias: Parameter?
    public let inFeatures: Int
    public let outFeatures: Int
    public let rank: Int
    public var normalized: Bool { gamma1 != nil }
    public var kind: LinearKind { .btt(rank: rank, normalized: normalized) }
    public var parameters: [Parameter] {
        [core1, core2] + [gamma1, gamma2, bias].compactMap { $0 }
    }
    public var parameterNames: [String] {
        ["btt.core1", "btt.core2"] + (normalized ? ["btt.gamma1", "btt.gamma2"] : []) + (bias == nil ? [] : ["bias"])
    }
    public var macsPerToken: Int { core1.count + core2.count }
    public var factorFanIns: [Int?] {
        [core1.shape[2], core2.shape[2]] + (normalized ? [nil, nil] : []) + (bias == nil ? [] : [nil])
    }

    /// The most even split of `x` into two factors, smaller first (the authors' greedy rule: each
    /// prime factor, smallest first, goes to the factor with the smaller product).
    public static func split(_ x: Int) -> (Int, Int) {
        var f = (1, 1), rest = x, p = 2
        while rest > 1 {
            if p * p > rest { p = rest }
            while rest % p == 0 {
                if f.0 <= f.1 { f.0 *= p } else { f.1 *= p }
                rest /= p
            }
            p += 1
        }
        return (min(f.0, f.1), max(f.0, f.1))
    }

    /// The core shapes [m1, n0 r, m0] and [n0, n1, m1 r], or an error when the rank is out of range.
    public static func coreShapes(inFeatures n: Int, outFeatures m: Int, rank r: Int) throws -> ([Int], [Int]) {
        let (m0, m1) = split(n), (n0, n1) = split(m)
        // Beyond min(m0, n1) every sub-block is already full rank: a dense layer with more parameters.
        guard r >= 1, r <= min(m0, n1) else {
            throw LayerError("btt:\(r) \(n)->\(m)",
                             "rank \(r) must be between 1 and min(m0, n1) = \(min(m0, n1)) for in \(n) = \(m0) x \(m1) and out \(m) = \(n0) x \(n1)")
        }
        return ([m1, n0 * r, m0], [n0, n1, m1 * r])
    }

    /// The largest core RMS the normalized variant lets through, for a core mapping dIn -> dOut.
    static func maxRMS(dIn: Int, dOut: Int) -> Float { Float(min(dIn, dOut)).squareRoot() / Float(dIn) }

    public convenience init(inFeatures: Int, outFeatures: Int, rank: Int, normalized: Bool = false, bias: Bool = true,
                            std: Float = 0.02, rng: inout RandomGenerator) throws {
        var weights = WeightInit.random(rng)
        defer { rng = weights.generator! }
        try self.init(inFeatures: inFeatures, outFeatures: outFeatures, rank: rank, normalized: normalized, bias: bias, std: std,
                      weights: &weights)
    }

    public init(inFeatures: Int, outFeatures: Int, rank: Int, normalized: Bool = false, bias: Bool = true, std: Float = 0.02,
                weights: inout WeightInit) throws {
        let (c1, c2) = try BTTLinear.coreShapes(inFeatures: inFeatures, outFeatures: outFeatures, rank: rank)
        let (m0, m1) = BTTLinear.split(inFeatures), (n0, n1) = BTTLinear.split(outFeatures)
        func rule(_ dIn: Int, _ dOut: Int) -> Float { (1 / Float(dIn)).squareRoot() * min(1, (Float(dOut) / Float(dIn)).squareRoot()) }
        let sigma1 = rule(m0, n0 * rank), sigma2 = rule(m1 * rank, n1)
        let t = (std / (Float(rank).squareRoot() * sigma1 * sigma2)).squareRoot()
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.rank = rank
        core1 = Parameter("btt.core1", weights.normal(c1, std: t * sigma1))
        core2 = Parameter("btt.core2", weights.normal(c2, std: t * sigma2))
        gamma1 = normalized ? Parameter("btt.gamma1", Tensor(shape: [1], repeating: 1)) : nil
        gamma2 = normalized ? Parameter("btt.gamma2", Tensor(shape: [1], repeating: 1)) : nil
        self.bias = bias ? Parameter("bias", Tensor(zeros: [outFeatures])) : nil
    }

    /// Wraps existing cores (and gammas for the normalized variant), checking their shapes.
    public init(inFeatures: Int, outFeatures: Int, core1: Tensor, core2: Tensor, gammas: (Tensor, Tensor)? = nil, bias: Tensor?) throws {
        let rank = core1.rank == 3 ? max(core1.shape[1] / BTTLinear.split(outFeatures).0, 1) : 1
        let (c1, c2) = try BTTLinear.coreShapes(inFeatures: inFeatures, outFeatures: outFeatures, rank: rank)
        guard core1.shape == c1, core2.shape == c2 else {
            throw LayerError("btt:\(rank) \(inFeatures)->\(outFeatures)",
                             "cores \(describe(core1.shape)) and \(describe(core2.shape)) do not match the expected \(describe(c1)) and \(describe(c2))")
        }
        if let (g1, g2) = gammas, g1.shape != [1] || g2.shape != [1] {
            throw LayerError("btt-norm:\(rank)", "gammas must have shape [1], got \(describe(g1.shape)) and \(describe(g2.shape))")
        }
        if let b = bias, b.shape != [outFeatures] {
            throw LayerError("btt:\(rank)", "bias \(describe(b.shape)) does not match \(outFeatures) outputs")
        }
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.rank = rank
        self.core1 = Parameter("btt.core1", core1.contiguous())
        self.core2 = Parameter("btt.core2", core2.contiguous())
        gamma1 = gammas.map { Parameter("btt.gamma1", $0.0.contiguous()) }
        gamma2 = gammas.map { Parameter("btt.gamma2", $0.1.contiguous()) }
        self.bias = bias.map { Parameter("bias", $0.contiguous()) }
    }

    /// The block products: core1 on m1 chunks of m0 inputs; each chunk's [n0, r] outputs
    /// regrouped by j0 (rows [m1, n0, r] -> [n0, m1, r]); core2 on n0 groups of m1 r values,
    /// writing the output chunks in place (no final permutation).
    static func pair(inFeatures: Int, outFeatures: Int, rank: Int) -> BlockFactorPair {
        let (m0, m1) = BTTLinear.split(inFeatures), (n0, n1) = BTTLinear.split(outFeatures)
        return BlockFactorPair(blocks1: m1, out1: n0 * rank, in1: m0, midA: m1, midB: n0, midChunk: rank,
                               blocks2: n0, out2: n1, in2: m1 * rank, final: nil)
    }

    var pair: BlockFactorPair { BTTLinear.pair(inFeatures: inFeatures, outFeatures: outFeatures, rank: rank) }

    /// The differentiable BTT product x -> x W^T (+ bias) for x [..., in] and cores of the shapes
    /// ``coreShapes(inFeatures:outFeatures:rank:)`` gives.
    public static func multiply(_ x: Variable, _ core1: Variable, _ core2: Variable, inFeatures: Int, outFeatures: Int, rank: Int,
                                bias: Variable? = nil) throws -> Variable {
        try pair(inFeatures: inFeatures, outFeatures: outFeatures, rank: rank).multiply(x, core1, core2, bias: bias, name: "btt")
    }

    /// The same map as a plain (unnormalized) BTT layer whose cores are this one's effective
    /// cores: for inference, where the normalization's scales are constants (quantization folds
    /// them before packing the cores).
    public func folded() throws -> BTTLinear {
        let (w1, w2) = Tape.withoutRecording { effectiveCores() }
        return try BTTLinear(inFeatures: inFeatures, outFeatures: outFeatures, core1: w1.value.contiguousCopy(),
                             core2: w2.value.contiguousCopy(), bias: bias?.value.contiguousCopy())
    }

    /// The cores the forward multiplies with: the parameters, or their normalized versions.
    func effectiveCores() -> (Variable, Variable) {
        guard let gamma1, let gamma2 else { return (core1.variable, core2.variable) }
        let (m0, m1) = BTTLinear.split(inFeatures), (n0, n1) = BTTLinear.split(outFeatures)
        return (BTTLinear.capRMS(core1.variable, gamma: gamma1.variable, maxRMS: BTTLinear.maxRMS(dIn: m0, dOut: n0 * rank)),
                BTTLinear.capRMS(core2.variable, gamma: gamma2.variable, maxRMS: BTTLinear.maxRMS(dIn: m1 * rank, dOut: n1)))
    }

    public func callAsFunction(_ x: Variable) throws -> Variable {
        try checkInput(x, "\(kind) \(inFeatures)->\(outFeatures)")
        let (w1, w2) = effectiveCores()
        return try pair.multiply(x, w1, w2, bias: bias?.variable, name: "btt")
    }

    public func runBlockGEMMs(rows: Int, scratch: BlockGEMMScratch) {
        pair.runGEMMsOnly(rows: rows, w1: core1.value, w2: core2.value, scratch: scratch)
    }

    public func denseMatrix() throws -> Tensor {
        var eye = Tensor(zeros: [inFeatures, inFeatures])
        eye.withUnsafeMutablePointer { p in for i in 0..<inFeatures { p[i * inFeatures + i] = 1 } }
        // Rows of the identity through the layer give the rows of W^T.
        let wt = try Tape.withoutRecording { () throws -> Variable in
            let (w1, w2) = effectiveCores()
            return try pair.multiply(Variable(eye), Variable(w1.value), Variable(w2.value), bias: nil, name: "btt")
        }
        return wt.value.transposed().contiguous()
    }

    /// gamma * w / max(1, rms(w) / maxRMS), rms(w) = sqrt(mean(w^2) + 1e-8), differentiable in w
    /// and gamma. Where the cap is active (c = maxRMS / rms < 1) the gradient of c * w is
    /// c g - c w (g . w) / (n rms^2).
    public static func capRMS(_ w: Variable, gamma: Variable, maxRMS: Float) -> Variable {
        let values = w.value.contiguous()
        let n = values.count
        let meanSquare = values.scalars.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(max(n, 1))
        let rms = (meanSquare + 1e-8).squareRoot()
        let c = Float(min(1, Double(maxRMS) / rms))
        let g0 = gamma.value.scalars[0]
        let scaled = values * c
        return Variable.record(scaled * g0, inputs: [w, gamma], name: "btt-norm") { g in
            let gv = g.contiguous()
            let dot = zip(gv.scalars, values.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            var dw = gv * (c * g0)
            if c < 1 {
                dw = try dw - values * Float(Double(c * g0) * dot / (Double(n) * (meanSquare + 1e-8)))
            }
            return [dw, Tensor(shape: [1], repeating: Float(Double(c) * dot))]
        }
    }
}
