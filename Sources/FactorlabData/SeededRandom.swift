/// SplitMix64 (Steele, Lea and Flood 2014): a tiny, fast generator whose whole state is one
/// UInt64, so shuffles depend on (seed, epoch) alone and are identical on every platform and
/// Swift version (the bounded draw is our own, not the standard library's).
struct SplitMix64 {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    /// A generator for one epoch of a run: distinct, well-mixed streams for every (seed, epoch).
    init(seed: UInt64, epoch: Int) {
        state = Self.mix(seed ^ Self.mix(UInt64(bitPattern: Int64(epoch)) &+ 0x5851_F42D_4C95_7F2D))
    }

    @inline(__always)
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return Self.mix(state)
    }

    /// A uniform integer in 0..<bound (bound > 0), by Lemire's multiply-and-reject method (no modulo bias).
    @inline(__always)
    mutating func next(below bound: UInt64) -> UInt64 {
        var product = next().multipliedFullWidth(by: bound)
        if product.low < bound {
            let threshold = (0 &- bound) % bound
            while product.low < threshold { product = next().multipliedFullWidth(by: bound) }
        }
        return product.high
    }

    /// A uniform Double in [0, 1) from 53 random bits.
    mutating func nextUnit() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// SplitMix64's output function: a bijective mixer of 64 bits.
    @inline(__always)
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A random permutation of 0..<count (Fisher–Yates).
    static func permutation(count: Int, seed: UInt64, epoch: Int) -> [UInt32] {
        var order = (0..<count).map { UInt32(truncatingIfNeeded: $0) }
        var generator = SplitMix64(seed: seed, epoch: epoch)
        var i = count - 1
        while i > 0 {
            let j = Int(generator.next(below: UInt64(i + 1)))
            order.swapAt(i, j)
            i -= 1
        }
        return order
    }
}

/// FNV-1a, 64 bits: fingerprints files for the token cache (a change detector, not a security hash).
struct FNV1a64 {
    private(set) var value: UInt64 = 0xCBF2_9CE4_8422_2325

    mutating func update<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        for byte in bytes {
            value ^= UInt64(byte)
            value &*= 0x0000_0100_0000_01B3
        }
    }

    var hex: String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
