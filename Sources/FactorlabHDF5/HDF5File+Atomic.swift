import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Crash-safe saving: the target file is either the previous complete file or the new one.
extension HDF5File {
    /// Writes a new HDF5 file at `url` through `body`, atomically.
    ///
    /// The file is first written to a hidden temporary file in the same folder
    /// (`.name.tmp-PID-random`), flushed, closed and fsynced; it is then renamed over `url` and
    /// the folder is fsynced so the rename itself survives a power cut. If `body` or any step
    /// throws, the temporary file is removed and `url` is untouched. If the process dies
    /// mid-write the temporary file stays behind; the next `writeAtomically` to the same target
    /// removes such leftovers whose writer process no longer exists.
    public static func writeAtomically(to url: URL, _ body: (HDF5File) throws -> Void) throws {
        let folder = url.deletingLastPathComponent()
        let name = url.lastPathComponent
        removeStaleTemporaryFiles(for: url)
        let random = String(UInt64.random(in: 0...UInt64.max), radix: 16)
        let temporary = folder.appendingPathComponent(".\(name).tmp-\(getpid())-\(random)")

        var file: HDF5File?
        do {
            let created = try HDF5File(url: temporary, create: true, exclusive: true)
            file = created
            try body(created)
            try created.close()          // H5Fflush + H5Fclose
            file = nil
            try fsyncPath(temporary, target: url, what: "the temporary file")
            guard rename(temporary.path, url.path) == 0 else {
                throw systemError(url, "rename \(temporary.lastPathComponent) over the target")
            }
        } catch {
            if let file { try? file.close() }
            unlink(temporary.path)
            throw error
        }
        // The new file is in place; make the directory entry durable too.
        try fsyncPath(folder, target: url, what: "the folder", directory: true)
    }

    /// Removes `.name.tmp-PID-*` files next to `url` left by writer processes that no longer
    /// exist (killed mid-write). Files of live processes, including this one, are kept.
    public static func removeStaleTemporaryFiles(for url: URL) {
        let folder = url.deletingLastPathComponent()
        let prefix = ".\(url.lastPathComponent).tmp-"
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: folder.path) else { return }
        for entry in entries where entry.hasPrefix(prefix) {
            let rest = entry.dropFirst(prefix.count)
            guard let dash = rest.firstIndex(of: "-"), let pid = pid_t(rest[..<dash]), pid > 0 else { continue }
            if pid != getpid() && kill(pid, 0) != 0 && errno == ESRCH {
                unlink(folder.appendingPathComponent(entry).path)
            }
        }
    }

    private static func fsyncPath(_ url: URL, target: URL, what: String, directory: Bool = false) throws {
        let flags = directory ? O_RDONLY | O_DIRECTORY : O_RDONLY
        let fd = open(url.path, flags)
        guard fd >= 0 else { throw systemError(target, "open \(what) for fsync") }
        defer { _ = Glibc_or_Darwin_close(fd) }
        guard fsync(fd) == 0 else { throw systemError(target, "fsync \(what)") }
    }

    private static func systemError(_ target: URL, _ step: String) -> HDF5Error {
        let reason = String(cString: strerror(errno))
        return HDF5Error(file: target.path, object: nil, operation: "atomic write",
                         message: "could not \(step): \(reason)")
    }
}

/// `close(2)`, which the method `HDF5File.close()` hides inside the extension.
@inline(__always)
private func Glibc_or_Darwin_close(_ fd: Int32) -> Int32 {
    #if canImport(Glibc)
    return Glibc.close(fd)
    #else
    return Darwin.close(fd)
    #endif
}
