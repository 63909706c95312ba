import Foundation

/// A small, fast, reproducible random number generator (SplitMix64).
///
/// Its whole state is one `UInt64`, so checkpoints store and restore it exactly. Generators are
/// values: pass them `inout`; there is no global generator.
public struct RandomGenerator: RandomNumberGenerator, Sendable, Codable, Equatable {
    /// The full state; `RandomGenerator(state:)` continues the exact same stream.
    public var state: UInt64

    public init(seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 ^ 0xD1B5_4A32_D192_ED03 }
    public init(state: UInt64) { self.state = state }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return RandomGenerator.mix(state)
    }

    /// The SplitMix64 finalizer: a stateless hash used for per-element streams (dropout).
    @inlinable @inline(__always)
    public static func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 24 random bits.
    @inlinable @inline(__always)
    public static func unitFloat(_ bits: UInt64) -> Float { Float(bits >> 40) * (1.0 / 16_777_216.0) }

    /// A uniform float in [0, 1).
    public mutating func nextUniform() -> Float { RandomGenerator.unitFloat(next()) }

    /// A standard normal sample (Box-Muller in Double).
    public mutating func nextNormal() -> Float {
        let u1 = (Double(next() >> 11) + 0.5) * (1.0 / 9_007_199_254_740_992.0)
        let u2 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        return Float((-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2))
    }
}

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
