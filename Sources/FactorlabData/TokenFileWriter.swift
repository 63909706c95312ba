import Foundation

/// Appends uint16 little-endian token ids to a temporary file, then moves it into place atomically.
final class TokenFileWriter {
    let url: URL
    let temporaryURL: URL
    private let handle: FileHandle
    private var buffer: [UInt16] = []
    private let bufferLimit = 1 << 20
    /// Tokens written so far (including those still buffered).
    private(set) var count = 0

    init(url: URL) throws {
        self.url = url
        temporaryURL = FileSystem.temporaryURL(beside: url)
        guard FileManager.default.createFile(atPath: temporaryURL.path, contents: nil),
              let handle = FileHandle(forUpdatingAtPath: temporaryURL.path) else {
            throw DataError(.writeFailed, file: url.path, "cannot create a temporary file in \(url.deletingLastPathComponent().path)")
        }
        self.handle = handle
        buffer.reserveCapacity(bufferLimit)
    }

    /// Appends ids already known to be below 65536.
    func append(_ ids: [Int32]) throws {
        for id in ids {
            buffer.append(UInt16(truncatingIfNeeded: id).littleEndian)
            if buffer.count == bufferLimit { try flush() }
        }
        count += ids.count
    }

    func append(_ stream: TokenStream) throws {
        for i in 0..<stream.count {
            buffer.append(stream[i].littleEndian)
            if buffer.count == bufferLimit { try flush() }
        }
        count += stream.count
    }

    func flush() throws {
        guard !buffer.isEmpty else { return }
        do {
            try buffer.withUnsafeBytes { try handle.write(contentsOf: Data($0)) }
        } catch {
            throw DataError(.writeFailed, file: url.path, "cannot write tokens: \(error.localizedDescription)")
        }
        buffer.removeAll(keepingCapacity: true)
    }

    /// Moves the last `tokens` ids written into `other` and cuts them from this file.
    func moveTail(_ tokens: Int, to other: TokenFileWriter) throws {
        try flush()
        let keep = count - tokens
        do {
            try handle.seek(toOffset: UInt64(2 * keep))
            var remaining = 2 * tokens
            while remaining > 0 {
                let piece = try handle.read(upToCount: min(remaining, 1 << 24)) ?? Data()
                guard !piece.isEmpty else { break }
                try other.flush()
                try other.handle.write(contentsOf: piece)
                other.count += piece.count / 2
                remaining -= piece.count
            }
            try handle.truncate(atOffset: UInt64(2 * keep))
        } catch let error as DataError {
            throw error
        } catch {
            throw DataError(.writeFailed, file: url.path, "cannot split off the validation tail: \(error.localizedDescription)")
        }
        count = keep
    }

    /// Flushes, closes and renames the temporary file to `url`.
    func finish() throws {
        try flush()
        do {
            try handle.synchronize()
            try handle.close()
        } catch {
            throw DataError(.writeFailed, file: url.path, "cannot finish writing: \(error.localizedDescription)")
        }
        try FileSystem.replace(url, with: temporaryURL)
    }

    /// Closes and deletes the temporary file (after an error).
    func abandon() {
        try? handle.close()
        try? FileManager.default.removeItem(at: temporaryURL)
    }
}
