import CHDF5
import Foundation

/// The one lock around the serial HDF5 library, which is not thread-safe.
///
/// Every call into HDF5 made by this module runs inside `HDF5Library.shared.withLock`. The lock is
/// recursive so that helpers can call each other while holding it. Initialising the shared
/// instance opens the library and turns off its automatic printing of error stacks to stderr:
/// failures become `HDF5Error` values instead.
final class HDF5Library: @unchecked Sendable {
    // @unchecked: the only stored state is the lock itself.
    static let shared = HDF5Library()

    private let lock = NSRecursiveLock()

    private init() {
        H5open()
        H5Eset_auto2(fl_H5E_DEFAULT(), nil, nil)
    }

    /// Runs `body` while holding the HDF5 lock.
    func withLock<R>(_ body: () throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        // Cheap, and keeps printing off even in a thread-safe HDF5 build (per-thread stacks).
        H5Eset_auto2(fl_H5E_DEFAULT(), nil, nil)
        return try body()
    }

    /// The library version, e.g. "1.10.8".
    static var version: String {
        shared.withLock {
            var major: UInt32 = 0, minor: UInt32 = 0, release: UInt32 = 0
            fl_H5_version(&major, &minor, &release)
            return "\(major).\(minor).\(release)"
        }
    }

    /// The current HDF5 error stack, outermost call first. Call it (with the lock held) right
    /// after a failing call, before any other HDF5 call clears the stack.
    static func currentErrorStack() -> [String] {
        final class Collector { var lines: [String] = [] }
        let collector = Collector()
        let callback: H5E_walk2_t = { _, errorDescription, clientData in
            guard let errorDescription, let clientData else { return 0 }
            let collector = Unmanaged<Collector>.fromOpaque(clientData).takeUnretainedValue()
            let entry = errorDescription.pointee
            let function = entry.func_name.map { String(cString: $0) } ?? "?"
            var text = "\(function)(): " + (entry.desc.map { String(cString: $0) } ?? "")
            var buffer = [CChar](repeating: 0, count: 256)
            if H5Eget_msg(entry.min_num, nil, &buffer, buffer.count) > 0 {
                let minor = decodeCString(buffer)
                if !minor.isEmpty && !text.contains(minor) { text += " (\(minor))" }
            }
            collector.lines.append(text)
            return 0
        }
        withExtendedLifetime(collector) {
            _ = H5Ewalk2(fl_H5E_DEFAULT(), H5E_WALK_DOWNWARD, callback,
                         Unmanaged.passUnretained(collector).toOpaque())
        }
        return collector.lines
    }
}

/// The file, object and operation an HDF5 call belongs to, for error messages.
struct HDF5Context {
    let file: String
    let object: String?
    let operation: String

    func error(_ message: String, withStack: Bool = false) -> HDF5Error {
        let stack = withStack ? HDF5Library.currentErrorStack() : []
        var message = message
        if stack.contains(where: { $0.localizedCaseInsensitiveContains("checksum") }) {
            message += " because a checksum did not match: the file is corrupted (restore it from another copy or rewrite it)"
        } else if stack.contains(where: { line in
            ["object header", "b-tree", "btree", "unable to load", "truncated", "signature", "bad", "corrupt", "address"]
                .contains { line.localizedCaseInsensitiveContains($0) } }) {
            message += ": the file's structure is damaged or truncated (restore it from another copy or rewrite it)"
        }
        return HDF5Error(file: file, object: object, operation: operation, message: message, hdf5Stack: stack)
    }

    /// Throws when an `herr_t` (or any signed status) is negative.
    @discardableResult
    func check<T: BinaryInteger>(_ status: T, _ call: String) throws -> T {
        if status < 0 { throw error("\(call) returned \(status)", withStack: true) }
        return status
    }
}

/// The text of a NUL-terminated UTF-8 buffer filled by a C call.
func decodeCString(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
