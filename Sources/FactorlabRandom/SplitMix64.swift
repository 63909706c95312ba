/// SplitMix64 (Steele, Lea and Flood 2014): a tiny, fast generator whose whole state is one
/// UInt64, so a stream is fixed by its seed alone, identical on every platform and Swift version,
/// and a checkpoint stores and restores it exactly. Every seeded draw in Factorlab goes through
/// this type: initialisation (``RandomGenerator``), data order (``permutation(count:seed:epoch:)``),
/// splits, finetuning shuffles, dropout masks (``mix(_:)`` via ``SeededHash``) and bootstrap
/// resampling.
public struct SplitMix64: RandomNumberGenerator, Sendable, Codable, Equatable {
    /// The golden-ratio increment of the state (and the stride of per-element hash streams).
    public static let increment: UInt64 = 0x9E37_79B9_7F4A_7C15

    /// The full state; `SplitMix64(state:)` continues the exact same stream.
    public var state: UInt64

    /// A generator whose state is `state` as given (no scrambling).
    public init(state: UInt64) { self.state = state }

    /// A generator for one epoch (or any other index) of a run: distinct, well-mixed streams for
    /// every (seed, epoch).
    public init(seed: UInt64, epoch: Int) {
        state = Self.mix(seed ^ Self.mix(UInt64(bitPattern: Int64(epoch)) &+ 0x5851_F42D_4C95_7F2D))
    }

    @inlinable @inline(__always)
    public mutating func next() -> UInt64 {
        state &+= Self.increment
        return Self.mix(state)
    }

    /// SplitMix64's output function: a bijective mixer of 64 bits (also a stateless hash).
    @inlinable @inline(__always)
    public static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform integer in 0..<bound (bound > 0), by Lemire's multiply-and-reject method (no
    /// modulo bias).
    @inlinable @inline(__always)
    public mutating func next(below bound: UInt64) -> UInt64 {
        precondition(bound > 0, "SplitMix64.next(below:) needs a positive bound")
        var product = next().multipliedFullWidth(by: bound)
        if product.low < bound {
            let threshold = (0 &- bound) % bound
            while product.low < threshold { product = next().multipliedFullWidth(by: bound) }
        }
        return product.high
    }

    /// A uniform integer in 0..<bound, as `next() % bound`. Kept only where recorded results
    /// depend on it (the study's bootstrap replicates); its bias is below bound / 2^64. New code
    /// uses ``next(below:)``.
    @inlinable
    public mutating func nextModulo(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }

    /// A uniform Double in [0, 1) from 53 random bits.
    @inlinable
    public mutating func nextUnit() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// Shuffles `array` in place (Fisher–Yates from the end, unbiased bounded draws).
    public mutating func shuffle<T>(_ array: inout [T]) {
        var i = array.count - 1
        while i > 0 {
            let j = Int(next(below: UInt64(i + 1)))
            array.swapAt(i, j)
            i -= 1
        }
    }

    /// A random permutation of 0..<count for (seed, epoch) (Fisher–Yates).
    public static func permutation(count: Int, seed: UInt64, epoch: Int) -> [UInt32] {
        var order = (0..<count).map { UInt32(truncatingIfNeeded: $0) }
        var generator = SplitMix64(seed: seed, epoch: epoch)
        generator.shuffle(&order)
        return order
    }
}

/// Stateless per-element random streams: element `index` of the stream `key` is a pure function
/// of both, so a dropout mask can be regenerated in backward instead of stored, and it does not
/// depend on how the work is split across threads.
public enum SeededHash {
    /// 64 random bits for element `index` of stream `key`.
    @inlinable @inline(__always)
    public static func bits(key: UInt64, index: Int) -> UInt64 {
        SplitMix64.mix(key &+ UInt64(truncatingIfNeeded: index) &* SplitMix64.increment)
    }

    /// Uniform in [0, 1) with 24 random bits (exactly representable as a Float).
    @inlinable @inline(__always)
    public static func unitFloat(_ bits: UInt64) -> Float { Float(bits >> 40) * (1.0 / 16_777_216.0) }

    /// The inverted-dropout multiplier of element `index`: 0 with probability p, else 1/(1-p).
    @inlinable @inline(__always)
    public static func dropoutScale(key: UInt64, index: Int, p: Float, scale: Float) -> Float {
        unitFloat(bits(key: key, index: index)) >= p ? scale : 0
    }

    /// A sub-key of `key` for a named use (a dropout site, a micro-batch, a layer's attention):
    /// `mix(key ^ salt)` or `mix(key + salt)` as the caller's recorded streams require.
    @inlinable @inline(__always)
    public static func derive(_ key: UInt64, xor salt: UInt64) -> UInt64 { SplitMix64.mix(key ^ salt) }

    @inlinable @inline(__always)
    public static func derive(_ key: UInt64, adding salt: UInt64) -> UInt64 { SplitMix64.mix(key &+ salt) }
}

/// FNV-1a, 64 bits: fingerprints of files and weights (a change detector, not a security hash).
public struct FNV1a64: Sendable {
    public static let offsetBasis: UInt64 = 0xCBF2_9CE4_8422_2325
    public static let prime: UInt64 = 0x0000_0100_0000_01B3

    public var value: UInt64 = FNV1a64.offsetBasis

    public init() {}

    /// Folds in each byte.
    @inlinable
    public mutating func update<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        var h = value
        for byte in bytes { h = (h ^ UInt64(byte)) &* FNV1a64.prime }
        value = h
    }

    /// Folds in each 32-bit word as one unit (the weight fingerprint of data-parallel ranks).
    @inlinable
    public mutating func update(words: UnsafeBufferPointer<UInt32>) {
        var h = value
        for w in words { h = (h ^ UInt64(w)) &* FNV1a64.prime }
        value = h
    }

    /// FNV-1a of `bytes` in one call.
    @inlinable @inline(__always)
    public static func hash(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h = offsetBasis
        for b in bytes { h = (h ^ UInt64(b)) &* prime }
        return h
    }

    /// 16 lower-case hex digits.
    public var hex: String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
