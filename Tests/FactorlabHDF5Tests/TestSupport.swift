import Foundation
import FactorlabTestSupport
import XCTest

/// A fresh folder under the system temporary directory, removed by the caller's teardown.
func makeTemporaryFolder(_ label: String) throws -> URL { try temporaryFolder("hdf5-\(label)") }

/// Offsets of every occurrence of `pattern` in `data`.
func occurrences(of pattern: [UInt8], in data: Data) -> [Int] {
    let bytes = [UInt8](data)
    guard pattern.count <= bytes.count else { return [] }
    var found: [Int] = []
    var i = 0
    while i <= bytes.count - pattern.count {
        if bytes[i] == pattern[0] && Array(bytes[i..<(i + pattern.count)]) == pattern { found.append(i) }
        i += 1
    }
    return found
}

/// The little-endian bytes of some floats.
func bytes(of values: [Float]) -> [UInt8] {
    values.withUnsafeBytes { Array($0) }
}

/// XORs one byte of a file in place.
func flipByte(in url: URL, at offset: Int, mask: UInt8 = 0x01) throws {
    var data = try Data(contentsOf: url)
    data[offset] ^= mask
    try data.write(to: url)
}

/// The path of an executable on PATH (or a usual install folder), or nil.
func findExecutable(_ name: String) -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
    let folders = path.split(separator: ":").map(String.init) + ["/usr/bin", "/usr/local/bin", "/opt/homebrew/bin"]
    return folders.map { $0 + "/" + name }.first { FileManager.default.isExecutableFile(atPath: $0) }
}

/// Runs a program and returns its exit status and standard output (stderr is appended).
func runTool(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// Asserts that `body` throws an error whose description contains every one of `fragments`;
/// returns the description.
@discardableResult
func assertThrowsMentioning(_ fragments: [String], file: StaticString = #filePath, line: UInt = #line,
                            _ body: () throws -> Void) -> String {
    do {
        try body()
        XCTFail("expected an error mentioning \(fragments)", file: file, line: line)
        return ""
    } catch {
        let text = "\(error)"
        for fragment in fragments {
            XCTAssertTrue(text.contains(fragment), "error text does not mention '\(fragment)': \(text)",
                          file: file, line: line)
        }
        return text
    }
}
