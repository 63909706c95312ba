import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only sequence of uint16 token ids: a memory-mapped `.bin` file or an in-memory array.
///
/// Token files are nanoGPT's format: the ids as uint16 little-endian, nothing else (what
/// `data/*/prepare.py` writes with `np.array(ids, dtype=np.uint16).tofile(...)`). llm.c's format,
/// a 256 × int32 header (magic 20240520, version 1, token count) followed by the same ids, is
/// recognised by its magic number and read too. (The magic cannot be a nanoGPT file's start with a
/// GPT-2 vocabulary: it would begin with id 53448.)
///
/// Copies share the storage; the mapping is released when the last copy goes.
public struct TokenStream: Sendable {
    let storage: TokenStorage
    /// What the tokens are (a file path or a split name), used in error messages.
    public let name: String

    /// The number of tokens.
    public var count: Int { storage.count }

    /// The token at `index` (0 ≤ index < count).
    @inline(__always)
    public subscript(index: Int) -> UInt16 { UInt16(littleEndian: storage.base[index]) }

    /// An in-memory stream of `tokens`.
    public init(_ tokens: [UInt16], name: String = "tokens") {
        storage = TokenStorage(copying: tokens)
        self.name = name
    }

    /// Maps a token file. With `vocabularySize`, every id is checked to be below it.
    ///
    /// - Throws: ``DataError`` `.fileUnreadable` if the file cannot be opened or mapped,
    ///   `.malformedTokenFile` for an odd byte length (or a bad llm.c header), `.tokenOutOfRange`
    ///   naming the byte offset of the first id ≥ `vocabularySize`.
    public init(contentsOf url: URL, vocabularySize: Int? = nil, name: String? = nil) throws {
        storage = try TokenStorage(mapping: url)
        self.name = name ?? url.path
        if let vocabularySize { try validate(vocabularySize: vocabularySize) }
    }

    /// Checks that every id is below `vocabularySize`.
    ///
    /// - Throws: ``DataError`` `.tokenOutOfRange` naming the file, the byte offset and the index of the first bad id.
    public func validate(vocabularySize: Int) throws {
        guard vocabularySize >= 1 else {
            throw DataError(.invalidArgument, file: name, "the vocabulary size must be at least 1, got \(vocabularySize)")
        }
        guard vocabularySize <= 65536 else { return }  // every uint16 fits
        let limit = UInt16(vocabularySize - 1)
        let base = storage.base
        for i in 0..<count where UInt16(littleEndian: base[i]) > limit {
            throw DataError(.tokenOutOfRange, file: name, offset: storage.headerBytes + 2 * i,
                            "token id \(self[i]) (token \(i)) is not below the vocabulary size \(vocabularySize); "
                                + "was the file made with a different tokenizer?")
        }
    }

    /// Writes the tokens as a nanoGPT token file (uint16 little-endian, no header), atomically.
    public func write(to url: URL) throws {
        let bytes = UnsafeRawBufferPointer(start: UnsafeRawPointer(storage.base), count: 2 * count)
        try FileSystem.writeAtomically(Data(bytes), to: url)
    }

    /// The tokens as an array.
    public var array: [UInt16] { (0..<count).map { self[$0] } }

    /// The tokens in `range` as Int32 ids, appended to `output`.
    @inline(__always)
    func appendIDs(_ range: Range<Int>, to output: inout [Int32]) {
        let base = storage.base
        for i in range { output.append(Int32(UInt16(littleEndian: base[i]))) }
    }
}

/// The memory behind a ``TokenStream``: a read-only mapping of a file, or an owned buffer.
///
/// `@unchecked Sendable`: the tokens are written once, in `init`, and only read afterwards.
final class TokenStorage: @unchecked Sendable {
    /// The ids, little-endian.
    let base: UnsafePointer<UInt16>
    let count: Int
    /// Bytes before the first id in the file (1024 for llm.c's header, else 0).
    let headerBytes: Int
    private let mapping: (address: UnsafeMutableRawPointer, length: Int)?
    private let owned: UnsafeMutablePointer<UInt16>?

    static let llmcMagic: Int32 = 20240520

    init(copying tokens: [UInt16]) {
        let memory = UnsafeMutablePointer<UInt16>.allocate(capacity: max(tokens.count, 1))
        for (i, token) in tokens.enumerated() { (memory + i).initialize(to: token.littleEndian) }
        base = UnsafePointer(memory)
        count = tokens.count
        headerBytes = 0
        mapping = nil
        owned = memory
    }

    init(mapping url: URL) throws {
        let path = url.path
        guard let status = FileSystem.status(path) else {
            throw DataError(.fileUnreadable, file: path, "no such token file")
        }
        guard status.isRegular else { throw DataError(.fileUnreadable, file: path, "is not a regular file") }
        let length = Int(status.size)
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else {
            throw DataError(.fileUnreadable, file: path, "cannot open: \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        guard length > 0 else {
            let memory = UnsafeMutablePointer<UInt16>.allocate(capacity: 1)
            base = UnsafePointer(memory)
            count = 0
            headerBytes = 0
            mapping = nil
            owned = memory
            return
        }
        guard let address = mmap(nil, length, PROT_READ, MAP_PRIVATE, descriptor, 0), address != MAP_FAILED else {
            throw DataError(.fileUnreadable, file: path, "cannot map: \(String(cString: strerror(errno)))")
        }
        var header = 0
        if length >= 1024, Int32(littleEndian: address.loadUnaligned(as: Int32.self)) == Self.llmcMagic {
            let version = Int32(littleEndian: address.loadUnaligned(fromByteOffset: 4, as: Int32.self))
            let declared = Int(Int32(littleEndian: address.loadUnaligned(fromByteOffset: 8, as: Int32.self)))
            guard version == 1, declared * 2 + 1024 == length else {
                munmap(address, length)
                throw DataError(.malformedTokenFile, file: path, offset: 0,
                                "starts with llm.c's magic number \(Self.llmcMagic) but its header (version \(version), "
                                    + "\(declared) tokens) does not match the file size \(length); expected version 1 "
                                    + "and 1024 + 2 × tokens bytes")
            }
            header = 1024
        }
        guard (length - header) % 2 == 0 else {
            munmap(address, length)
            throw DataError(.malformedTokenFile, file: path,
                            "has \(length) bytes, an odd number; a token file holds 2-byte ids "
                                + "(uint16 little-endian, as nanoGPT's prepare.py writes)")
        }
        base = UnsafePointer((address + header).assumingMemoryBound(to: UInt16.self))
        count = (length - header) / 2
        headerBytes = header
        mapping = (address, length)
        owned = nil
    }

    deinit {
        if let mapping { munmap(mapping.address, mapping.length) }
        owned?.deallocate()
    }
}
