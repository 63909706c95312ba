import FactorlabAutograd
import FactorlabTensor

/// The interface every linear map shares, so a model can mix kinds per layer.
///
/// A layer maps x [..., inFeatures] to y [..., outFeatures] = x W^T + b, where W [out, in] is
/// dense or structured. `denseMatrix()` gives W itself (tests compare it with the layer's output;
/// export writes it).
public protocol LinearLayer: AnyObject {
    var kind: LinearKind { get }
    var inFeatures: Int { get }
    var outFeatures: Int { get }
    /// The layer's trainable tensors.
    var parameters: [Parameter] { get }
    /// The names of ``parameters`` relative to the layer, in the same order (`weight`, `bias`,
    /// `lowrank.u`, `monarch.blkdiag1`, ...): checkpoints and Hugging Face files use them.
    var parameterNames: [String] { get }
    var bias: Parameter? { get }
    /// Multiply-accumulates per token (one input row), bias excluded.
    var macsPerToken: Int { get }
    /// Per parameter (in ``parameters`` order): the fan-in of each factor of the layer's matrix
    /// (the size of the input each of its rows sees), nil for biases, scales and factors without
    /// a fan-in rule; ``StructuredLRRule`` reads it.
    var factorFanIns: [Int?] { get }
    /// y = x W^T + b through the tape.
    func callAsFunction(_ x: Variable) throws -> Variable
    /// The equivalent dense W [out, in] (without bias).
    func denseMatrix() throws -> Tensor
}

extension LinearLayer {
    /// The parameters named under `prefix`: `h.3.mlp.c_fc` gives `h.3.mlp.c_fc.monarch.blkdiag1`, ...
    public func namedParameters(prefix: String) -> [(String, Parameter)] {
        zip(parameterNames, parameters).map { ("\(prefix).\($0)", $1) }
    }

    /// Number of scalars in all parameters (bias included).
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.count } }

    /// Checks the last axis of an input.
    func checkInput(_ x: Variable, _ name: String) throws {
        guard x.shape.last == inFeatures else {
            throw LayerError(name, "input \(describe(x.shape)) does not end in the layer's \(inFeatures) input features")
        }
    }

    /// Adds the bias (if any) to a result of shape [..., out].
    func addBias(_ y: Variable) throws -> Variable {
        guard let b = bias else { return y }
        return try y + b.variable
    }
}

/// Per-factor learning-rate rules for structured layers (an option of the optimizer's parameter
/// groups, `optimizer.structured_lr` in recipes).
public enum StructuredLRRule: String, CaseIterable, Sendable {
    /// Every parameter at the base learning rate.
    case none
    /// The heuristic of Qiu et al. 2024 (`CoLALayer` in their `cola_nn.py`): a factor with fan-in
    /// d_f in a layer of fan-in d_in made of n factors gets lr x d_in / (d_f n), so that its
    /// feature updates stay the size of a dense layer's. Dense weights get 1; for GPT-2's
    /// 768 -> 3072 Monarch:4, blkdiag1 (fan-in 192) 2.0 and blkdiag2 (fan-in 192) 2.0; low rank
    /// 64: U (fan-in 64) 6.0 and V (fan-in 768) 0.5; BTT rank 1: core1 (fan-in 16) 24, core2
    /// (fan-in 48) 8. Biases, BTT scales and butterfly twiddles keep 1.
    case fanIn = "fan-in"

    /// The multiplier of each of `layer`'s parameters, in ``LinearLayer/parameters`` order.
    public func multipliers(_ layer: LinearLayer) -> [Float] {
        let fanIns = layer.factorFanIns
        guard self == .fanIn else { return fanIns.map { _ in 1 } }
        let factors = fanIns.compactMap { $0 }.count
        return fanIns.map { f in f.map { Float(layer.inFeatures) / Float($0 * factors) } ?? 1 }
    }
}

