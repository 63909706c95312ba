import XCTest
@testable import FactorlabTokenizer

/// Hand-checked splits of GPT-2's pre-tokenisation regex.
final class PreTokenizerTests: XCTestCase {
    func testWordsAttachTheirLeadingSpace() {
        XCTAssertEqual(PreTokenizer.split("Hello world"), ["Hello", " world"])
        XCTAssertEqual(PreTokenizer.split("Hello, world!"), ["Hello", ",", " world", "!"])
    }

    func testContractionsAreLowerCaseOnly() {
        XCTAssertEqual(PreTokenizer.split("I'm sure he'll go, they're here, it's"),
                       ["I", "'m", " sure", " he", "'ll", " go", ",", " they", "'re", " here", ",", " it", "'s"])
        XCTAssertEqual(PreTokenizer.split("don't we've she'd"), ["don", "'t", " we", "'ve", " she", "'d"])
        XCTAssertEqual(PreTokenizer.split("IT'S THEY'RE"), ["IT", "'", "S", " THEY", "'", "RE"])
        XCTAssertEqual(PreTokenizer.split("'sup"), ["'s", "up"])  // the contraction wins, then the rest
        XCTAssertEqual(PreTokenizer.split(" 's"), [" '", "s"])   // a space cannot start a contraction
    }

    func testLastSpaceOfARunGoesToTheNextWord() {
        XCTAssertEqual(PreTokenizer.split("a   b"), ["a", "  ", " b"])
        XCTAssertEqual(PreTokenizer.split("  two"), [" ", " two"])
        XCTAssertEqual(PreTokenizer.split("a\t\tb"), ["a", "\t", "\t", "b"])  // only U+0020 attaches
        XCTAssertEqual(PreTokenizer.split("x\n\ny"), ["x", "\n", "\n", "y"])
        XCTAssertEqual(PreTokenizer.split("x \n y"), ["x", " \n", " y"])
    }

    func testTrailingWhitespaceIsOnePiece() {
        XCTAssertEqual(PreTokenizer.split("end   "), ["end", "   "])
        XCTAssertEqual(PreTokenizer.split("end\r\n"), ["end", "\r\n"])
        XCTAssertEqual(PreTokenizer.split("   "), ["   "])
    }

    func testNumbersPunctuationAndScripts() {
        XCTAssertEqual(PreTokenizer.split("in 1999, 3.14!!!"), ["in", " 1999", ",", " 3", ".", "14", "!!!"])
        XCTAssertEqual(PreTokenizer.split("abc123"), ["abc", "123"])
        XCTAssertEqual(PreTokenizer.split("Café naïve"), ["Café", " naïve"])
        XCTAssertEqual(PreTokenizer.split("中文，日本"), ["中文", "，", "日本"])
        XCTAssertEqual(PreTokenizer.split("hi 😀😀!"), ["hi", " 😀😀!"])
        XCTAssertEqual(PreTokenizer.split("x\u{00A0}y"), ["x", "\u{00A0}", "y"])  // NBSP is whitespace
    }

    func testEmptyAndJoinedPiecesGiveTheTextBack() {
        XCTAssertEqual(PreTokenizer.split(""), [])
        let text = "It's 12:30 —   time\tto go!\r\n\n  Ελληνικά 中文 🏳️‍🌈  "
        XCTAssertEqual(PreTokenizer.split(text).joined(), text)
    }
}
