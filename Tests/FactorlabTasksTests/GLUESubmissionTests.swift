import Foundation
import XCTest
@testable import FactorlabTasks

final class GLUESubmissionTests: XCTestCase {
    func testClassificationFileText() throws {
        let test = try GLUEDataset(task: .sst2, split: .test, root: Fixtures.glueRoot)
        XCTAssertEqual(try GLUESubmission.text(task: .sst2, ids: test.examples.map(\.id), labels: [0, 1, 1]),
                       "index\tprediction\n0\t0\n1\t1\n2\t1\n")
        XCTAssertEqual(try GLUESubmission.text(task: .mnli, ids: ["0", "1", "2"], labels: [2, 0, 1]),
                       "index\tprediction\n0\tcontradiction\n1\tentailment\n2\tneutral\n")
        XCTAssertEqual(try GLUESubmission.text(task: .rte, ids: ["0", "1"], labels: [1, 0]),
                       "index\tprediction\n0\tnot_entailment\n1\tentailment\n")
        XCTAssertEqual(try GLUESubmission.text(task: .wnli, ids: ["0"], labels: [1]), "index\tprediction\n0\t1\n")
    }

    func testRegressionFileText() throws {
        XCTAssertEqual(try GLUESubmission.text(task: .stsb, ids: ["0", "1", "2"], scores: [4.2, 0.12345, 5]),
                       "index\tprediction\n0\t4.200\n1\t0.123\n2\t5.000\n")
        assertThrows(GLUETaskError.self, "STS-B: predicted score nan for row 1 is not finite") {
            _ = try GLUESubmission.text(task: .stsb, ids: ["0", "1"], scores: [1, .nan])
        }
    }

    func testMisuse() {
        assertThrows(GLUETaskError.self, "QQP: 1 predictions for 2 test rows") {
            _ = try GLUESubmission.text(task: .qqp, ids: ["0", "1"], labels: [1])
        }
        assertThrows(GLUETaskError.self, "CoLA: predicted label 2 for row 7 is outside 0..<2") {
            _ = try GLUESubmission.text(task: .cola, ids: ["7"], labels: [2])
        }
    }

    func testWritesServerFileNames() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("glue-submission-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let m = try GLUEDataset(task: .mnli, split: .test, root: Fixtures.glueRoot)
        let mm = try GLUEDataset(task: .mnli, split: .testMismatched, root: Fixtures.glueRoot)
        let mURL = try GLUESubmission.write(task: .mnli, split: .test, examples: m.examples, labels: [0], to: dir)
        let mmURL = try GLUESubmission.write(task: .mnli, split: .testMismatched, examples: mm.examples, labels: [1, 2], to: dir)
        let sts = try GLUEDataset(task: .stsb, split: .test, root: Fixtures.glueRoot)
        let stsURL = try GLUESubmission.write(task: .stsb, examples: sts.examples, scores: [3.25, 4], to: dir)
        XCTAssertEqual([mURL, mmURL, stsURL].map(\.lastPathComponent), ["MNLI-m.tsv", "MNLI-mm.tsv", "STS-B.tsv"])
        XCTAssertEqual(try String(contentsOf: mURL, encoding: .utf8), "index\tprediction\n0\tentailment\n")
        XCTAssertEqual(try String(contentsOf: mmURL, encoding: .utf8), "index\tprediction\n0\tneutral\n1\tcontradiction\n")
        XCTAssertEqual(try String(contentsOf: stsURL, encoding: .utf8), "index\tprediction\n0\t3.250\n1\t4.000\n")
    }
}
