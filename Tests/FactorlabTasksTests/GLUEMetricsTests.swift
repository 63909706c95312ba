import Foundation
import XCTest
@testable import FactorlabTasks

/// Metrics against scikit-learn / scipy values in task_metrics.json ("glue_metrics").
final class GLUEMetricsTests: XCTestCase {
    /// Same formulas, different summation order: a few ulps apart at most.
    let tolerance = 1e-12

    func testClassificationMetricsAgainstScikitLearn() throws {
        let cases = try Fixtures.section("glue_metrics")
        let names = ["binary_57", "binary_200", "binary_by_hand", "constant_predictions", "no_positive_predicted",
                     "three_class_90", "three_class_41"]
        for name in names {
            let c = try XCTUnwrap(cases[name] as? [String: Any], name)
            let refs = try ints(c["references"]), preds = try ints(c["predictions"])
            XCTAssertEqual(GLUEMetrics.accuracy(preds, refs), try XCTUnwrap(c["accuracy"] as? Double), accuracy: tolerance, name)
            XCTAssertEqual(GLUEMetrics.matthewsCorrelation(preds, refs),
                           try XCTUnwrap(c["matthews_correlation"] as? Double), accuracy: tolerance, name)
            if let f1 = c["f1"] as? Double {
                XCTAssertEqual(GLUEMetrics.f1(preds, refs), f1, accuracy: tolerance, name)
            }
        }
        // The hand-checkable case: tp 3, tn 2, fp 1, fn 2.
        let hand = try XCTUnwrap(cases["binary_by_hand"] as? [String: Any])
        XCTAssertEqual(hand["f1"] as? Double ?? 0, 6.0 / 9.0, accuracy: 1e-15)
        XCTAssertEqual(hand["matthews_correlation"] as? Double ?? 0, (6.0 - 2.0) / (4.0 * 5.0 * 3.0 * 4.0).squareRoot(),
                       accuracy: 1e-15)
    }

    func testComputeUsesGLUEKeys() throws {
        let cases = try Fixtures.section("glue_metrics")
        let c = try XCTUnwrap(cases["binary_57"] as? [String: Any])
        let refs = try ints(c["references"]), preds = try ints(c["predictions"])
        let cola = try GLUEMetrics.compute(task: .cola, predictions: preds, references: refs)
        XCTAssertEqual(Array(cola.keys), ["matthews_correlation"])
        XCTAssertEqual(cola["matthews_correlation"]!, c["matthews_correlation"] as! Double, accuracy: tolerance)
        for task in [GLUETask.mrpc, .qqp] {
            let m = try GLUEMetrics.compute(task: task, predictions: preds, references: refs)
            XCTAssertEqual(Set(m.keys), ["f1", "accuracy"])
            XCTAssertEqual(m["f1"]!, c["f1"] as! Double, accuracy: tolerance)
            XCTAssertEqual(m["accuracy"]!, c["accuracy"] as! Double, accuracy: tolerance)
        }
        for task in [GLUETask.sst2, .qnli, .rte, .wnli] {
            // 48/57 exactly rounded here; scikit-learn's float mean of the booleans is 1 ulp off.
            let m = try GLUEMetrics.compute(task: task, predictions: preds, references: refs)
            XCTAssertEqual(Array(m.keys), ["accuracy"])
            XCTAssertEqual(m["accuracy"]!, c["accuracy"] as! Double, accuracy: tolerance)
            XCTAssertEqual(m["accuracy"]!, 48.0 / 57.0)
        }
        let m = try XCTUnwrap(cases["three_class_90"] as? [String: Any])
        let mm = try XCTUnwrap(cases["three_class_41"] as? [String: Any])
        let mnli = try GLUEMetrics.computeMNLI(matched: (try ints(m["predictions"]), try ints(m["references"])),
                                              mismatched: (try ints(mm["predictions"]), try ints(mm["references"])))
        XCTAssertEqual(Set(mnli.keys), ["accuracy_matched", "accuracy_mismatched"])
        XCTAssertEqual(mnli["accuracy_matched"]!, m["accuracy"] as! Double, accuracy: tolerance)
        XCTAssertEqual(mnli["accuracy_mismatched"]!, mm["accuracy"] as! Double, accuracy: tolerance)
    }

    func testCorrelationsAgainstSciPy() throws {
        let cases = try Fixtures.section("glue_metrics")
        for name in ["stsb_64", "stsb_ties"] {
            let c = try XCTUnwrap(cases[name] as? [String: Any], name)
            let refs = try doubles(c["references"]), preds = try doubles(c["predictions"])
            XCTAssertEqual(GLUEMetrics.averageRanks(refs), try doubles(c["ranks_references"]), name)
            XCTAssertEqual(GLUEMetrics.averageRanks(preds), try doubles(c["ranks_predictions"]), name)
            let m = try GLUEMetrics.compute(task: .stsb, predictions: preds, references: refs)
            XCTAssertEqual(Set(m.keys), ["pearson", "spearmanr"])
            XCTAssertEqual(m["pearson"]!, try XCTUnwrap(c["pearson"] as? Double), accuracy: tolerance, name)
            XCTAssertEqual(m["spearmanr"]!, try XCTUnwrap(c["spearmanr"] as? Double), accuracy: tolerance, name)
        }
        XCTAssertEqual(GLUEMetrics.averageRanks([10, 20, 20, 5]), [2, 3.5, 3.5, 1])
        XCTAssertTrue(GLUEMetrics.pearson([1, 1, 1], [1, 2, 3]).isNaN)
    }

    func testMisuseIsReported() {
        assertThrows(GLUETaskError.self, "SST-2: 2 predictions for 3 references") {
            _ = try GLUEMetrics.compute(task: .sst2, predictions: [0, 1], references: [0, 1, 1])
        }
        assertThrows(GLUETaskError.self, "MNLI: prediction label 3 is outside 0..<3") {
            _ = try GLUEMetrics.compute(task: .mnli, predictions: [0, 3], references: [0, 1])
        }
        assertThrows(GLUETaskError.self, "STS-B is a regression task; pass scores as [Double]") {
            _ = try GLUEMetrics.compute(task: .stsb, predictions: [0], references: [0])
        }
        assertThrows(GLUETaskError.self, "CoLA is a classification task; pass class indices as [Int]") {
            _ = try GLUEMetrics.compute(task: .cola, predictions: [0.5], references: [1.0])
        }
        assertThrows(GLUETaskError.self, "RTE: no predictions") {
            _ = try GLUEMetrics.compute(task: .rte, predictions: [Int](), references: [])
        }
    }
}
