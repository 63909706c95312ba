import FactorlabGPT2
import FactorlabLayers
import XCTest

/// Config inputs the fuzzer found or the hostile-input issue lists: each is an error with the key
/// and the rule, never a crash.
final class ConfigInputTests: XCTestCase {
    func message(_ body: () throws -> Any) -> String {
        do { _ = try body(); return "" } catch { return "\(error)" }
    }

    func testLayerSpecsWithEmptyPiecesAreErrors() {
        for spec in ["monarch:1;@", "@6-11", "monarch:4@", "@"] {
            XCTAssertTrue(message { try GPT2Config.mlpKinds(spec, layers: 12) }.contains("expected KIND or KIND@LAYERS"), spec)
        }
        XCTAssertTrue(message { try GPT2Config.mlpKinds("dense", layers: -1) }.contains("n_layer must be between 1 and 1024, got -1"))
        XCTAssertTrue(message { try GPT2Config.parseLayers("-1", layers: 12, spec: "--layers -1") }.contains("non-negative layer numbers"))
        XCTAssertEqual(try GPT2Config.mlpKinds("monarch:4@6-11", layers: 12).filter { $0 != .dense }.count, 6)
    }

    func testModelConfigJSONNamesMissingAndWrongKeys() {
        let base = #""n_layer":1,"n_head":1,"n_embd":8,"n_positions":8,"vocab_size":30,"n_inner":32,"embd_pdrop":0,"attn_pdrop":0,"resid_pdrop":0,"num_labels":0,"mlp":"dense""#
        XCTAssertNoThrow(try GPT2Config(json: "{\(base),\"layer_norm_epsilon\":1e-5}", source: "c"))
        XCTAssertTrue(message { try GPT2Config(json: "{\(base)}", source: "c") }.contains("key 'layer_norm_epsilon' is missing"))
        XCTAssertTrue(message { try GPT2Config(json: "{\(base),\"layer_norm_epsilon\":true}", source: "c") }.contains("got a boolean"))
        let huge = "{\(base.replacingOccurrences(of: "\"n_layer\":1", with: "\"n_layer\":1e30")),\"layer_norm_epsilon\":1e-5}"
        XCTAssertTrue(message { try GPT2Config(json: huge, source: "c") }.contains("key 'n_layer' must be an integer"))
    }

    /// The parameter count from the config equals the built model's, and impossible sizes are errors.
    func testParameterCountFromTheConfigAlone() throws {
        var config = GPT2Config(nLayer: 3, nHead: 2, nEmbd: 16, nPositions: 8, vocabSize: 30)
        config.mlp = try GPT2Config.mlpKinds("monarch:2@0;lowrank:4@1;butterfly@2", layers: 3)
        XCTAssertEqual(try config.parameterCount(), try GPT2Model(config).parameterCount)
        var huge = GPT2Config(nLayer: 48, nHead: 25, nEmbd: 1600, vocabSize: Int(Int32.max))
        huge.mlp = Array(repeating: .dense, count: 48)
        XCTAssertTrue(message { try huge.checkFitsInMemory(training: false, physicalMemory: 24 << 30) }.contains("needs about"))
        XCTAssertNoThrow(try GPT2Config(nLayer: 2, nHead: 2, nEmbd: 16).checkFitsInMemory(training: true, physicalMemory: 24 << 30))
    }
}
