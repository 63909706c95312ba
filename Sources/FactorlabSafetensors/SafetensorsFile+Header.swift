/// Parsing and validation of the safetensors header, check by check in the order the reference
/// implementation applies them (safetensors/src/tensor.rs, `read_metadata` and `validate`).

import FactorlabTensor

extension SafetensorsFile {
    struct Header {
        var length: Int
        var metadata: [String: String]
        /// Sorted by data offsets.
        var entries: [Entry]
    }

    static func parseHeader(_ bytes: MappedBytes, source: String) throws -> Header {
        func fail(_ tensor: String?, _ problem: SafetensorsError.Problem, _ message: String) -> SafetensorsError {
            SafetensorsError(file: source, tensor: tensor, problem, message)
        }
        let size = bytes.count
        guard size >= 8 else {
            throw fail(nil, .fileTooShort, "file is \(size) bytes long; a safetensors file starts with an 8-byte header length")
        }
        let n64 = UInt64(littleEndian: bytes.base.loadUnaligned(as: UInt64.self))
        guard n64 <= UInt64(maxHeaderLength) else {
            throw fail(nil, .headerTooLarge, "header length \(n64) exceeds the \(maxHeaderLength)-byte limit; "
                       + "this is probably not a safetensors file")
        }
        let n = Int(n64)
        guard n <= size - 8 else {
            throw fail(nil, .headerBeyondFile, "header length \(n) runs past the end of the file (\(size) bytes); "
                       + "the file is truncated or not a safetensors file")
        }

        let json: JSONValue
        do {
            json = try JSONParser.parse(UnsafeRawBufferPointer(start: bytes.base + 8, count: n))
        } catch let e as JSONSyntaxError {
            throw fail(nil, .invalidJSON, "header is not valid JSON: \(e.message)")
        }
        guard case .object(let members) = json else {
            throw fail(nil, .invalidJSON, "header is \(json.kindDescription), expected a JSON object")
        }

        var metadata: [String: String] = [:]
        var entries: [Entry] = []
        var seen = Set<String>()
        for (name, value) in members {
            guard seen.insert(name).inserted else {
                throw fail(name == "__metadata__" ? nil : name, .invalidHeader, "key '\(name)' appears twice in the header")
            }
            if name == "__metadata__" {
                metadata = try parseMetadata(value, fail: fail)
            } else {
                entries.append(try parseEntry(name, value, fail: fail))
            }
        }

        // The tensors must tile the data area exactly: sorted by offsets, each begins where the
        // previous one ended, the first at 0, and the last ends at the end of the file.
        entries.sort { ($0.dataOffsets.lowerBound, $0.dataOffsets.upperBound) < ($1.dataOffsets.lowerBound, $1.dataOffsets.upperBound) }
        var end = 0
        var previous: Entry?
        for e in entries {
            let r = e.dataOffsets
            if r.lowerBound < end, let p = previous {
                throw fail(e.name, .invalidOffsets, "data_offsets [\(r.lowerBound), \(r.upperBound)] overlap tensor '\(p.name)' "
                           + "at [\(p.dataOffsets.lowerBound), \(p.dataOffsets.upperBound)]")
            }
            if r.lowerBound > end {
                let after = previous.map { "after tensor '\($0.name)', which ends at \(end)" } ?? "at the start of the data area"
                throw fail(e.name, .invalidOffsets, "data_offsets [\(r.lowerBound), \(r.upperBound)] leave a hole of "
                           + "\(r.lowerBound - end) unused bytes \(after); the reference implementation rejects holes")
            }
            end = r.upperBound
            previous = e
        }
        let available = size - 8 - n
        if end > available {
            let first = entries.first { $0.dataOffsets.upperBound > available }!
            throw fail(first.name, .truncated, "data_offsets [\(first.dataOffsets.lowerBound), \(first.dataOffsets.upperBound)] "
                       + "end past the data area, which holds only \(available) bytes (file \(size) bytes, header 8 + \(n)): "
                       + "the file is truncated; copy or download it again")
        }
        if end < available {
            throw fail(nil, .trailingBytes, "\(available - end) bytes after the last tensor (data area \(available) bytes, tensors end at "
                       + "\(end)) belong to no tensor; the reference implementation rejects such files")
        }
        return Header(length: n, metadata: metadata, entries: entries)
    }

