import Foundation

/// Progress and results, following the CLI conventions: results on stdout, progress on stderr,
/// a live line (carriage return) when stderr is a terminal and plain lines otherwise.
enum Console {
    static let isTerminal = isatty(STDERR_FILENO) != 0

    /// A progress message; on a terminal it replaces the previous one.
    static func progress(_ message: String) {
        if isTerminal {
            FileHandle.standardError.write(Data(("\r\u{1B}[2K" + message).utf8))
        } else {
            FileHandle.standardError.write(Data((message + "\n").utf8))
        }
    }

    /// Ends a live progress line.
    static func endProgress() {
        if isTerminal { FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8)) }
    }

    static func warn(_ message: String) { FileHandle.standardError.write(Data(("warning: " + message + "\n").utf8)) }

    /// Prints one JSON object on stdout.
    static func printJSON(_ object: [String: Any]) {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])) ?? Data("{}".utf8)
        print(String(decoding: data, as: UTF8.self))
    }
}
