/// An open-addressing hash map from a pair of token ids to a 64-bit value, with a multiplicative hash.
///
/// The merge table of the encoder (pair → rank and merged id) is looked up once per adjacent pair
/// per merge round; this map does that in a few nanoseconds, without Swift's seeded `Hasher`.
struct PairTable: Sendable {
    private static let empty = UInt64.max
    private var keys: [UInt64]
    private var values: [UInt64]
    private var shift: UInt64
    private(set) var count = 0

    init(capacity: Int) {
        var bits: UInt64 = 4
        while (1 << bits) < 2 * max(capacity, 1) { bits += 1 }
        keys = [UInt64](repeating: Self.empty, count: 1 << bits)
        values = [UInt64](repeating: 0, count: 1 << bits)
        shift = 64 - bits
    }

    /// The key of the ordered pair `(left, right)`; ids are non-negative so it is never `empty`.
    @inline(__always)
    static func key(_ left: Int32, _ right: Int32) -> UInt64 {
        (UInt64(UInt32(bitPattern: left)) << 32) | UInt64(UInt32(bitPattern: right))
    }

    @inline(__always)
    private func slot(_ key: UInt64) -> Int { Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> shift) }

    /// The value stored for `key`, or nil.
    @inline(__always)
    func value(for key: UInt64) -> UInt64? {
        keys.withUnsafeBufferPointer { keys in
            let mask = keys.count - 1
            var s = slot(key)
            while true {
                let k = keys[s]
                if k == key { return values[s] }
                if k == Self.empty { return nil }
                s = (s + 1) & mask
            }
        }
    }

    /// Stores `value` for `key`, replacing any earlier value.
    mutating func set(_ value: UInt64, for key: UInt64) {
        if 2 * (count + 1) > keys.count { grow() }
        let mask = keys.count - 1
        var s = slot(key)
        while keys[s] != Self.empty && keys[s] != key { s = (s + 1) & mask }
        if keys[s] == Self.empty { count += 1 }
        keys[s] = key
        values[s] = value
    }

    private mutating func grow() {
        let oldKeys = keys, oldValues = values
        keys = [UInt64](repeating: Self.empty, count: oldKeys.count * 2)
        values = [UInt64](repeating: 0, count: oldKeys.count * 2)
        shift -= 1
        count = 0
        for (k, v) in zip(oldKeys, oldValues) where k != Self.empty { set(v, for: k) }
    }
}
