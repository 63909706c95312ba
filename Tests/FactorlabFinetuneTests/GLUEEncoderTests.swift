@testable import FactorlabFinetune
import XCTest

final class GLUEEncoderTests: XCTestCase {
    let codec = CharCodec("abcdefghijklmnopqrstuvwxyz \n")  // a=0 ... z=25, space 26, newline 27, eot 28

    func testSingleSentenceIsItsTokensCutFromTheEnd() throws {
        let enc = try GLUEEncoder(codec: codec, maxLength: 4)
        XCTAssertEqual(enc.encode(textA: "abc", textB: nil), [0, 1, 2])
        XCTAssertEqual(enc.encode(textA: "abcdefg", textB: nil), [0, 1, 2, 3])
        XCTAssertEqual(enc.padID, 28)
        XCTAssertEqual(enc.separator, [27])
    }

    func testPairIsJoinedByANewlineAndTheLongerTextIsCutFirst() throws {
        let enc = try GLUEEncoder(codec: codec, maxLength: 6)  // 5 text tokens + separator
        // 6 + 2 tokens: only the first text loses tokens (abcdef -> abc).
        XCTAssertEqual(enc.encode(textA: "abcdef", textB: "xy"), [0, 1, 2, 27, 23, 24])
        // 2 + 6: only the second.
        XCTAssertEqual(enc.encode(textA: "xy", textB: "abcdef"), [23, 24, 27, 0, 1, 2])
        // 4 + 4: ties cut the second text: (4,3) (3,3) (3,2).
        XCTAssertEqual(enc.encode(textA: "abcd", textB: "wxyz"), [0, 1, 2, 27, 22, 23])
        // Fits: untouched.
        XCTAssertEqual(enc.encode(textA: "ab", textB: "cd"), [0, 1, 27, 2, 3])
    }

    func testLongestFirstMatchesHuggingFaceOnUnevenLengths() {
        // transformers' longest_first, one token at a time: (7, 3) to budget 6 -> (3, 3); (5, 4) -> (3, 3).
        let (a, b) = GLUEEncoder.truncateLongestFirst(Array(0..<7), Array(10..<13), budget: 6)
        XCTAssertEqual(a, [0, 1, 2]); XCTAssertEqual(b, [10, 11, 12])
        let (c, d) = GLUEEncoder.truncateLongestFirst(Array(0..<5), Array(10..<14), budget: 6)
        XCTAssertEqual(c, [0, 1, 2]); XCTAssertEqual(d, [10, 11, 12])
    }

    func testBatchesArePaddedOnTheRightToTheLongestRow() {
        let (ids, t) = GLUEEncoder.pad([[1, 2, 3], [4], [5, 6]], with: 9)
        XCTAssertEqual(t, 3)
        XCTAssertEqual(ids, [1, 2, 3, 4, 9, 9, 5, 6, 9])
    }

    func testTooShortMaxLengthIsAnError() {
        XCTAssertThrowsError(try GLUEEncoder(codec: codec, maxLength: 2)) { error in
            XCTAssertTrue("\(error)".contains("max_length 2 is too short"), "\(error)")
        }
    }
}