    private static func parseMetadata(
        _ value: JSONValue, fail: (String?, SafetensorsError.Problem, String) -> SafetensorsError
    ) throws -> [String: String] {
        if case .null = value { return [:] }
        guard case .object(let pairs) = value else {
            throw fail(nil, .invalidHeader, "__metadata__ is \(value.kindDescription), expected an object of strings")
        }
        var metadata: [String: String] = [:]
        for (key, v) in pairs {
            guard case .string(let s) = v else {
                throw fail(nil, .invalidHeader, "__metadata__ key '\(key)' holds \(v.kindDescription), expected a string")
            }
            guard metadata.updateValue(s, forKey: key) == nil else {
                throw fail(nil, .invalidHeader, "__metadata__ key '\(key)' appears twice")
            }
        }
        return metadata
    }

    private static func parseEntry(
        _ name: String, _ value: JSONValue, fail: (String?, SafetensorsError.Problem, String) -> SafetensorsError
    ) throws -> Entry {
        guard case .object(let fields) = value else {
            throw fail(name, .invalidHeader, "entry is \(value.kindDescription), expected an object with dtype, shape and data_offsets")
        }
        func field(_ key: String) throws -> JSONValue {
            guard let v = fields.first(where: { $0.key == key })?.value else {
                throw fail(name, .invalidHeader, "entry has no \"\(key)\" field")
            }
            return v
        }

        guard case .string(let dtypeName) = try field("dtype") else {
            throw fail(name, .invalidHeader, "dtype is \(try field("dtype").kindDescription), expected a string")
        }
        guard let dtype = SafetensorsDtype(rawValue: dtypeName) else {
            let known = SafetensorsDtype.allCases.map(\.rawValue).joined(separator: ", ")
            throw fail(name, .unknownDtype, "unknown dtype '\(dtypeName)' (known: \(known))")
        }

        guard case .array(let extents) = try field("shape") else {
            throw fail(name, .invalidHeader, "shape is \(try field("shape").kindDescription), expected an array of integers")
        }
        var shape: [Int] = []
        for extent in extents {
            guard case .number(let text, let integer) = extent else {
                throw fail(name, .invalidShape, "shape entry is \(extent.kindDescription), expected a non-negative integer")
            }
            guard let k = integer, k >= 0 else {
                let why = integer != nil ? "is negative"
                    : text.contains(where: { ".eE".contains($0) }) ? "is not an integer" : "is too large"
                throw fail(name, .invalidShape, "shape entry \(text) \(why); extents must be non-negative integers")
            }
            shape.append(k)
        }
        var count = 1
        for k in shape {
            let (c, overflow) = count.multipliedReportingOverflow(by: k)
            guard !overflow else { throw fail(name, .invalidShape, "element count of shape \(describe(shape)) overflows") }
            count = c
        }

        guard case .array(let offsets) = try field("data_offsets"), offsets.count == 2,
              case .number(_, let b?) = offsets[0], case .number(_, let e?) = offsets[1], b >= 0, e >= 0 else {
            throw fail(name, .invalidHeader, "data_offsets must be an array of two non-negative integers [begin, end]")
        }
        guard e >= b else {
            throw fail(name, .invalidOffsets, "data_offsets [\(b), \(e)] end before they begin")
        }
        guard let needed = dtype.byteCount(elements: count) else {
            throw fail(name, .sizeMismatch, "\(dtype.rawValue) \(describe(shape)) does not fill a whole number of bytes")
        }
        guard e - b == needed else {
            throw fail(name, .sizeMismatch, "data_offsets [\(b), \(e)] hold \(e - b) bytes but \(dtype.rawValue) "
                       + "\(describe(shape)) needs \(needed)")
        }
        return Entry(name: name, dtype: dtype, shape: shape, dataOffsets: b..<e)
    }
}
