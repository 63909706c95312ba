import FactorlabAutograd
import FactorlabTensor

/// The low-rank ("SVD") accelerator: W = U V with U [out, rank] and V [rank, in].
///
/// y = (x V^T) U^T + b, two GEMMs; rank * (in + out) parameters and MACs per token.
///
/// Init rule: U and V are drawn from N(0, s^2) with s^4 = std^2 / rank. For unit-variance inputs
/// each hidden unit then has variance in * s^2 and each output rank * s^2 * in * s^2 = in * std^2,
/// the dense layer's output variance at init.
public final class LowRankLinear: LinearLayer {
    public let u: Parameter
    public let v: Parameter
    public let bias: Parameter?
    public var rank: Int { u.shape[1] }
    public var kind: LinearKind { .lowRank(rank: rank) }
    public var inFeatures: Int { v.shape[1] }
    public var outFeatures: Int { u.shape[0] }
    public var parameters: [Parameter] { [u, v] + (bias.map { [$0] } ?? []) }
    public var parameterNames: [String] { ["lowrank.u", "lowrank.v", "bias"] }
    public var macsPerToken: Int { rank * (inFeatures + outFeatures) }
    public var factorFanIns: [Int?] { [rank, inFeatures] + (bias == nil ? [] : [nil]) }

    public static func validate(inFeatures: Int, outFeatures: Int, rank: Int) throws {
        guard rank >= 1, rank <= min(inFeatures, outFeatures) else {
            throw LayerError("lowrank \(inFeatures)->\(outFeatures)",
                             "rank \(rank) must be between 1 and min(in, out) = \(min(inFeatures, outFeatures))")
        }
    }

    public init(inFeatures: Int, outFeatures: Int, rank: Int, bias: Bool = true, std: Float = 0.02,
                weights: inout WeightInit) throws {
        try LowRankLinear.validate(inFeatures: inFeatures, outFeatures: outFeatures, rank: rank)
        let s = (std * std / Float(rank)).squareRoot().squareRoot()
        u = Parameter("lowrank.u", weights.normal([outFeatures, rank], std: s))
        v = Parameter("lowrank.v", weights.normal([rank, inFeatures], std: s))
        self.bias = bias ? Parameter("bias", Tensor(zeros: [outFeatures])) : nil
    }

    public convenience init(inFeatures: Int, outFeatures: Int, rank: Int, bias: Bool = true, std: Float = 0.02,
                            rng: inout RandomGenerator) throws {
        var weights = WeightInit.random(rng)
        defer { rng = weights.generator! }
        try self.init(inFeatures: inFeatures, outFeatures: outFeatures, rank: rank, bias: bias, std: std, weights: &weights)
    }

    /// Wraps existing factors U [out, r], V [r, in].
    public init(u: Tensor, v: Tensor, bias: Tensor?) throws {
        guard u.rank == 2, v.rank == 2, u.shape[1] == v.shape[0] else {
            throw LayerError("lowrank", "factors U \(describe(u.shape)) and V \(describe(v.shape)) do not chain (expected [out, r] and [r, in])")
        }
        try LowRankLinear.validate(inFeatures: v.shape[1], outFeatures: u.shape[0], rank: u.shape[1])
        if let b = bias, b.shape != [u.shape[0]] {
            throw LayerError("lowrank", "bias \(describe(b.shape)) does not match \(u.shape[0]) outputs")
        }
        self.u = Parameter("lowrank.u", u.contiguous())
        self.v = Parameter("lowrank.v", v.contiguous())
        self.bias = bias.map { Parameter("bias", $0.contiguous()) }
    }

    public func callAsFunction(_ x: Variable) throws -> Variable {
        try checkInput(x, "lowrank:\(rank) \(inFeatures)->\(outFeatures)")
        let h = try Variable.linear(x, weight: v.variable, bias: nil)
        return try Variable.linear(h, weight: u.variable, bias: bias?.variable)
    }

    public func denseMatrix() throws -> Tensor { try u.value.matmul(v.value) }
}
