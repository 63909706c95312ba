import FactorlabRecords
import Foundation
import XCTest

final class RecordTests: XCTestCase {
    func roundTrip<T: Codable & Equatable>(_ value: T, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        let data = try RecordFiles.encode(value, pretty: false)
        XCTAssertEqual(try RecordDecoder.decode(T.self, from: data), value, file: file, line: line)
        XCTAssertEqual(try JSONDecoder().decode(T.self, from: data), value, "Foundation's decoder reads it too", file: file, line: line)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// Every record written by one side is read back unchanged, under the documented keys.
    func testRecordsRoundTripUnderTheirDocumentedKeys() throws {
        var run = RunDescription(name: "r", family: "monarch:4", model: ModelShape(nLayer: 2, nEmbd: 64, nHead: 2, nPositions: 128,
                                                                                      vocabSize: 512, mlp: "monarch:4"),
                                 parameters: 1000, nonEmbeddingParameters: 500, flopsPerToken: 6000, seed: 3, arm: "scratch",
                                 inference: InferenceRecord(latencyMsPerToken: 1.5, peakMemoryBytes: 1 << 20, prefixTokens: 64,
                                                            forwardTokensPerSecond: 900, forwardBatch: 8, parameters: 1000,
                                                            weightBytes: 4000, weightPrecision: "float32"))
        run.formatVersion = runRecordsFormatVersion
        run.batchSize = 4
        let runJSON = try roundTrip(run)
        XCTAssertEqual(runJSON["non_embedding_parameters"] as? Int, 500)
        XCTAssertEqual((runJSON["model"] as? [String: Any])?["n_embd"] as? Int, 64)
        XCTAssertEqual((runJSON["inference"] as? [String: Any])?["latency_ms_per_token"] as? Double, 1.5)
        XCTAssertEqual(runJSON["format_version"] as? Int, runRecordsFormatVersion)
        XCTAssertNil(runJSON["init_flops"], "absent optionals are not written")

        let row = MetricsRow(step: 3, tokens: 30, trainLoss: 2.5, valLoss: 2.75, lr: 1e-3, gradNorm: 0.5, tokensPerSecond: 100,
                             wallSeconds: 1.25, flops: 6e4)
        let rowJSON = try roundTrip(row)
        XCTAssertEqual(Set(rowJSON.keys), ["step", "tokens", "train_loss", "val_loss", "lr", "grad_norm", "tokens_per_s", "wall_s", "flops"])
        XCTAssertEqual(row.csvCells.count, MetricsRow.csvColumns.count)

        let summary = RunSummary(finalValLoss: 3, bestValLoss: 2.9, finalTrainLoss: 3.1, steps: 10, tokens: 100, wallSeconds: 2,
                                 flops: 1e6, peakMemoryBytes: 42, sample: "hi", ranks: 2)
        XCTAssertEqual(try roundTrip(summary)["best_val_loss"] as? Double, 2.9)

        let finetune = FinetuneRow(epoch: 1, step: 8, trainLoss: 0.5, dev: ["accuracy": 0.75, "loss_matched": 0.6])
        let ftJSON = try roundTrip(finetune)
        XCTAssertEqual(ftJSON["dev_accuracy"] as? Double, 0.75, "dev metrics are flattened to dev_<name>")
        XCTAssertEqual(ftJSON["dev_loss_matched"] as? Double, 0.6)
    }

    /// Decoding errors name the key (with its parents) and say what was expected and found.
    func testDecodingErrorsNameTheKeyAndTheExpectation() throws {
        func error<T: Decodable>(_ type: T.Type, _ json: String) -> RecordError? {
            do { _ = try RecordDecoder.decode(type, from: Data(json.utf8)); return nil } catch { return error as? RecordError }
        }
        let shape = #""model": {"n_layer": 2, "n_head": 1, "n_positions": 8, "vocab_size": 8, "mlp": "dense"}"#
        let missing = error(RunDescription.self, #"{"name": "r", "family": "dense", \#(shape), "parameters": 1, "non_embedding_parameters": 1, "flops_per_token": 6, "seed": 0}"#)
        XCTAssertEqual(missing, RecordError(.missingKey, key: "model.n_embd", "missing (expected an integer)"))
        let fractional = error(MetricsRow.self, #"{"step": 1.5, "tokens": 1, "lr": 0.1, "wall_s": 0, "flops": 0}"#)
        XCTAssertEqual(fractional, RecordError(.wrongType, key: "step", "expected an integer, found 1.5"))
        let text = error(MetricsRow.self, #"{"step": 1, "tokens": 1, "lr": "fast", "wall_s": 0, "flops": 0}"#)
        XCTAssertEqual(text, RecordError(.wrongType, key: "lr", "expected a number, found string \"fast\""))
        XCTAssertEqual(error(MetricsRow.self, "[1, 2]")?.kind, .invalidJSON)
        XCTAssertEqual(error(MetricsRow.self, "{\"step\": ")?.kind, .invalidJSON)
    }

    /// NaN or infinity cannot be written as JSON: encoding says so instead of producing `{}`.
    func testNonFiniteValuesAreAnEncodingError() {
        let row = MetricsRow(step: 1, tokens: 1, trainLoss: .nan, lr: 0.1, wallSeconds: 0, flops: 0)
        XCTAssertThrowsError(try RecordFiles.encode(row, pretty: false)) { e in
            XCTAssertTrue("\(e)".contains("NaN or infinite"), "\(e)")
        }
    }

    func testFinetuneResultTextLinesAreSortedAndFormatted() {
        var r = FinetuneResult(task: "SST-2", model: "m.h5")
        r.steps = 12
        r.bestDev = ["accuracy": 0.5, "loss": 0.69314]
        XCTAssertEqual(r.textLines, ["best_dev:           accuracy 0.5000, loss 0.6931", "model:              m.h5",
                                     "steps:              12", "task:               SST-2"])
    }
}
