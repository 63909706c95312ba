import Foundation
import FactorlabTestSupport
import XCTest
@testable import FactorlabTokenizer

/// The reference files made by Tools/reference/make_tokenizer_fixtures.py (Hugging Face `tokenizers`).
enum Fixtures {
    static var directory: URL {
        get throws {
            guard let url = Bundle.module.url(forResource: "Fixtures", withExtension: nil) else {
                throw TokenizerError(.fileUnreadable, "Fixtures folder missing from the test bundle; "
                                        + "HINT: re-run `python3 Tools/reference/make_tokenizer_fixtures.py`")
            }
            return url
        }
    }

    static func json<T: Decodable>(_ name: String, as type: T.Type) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(contentsOf: directory.appendingPathComponent(name)))
    }

    static func tokenizer() throws -> BPETokenizer { try BPETokenizer(directory: directory) }

    struct EncodeCases: Decodable {
        struct Case: Decodable {
            let text: String
            let ids_special: [Int32]
            let ids_plain: [Int32]
        }
        let cases: [Case]
    }

    struct PreTokenizeCases: Decodable {
        struct Case: Decodable {
            let text: String
            let pieces: [String]
        }
        let cases: [Case]
    }

    struct TrainingTexts: Decodable {
        let vocabulary_size: Int
        let special_tokens: [String]
        let texts: [String]
    }
}

/// A fresh empty folder under the temporary directory, removed by the test's teardown.
func makeTemporaryDirectory(_ testCase: XCTestCase) throws -> URL { try temporaryFolder("tokenizer", removedAfter: testCase) }

/// Unicode scalars as `U+XXXX` for readable failure messages.
func scalars(_ text: String) -> String {
    text.unicodeScalars.map { String(format: "U+%04X", $0.value) }.joined(separator: " ")
}
