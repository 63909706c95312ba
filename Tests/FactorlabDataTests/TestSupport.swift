import Foundation
import FactorlabTestSupport
import XCTest
@testable import FactorlabData

/// A fresh temporary folder, removed when the test ends.
func makeTemporaryFolder(_ test: XCTestCase) throws -> URL { try temporaryFolder("data", removedAfter: test) }

/// Writes `bytes` to `folder/name`, creating subfolders.
@discardableResult
func writeFile(_ folder: URL, _ name: String, _ bytes: [UInt8]) throws -> URL {
    let url = folder.appendingPathComponent(name)
    try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
    try Data(bytes).write(to: url)
    return url
}

@discardableResult
func writeFile(_ folder: URL, _ name: String, _ text: String) throws -> URL {
    try writeFile(folder, name, Array(text.utf8))
}

/// The DataError `body` throws, or a test failure.
func expectDataError(_ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) -> DataError? {
    do {
        try body()
        XCTFail("expected a DataError, nothing was thrown", file: file, line: line)
    } catch let error as DataError {
        return error
    } catch {
        XCTFail("expected a DataError, got \(error)", file: file, line: line)
    }
    return nil
}

/// The documents of one file, as strings (token files as their ids joined by spaces).
func documents(of url: URL, field: String = "text") throws -> [String] {
    let status = try XCTUnwrap(FileSystem.status(url.path))
    let file = DataSource.File(path: url.path, kind: DataSource.kind(of: url.path), size: status.size,
                               modificationTime: status.modificationTime)
    var result: [String] = []
    try DocumentReader.forEachDocument(in: file, textField: field, vocabularySize: nil) { document in
        switch document {
        case let .text(bytes): result.append(String(decoding: bytes, as: UTF8.self))
        case let .tokens(stream): result.append(stream.array.map(String.init).joined(separator: " "))
        }
    }
    return result
}

/// A folder of the public-domain corpora the repository ships in Recipes/corpora (`shakespeare`,
/// `milton`), found relative to this source file; $FACTORLAB_CORPORA overrides the root.
func corpusFolder(_ name: String) throws -> URL {
    let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let root = ProcessInfo.processInfo.environment["FACTORLAB_CORPORA"] ?? repo.appendingPathComponent("Recipes/corpora").path
    let url = URL(fileURLWithPath: root).appendingPathComponent(name)
    guard FileSystem.status(url.path)?.isDirectory == true else {
        throw DataError(.fileUnreadable, file: url.path, "corpus folder not found (the repository ships it in Recipes/corpora)")
    }
    return url
}
