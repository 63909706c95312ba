import FactorlabGPT2
import FactorlabRecords
import FactorlabTraining
import XCTest

final class InferenceMeasurementTests: XCTestCase {
    /// The record is filled from a real measurement of the model: its own parameter count and
    /// bytes, a prefix that fits the context, positive latency, throughput and memory.
    func testMeasurementFillsTheRecord() throws {
        let model = try GPT2Model(GPT2Config(nLayer: 2, nHead: 2, nEmbd: 32, nPositions: 48, vocabSize: 64), seed: 1)
        var options = InferenceMeasurement.Options()
        options.generatedTokens = 8
        options.forwardBatch = 2
        let r = try InferenceMeasurement.measure(model, options: options)
        XCTAssertEqual(r.prefixTokens, 24, "the 64-token prefix is capped at half the 48-position context")
        XCTAssertEqual(r.parameters, model.parameterCount)
        XCTAssertEqual(r.weightBytes, 4 * model.parameterCount)
        XCTAssertEqual(r.forwardBatch, 2)
        XCTAssertEqual(r.weightPrecision, "float32")
        XCTAssertGreaterThan(r.latencyMsPerToken, 0)
        XCTAssertLessThan(r.latencyMsPerToken, 1000)
        XCTAssertGreaterThan(try XCTUnwrap(r.forwardTokensPerSecond), 0)
        XCTAssertGreaterThan(r.peakMemoryBytes, 1 << 20, "a process holds more than a MiB")
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(r.generationMemoryBytes), 4 * model.parameterCount, "generation needs at least its weights")
        // It round-trips as part of run.json.
        var d = RunDescription(name: "r", family: "dense", model: ModelShape(nLayer: 2, nEmbd: 32, nHead: 2, nPositions: 48, vocabSize: 64, mlp: "dense"),
                               parameters: model.parameterCount, nonEmbeddingParameters: 1, flopsPerToken: 6, seed: 0)
        d.inference = r
        XCTAssertEqual(try RecordDecoder.decode(RunDescription.self, from: try RecordFiles.encode(d, pretty: true)), d)
    }

    /// Each quantized variant's generation memory counts its own packed weights, not the float32
    /// model it was copied from, which is alive in the same process: int8 needs less than float32.
    func testQuantizedVariantsCountOnlyTheirOwnWeights() throws {
        let model = try GPT2Model(GPT2Config(nLayer: 2, nHead: 4, nEmbd: 256, nPositions: 64, vocabSize: 4096), seed: 2)
        var options = InferenceMeasurement.Options()
        options.generatedTokens = 8
        options.forwardBatch = 1
        options.forwardSeqLen = 16
        options.forwardRepeats = 1
        let r = try InferenceMeasurement.measureWithQuantized(model, options: options) { _ in nil }
        let float = try XCTUnwrap(r.generationMemoryBytes)
        let int8 = try XCTUnwrap(r.quantized?.first { $0.weightPrecision == "int8" })
        let int8Memory = try XCTUnwrap(int8.generationMemoryBytes)
        XCTAssertGreaterThanOrEqual(int8Memory, try XCTUnwrap(int8.weightBytes))
        XCTAssertLessThan(int8Memory, float, "int8 weights are under a third of float32's 10.5 MB here")
        XCTAssertGreaterThan(int8.peakMemoryBytes, int8Memory + 4 * model.parameterCount,
                             "the process peak also counts the float32 model alive beside the copy")
    }
}
