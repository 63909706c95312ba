import Foundation
import XCTest
@testable import FactorlabTokenizer

/// Token ids, pre-tokens and trained merges compared with Hugging Face `tokenizers`
/// (Tools/reference/make_tokenizer_fixtures.py made the expected values).
final class ReferenceParityTests: XCTestCase {
    func testFixtureLoads() throws {
        let tokenizer = try Fixtures.tokenizer()
        XCTAssertEqual(tokenizer.vocabularySize, 2000)
        XCTAssertEqual(tokenizer.endOfTextID, 0)  // tokenizers puts special tokens first
        XCTAssertEqual(tokenizer.mergeCount, 1743)  // 2000 - 256 bytes - 1 special
        XCTAssertEqual(tokenizer.id(of: "Ġt"), 257)  // merges.txt line 2 is "Ġ t"
        XCTAssertEqual(tokenizer.token(for: 257), "Ġt")
    }

    func testEncodeMatchesHuggingFaceWithSpecialsAllowed() throws {
        let tokenizer = try Fixtures.tokenizer()
        let cases = try Fixtures.json("encode_cases.json", as: Fixtures.EncodeCases.self).cases
        XCTAssertGreaterThanOrEqual(cases.count, 20)
        for c in cases {
            XCTAssertEqual(tokenizer.encode(c.text, allowSpecial: true), c.ids_special, "text: \(c.text.debugDescription)")
        }
    }

    func testEncodeMatchesHuggingFaceWithSpecialsAsText() throws {
        let tokenizer = try Fixtures.tokenizer()
        let cases = try Fixtures.json("encode_cases.json", as: Fixtures.EncodeCases.self).cases
        var sawSpecial = false
        for c in cases {
            XCTAssertEqual(tokenizer.encode(c.text), c.ids_plain, "text: \(c.text.debugDescription)")
            XCTAssertFalse(tokenizer.encode(c.text).contains(0), "<|endoftext|> must not appear unless allowed")
            if c.text.contains("<|endoftext|>") {
                sawSpecial = true
                XCTAssertNotEqual(c.ids_plain, c.ids_special)
            }
        }
        XCTAssertTrue(sawSpecial)
    }

    func testDecodeReferenceIdsGivesTextBack() throws {
        let tokenizer = try Fixtures.tokenizer()
        for c in try Fixtures.json("encode_cases.json", as: Fixtures.EncodeCases.self).cases {
            XCTAssertEqual(try tokenizer.decode(c.ids_special), c.text)
            XCTAssertEqual(try tokenizer.decode(c.ids_plain), c.text)
        }
    }

    func testPreTokenizerMatchesHuggingFace() throws {
        let cases = try Fixtures.json("pretokenize_cases.json", as: Fixtures.PreTokenizeCases.self).cases
        XCTAssertGreaterThanOrEqual(cases.count, 300)
        for c in cases {
            XCTAssertEqual(PreTokenizer.split(c.text), c.pieces, "text: \(c.text.debugDescription) [\(scalars(c.text))]")
        }
    }

    /// Training on the same texts as the reference gives the same merges, in the same order, and the
    /// same vocabulary (Hugging Face puts `<|endoftext|>` at id 0, we put it last, as GPT-2 does).
    func testTrainingMatchesHuggingFaceTrainer() throws {
        let training = try Fixtures.json("training_texts.json", as: Fixtures.TrainingTexts.self)
        XCTAssertTrue(training.texts.contains { $0.hasPrefix("\u{FEFF}") && $0.contains("\r\n") },
                      "the corpus should include a BOM + CRLF file")
        let trained = try BPETokenizer.train(texts: training.texts, vocabularySize: training.vocabulary_size,
                                             specialTokens: training.special_tokens)
        let reference = try Fixtures.tokenizer()
        XCTAssertEqual(trained.vocabularySize, reference.vocabularySize)
        XCTAssertEqual(trained.endOfTextID, Int32(training.vocabulary_size - 1))
        XCTAssertEqual(trained.mergeCount, reference.mergeCount)

        let directory = try makeTemporaryDirectory(self)
        try trained.write(to: directory)
        let ours = try String(contentsOf: directory.appendingPathComponent("merges.txt"), encoding: .utf8)
        let theirs = try String(contentsOf: Fixtures.directory.appendingPathComponent("merges.txt"), encoding: .utf8)
        XCTAssertEqual(ours, theirs)
        for id in 0..<Int32(training.vocabulary_size - 1) {
            XCTAssertEqual(trained.token(for: id), reference.token(for: id + 1), "id \(id)")
        }
    }
}
