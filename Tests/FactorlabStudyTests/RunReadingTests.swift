import Foundation
import XCTest
@testable import FactorlabStudy

final class RunReadingTests: XCTestCase {
    func testLoadsAFixtureRun() throws {
        let run = try StudyRun.load(from: Fixtures.runsRoot.appendingPathComponent("dense-4L-128d-s0"))
        XCTAssertEqual(run.config.name, "dense-4L-128d-s0")
        XCTAssertEqual(run.config.family, "dense")
        XCTAssertEqual(run.config.model, ModelShape(nLayer: 4, nEmbd: 128, nHead: 2, nPositions: 256, vocabSize: 50257, mlp: "dense"))
        XCTAssertEqual(run.config.parameters, 7_254_400)
        XCTAssertEqual(run.config.nonEmbeddingParameters, 788_736)
        XCTAssertEqual(run.config.flopsPerToken, 44_116_224)  // 6 * (788,736 + 50,257 * 128) + 6 * 4 * 256 * 128
        XCTAssertEqual(run.config.seed, 0)
        XCTAssertNil(run.config.arm)
        XCTAssertEqual(run.config.inference, InferenceCost(latencyMsPerToken: 1.6353, peakMemoryBytes: 79_017_600))
        XCTAssertEqual(run.metrics.count, 40)
        XCTAssertEqual(run.validationPoints.count, 20)
        XCTAssertEqual(run.metrics[1].step, 1640)
        XCTAssertEqual(run.metrics[1].tokens, 1640 * 2048)
        XCTAssertEqual(run.metrics[1].valLoss, 4.644386280640988)
        XCTAssertEqual(run.metrics[1].flops, 44_116_224 * 1640 * 2048)
        XCTAssertEqual(run.metrics[1].wallSeconds, 7410.013812774609)
        XCTAssertNil(run.metrics[0].valLoss)
        XCTAssertEqual(run.summary?.steps, 32800)
        XCTAssertEqual(run.summary?.bestValLoss, run.validationPoints.compactMap(\.valLoss).min())
        XCTAssertEqual(run.bestValLoss, run.summary?.bestValLoss)
        XCTAssertEqual(run.peakMemoryBytes, 79_017_600, "inference memory wins over the summary's training peak")
        XCTAssertTrue(run.notes.isEmpty)
    }

    func testDiscoverExpandsAFolderOfRunsInNameOrder() throws {
        let dirs = try StudyRun.discover([Fixtures.runsRoot])
        XCTAssertEqual(dirs.count, try Int(double(Fixtures.expected()["run_count"])))
        XCTAssertEqual(dirs.count, 18)
        XCTAssertEqual(dirs.first?.lastPathComponent, "dense-4L-128d-noval")
        XCTAssertEqual(dirs.last?.lastPathComponent, "monarch4-4L-384d-s1")
        // A run directory itself is taken as is.
        let one = try Fixtures.runsRoot.appendingPathComponent("monarch4-4L-256d-s0")
        XCTAssertEqual(try StudyRun.discover([one]), [one])
    }

    // MARK: errors

    let goodRun = """
        {"name": "r", "family": "dense", "model": {"n_layer": 2, "n_embd": 64, "n_head": 1, "n_positions": 128,
         "vocab_size": 50257, "mlp": "dense"}, "parameters": 100, "non_embedding_parameters": 50,
         "flops_per_token": 600, "seed": 0}
        """

    func line(step: Int, val: String = "3.5") -> String {
        "{\"step\": \(step), \"tokens\": \(step * 10), \"train_loss\": 3.4, \"val_loss\": \(val), \"lr\": 0.001, "
            + "\"grad_norm\": 1.0, \"tokens_per_s\": 100.0, \"wall_s\": \(step).0, \"flops\": \(step * 6000).0}"
    }

    func writeRun(runJSON: String? = nil, metrics: String?) throws -> URL {
        let dir = try temporaryDirectory(self).appendingPathComponent("run")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try Data((runJSON ?? goodRun).utf8).write(to: dir.appendingPathComponent("run.json"))
        if let metrics { try Data(metrics.utf8).write(to: dir.appendingPathComponent("metrics.jsonl")) }
        return dir
    }

