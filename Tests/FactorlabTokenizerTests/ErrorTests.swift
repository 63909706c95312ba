import Foundation
import XCTest
@testable import FactorlabTokenizer

/// Bad input gives a `TokenizerError` naming the file, line and problem; never a crash.
final class ErrorTests: XCTestCase {
    /// Writes a copy of the fixture files into a temporary folder, with edits.
    private func folder(vocab: String? = nil, merges: String? = nil) throws -> URL {
        let directory = try makeTemporaryDirectory(self)
        let fixtures = try Fixtures.directory
        try (vocab.map { Data($0.utf8) } ?? Data(contentsOf: fixtures.appendingPathComponent("vocab.json")))
            .write(to: directory.appendingPathComponent("vocab.json"))
        try (merges.map { Data($0.utf8) } ?? Data(contentsOf: fixtures.appendingPathComponent("merges.txt")))
            .write(to: directory.appendingPathComponent("merges.txt"))
        return directory
    }

    private func fixtureMerges() throws -> String {
        try String(contentsOf: Fixtures.directory.appendingPathComponent("merges.txt"), encoding: .utf8)
    }

    private func assertError(_ kind: TokenizerError.Kind, file: String?, line: Int?, mentions words: [String],
                             _ body: () throws -> Void, sourceLine: UInt = #line) {
        XCTAssertThrowsError(try body(), line: sourceLine) { error in
            guard let error = error as? TokenizerError else {
                return XCTFail("not a TokenizerError: \(error)", line: sourceLine)
            }
            XCTAssertEqual(error.kind, kind, "\(error)", line: sourceLine)
            XCTAssertEqual(error.file.map { URL(fileURLWithPath: $0).lastPathComponent }, file, "\(error)", line: sourceLine)
            XCTAssertEqual(error.line, line, "\(error)", line: sourceLine)
            for word in words {
                XCTAssertTrue(error.description.contains(word), "\(error) should mention \(word)", line: sourceLine)
            }
        }
    }

    func testMissingFiles() throws {
        let empty = try makeTemporaryDirectory(self)
        assertError(.fileUnreadable, file: "vocab.json", line: nil, mentions: ["vocab.json", "no such file"]) {
            _ = try BPETokenizer(directory: empty)
        }
        let onlyVocab = try folder()
        try FileManager.default.removeItem(at: onlyVocab.appendingPathComponent("merges.txt"))
        assertError(.fileUnreadable, file: "merges.txt", line: nil, mentions: ["merges.txt", "no such file"]) {
            _ = try BPETokenizer(directory: onlyVocab)
        }
    }

    func testMalformedJSON() throws {
        let broken = try folder(vocab: "{\"a\": 1, \"b\": ")
        assertError(.malformedVocabulary, file: "vocab.json", line: nil, mentions: ["vocab.json", "malformed JSON"]) {
            _ = try BPETokenizer(directory: broken)
        }
        let array = try folder(vocab: "[1, 2, 3]")
        assertError(.malformedVocabulary, file: "vocab.json", line: nil, mentions: ["JSON object"]) {
            _ = try BPETokenizer(directory: array)
        }
        let stringID = try folder(vocab: "{\"a\": \"one\"}")
        assertError(.malformedVocabulary, file: "vocab.json", line: nil, mentions: ["integer ids", "\"a\""]) {
            _ = try BPETokenizer(directory: stringID)
        }
    }

    func testVocabularyProblems() throws {
        let negative = try folder(vocab: "{\"a\": -3}")
        assertError(.malformedVocabulary, file: "vocab.json", line: nil, mentions: ["\"a\"", "-3"]) {
            _ = try BPETokenizer(directory: negative)
        }
        let duplicate = try folder(vocab: "{\"a\": 0, \"b\": 0}")
        assertError(.malformedVocabulary, file: "vocab.json", line: nil, mentions: ["id 0", "\"a\"", "\"b\""]) {
            _ = try BPETokenizer(directory: duplicate)
        }
        let noBytes = try folder(vocab: "{\"a\": 0, \"b\": 1}")
        assertError(.malformedVocabulary, file: "vocab.json", line: nil, mentions: ["256 byte tokens"]) {
            _ = try BPETokenizer(directory: noBytes)
        }
    }

    func testMergeLineThatIsNotTwoTokens() throws {
        var lines = try fixtureMerges().split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        lines[4] = "h e l"  // line 5
        let three = try folder(merges: lines.joined(separator: "\n"))
        assertError(.malformedMerge, file: "merges.txt", line: 5, mentions: ["merges.txt:5:", "two tokens", "\"h e l\""]) {
            _ = try BPETokenizer(directory: three)
        }
        lines[4] = "he"
        let one = try folder(merges: lines.joined(separator: "\n"))
        assertError(.malformedMerge, file: "merges.txt", line: 5, mentions: ["merges.txt:5:"]) {
            _ = try BPETokenizer(directory: one)
        }
    }

    func testMergeTokenNotInVocabulary() throws {
        var lines = try fixtureMerges().split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        lines[9] = "Ġt ☃"  // line 10
        let unknown = try folder(merges: lines.joined(separator: "\n"))
        assertError(.unknownToken, file: "merges.txt", line: 10, mentions: ["merges.txt:10:", "\"☃\"", "vocab.json"]) {
            _ = try BPETokenizer(directory: unknown)
        }
        lines[9] = "q q"  // both parts exist but "qq" does not
        let unmerged = try folder(merges: lines.joined(separator: "\n"))
        assertError(.unknownToken, file: "merges.txt", line: 10, mentions: ["merged token", "\"qq\""]) {
            _ = try BPETokenizer(directory: unmerged)
        }
    }

    func testCRLFAndNoVersionLineAreAccepted() throws {
        let lines = try fixtureMerges().split(separator: "\n").dropFirst()  // no "#version" line
        let crlf = try folder(merges: "\u{FEFF}" + lines.joined(separator: "\r\n") + "\r\n")
        let tokenizer = try BPETokenizer(directory: crlf)
        XCTAssertEqual(tokenizer.mergeCount, 1743)
        XCTAssertEqual(tokenizer.encode("the question"), try Fixtures.tokenizer().encode("the question"))
    }

    func testDecodeIdOutOfRange() throws {
        let tokenizer = try Fixtures.tokenizer()
        assertError(.idOutOfRange, file: nil, line: nil, mentions: ["2000", "position 1", "0..<2000"]) {
            _ = try tokenizer.decode([5, 2000])
        }
        assertError(.idOutOfRange, file: nil, line: nil, mentions: ["-1", "position 0"]) {
            _ = try tokenizer.decodeBytes([-1])
        }
    }

    func testTrainingArguments() {
        assertError(.invalidArgument, file: nil, line: nil, mentions: ["vocabularySize 100", "257"]) {
            _ = try BPETokenizer.train(texts: ["abc"], vocabularySize: 100)
        }
        assertError(.fileUnreadable, file: "missing.txt", line: nil, mentions: ["missing.txt"]) {
            _ = try BPETokenizer.train(files: [URL(fileURLWithPath: "/nonexistent/missing.txt")], vocabularySize: 300)
        }
    }
}
