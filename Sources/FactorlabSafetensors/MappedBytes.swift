import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Read-only bytes of a whole file, memory-mapped so a 500 MB checkpoint is paged in on demand
/// and never copied into an intermediate buffer; or a heap copy of an in-memory buffer.
///
/// The mapping is private and read-only. If another process truncates the file while it is
/// mapped, touching the lost pages raises SIGBUS: write checkpoints atomically (as
/// `SafetensorsFile.write` does) rather than in place.
final class MappedBytes: @unchecked Sendable {
    /// Start of the bytes (a valid pointer even when `count` is 0).
    let base: UnsafeRawPointer
    let count: Int
    private let isMapped: Bool

    /// Maps the file at `path`; errors name the path and the system's reason.
    init(mappingFileAt path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw SafetensorsError(file: path, .io, "cannot open: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw SafetensorsError(file: path, .io, "cannot stat: \(String(cString: strerror(errno)))")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw SafetensorsError(file: path, .io, "not a regular file")
        }
        let size = Int(info.st_size)
        if size == 0 {
            base = UnsafeRawPointer(UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 8))
            count = 0
            isMapped = false
            return
        }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0),
              p != UnsafeMutableRawPointer(bitPattern: -1) else {
            throw SafetensorsError(file: path, .io, "cannot memory-map \(size) bytes: \(String(cString: strerror(errno)))")
        }
        base = UnsafeRawPointer(p)
        count = size
        isMapped = true
    }

    /// A private copy of `bytes`.
    init(copying bytes: [UInt8]) {
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 8)
        bytes.withUnsafeBytes { if let src = $0.baseAddress { p.copyMemory(from: src, byteCount: $0.count) } }
        base = UnsafeRawPointer(p)
        count = bytes.count
        isMapped = false
    }

    deinit {
        if isMapped {
            munmap(UnsafeMutableRawPointer(mutating: base), count)
        } else {
            UnsafeMutableRawPointer(mutating: base).deallocate()
        }
    }
}
