import FactorlabRandom
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An open-addressing hash set of byte strings that gives each one a dense index 0, 1, 2, ….
///
/// Looks byte strings up straight from a pointer, so neither the pre-token cache nor the trainer's
/// word counter allocates a `String` or `[UInt8]` per pre-token. Keys live end to end in one array.
struct ByteSequenceMap {
    /// All keys end to end; key `k` is `keyBytes[keyStarts[k]..<keyStarts[k + 1]]`.
    private(set) var keyBytes: [UInt8] = []
    private var keyStarts: [Int] = [0]
    private var keyHashes: [UInt64] = []
    /// Slot → key index, or -1 when empty. The count is a power of two.
    private var slots: [Int32]
    private var mask: Int

    init(capacity: Int = 1024) {
        var size = 16
        while size < 2 * capacity { size *= 2 }
        slots = [Int32](repeating: -1, count: size)
        mask = size - 1
    }

    /// The number of keys.
    var count: Int { keyHashes.count }

    /// The bytes of key `index`.
    func key(_ index: Int) -> ArraySlice<UInt8> { keyBytes[keyStarts[index]..<keyStarts[index + 1]] }

    /// FNV-1a, then a final avalanche so that the low bits used for the slot are well mixed.
    @inline(__always)
    static func hash(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h = FNV1a64.hash(bytes)
        h ^= h >> 32
        h = h &* 0xd6e8_feb8_6659_fd93
        h ^= h >> 32
        return h
    }

    /// The index of `bytes`, or -1 if it is not a key.
    @inline(__always)
    func find(_ bytes: UnsafeBufferPointer<UInt8>, hash: UInt64) -> Int {
        var slot = Int(truncatingIfNeeded: hash) & mask
        return slots.withUnsafeBufferPointer { slots in
            keyBytes.withUnsafeBufferPointer { keys in
                while true {
                    let index = Int(slots[slot])
                    if index < 0 { return -1 }
                    if keyHashes[index] == hash {
                        let start = keyStarts[index], length = keyStarts[index + 1] - start
                        if length == bytes.count
                            && (length == 0 || memcmp(keys.baseAddress! + start, bytes.baseAddress!, length) == 0) {
                            return index
                        }
                    }
                    slot = (slot + 1) & mask
                }
            }
        }
    }

    /// Adds `bytes`, which must not be a key yet, and returns its index.
    @discardableResult
    mutating func insert(_ bytes: UnsafeBufferPointer<UInt8>, hash: UInt64) -> Int {
        if 2 * (count + 1) > slots.count { grow() }
        let index = count
        keyBytes.append(contentsOf: bytes)
        keyStarts.append(keyBytes.count)
        keyHashes.append(hash)
        place(index, hash: hash)
        return index
    }

    /// The index of `bytes`, adding it if needed.
    mutating func findOrInsert(_ bytes: UnsafeBufferPointer<UInt8>) -> Int {
        let h = Self.hash(bytes)
        let found = find(bytes, hash: h)
        return found >= 0 ? found : insert(bytes, hash: h)
    }

    mutating func removeAll() {
        keyBytes.removeAll(keepingCapacity: true)
        keyStarts = [0]
        keyHashes.removeAll(keepingCapacity: true)
        for i in slots.indices { slots[i] = -1 }
    }

    private mutating func place(_ index: Int, hash: UInt64) {
        var slot = Int(truncatingIfNeeded: hash) & mask
        while slots[slot] >= 0 { slot = (slot + 1) & mask }
        slots[slot] = Int32(index)
    }

    private mutating func grow() {
        slots = [Int32](repeating: -1, count: slots.count * 2)
        mask = slots.count - 1
        for index in 0..<count { place(index, hash: keyHashes[index]) }
    }
}
