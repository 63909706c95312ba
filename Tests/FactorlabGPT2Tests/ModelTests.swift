import FactorlabAutograd
import FactorlabGPT2
import FactorlabLayers
import FactorlabTensor
import FactorlabTestSupport
import XCTest

final class ModelTests: XCTestCase {
    func testPresetsAndParameterCounts() throws {
        let gpt2 = try GPT2Config.preset("gpt2")
        XCTAssertEqual([gpt2.nLayer, gpt2.nEmbd, gpt2.nHead, gpt2.nPositions, gpt2.vocabSize], [12, 768, 12, 1024, 50257])
        let xl = try GPT2Config.preset("gpt2-xl")
        XCTAssertEqual([xl.nLayer, xl.nEmbd, xl.nHead], [48, 1600, 25])
        // GPT-2 small has 124,439,808 parameters (tied head counted once), as transformers reports.
        XCTAssertEqual(try GPT2Model(gpt2).parameterCount, 124_439_808)
        for (name, lo, hi) in [("nano", 0.2e6, 1.5e6), ("tiny", 3e6, 8e6), ("small", 20e6, 35e6)] {
            let n = Double(try GPT2Model(try GPT2Config.preset(name)).parameterCount)
            XCTAssertTrue(n >= lo && n <= hi, "\(name): \(n) parameters")
        }
        XCTAssertThrowsError(try GPT2Config.preset("gpt3")) { e in
            XCTAssertTrue("\(e)".contains("unknown preset 'gpt3'; valid presets: gpt2, gpt2-medium"), "\(e)")
        }
        var bad = GPT2Config(nLayer: 2, nHead: 5, nEmbd: 64)
        XCTAssertThrowsError(try GPT2Model(bad)) { e in XCTAssertTrue("\(e)".contains("n_head 5 does not divide n_embd 64"), "\(e)") }
        bad = GPT2Config(nLayer: 2, nHead: 4, nEmbd: 64, mlp: .monarch(nblocks: 3))
        XCTAssertThrowsError(try GPT2Model(bad)) { e in XCTAssertTrue("\(e)".contains("layer 0 mlp.c_fc (64 -> 256): nblocks 3 must divide"), "\(e)") }
    }

    func testPerLayerMLPKindsAndNames() throws {
        let kinds = try GPT2Config.mlpKinds("lowrank:8@0;monarch:4@2-3", layers: 4)
        XCTAssertEqual(kinds, [.lowRank(rank: 8), .dense, .monarch(nblocks: 4), .monarch(nblocks: 4)])
        var config = GPT2Config(nLayer: 4, nHead: 2, nEmbd: 32, nPositions: 16, vocabSize: 50)
        config.mlp = kinds
        XCTAssertEqual(config.mlpSpec, "lowrank:8@0;monarch:4@2-3")
        let names = try GPT2Model(config).namedParameters.map(\.0)
        XCTAssertTrue(names.contains("h.0.mlp.c_fc.lowrank.u"))
        XCTAssertTrue(names.contains("h.1.mlp.c_fc.weight"))
        XCTAssertTrue(names.contains("h.3.mlp.c_proj.monarch.blkdiag2"))
        XCTAssertThrowsError(try GPT2Config.mlpKinds("monarch:4@6-12", layers: 12)) { e in
            XCTAssertTrue("\(e)".contains("outside 0-11"), "\(e)")
        }
    }

    func testBadInputsAreReported() throws {
        let model = try GPT2Model(GPT2Config(nLayer: 1, nHead: 2, nEmbd: 16, nPositions: 8, vocabSize: 20))
        XCTAssertThrowsError(try model.logits([1, 2, 3], batch: 1, seqLen: 4)) { e in
            XCTAssertTrue("\(e)".contains("3 token ids do not form a batch of 1 x 4"), "\(e)")
        }
        XCTAssertThrowsError(try model.logits(Array(repeating: 1, count: 9), batch: 1, seqLen: 9)) { e in
            XCTAssertTrue("\(e)".contains("sequence length 9 exceeds the model's context of 8"), "\(e)")
        }
        XCTAssertThrowsError(try model.logits([1, 25], batch: 1, seqLen: 2)) { e in
            XCTAssertTrue("\(e)".contains("token id 25 at position 1 is outside the vocabulary of 20"), "\(e)")
        }
    }

