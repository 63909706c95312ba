import Foundation
import XCTest
@testable import FactorlabData

final class TextNormalizerTests: XCTestCase {
    func testBOMAndLineEndings() {
        let raw: [UInt8] = [0xEF, 0xBB, 0xBF] + Array("a\r\nb\rc\n\r\nd\r".utf8)
        XCTAssertEqual(TextNormalizer.normalizedString(raw), "a\nb\nc\n\nd\n")
        // A BOM that is not at the start is text (U+FEFF), kept.
        XCTAssertEqual(TextNormalizer.normalize([0x61, 0xEF, 0xBB, 0xBF]), [0x61, 0xEF, 0xBB, 0xBF])
        // CR CR LF is two line ends.
        XCTAssertEqual(TextNormalizer.normalizedString(Array("x\r\r\ny".utf8)), "x\n\ny")
    }

    func testInvalidUTF8BecomesReplacementCharacters() {
        // 0xFF is never valid; C3 alone is a truncated 2-byte sequence; E2 82 is a truncated 3-byte one.
        let raw: [UInt8] = [0x61, 0xFF, 0x62, 0xC3, 0x63, 0xE2, 0x82]
        let normalized = TextNormalizer.normalize(raw)
        XCTAssertEqual(String(decoding: normalized, as: UTF8.self), "a\u{FFFD}b\u{FFFD}c\u{FFFD}")
        XCTAssertEqual(normalized, [0x61, 0xEF, 0xBF, 0xBD, 0x62, 0xEF, 0xBF, 0xBD, 0x63, 0xEF, 0xBF, 0xBD])
        XCTAssertEqual(TextNormalizer.normalize([UInt8]()), [])
    }

    func testFilesWithCRLFBOMAndInvalidUTF8Load() throws {
        let folder = try makeTemporaryFolder(self)
        let crlf = try writeFile(folder, "crlf.txt", [0xEF, 0xBB, 0xBF] + Array("To be,\r\nor not\r\n".utf8))
        let broken = try writeFile(folder, "broken.txt", Array("caf".utf8) + [0xC3] + Array("\rend".utf8) + [0xFE])
        XCTAssertEqual(try documents(of: crlf), ["To be,\nor not\n"])
        XCTAssertEqual(try documents(of: broken), ["caf\u{FFFD}\nend\u{FFFD}"])
    }
}
