import FactorlabAutograd
import FactorlabTensor

/// Layer normalization over the last axis with learned scale and shift (`torch.nn.LayerNorm`).
public final class LayerNorm {
    public let weight: Parameter
    public let bias: Parameter
    public let eps: Float

    /// weight = 1, bias = 0.
    public init(_ dim: Int, eps: Float = 1e-5) {
        weight = Parameter("weight", Tensor(shape: [dim], repeating: 1))
        bias = Parameter("bias", Tensor(zeros: [dim]))
        self.eps = eps
    }

    public var parameters: [Parameter] { [weight, bias] }

    /// `prefix.weight`, `prefix.bias`.
    public func namedParameters(prefix: String) -> [(String, Parameter)] {
        [("\(prefix).weight", weight), ("\(prefix).bias", bias)]
    }

    public func callAsFunction(_ x: Variable) throws -> Variable {
        try Variable.layerNorm(x, weight: weight.variable, bias: bias.variable, eps: eps)
    }
}

/// A lookup table of row vectors (`torch.nn.Embedding`).
public final class Embedding {
    public let weight: Parameter

    /// Rows drawn from N(0, std^2).
    public init(_ count: Int, _ dim: Int, std: Float = 0.02, weights: inout WeightInit) {
        weight = Parameter("weight", weights.normal([count, dim], std: std))
    }

    public convenience init(_ count: Int, _ dim: Int, std: Float = 0.02, rng: inout RandomGenerator) {
        var weights = WeightInit.random(rng)
        self.init(count, dim, std: std, weights: &weights)
        rng = weights.generator!
    }

    /// `prefix.weight`.
    public func namedParameters(prefix: String) -> [(String, Parameter)] { [("\(prefix).weight", weight)] }

    /// Rows for `ids`, shaped `shape + [dim]`.
    public func callAsFunction(_ ids: [Int32], shape: [Int]) throws -> Variable {
        try Variable.embedding(weight.variable, ids: ids, shape: shape)
    }
}
