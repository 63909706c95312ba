import Foundation

/// The generator of model initialisation and sampling: a ``SplitMix64`` stream whose seed is
/// scrambled once (`seed * golden ^ constant`), so seeds 0, 1, 2, ... start far apart.
///
/// Its whole state is one `UInt64`, so checkpoints store and restore it exactly. Generators are
/// values: pass them `inout`; there is no global generator.
public struct RandomGenerator: RandomNumberGenerator, Sendable, Codable, Equatable {
    /// The full state; `RandomGenerator(state:)` continues the exact same stream.
    public var state: UInt64

    public init(seed: UInt64) { state = seed &* SplitMix64.increment ^ 0xD1B5_4A32_D192_ED03 }
    public init(state: UInt64) { self.state = state }

    @inlinable @inline(__always)
    public mutating func next() -> UInt64 {
        var stream = SplitMix64(state: state)
        let bits = stream.next()
        state = stream.state
        return bits
    }

    /// A uniform float in [0, 1) (24 random bits).
    public mutating func nextUniform() -> Float { SeededHash.unitFloat(next()) }

    /// A standard normal sample (Box-Muller in Double).
    public mutating func nextNormal() -> Float {
        let u1 = (Double(next() >> 11) + 0.5) * (1.0 / 9_007_199_254_740_992.0)
        let u2 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        return Float((-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2))
    }
}
