import Foundation
import FactorlabTensor

/// A safetensors file opened for reading: the parsed, validated header over the memory-mapped
/// bytes. Tensors are converted to `Float` one at a time, when asked for.
///
/// Layout (https://github.com/huggingface/safetensors): an 8-byte little-endian header length
/// N, N bytes of JSON mapping each tensor name to `{"dtype", "shape", "data_offsets": [begin,
/// end]}` (offsets relative to the end of the header) plus an optional `"__metadata__"` of
/// string pairs, then the raw little-endian data.
///
/// ```swift
/// let file = try SafetensorsFile.read(URL(fileURLWithPath: "gpt2/model.safetensors"))
/// print(file.info("wte.weight")!)               // (dtype: "F32", shape: [50257, 768])
/// let wte = try file.tensor("wte.weight")       // Tensor [50257, 768]
/// try SafetensorsFile.write([("wte.weight", wte)], metadata: ["format": "pt"], to: out)
/// ```
///
/// Reading validates what the reference implementation validates, with an error naming the file
/// and tensor: the header length against the file and the 100 MB limit, the JSON, each dtype and
/// shape, that `data_offsets` hold exactly dtype size × element count bytes, and that the tensors
/// tile the data area with no overlap, no hole and nothing after the last one.
public struct SafetensorsFile: Sendable {
    /// One tensor's header entry.
    public struct Entry: Sendable, Equatable {
        public let name: String
        public let dtype: SafetensorsDtype
        public let shape: [Int]
        /// Byte range in the data area (which starts right after the header).
        public let dataOffsets: Range<Int>
        /// Number of elements (1 for a 0-d tensor).
        public var elementCount: Int { shape.reduce(1, *) }
    }

    /// The header's 100 MB limit, as in the reference implementation.
    public static let maxHeaderLength = 100_000_000

    /// The file's path, or the label given to an in-memory buffer; used in errors.
    public let source: String
    /// Tensor names in file order (ascending data offsets).
    public let names: [String]
    /// The `"__metadata__"` pairs (empty when absent).
    public let metadata: [String: String]
    /// Length N of the JSON header (the data area starts at byte 8 + N).
    public let headerLength: Int

    private let entries: [String: Entry]
    private let bytes: MappedBytes

    // MARK: Opening

    /// Memory-maps and validates the file at `url`.
    public static func read(_ url: URL) throws -> SafetensorsFile {
        let path = url.path
        return try SafetensorsFile(bytes: MappedBytes(mappingFileAt: path), source: path)
    }

    /// Validates an in-memory safetensors image; `source` names it in errors.
    public init(bytes: [UInt8], source: String = "<memory>") throws {
        try self.init(bytes: MappedBytes(copying: bytes), source: source)
    }

    private init(bytes: MappedBytes, source: String) throws {
        self.bytes = bytes
        self.source = source
        let header = try SafetensorsFile.parseHeader(bytes, source: source)
        headerLength = header.length
        metadata = header.metadata
        entries = Dictionary(uniqueKeysWithValues: header.entries.map { ($0.name, $0) })
        names = header.entries.map(\.name)
    }

    // MARK: Queries

    /// Dtype (as spelled in the header, e.g. "BF16") and shape of a tensor, or nil if absent.
    public func info(_ name: String) -> (dtype: String, shape: [Int])? {
        entries[name].map { ($0.dtype.rawValue, $0.shape) }
    }

    /// The full header entry of a tensor, or nil if absent.
    public func entry(_ name: String) -> Entry? { entries[name] }

    /// True when the file holds a tensor of that name.
    public func contains(_ name: String) -> Bool { entries[name] != nil }

    /// A tensor converted to `Float`: F32 is copied, F16 and BF16 are widened exactly (see
    /// `float32BitsFromFloat16(_:)`), F64 is rounded to nearest even.
    public func tensor(_ name: String) throws -> Tensor {
        let e = try lookup(name)
        let out = Tensor(uninitializedShape: e.shape)
        let n = e.elementCount
        guard n > 0 else { return out }
        let src = dataStart + e.dataOffsets.lowerBound
        let dst = out.unsafeBase
        switch e.dtype {
        case .F32:
            #if _endian(little)
            UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: n * 4)
            #else
            for i in 0..<n { dst[i] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
            #endif
        case .F16:
            for i in 0..<n {
                dst[i] = floatFromFloat16Bits(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
            }
        case .BF16:
            for i in 0..<n {
                dst[i] = floatFromBFloat16Bits(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
            }
        case .F64:
            for i in 0..<n {
                dst[i] = Float(Double(bitPattern: UInt64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))))
            }
        default:
            let hint = SafetensorsFile.integerDtypes.contains(e.dtype)
                ? "it is an integer tensor: read it with integers(_:)"
                : "conversion of \(e.dtype.rawValue) to Float is not implemented (F32, F16, BF16 and F64 are)"
            throw SafetensorsError(file: source, tensor: name, .unsupportedDtype, "dtype \(e.dtype.rawValue): \(hint)")
        }
        withExtendedLifetime(bytes) {}
        return out
    }

    /// An integer (or BOOL) tensor's elements in row-major order, widened to `Int64`.
    public func integers(_ name: String) throws -> [Int64] {
        let e = try lookup(name)
        let n = e.elementCount
        let src = dataStart + e.dataOffsets.lowerBound
        func load<T: FixedWidthInteger>(_: T.Type) -> [Int64] {
            (0..<n).map { Int64(truncatingIfNeeded: T(littleEndian: src.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self))) }
        }
        let values: [Int64]
        switch e.dtype {
        case .I64: values = load(Int64.self)
        case .I32: values = load(Int32.self)
        case .I16: values = load(Int16.self)
        case .I8: values = load(Int8.self)
        case .U32: values = load(UInt32.self)
        case .U16: values = load(UInt16.self)
        case .U8, .BOOL: values = load(UInt8.self)
        case .U64:
            let raw = (0..<n).map { UInt64(littleEndian: src.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self)) }
            if let i = raw.firstIndex(where: { $0 > UInt64(Int64.max) }) {
                throw SafetensorsError(file: source, tensor: name, .unsupportedDtype,
                                       "U64 element \(i) is \(raw[i]), beyond Int64.max")
            }
            values = raw.map { Int64($0) }
        default:
            throw SafetensorsError(file: source, tensor: name, .unsupportedDtype,
                                   "dtype \(e.dtype.rawValue) is not an integer type: read it with tensor(_:)")
        }
        withExtendedLifetime(bytes) {}
        return values
    }

    static let integerDtypes: Set<SafetensorsDtype> = [.BOOL, .U8, .I8, .I16, .U16, .I32, .U32, .I64, .U64]

    private var dataStart: UnsafeRawPointer { bytes.base + 8 + headerLength }

    private func lookup(_ name: String) throws -> Entry {
        if let e = entries[name] { return e }
        let listed = names.prefix(5).map { "'\($0)'" }.joined(separator: ", ")
        let more = names.count > 5 ? ", ..." : ""
        throw SafetensorsError(file: source, tensor: name, .tensorNotFound,
                               "no such tensor; the file holds \(names.count): \(listed)\(more)")
    }
}
