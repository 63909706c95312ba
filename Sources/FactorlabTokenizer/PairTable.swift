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

/// A binary min-heap: `pop` returns the smallest element by `<`.
struct MinHeap<Element: Comparable> {
    private(set) var elements: [Element] = []

    var isEmpty: Bool { elements.isEmpty }
    var count: Int { elements.count }

    mutating func removeAll() { elements.removeAll(keepingCapacity: true) }

    mutating func push(_ element: Element) {
        elements.append(element)
        var child = elements.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            if !(elements[child] < elements[parent]) { break }
            elements.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> Element? {
        guard let last = elements.popLast() else { return nil }
        if elements.isEmpty { return last }
        let top = elements[0]
        elements[0] = last
        var parent = 0
        let n = elements.count
        while true {
            let left = 2 * parent + 1
            if left >= n { break }
            let right = left + 1
            let child = (right < n && elements[right] < elements[left]) ? right : left
            if !(elements[child] < elements[parent]) { break }
            elements.swapAt(child, parent)
            parent = child
        }
        return top
    }
}