    /// Logits from the KV cache, fed a prompt and then one token at a time, equal the full
    /// forward pass at every position, for dense and structured MLPs.
    func testKVCacheMatchesFullForward() throws {
        for mlp in [LinearKind.dense, .monarch(nblocks: 2)] {
            var config = GPT2Config(nLayer: 2, nHead: 2, nEmbd: 16, nPositions: 12, vocabSize: 30, mlp: mlp)
            config.residDropout = 0
            let model = try GPT2Model(config, seed: 4)
            let ids: [Int32] = [3, 7, 1, 29, 4, 4, 12, 0, 5]
            let full = try model.logits(ids, batch: 1, seqLen: ids.count).value
            let cache = KVCache(config: config, batch: 1)
            var rows = [try model.forwardCached(Array(ids[0..<4]), batch: 1, seqLen: 4, cache: cache)]
            for i in 4..<ids.count { rows.append(try model.forwardCached([ids[i]], batch: 1, seqLen: 1, cache: cache)) }
            for (k, pos) in (3..<ids.count).enumerated() {
                let expected = try full.slice(axis: 1, pos..<(pos + 1)).reshaped([1, 30])
                assertClose(rows[k], expected, rtol: 1e-5, atol: 1e-5, "\(mlp) position \(pos)")
            }
        }
    }

    func testGenerationIsReproducibleAndSamplingRespectsTopK() throws {
        let model = try GPT2Model(GPT2Config(nLayer: 1, nHead: 2, nEmbd: 16, nPositions: 10, vocabSize: 30), seed: 5)
        var r1 = RandomGenerator(seed: 1), r2 = RandomGenerator(seed: 1)
        let s = Sampling(temperature: 0.8, topK: 5, topP: 0.9)
        let a = try model.generate(prompt: [1, 2, 3], maxNewTokens: 20, sampling: s, rng: &r1)
        let b = try model.generate(prompt: [1, 2, 3], maxNewTokens: 20, sampling: s, rng: &r2)
        XCTAssertEqual(a, b, "same seed, same tokens")
        XCTAssertEqual(a.count, 20, "generation continues past the 10-position context with a sliding window")
        // top-k 1 is greedy.
        var r3 = RandomGenerator(seed: 9)
        let greedy = try model.generate(prompt: [1, 2, 3], maxNewTokens: 5, rng: &r3)
        let top1 = try model.generate(prompt: [1, 2, 3], maxNewTokens: 5, sampling: Sampling(temperature: 1, topK: 1), rng: &r3)
        XCTAssertEqual(greedy, top1)
        var warned = ""
        _ = try model.generate(prompt: Array(repeating: 1, count: 15), maxNewTokens: 1, rng: &r3, onWarning: { warned = $0 })
        XCTAssertTrue(warned.contains("prompt of 15 tokens exceeds the context of 10; keeping the last 10"), warned)
        // Sampling distribution: with logits [0, log 3] and temperature 1, token 1 has p = 0.75.
        var rng = RandomGenerator(seed: 2)
        let logits: [Float] = [0, Float(Foundation.log(3.0))]
        let ones = (0..<4000).filter { _ in Sampling(temperature: 1).sample(logits, rng: &rng) == 1 }.count
        XCTAssertEqual(Double(ones) / 4000, 0.75, accuracy: 0.03)
    }

    func testDenseEquivalentComputesTheSameFunction() throws {
        var config = GPT2Config(nLayer: 2, nHead: 2, nEmbd: 16, nPositions: 8, vocabSize: 20)
        config.mlp = try GPT2Config.mlpKinds("monarch:2@1;butterfly@0", layers: 2)
        let model = try GPT2Model(config, seed: 3)
        let dense = try model.denseEquivalent()
        let ids: [Int32] = [1, 5, 7, 2, 19, 0]
        assertClose(try dense.logits(ids, batch: 2, seqLen: 3).value, try model.logits(ids, batch: 2, seqLen: 3).value,
                    rtol: 1e-4, atol: 1e-5, "dense equivalent")
        XCTAssertThrowsError(try model.saveHuggingFace(URL(fileURLWithPath: "/tmp/never"))) { e in
            XCTAssertTrue("\(e)".contains("Hugging Face's GPT-2 has dense layers only"), "\(e)")
        }
    }
}
