import FactorlabTasks
import Foundation
import XCTest

/// BLEU against the sacrebleu package (Tools/reference/make_metric_fixtures.py), and the file
/// scoring of `factorlab score`.
final class TextMetricTests: XCTestCase {
    func reference() throws -> [String: Any] {
        let data = try Data(contentsOf: try Fixtures.url("metrics-reference.json"))
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    func testTokenizer13aMatchesSacreBLEUExactly() throws {
        let cases = try XCTUnwrap(try reference()["tokenize13a"] as? [[String]])
        XCTAssertGreaterThanOrEqual(cases.count, 10)
        for c in cases { XCTAssertEqual(BLEU.tokenize13a(c[0]), c[1], "input \(c[0].debugDescription)") }
    }

    func testCorpusBLEUMatchesSacreBLEUTo1e9() throws {
        let corpora = try XCTUnwrap(try reference()["bleu"] as? [[String: Any]])
        XCTAssertGreaterThanOrEqual(corpora.count, 7)
        for c in corpora {
            let name = c["name"] as! String
            let b = BLEU.corpus(hypotheses: c["hypotheses"] as! [String], references: c["references"] as! [[String]])
            XCTAssertEqual(b.score, c["score"] as! Double, accuracy: 1e-9, name)
            XCTAssertEqual(b.brevityPenalty, c["brevity_penalty"] as! Double, accuracy: 1e-12, name)
            XCTAssertEqual(b.hypothesisLength, c["hypothesis_length"] as! Int, name)
            XCTAssertEqual(b.referenceLength, c["reference_length"] as! Int, name)
            for (mine, theirs) in zip(b.precisions, c["precisions"] as! [Double]) { XCTAssertEqual(mine, theirs, accuracy: 1e-9, name) }
        }
    }

    func testPorterStemmerMatchesNLTKOnEveryWord() throws {
        let cases = try XCTUnwrap(try reference()["porter"] as? [[String]])
        XCTAssertGreaterThan(cases.count, 1000)
        var wrong: [String] = []
        for c in cases where String(decoding: PorterStemmerProbe.stem(c[0]), as: UTF8.self) != c[1] { wrong.append("\(c[0]) -> \(c[1])") }
        XCTAssertEqual(wrong, [], "\(wrong.count) of \(cases.count) words differ from NLTK")
    }

    func testROUGEMatchesRougeScoreTo1e9() throws {
        let cases = try XCTUnwrap(try reference()["rouge"] as? [[Any]])
        XCTAssertGreaterThanOrEqual(cases.count, 9)
        for c in cases {
            let prediction = c[0] as! String, refs = c[1] as! [String]
            let s = ROUGE.score(prediction: prediction, references: refs)
            XCTAssertEqual(s.rouge1, c[2] as! Double, accuracy: 1e-9, prediction)
            XCTAssertEqual(s.rouge2, c[3] as! Double, accuracy: 1e-9, prediction)
            XCTAssertEqual(s.rougeL, c[4] as! Double, accuracy: 1e-9, prediction)
        }
    }

    func testScoringFilesAndTheirErrors() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("factorlab-score-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func file(_ name: String, _ text: String) throws -> URL {
            let url = dir.appendingPathComponent(name)
            try Data(text.utf8).write(to: url)
            return url
        }
        // CRLF line ends and a trailing newline; two reference sets.
        let hyp = try file("hyp.txt", "The Eiffel Tower\r\nin 1889\r\nParis.\n")
        let ref1 = try file("r1.txt", "the eiffel tower\n1887\nLondon\n")
        let ref2 = try file("r2.txt", "Eiffel tower\nin 1889\nparis\n")
        let (hyps, refs) = try ScoredLines.read(hypotheses: hyp, references: [ref1, ref2])
        XCTAssertEqual(hyps, ["The Eiffel Tower", "in 1889", "Paris."])
        let em = ScoredLines.score(.em, hypotheses: hyps, references: refs)
        XCTAssertEqual(em.perExample, [1, 1, 1], "normalized: case, articles, punctuation; any reference")
        XCTAssertEqual(em.score, 100)
        let f1 = ScoredLines.score(.coqaF1, hypotheses: hyps, references: refs)
        // Two references: each scored against the other one, averaged (the official CoQA rule).
        XCTAssertEqual(f1.perExample?[1] ?? -1, (1 + 0.0) / 2, accuracy: 1e-12)
        XCTAssertEqual(ScoredLines.score(.bleu, hypotheses: hyps, references: refs).score,
                       BLEU.corpus(hypotheses: hyps, references: refs).score)
        let short = try file("short.txt", "one line\n")
        XCTAssertThrowsError(try ScoredLines.read(hypotheses: hyp, references: [short])) {
            XCTAssertTrue("\($0)".contains("short.txt: has 1 lines, the hypotheses"), "\($0)")
        }
        let bad = dir.appendingPathComponent("bad.txt")
        try Data([0x6F, 0x6B, 0x0A, 0xFF, 0xFE, 0x0A]).write(to: bad)
        XCTAssertThrowsError(try ScoredLines.lines(of: bad)) { XCTAssertTrue("\($0)".contains("line 2 is not valid UTF-8"), "\($0)") }
        XCTAssertThrowsError(try ScoredLines.lines(of: dir.appendingPathComponent("missing.txt"))) {
            XCTAssertTrue("\($0)".contains("missing.txt: no such file"), "\($0)")
        }
    }
}
