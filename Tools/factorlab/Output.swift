import FactorlabRecords
import Foundation

/// Progress and results, following the CLI conventions: results on stdout, progress on stderr.
/// On a terminal the progress line is live (rewritten in place, at most 10 times a second);
/// otherwise it degrades to plain lines, at most one every 5 seconds, so logs stay readable.
enum Console {
    /// A `factorlab` child process of this same executable with `arguments` (bench workers, sweep points).
    static func childProcess(_ arguments: [String]) -> Process {
        let p = Process()
        #if os(Linux)
        p.executableURL = URL(fileURLWithPath: "/proc/self/exe")
        #else
        p.executableURL = Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])
        #endif
        p.arguments = arguments
        return p
    }

    static let isTerminal = isatty(STDERR_FILENO) != 0

    /// When the last progress line was shown, behind a lock (progress may come from any thread).
    final class Throttle: @unchecked Sendable {
        private let lock = NSLock()
        private var last = Date.distantPast
        private var pending: String?
        func admit(_ message: String, every interval: TimeInterval) -> Bool {
            lock.lock()
            defer { lock.unlock() }
            let now = Date()
            guard now.timeIntervalSince(last) >= interval else { pending = message; return false }
            last = now
            pending = nil
            return true
        }
        /// The newest message that was held back, if any (printed when progress ends).
        func takePending() -> String? {
            lock.lock()
            defer { lock.unlock() }
            defer { pending = nil; last = .distantPast }
            return pending
        }
    }
    static let throttle = Throttle()

    /// A progress message.
    static func progress(_ message: String) {
        guard throttle.admit(message, every: isTerminal ? 0.1 : 5) else { return }
        write(message)
    }

    static func write(_ message: String) {
        if isTerminal {
            FileHandle.standardError.write(Data(("\r\u{1B}[2K" + message).utf8))
        } else {
            FileHandle.standardError.write(Data((message + "\n").utf8))
        }
    }

    /// Ends a progress line, showing the last message if it was held back.
    static func endProgress() {
        if let last = throttle.takePending() { write(last) }
        if isTerminal { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    /// A note on stderr (its own line).
    static func note(_ message: String) { FileHandle.standardError.write(Data((message + "\n").utf8)) }

    static func warn(_ message: String) { FileHandle.standardError.write(Data(("warning: " + message + "\n").utf8)) }

    /// Prints one JSON object on stdout. A value JSON cannot hold (NaN, infinity) is an error,
    /// never an empty object.
    static func printJSON(_ object: [String: Any]) throws {
        guard JSONSerialization.isValidJSONObject(object) else {
            throw OutputError("the results hold a value JSON cannot represent (NaN or infinity): \(object)")
        }
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])
        print(String(decoding: data, as: UTF8.self))
    }

    /// Prints one typed record as a JSON object on stdout.
    static func printRecord<T: Encodable>(_ record: T) throws {
        print(String(decoding: try RecordFiles.encode(record, pretty: true), as: UTF8.self))
    }
}

struct OutputError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}
