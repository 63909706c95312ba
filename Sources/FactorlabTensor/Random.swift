@_exported import FactorlabRandom
import Foundation

extension Tensor {
    /// Normal samples with the given mean and standard deviation.
    public static func randomNormal(_ shape: [Int], mean: Float = 0, std: Float = 1,
                                    using rng: inout RandomGenerator) -> Tensor {
        let t = Tensor(uninitializedShape: shape)
        let p = t.unsafeBase
        for i in 0..<t.count { p[i] = mean + std * rng.nextNormal() }
        return t
    }

    /// Uniform samples in [low, high).
    public static func randomUniform(_ shape: [Int], low: Float = 0, high: Float = 1,
                                     using rng: inout RandomGenerator) -> Tensor {
        let t = Tensor(uninitializedShape: shape)
        let p = t.unsafeBase
        for i in 0..<t.count { p[i] = low + (high - low) * rng.nextUniform() }
        return t
    }
}

/// Where a new layer's weights come from: seeded random draws (a new model), or nothing at all
/// (a model whose weights are about to be read from a file: storage is allocated, no random
/// number is drawn and no page is written).
public enum WeightInit: Sendable {
    case random(RandomGenerator)
    case shapeOnly

    /// The generator's state after the draws so far (nil for ``shapeOnly``).
    public var generator: RandomGenerator? {
        if case .random(let g) = self { return g }
        return nil
    }

    /// N(0, std^2) samples, or uninitialised storage.
    public mutating func normal(_ shape: [Int], std: Float) -> Tensor {
        guard case .random(var g) = self else { return Tensor(uninitializedShape: shape) }
        let t = Tensor.randomNormal(shape, std: std, using: &g)
        self = .random(g)
        return t
    }

    /// A tensor filled by `body(pointer, count, &generator)`, or uninitialised storage.
    public mutating func fill(_ shape: [Int], _ body: (UnsafeMutablePointer<Float>, Int, inout RandomGenerator) -> Void) -> Tensor {
        let t = Tensor(uninitializedShape: shape)
        guard case .random(var g) = self else { return t }
        body(t.unsafeBase, t.count, &g)
        self = .random(g)
        return t
    }
}
