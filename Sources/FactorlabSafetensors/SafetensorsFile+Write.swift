import Foundation
import FactorlabTensor
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension SafetensorsFile {
    /// Writes `tensors` as F32 to `url` in the reference layout, atomically.
    ///
    /// The layout is the one `safetensors.torch.save_file` produces for float32 tensors: tensors
    /// in name order (byte-wise, as Rust sorts strings) with contiguous data offsets from 0, the
    /// header as compact JSON with `"__metadata__"` first (its keys sorted) and padded with spaces
    /// to a multiple of 8 bytes, so the data starts 8-byte aligned. `metadata: nil` omits the
    /// `"__metadata__"` entry; an empty dictionary writes `{}` as the reference does.
    ///
    /// The bytes go to a temporary file in the same folder, which is flushed to disk and renamed
    /// over `url`: readers see the old file or the new one, never a partial one.
    public static func write(_ tensors: [(String, Tensor)], metadata: [String: String]? = nil, to url: URL) throws {
        let path = url.path
        let (header, ordered) = try serializedHeader(tensors, metadata: metadata, file: path)

        let folder = url.deletingLastPathComponent().path
        let temporary = folder + "/." + url.lastPathComponent + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw SafetensorsError(file: path, .io, "cannot create temporary file \(temporary): \(String(cString: strerror(errno)))"
                                   + " (does the folder exist and is it writable?)")
        }
        var closed = false
        defer {
            if !closed {  // an error before the close: drop the partial temporary file
                close(fd)
                unlink(temporary)
            }
        }
        func writeAll(_ p: UnsafeRawPointer, _ count: Int) throws {
            var done = 0
            while done < count {
                let r = posixWrite(fd, p + done, min(count - done, 1 << 30))
                if r < 0 {
                    if errno == EINTR { continue }
                    throw SafetensorsError(file: path, .io, "write failed: \(String(cString: strerror(errno)))")
                }
                done += r
            }
        }

        var lengthPrefix = UInt64(header.count).littleEndian
        try withUnsafeBytes(of: &lengthPrefix) { try writeAll($0.baseAddress!, 8) }
        try header.withUnsafeBytes { try writeAll($0.baseAddress!, $0.count) }
        for (_, tensor) in ordered where tensor.count > 0 {
            try tensor.withUnsafePointer { p in
                #if _endian(little)
                try writeAll(UnsafeRawPointer(p), tensor.count * 4)
                #else
                let le = (0..<tensor.count).map { p[$0].bitPattern.littleEndian }
                try le.withUnsafeBytes { try writeAll($0.baseAddress!, $0.count) }
                #endif
            }
        }
        guard fsync(fd) == 0 else {
            throw SafetensorsError(file: path, .io, "fsync failed: \(String(cString: strerror(errno)))")
        }
        closed = true
        guard close(fd) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw SafetensorsError(file: path, .io, "close failed: \(reason)")
        }
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw SafetensorsError(file: path, .io, "cannot rename \(temporary) to the destination: \(reason)")
        }
    }

    /// Writes a dictionary of tensors; see `write(_:metadata:to:)` (the order is by name anyway).
    public static func write(_ tensors: [String: Tensor], metadata: [String: String]? = nil, to url: URL) throws {
        try write(tensors.map { ($0.key, $0.value) }, metadata: metadata, to: url)
    }

    /// The complete file image of `write(_:metadata:to:)`, for small files and tests.
    public static func serialize(_ tensors: [(String, Tensor)], metadata: [String: String]? = nil) throws -> [UInt8] {
        let (header, ordered) = try serializedHeader(tensors, metadata: metadata, file: "<memory>")
        var out: [UInt8] = []
        out.reserveCapacity(8 + header.count + ordered.reduce(0) { $0 + 4 * $1.1.count })
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: header)
        for (_, tensor) in ordered {
            for v in tensor.scalars { withUnsafeBytes(of: v.bitPattern.littleEndian) { out.append(contentsOf: $0) } }
        }
        return out
    }

    /// The padded JSON header and the tensors in file order.
    static func serializedHeader(
        _ tensors: [(String, Tensor)], metadata: [String: String]?, file: String
    ) throws -> (header: [UInt8], ordered: [(String, Tensor)]) {
        var seen = Set<String>()
        for (name, _) in tensors {
            guard name != "__metadata__" else {
                throw SafetensorsError(file: file, tensor: name, .invalidArgument, "'__metadata__' is reserved for the metadata and cannot name a tensor")
            }
            guard seen.insert(name).inserted else {
                throw SafetensorsError(file: file, tensor: name, .invalidArgument, "two tensors are named '\(name)'")
            }
        }
        let ordered = tensors.sorted { $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) }

        var json: [UInt8] = [UInt8(ascii: "{")]
        var first = true
        func separator() {
            if !first { json.append(UInt8(ascii: ",")) }
            first = false
        }
        if let metadata {
            separator()
            appendJSONString("__metadata__", to: &json)
            json.append(contentsOf: Array(":{".utf8))
            for (i, key) in metadata.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }).enumerated() {
                if i > 0 { json.append(UInt8(ascii: ",")) }
                appendJSONString(key, to: &json)
                json.append(UInt8(ascii: ":"))
                appendJSONString(metadata[key]!, to: &json)
            }
            json.append(UInt8(ascii: "}"))
        }
        var offset = 0
        for (name, tensor) in ordered {
            separator()
            let end = offset + 4 * tensor.count
            appendJSONString(name, to: &json)
            let shape = tensor.shape.map(String.init).joined(separator: ",")
            json.append(contentsOf: Array(":{\"dtype\":\"F32\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(end)]}".utf8))
            offset = end
        }
        json.append(UInt8(ascii: "}"))
        json.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - json.count % 8) % 8))
        return (json, ordered)
    }
}

/// `write(2)`, named apart from `SafetensorsFile.write` so the call is unambiguous.
@inline(__always)
private func posixWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.write(fd, p, n)
    #else
    return Darwin.write(fd, p, n)
    #endif
}
