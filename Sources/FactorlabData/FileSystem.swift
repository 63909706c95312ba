import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Thin wrappers over POSIX calls that Foundation does not expose exactly: `stat` with nanosecond
/// modification times, and `rename` that replaces its destination atomically.
enum FileSystem {
    struct Status {
        var isDirectory: Bool
        var isRegular: Bool
        var size: Int64
        /// Modification time in nanoseconds since 1970.
        var modificationTime: Int64
        /// (device, inode): identifies a folder so that symbolic-link loops are visited once.
        var identity: [UInt64]
    }

    /// The status of `path` (following symbolic links), or nil if it does not exist.
    static func status(_ path: String) -> Status? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        let type = UInt32(info.st_mode) & 0o170000
        #if canImport(Darwin)
        let time = info.st_mtimespec
        #else
        let time = info.st_mtim
        #endif
        return Status(isDirectory: type == 0o040000, isRegular: type == 0o100000, size: Int64(info.st_size),
                      modificationTime: Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec),
                      identity: [UInt64(info.st_dev), UInt64(info.st_ino)])
    }

    /// Renames `from` to `to`, replacing `to` in one step (readers see the old or the new file, never a mix).
    static func replace(_ to: URL, with from: URL) throws {
        guard rename(from.path, to.path) == 0 else {
            let reason = String(cString: strerror(errno))
            throw DataError(.writeFailed, file: to.path, "cannot move the finished file into place: \(reason)")
        }
    }

    /// A fresh temporary path next to `url` (same folder, so the final rename stays on one file system).
    static func temporaryURL(beside url: URL) -> URL {
        url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UUID().uuidString.prefix(8))")
    }

    /// Writes `data` to `url` atomically: a temporary file in the same folder, then a rename.
    static func writeAtomically(_ data: Data, to url: URL) throws {
        let temporary = temporaryURL(beside: url)
        do {
            try data.write(to: temporary)
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw DataError(.writeFailed, file: url.path, "cannot write: \(error.localizedDescription)")
        }
        do {
            try replace(url, with: temporary)
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw error
        }
    }
}
