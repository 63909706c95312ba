import Foundation
import XCTest
@testable import FactorlabTokenizer

/// Training writes files that reload, round-trip and are reproducible.
final class TrainingTests: XCTestCase {
    private func corpus() throws -> [String] {
        try Fixtures.json("training_texts.json", as: Fixtures.TrainingTexts.self).texts
    }

    func testTrainedVocabularyReloadsAndRoundTrips() throws {
        let texts = try corpus()
        let trained = try BPETokenizer.train(texts: texts, vocabularySize: 600)
        XCTAssertEqual(trained.vocabularySize, 600)
        XCTAssertEqual(trained.mergeCount, 600 - 256 - 1)
        XCTAssertEqual(trained.endOfTextID, 599)
        XCTAssertEqual(trained.token(for: 0), "!")
        XCTAssertEqual(trained.token(for: 256), "Ġt")  // the most frequent pair in English prose

        let directory = try makeTemporaryDirectory(self)
        try trained.write(to: directory)
        let merges = try String(contentsOf: directory.appendingPathComponent("merges.txt"), encoding: .utf8)
        XCTAssertTrue(merges.hasPrefix("#version: 0.2\nĠ t\n"))
        let reloaded = try BPETokenizer(directory: directory)
        XCTAssertEqual(reloaded.vocabularySize, 600)
        XCTAssertEqual(reloaded.endOfTextID, 599)

        let sample = String(texts[0].prefix(5_000)) + "<|endoftext|>" + String(texts[3].prefix(5_000))
        let ids = trained.encode(sample, allowSpecial: true)
        XCTAssertEqual(reloaded.encode(sample, allowSpecial: true), ids)
        XCTAssertEqual(try reloaded.decode(ids), sample)
        XCTAssertEqual(ids.filter { $0 == 599 }.count, 1)
        XCTAssertLessThan(ids.count, sample.utf8.count / 2)  // merges compress: < 0.5 tokens per byte
    }

    func testTrainingIsDeterministic() throws {
        let texts = try corpus().map { String($0.prefix(20_000)) }
        let first = try makeTemporaryDirectory(self), second = try makeTemporaryDirectory(self)
        try BPETokenizer.train(texts: texts, vocabularySize: 500).write(to: first)
        try BPETokenizer.train(texts: texts, vocabularySize: 500).write(to: second)
        for name in ["vocab.json", "merges.txt"] {
            let a = try Data(contentsOf: first.appendingPathComponent(name))
            let b = try Data(contentsOf: second.appendingPathComponent(name))
            XCTAssertEqual(a, b, name)
            XCTAssertGreaterThan(a.count, 1_000)
        }
    }

    func testTrainingFromFilesDropsTheByteOrderMark() throws {
        let directory = try makeTemporaryDirectory(self)
        let file = directory.appendingPathComponent("doc.txt")
        try Data("\u{FEFF}the cat the cat the hat\r\n".utf8).write(to: file)
        let fromFile = try BPETokenizer.train(files: [file], vocabularySize: 262)
        let fromText = try BPETokenizer.train(texts: ["the cat the cat the hat\r\n"], vocabularySize: 262)
        XCTAssertEqual(fromFile.mergeCount, 5)
        for id in 0..<Int32(262) { XCTAssertEqual(fromFile.token(for: id), fromText.token(for: id)) }
        // " the"×2 + "the": pairs (t,h) and (h,e) occur 3 times; ties go to the smaller ids.
        XCTAssertEqual(fromText.token(for: 256), "at")
    }

    func testSpecialTokensInTrainingTextAreNotLearned() throws {
        let text = Array(repeating: "ab<|endoftext|>", count: 50).joined()
        let trained = try BPETokenizer.train(texts: [text], vocabularySize: 300)
        XCTAssertEqual(trained.mergeCount, 1)  // only "ab"; "<|" etc. never occur
        XCTAssertEqual(trained.token(for: 256), "ab")
        XCTAssertEqual(trained.vocabularySize, 258)  // stops when no pair is left
        XCTAssertEqual(trained.encode(text, allowSpecial: true).count, 100)
    }
}
