import Foundation
import XCTest
@testable import FactorlabData

final class DataSourceTests: XCTestCase {
    func testFolderRecursionOrderAndKinds() throws {
        let folder = try makeTemporaryFolder(self)
        for name in ["b.txt", "a/z.txt", "a/y.md", "c.jsonl", ".hidden.txt", "notes.csv", "d/e/f.bin", "d/g.json", ".git/x.txt"] {
            try writeFile(folder, name, name.hasSuffix(".bin") ? [1, 0] : Array("{\"text\": \"x\"}".utf8))
        }
        let explicit = try writeFile(folder, "other/README", "read me")
        let files = try DataSource(paths: [folder, explicit]).files()
        let relative = files.map { String($0.path.dropFirst(folder.path.count + 1)) }
        XCTAssertEqual(relative, ["a/y.md", "a/z.txt", "b.txt", "c.jsonl", "d/e/f.bin", "d/g.json", "other/README"])
        XCTAssertEqual(files.map(\.kind), [.text, .text, .text, .jsonLines, .tokens, .json, .text])
        XCTAssertEqual(files[4].size, 2)
        // The cache folder is never read even inside a source folder.
        let withoutD = try DataSource(paths: [folder]).files(excluding: folder.appendingPathComponent("d"))
        XCTAssertEqual(withoutD.count, 4)
    }

    func testMissingPathAndEmptyFolder() throws {
        let folder = try makeTemporaryFolder(self)
        let missing = folder.appendingPathComponent("nope.txt")
        let error = expectDataError { _ = try DataSource(paths: [missing]).files() }
        XCTAssertEqual(error?.kind, .fileUnreadable)
        XCTAssertEqual(error?.file, missing.path)
        try writeFile(folder, "table.csv", "a,b")
        XCTAssertEqual(expectDataError { _ = try DataSource(paths: [folder]).files() }?.kind, .emptyCorpus)
    }

    func testJSONLinesDocuments() throws {
        let folder = try makeTemporaryFolder(self)
        let url = try writeFile(folder, "docs.jsonl",
                                [0xEF, 0xBB, 0xBF] + Array("{\"text\": \"one\\r\\ntwo\", \"id\": 1}\r\n\n  \n{\"text\": \"caf\u{e9}\"}\n".utf8))
        XCTAssertEqual(try documents(of: url), ["one\ntwo", "caf\u{e9}"])
        let other = try writeFile(folder, "body.jsonl", "{\"body\": \"b1\"}\n{\"body\": \"b2\", \"text\": 3}\n")
        XCTAssertEqual(try documents(of: other, field: "body"), ["b1", "b2"])
        let array = try writeFile(folder, "array.json", " [{\"text\": \"first\"}, {\"text\": \"second\"}]")
        XCTAssertEqual(try documents(of: array), ["first", "second"])
        // A .json file that does not start with `[` is read as JSON lines.
        let lines = try writeFile(folder, "lines.json", "{\"text\": \"l1\"}\n{\"text\": \"l2\"}")
        XCTAssertEqual(try documents(of: lines), ["l1", "l2"])
    }

    func testJSONLinesErrorsNameFileAndLine() throws {
        let folder = try makeTemporaryFolder(self)
        let invalid = try writeFile(folder, "invalid.jsonl", "{\"text\": \"ok\"}\n\n{\"text\": \"unterminated}\n")
        let e1 = expectDataError { _ = try documents(of: invalid) }
        XCTAssertEqual(e1?.kind, .invalidJSON)
        XCTAssertEqual(e1?.file, invalid.path)
        XCTAssertEqual(e1?.line, 3)
        XCTAssertTrue(e1?.description.hasPrefix(invalid.path + ":3: not valid JSON") ?? false, e1?.description ?? "")

        let missing = try writeFile(folder, "missing.jsonl", "{\"text\": \"ok\"}\n{\"body\": \"x\", \"id\": 2}\n")
        let e2 = expectDataError { _ = try documents(of: missing) }
        XCTAssertEqual(e2?.kind, .missingField)
        XCTAssertEqual(e2?.line, 2)
        XCTAssertEqual(e2?.message, "no field \"text\" in the JSON object (fields: \"body\", \"id\"); "
                           + "set DataSource.textField to the field that holds the text")

        let number = try writeFile(folder, "number.jsonl", "{\"text\": 42}\n")
        let e3 = expectDataError { _ = try documents(of: number) }
        XCTAssertEqual(e3?.kind, .missingField)
        XCTAssertEqual(e3?.line, 1)
        XCTAssertEqual(e3?.message, "field \"text\" is a number or boolean, expected a string")

        let notObject = try writeFile(folder, "array.jsonl", "[1, 2]\n")
        let e4 = expectDataError { _ = try documents(of: notObject) }
        XCTAssertEqual(e4?.kind, .invalidJSON)
        XCTAssertEqual(e4?.message, "expected a JSON object with a \"text\" field, found an array")

        let element = try writeFile(folder, "elements.json", "[{\"text\": \"a\"}, {\"text\": null}]")
        let e5 = expectDataError { _ = try documents(of: element) }
        XCTAssertEqual(e5?.message, "array element 1 (0-based): field \"text\" is null, expected a string")
        XCTAssertNil(e5?.line)

        // Invalid UTF-8 inside a JSON line is repaired, not an error.
        let broken = try writeFile(folder, "broken.jsonl", Array("{\"text\": \"a".utf8) + [0xFF] + Array("b\"}".utf8))
        XCTAssertEqual(try documents(of: broken), ["a\u{FFFD}b"])
    }
}