/// Builds a linear layer of any kind.
///
/// `std` is the standard deviation a dense layer would be initialised with (GPT-2: 0.02, and
/// 0.02/sqrt(2 n_layer) for residual projections). Structured layers pick their own factor
/// scales so that, for inputs of unit variance, their outputs have the same variance as the
/// dense layer's: in * std^2 per output element (see each layer's init rule).
public func makeLinear(_ kind: LinearKind, inFeatures: Int, outFeatures: Int, bias: Bool = true,
                       std: Float = 0.02, weights: inout WeightInit) throws -> LinearLayer {
    switch kind {
    case .dense:
        return DenseLinear(inFeatures: inFeatures, outFeatures: outFeatures, bias: bias, std: std, weights: &weights)
    case .lowRank(let r):
        return try LowRankLinear(inFeatures: inFeatures, outFeatures: outFeatures, rank: r, bias: bias, std: std, weights: &weights)
    case .monarch(let b):
        return try MonarchLinear(inFeatures: inFeatures, outFeatures: outFeatures, nblocks: b, bias: bias, std: std, weights: &weights)
    case .butterfly(let b):
        return try ButterflyLinear(inFeatures: inFeatures, outFeatures: outFeatures, nblocks: b, bias: bias, std: std, weights: &weights)
    case .btt(let r, let normalized):
        return try BTTLinear(inFeatures: inFeatures, outFeatures: outFeatures, rank: r, normalized: normalized, bias: bias, std: std,
                             weights: &weights)
    }
}

/// ``makeLinear(_:inFeatures:outFeatures:bias:std:weights:)`` drawing from `rng`.
public func makeLinear(_ kind: LinearKind, inFeatures: Int, outFeatures: Int, bias: Bool = true,
                       std: Float = 0.02, rng: inout RandomGenerator) throws -> LinearLayer {
    var weights = WeightInit.random(rng)
    defer { rng = weights.generator! }
    return try makeLinear(kind, inFeatures: inFeatures, outFeatures: outFeatures, bias: bias, std: std, weights: &weights)
}

/// The dense baseline: y = x W^T + b, W [out, in] as in `torch.nn.Linear`.
public final class DenseLinear: LinearLayer {
    public let weight: Parameter
    public let bias: Parameter?
    public var kind: LinearKind { .dense }
    public var inFeatures: Int { weight.shape[1] }
    public var outFeatures: Int { weight.shape[0] }
    public var parameters: [Parameter] { [weight] + (bias.map { [$0] } ?? []) }
    public var parameterNames: [String] { ["weight", "bias"] }
    public var macsPerToken: Int { inFeatures * outFeatures }
    public var factorFanIns: [Int?] { [inFeatures] + (bias == nil ? [] : [nil]) }

    /// Initialises W ~ N(0, std^2) and b = 0.
    public init(inFeatures: Int, outFeatures: Int, bias: Bool = true, std: Float = 0.02, weights: inout WeightInit) {
        weight = Parameter("weight", weights.normal([outFeatures, inFeatures], std: std))
        self.bias = bias ? Parameter("bias", Tensor(zeros: [outFeatures])) : nil
    }

    public convenience init(inFeatures: Int, outFeatures: Int, bias: Bool = true, std: Float = 0.02, rng: inout RandomGenerator) {
        var weights = WeightInit.random(rng)
        self.init(inFeatures: inFeatures, outFeatures: outFeatures, bias: bias, std: std, weights: &weights)
        rng = weights.generator!
    }

    /// Wraps existing tensors (W [out, in], b [out]).
    public init(weight: Tensor, bias: Tensor?) throws {
        guard weight.rank == 2 else { throw LayerError("dense", "weight must be [out, in], got \(describe(weight.shape))") }
        if let b = bias, b.shape != [weight.shape[0]] {
            throw LayerError("dense", "bias \(describe(b.shape)) does not match weight \(describe(weight.shape))")
        }
        self.weight = Parameter("weight", weight.contiguous())
        self.bias = bias.map { Parameter("bias", $0.contiguous()) }
    }

    public func callAsFunction(_ x: Variable) throws -> Variable {
        try checkInput(x, "dense \(inFeatures)->\(outFeatures)")
        return try Variable.linear(x, weight: weight.variable, bias: bias?.variable)
    }

    public func denseMatrix() throws -> Tensor { weight.value }
}
