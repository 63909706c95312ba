import Foundation
import XCTest
@testable import FactorlabData

final class TokenStreamTests: XCTestCase {
    func testBinRoundTrip() throws {
        let folder = try makeTemporaryFolder(self)
        let tokens: [UInt16] = [0, 1, 50256, 65535, 258, 7]
        let url = folder.appendingPathComponent("t.bin")
        try TokenStream(tokens).write(to: url)
        // nanoGPT's layout: uint16 little-endian, nothing else.
        XCTAssertEqual(Array(try Data(contentsOf: url)), [0, 0, 1, 0, 0x50, 0xC4, 0xFF, 0xFF, 2, 1, 7, 0])
        let read = try TokenStream(contentsOf: url)
        XCTAssertEqual(read.count, 6)
        XCTAssertEqual(read.array, tokens)
        XCTAssertEqual(read[2], 50256)
        XCTAssertEqual(read.name, url.path)
        // An empty file is an empty stream.
        let empty = try writeFile(folder, "empty.bin", [UInt8]())
        XCTAssertEqual(try TokenStream(contentsOf: empty).count, 0)
    }

    func testOddLengthAndOutOfRangeIDs() throws {
        let folder = try makeTemporaryFolder(self)
        let odd = try writeFile(folder, "odd.bin", [1, 0, 2])
        let e1 = expectDataError { _ = try TokenStream(contentsOf: odd) }
        XCTAssertEqual(e1?.kind, .malformedTokenFile)
        XCTAssertEqual(e1?.file, odd.path)
        XCTAssertTrue(e1?.message.hasPrefix("has 3 bytes, an odd number") ?? false)

        let bad = try writeFile(folder, "bad.bin", [5, 0, 9, 0, 10, 0, 200, 0])
        XCTAssertEqual(try TokenStream(contentsOf: bad, vocabularySize: 201).array, [5, 9, 10, 200])
        let e2 = expectDataError { _ = try TokenStream(contentsOf: bad, vocabularySize: 10) }
        XCTAssertEqual(e2?.kind, .tokenOutOfRange)
        XCTAssertEqual(e2?.offset, 4)  // the third id, 10
        XCTAssertEqual(e2?.description, bad.path + ": byte offset 4: token id 10 (token 2) is not below the vocabulary "
                           + "size 10; was the file made with a different tokenizer?")
        XCTAssertEqual(expectDataError { _ = try TokenStream(contentsOf: folder.appendingPathComponent("none.bin")) }?.kind,
                       .fileUnreadable)
    }

    func testLLMCHeaderIsRecognised() throws {
        let folder = try makeTemporaryFolder(self)
        var header = [Int32](repeating: 0, count: 256)
        header[0] = 20240520
        header[1] = 1
        header[2] = 3
        var bytes = header.withUnsafeBytes { Array($0) }
        bytes += [50, 0, 51, 0, 52, 0]
        let url = try writeFile(folder, "llmc.bin", bytes)
        XCTAssertEqual(try TokenStream(contentsOf: url).array, [50, 51, 52])
        let e = expectDataError { _ = try TokenStream(contentsOf: url, vocabularySize: 52) }
        XCTAssertEqual(e?.offset, 1024 + 4)
        header[2] = 4
        let wrong = try writeFile(folder, "wrong.bin", header.withUnsafeBytes { Array($0) } + [50, 0, 51, 0, 52, 0])
        XCTAssertEqual(expectDataError { _ = try TokenStream(contentsOf: wrong) }?.kind, .malformedTokenFile)
    }
}
