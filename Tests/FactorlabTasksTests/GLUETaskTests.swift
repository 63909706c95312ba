import XCTest
@testable import FactorlabTasks

final class GLUETaskTests: XCTestCase {
    func testNamesLabelsAndKinds() {
        XCTAssertEqual(GLUETask.allCases.map(\.name), ["CoLA", "SST-2", "MRPC", "STS-B", "QQP", "MNLI", "QNLI", "RTE", "WNLI"])
        XCTAssertEqual(GLUETask.mnli.labelNames, ["entailment", "neutral", "contradiction"])
        XCTAssertEqual(GLUETask.rte.labelNames, ["entailment", "not_entailment"])
        XCTAssertEqual(GLUETask.qnli.fileLabels, ["entailment", "not_entailment"])
        XCTAssertEqual(GLUETask.wnli.labelNames, ["not_entailment", "entailment"])
        XCTAssertEqual(GLUETask.wnli.fileLabels, ["0", "1"])
        XCTAssertEqual(GLUETask.cola.labelNames, ["unacceptable", "acceptable"])
        XCTAssertEqual(GLUETask.stsb.labelNames, [])
        XCTAssertEqual(GLUETask.allCases.map(\.outputCount), [2, 2, 2, 1, 2, 3, 2, 2, 2])
        XCTAssertEqual(GLUETask.allCases.filter(\.isPairTask), [.mrpc, .stsb, .qqp, .mnli, .qnli, .rte, .wnli])
        XCTAssertEqual(GLUETask.allCases.filter(\.isRegression), [.stsb])
        XCTAssertEqual(GLUETask.cola.metrics, [.matthewsCorrelation])
        XCTAssertEqual(GLUETask.mrpc.metrics.map(\.rawValue), ["f1", "accuracy"])
        XCTAssertEqual(GLUETask.qqp.metrics, [.f1, .accuracy])
        XCTAssertEqual(GLUETask.stsb.metrics.map(\.rawValue), ["pearson", "spearmanr"])
        XCTAssertEqual(GLUETask.sst2.metrics, [.accuracy])
    }

    func testFileNames() throws {
        XCTAssertEqual(try GLUETask.cola.fileName(.train), "CoLA/train.tsv")
        XCTAssertEqual(try GLUETask.sst2.fileName(.test), "SST-2/test.tsv")
        XCTAssertEqual(try GLUETask.mnli.fileName(.dev), "MNLI/dev_matched.tsv")
        XCTAssertEqual(try GLUETask.mnli.fileName(.devMismatched), "MNLI/dev_mismatched.tsv")
        XCTAssertEqual(try GLUETask.mnli.fileName(.test), "MNLI/test_matched.tsv")
        XCTAssertEqual(try GLUETask.mnli.fileName(.testMismatched), "MNLI/test_mismatched.tsv")
        XCTAssertEqual(try GLUETask.stsb.fileName(.dev), "STS-B/dev.tsv")
        assertThrows(GLUETaskError.self, "RTE has no dev_mismatched split; its splits are train, dev, test") {
            _ = try GLUETask.rte.fileName(.devMismatched)
        }
        XCTAssertEqual(try GLUETask.sst2.submissionFileName(), "SST-2.tsv")
        XCTAssertEqual(try GLUETask.stsb.submissionFileName(), "STS-B.tsv")
        XCTAssertEqual(try GLUETask.mnli.submissionFileName(.test), "MNLI-m.tsv")
        XCTAssertEqual(try GLUETask.mnli.submissionFileName(.testMismatched), "MNLI-mm.tsv")
        assertThrows(GLUETaskError.self, "submission files are for test splits; CoLA dev is not one") {
            _ = try GLUETask.cola.submissionFileName(.dev)
        }
    }

    func testParsingNames() throws {
        for name in ["sst2", "sst-2", "SST-2", "SST_2", "sst"] { XCTAssertEqual(try GLUETask(parsing: name), .sst2, name) }
        for name in ["stsb", "STS-B", "sts_b"] { XCTAssertEqual(try GLUETask(parsing: name), .stsb, name) }
        XCTAssertEqual(try GLUETask(parsing: "CoLA"), .cola)
        XCTAssertEqual(try GLUETask(parsing: "mnli-mm"), .mnli)
        XCTAssertEqual(try GLUETask.parseWithSplit("mnli-mm").devSplit, .devMismatched)
        XCTAssertEqual(try GLUETask.parseWithSplit("MNLI_mismatched").devSplit, .devMismatched)
        XCTAssertEqual(try GLUETask.parseWithSplit("mnli-m").devSplit, .dev)
        XCTAssertEqual(try GLUETask.parseWithSplit("qqp").task, .qqp)
        for task in GLUETask.allCases {
            XCTAssertEqual(try GLUETask(parsing: task.name), task)
            XCTAssertEqual(try GLUETask(parsing: task.rawValue), task)
        }
        assertThrows(GLUETaskError.self,
                     "unknown GLUE task \"squad\"; valid names: cola, sst2, mrpc, stsb, qqp, mnli (or mnli-m, mnli-mm), "
                     + "qnli, rte, wnli (case, '-' and '_' are ignored)") { _ = try GLUETask(parsing: "squad") }
    }
}
