import Foundation

/// Remembers the token ids of pre-tokens already encoded, shared by all copies of a tokenizer.
///
/// English text repeats a few thousand pre-tokens (` the`, ` and`, `,`) most of the time, so after
/// a short warm-up nearly every pre-token is a hash lookup instead of a BPE merge loop.
///
/// `@unchecked Sendable`: every stored property except the immutable limits is read and written
/// only while `lock` is held, so concurrent `encode` calls from several tasks are safe.
final class PieceCache: @unchecked Sendable {
    private let lock = NSLock()
    private var keys = ByteSequenceMap(capacity: 4096)
    /// Token ids of key `k`: `ids[idStarts[k]..<idStarts[k + 1]]`.
    private var ids: [Int32] = []
    private var idStarts: [Int] = [0]

    /// The longest pre-token (in bytes) worth caching; longer ones are rare and would bloat the cache.
    let maxKeyLength = 64
    /// When the cache holds this many pre-tokens it is emptied and refilled (bounds memory on huge corpora).
    let maxEntries = 1 << 20

    /// Appends the cached ids of `bytes` to `output` and returns true, or returns false on a miss.
    @inline(__always)
    func appendIDs(of bytes: UnsafeBufferPointer<UInt8>, hash: UInt64, to output: inout [Int32]) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        let index = keys.find(bytes, hash: hash)
        if index < 0 { return false }
        output.append(contentsOf: ids[idStarts[index]..<idStarts[index + 1]])
        return true
    }

    /// Records that `bytes` encodes to `tokenIDs`.
    func insert(_ bytes: UnsafeBufferPointer<UInt8>, hash: UInt64, tokenIDs: ArraySlice<Int32>) {
        lock.lock()
        defer { lock.unlock() }
        if keys.find(bytes, hash: hash) >= 0 { return }  // another task got there first
        if keys.count >= maxEntries {
            keys.removeAll()
            ids.removeAll(keepingCapacity: true)
            idStarts = [0]
        }
        keys.insert(bytes, hash: hash)
        ids.append(contentsOf: tokenIDs)
        idStarts.append(ids.count)
    }

    /// The number of cached pre-tokens.
    var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return keys.count
    }
}
