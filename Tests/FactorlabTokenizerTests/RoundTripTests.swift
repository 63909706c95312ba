import FactorlabRandom
import XCTest
@testable import FactorlabTokenizer

/// encode → decode gives the text back; undecodable bytes become U+FFFD, never a crash.
final class RoundTripTests: XCTestCase {
    func testVariedStringsRoundTrip() throws {
        let tokenizer = try Fixtures.tokenizer()
        let texts = [
            "", " ", "\n", "a", "To be, or not to be: that is the question.",
            "It's 12:30\r\nThey're   here\t\tnow  ", "Ἐν ἀρχῇ ἦν ὁ λόγος", "中文字符测试，日本語のテキスト。한국어",
            "👨‍👩‍👧 ❤️ 🏳️‍🌈", "e\u{301} vs é", "\u{0}\u{1}\u{7F}\u{85}\u{FEFF}\u{10FFFF}", "<|endoftext|>",
            String(repeating: "abc", count: 500),  // a 1,500-byte pre-token: the heap merge path
            String(repeating: " ", count: 300) + "x",
        ]
        for text in texts {
            for allowSpecial in [false, true] {
                let ids = tokenizer.encode(text, allowSpecial: allowSpecial)
                XCTAssertEqual(try tokenizer.decode(ids), text, "\(text.debugDescription) allowSpecial: \(allowSpecial)")
                XCTAssertEqual(try tokenizer.decodeBytes(ids), Array(text.utf8))
            }
        }
        XCTAssertEqual(tokenizer.encode("<|endoftext|>", allowSpecial: true), [0])
        XCTAssertEqual(tokenizer.encode("").count, 0)
    }

    func testRandomUnicodeRoundTrips() throws {
        let tokenizer = try Fixtures.tokenizer()
        var generator = SplitMix64(state: 42)
        let ranges: [ClosedRange<UInt32>] = [0x20...0x7E, 0x09...0x0D, 0xA0...0x24F, 0x370...0x3FF, 0x4E00...0x4FFF,
                                             0x1F300...0x1F64F, 0x2000...0x206F, 0x0...0x10FFFF]
        for _ in 0..<300 {
            var text = String.UnicodeScalarView()
            for _ in 0..<Int(generator.next() % 40) {
                let range = ranges[Int(generator.next() % UInt64(ranges.count))]
                let value = range.lowerBound + UInt32(generator.next() % UInt64(range.count))
                if let scalar = Unicode.Scalar(value) { text.append(scalar) }
            }
            let string = String(text)
            XCTAssertEqual(try tokenizer.decode(tokenizer.encode(string)), string, scalars(string))
        }
    }

    /// Random byte strings: decodeBytes gives them back exactly; decode replaces what is not UTF-8.
    func testRandomBytesDecodeWithReplacement() throws {
        let tokenizer = try Fixtures.tokenizer()
        var generator = SplitMix64(state: 7)
        var replaced = 0
        for _ in 0..<300 {
            let bytes = (0..<Int(generator.next() % 32)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            let ids = bytes.withUnsafeBufferPointer { tokenizer.encode(utf8: $0) }
            XCTAssertEqual(try tokenizer.decodeBytes(ids), bytes)
            // Byte-level: every byte alone is a token, so the byte tokens' ids decode to any byte string.
            let text = try tokenizer.decode(ids)
            XCTAssertEqual(text, String(decoding: bytes, as: UTF8.self))
            if text.unicodeScalars.contains("\u{FFFD}") { replaced += 1 }
        }
        XCTAssertGreaterThan(replaced, 100)  // random bytes are rarely valid UTF-8
    }

    func testHalfACharacterDecodesToReplacement() throws {
        let tokenizer = try Fixtures.tokenizer()
        let ids = tokenizer.encode("é")  // 0xC3 0xA9
        let first = try XCTUnwrap(tokenizer.id(of: ByteEncoder.encode([0xC3])))
        let second = try XCTUnwrap(tokenizer.id(of: ByteEncoder.encode([0xA9])))
        XCTAssertEqual(try tokenizer.decodeBytes(ids), [0xC3, 0xA9])
        XCTAssertEqual(try tokenizer.decode([first]), "\u{FFFD}")
        XCTAssertEqual(try tokenizer.decode([second, first]), "\u{FFFD}\u{FFFD}")
        XCTAssertEqual(try tokenizer.decode([first, second]), "é")
    }

    func testConcurrentEncodingGivesTheSameIds() async throws {
        let tokenizer = try Fixtures.tokenizer()
        let texts = try Fixtures.json("encode_cases.json", as: Fixtures.EncodeCases.self).cases.map(\.text)
        let expected = texts.map { tokenizer.encode($0, allowSpecial: true) }
        let results = await withTaskGroup(of: [[Int32]].self) { group in
            for _ in 0..<8 {
                group.addTask { texts.map { tokenizer.encode($0, allowSpecial: true) } }
            }
            var all: [[[Int32]]] = []
            for await result in group { all.append(result) }
            return all
        }
        XCTAssertEqual(results.count, 8)
        for result in results { XCTAssertEqual(result, expected) }
    }

    func testByteEncoderTable() {
        XCTAssertEqual(Set(ByteEncoder.scalars).count, 256)
        XCTAssertEqual(ByteEncoder.scalars[0x21], "!")
        XCTAssertEqual(ByteEncoder.scalars[0x20], "\u{120}")  // Ġ
        XCTAssertEqual(ByteEncoder.scalars[0x0A], "\u{10A}")  // Ċ
        XCTAssertEqual(ByteEncoder.scalars[0x00], "\u{100}")
        XCTAssertEqual(ByteEncoder.scalars[0xAD], "\u{143}")  // soft hyphen, the last remapped byte
        XCTAssertEqual(ByteEncoder.scalars[0xFF], "ÿ")
        XCTAssertEqual(ByteEncoder.encode(Array(" hi\n".utf8)), "Ġhi\u{10A}")
        XCTAssertEqual(ByteEncoder.decode("Ġhi\u{10A}"), Array(" hi\n".utf8))
        XCTAssertNil(ByteEncoder.decode("a b"))  // a raw space is not a byte-level character
        XCTAssertEqual(ByteEncoder.bytesInScalarOrder.first, 0x21)
        XCTAssertEqual(ByteEncoder.bytesInScalarOrder.last, 0xAD)
    }
}