    /// The trainer's first record (step 0) has only a validation loss: no training loss, gradient
    /// norm or throughput yet.
    func testTheTrainersStepZeroRecordLoads() throws {
        let first = #"{"flops":0,"lr":0.0001,"step":0,"tokens":0,"val_loss":9.05,"wall_s":0}"#
        let dir = try writeRun(metrics: [first, line(step: 1)].joined(separator: "\n") + "\n")
        let run = try StudyRun.load(from: dir)
        XCTAssertEqual(run.metrics.first?.valLoss, 9.05)
        XCTAssertNil(run.metrics.first?.trainLoss)
        XCTAssertNil(run.metrics.first?.tokensPerSecond)
        XCTAssertEqual(run.metrics.count, 2)
    }

    func testMalformedMetricsLineNamesFileAndLine() throws {
        let dir = try writeRun(metrics: [line(step: 1), line(step: 2), "{\"step\": 3, \"tokens\": ", line(step: 4)].joined(separator: "\n") + "\n")
        let file = dir.appendingPathComponent("metrics.jsonl").path
        assertStudyError("\(file) line 3: not valid JSON (starts \"{\"step\": 3, \"tokens\": \"); each record must be one JSON object",
                         kind: .invalidJSON) { _ = try StudyRun.load(from: dir) }
    }

    func testWrongTypeNamesFileLineAndKey() throws {
        let dir = try writeRun(metrics: [line(step: 1), line(step: 2, val: "\"nan\"")].joined(separator: "\n") + "\n")
        let file = dir.appendingPathComponent("metrics.jsonl").path
        assertStudyError("\(file) line 2 key \"val_loss\": expected a number, found string \"nan\"", kind: .wrongType) {
            _ = try StudyRun.load(from: dir)
        }
        let negative = try writeRun(metrics: line(step: 1, val: "-1.0") + "\n")
        assertStudyError("\(negative.appendingPathComponent("metrics.jsonl").path) line 1 key \"val_loss\": must be positive, found -1.0",
                         kind: .invalidValue) { _ = try StudyRun.load(from: negative) }
    }

    func testMissingKeysInRunJSONNameTheNestedKey() throws {
        let noWidth = goodRun.replacingOccurrences(of: "\"n_embd\": 64, ", with: "")
        let dir = try writeRun(runJSON: noWidth, metrics: line(step: 1) + "\n")
        assertStudyError("\(dir.appendingPathComponent("run.json").path) key \"model.n_embd\": missing (expected an integer)",
                         kind: .missingKey) { _ = try StudyRun.load(from: dir) }
        let fractionalSeed = goodRun.replacingOccurrences(of: "\"seed\": 0", with: "\"seed\": 1.5")
        let dir2 = try writeRun(runJSON: fractionalSeed, metrics: line(step: 1) + "\n")
        assertStudyError("\(dir2.appendingPathComponent("run.json").path) key \"seed\": expected an integer, found 1.5",
                         kind: .wrongType) { _ = try StudyRun.load(from: dir2) }
    }

    func testMissingMetricsFileAndMissingDirectory() throws {
        let dir = try writeRun(metrics: nil)
        assertStudyError("\(dir.appendingPathComponent("metrics.jsonl").path): missing; every run directory needs run.json and metrics.jsonl",
                         kind: .missingFile) { _ = try StudyRun.load(from: dir) }
        let nowhere = URL(fileURLWithPath: "/nonexistent/runs")
        assertStudyError("/nonexistent/runs: no such directory; pass run directories (holding run.json) or a folder of them",
                         kind: .missingFile) { _ = try StudyRun.discover([nowhere]) }
    }

    func testTruncatedLastLineIsIgnoredWithANoteAndRepeatedStepsKeepTheLaterLine() throws {
        let dir = try writeRun(metrics: [line(step: 1), line(step: 2, val: "3.9"), line(step: 2, val: "3.3"), "{\"step\": 3, \"tok"]
            .joined(separator: "\n"))
        let run = try StudyRun.load(from: dir)
        XCTAssertEqual(run.metrics.map(\.step), [1, 2])
        XCTAssertEqual(run.metrics[1].valLoss, 3.3)
        XCTAssertEqual(run.notes, ["metrics.jsonl line 3 repeats step 2; the later line is used",
                                   "metrics.jsonl line 4 is incomplete (no newline, not valid JSON) and was ignored"])
        XCTAssertNil(run.summary)
    }
}
