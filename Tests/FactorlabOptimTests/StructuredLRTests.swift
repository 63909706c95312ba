import FactorlabAutograd
import FactorlabGPT2
import FactorlabLayers
import FactorlabOptim
import FactorlabTensor
import FactorlabTraining
import XCTest

/// The per-factor learning-rate rule lands on the right parameters, and AdamW applies it.
final class StructuredLRTests: XCTestCase {
    func testFanInRuleMultipliersOnTheOptimizersParameterGroups() throws {
        var config = GPT2Config(nLayer: 1, nHead: 2, nEmbd: 32, nPositions: 8, vocabSize: 50)
        config.linear = try LinearPlan.parse("mlp=monarch:4,attn.c_attn=lowrank:8,attn.c_proj=btt:1", layers: 1)
        let model = try GPT2Model(config)
        let table = model.learningRateMultipliers(.fanIn)
        // Monarch 32 -> 128 with 4 blocks: both factors have fan-in 8: 32 / (8 x 2) = 2.
        XCTAssertEqual(table["h.0.mlp.c_fc.monarch.blkdiag1"], 2)
        XCTAssertEqual(table["h.0.mlp.c_fc.monarch.blkdiag2"], 2)
        // Monarch 128 -> 32: blkdiag1 [4, 8, 32] (fan-in 32): 128 / 64 = 2; blkdiag2 [4, 8, 8]: 128 / 16 = 8.
        XCTAssertEqual(table["h.0.mlp.c_proj.monarch.blkdiag1"], 2)
        XCTAssertEqual(table["h.0.mlp.c_proj.monarch.blkdiag2"], 8)
        // Low rank 8, 32 -> 96: U fan-in 8 (32 / 16 = 2), V fan-in 32 (0.5).
        XCTAssertEqual(table["h.0.attn.c_attn.lowrank.u"], 2)
        XCTAssertEqual(table["h.0.attn.c_attn.lowrank.v"], 0.5)
        // BTT rank 1, 32 = 4 x 8 -> 32: core1 fan-in 4 (32 / 8 = 4), core2 fan-in 8 (2).
        XCTAssertEqual(table["h.0.attn.c_proj.btt.core1"], 4)
        XCTAssertEqual(table["h.0.attn.c_proj.btt.core2"], 2)
        XCTAssertNil(table["h.0.mlp.c_fc.bias"])
        XCTAssertNil(table["wte.weight"])
        XCTAssertTrue(model.learningRateMultipliers(.none).isEmpty)

        // On the optimizer: the first AdamW step moves each element by about lr x multiplier
        // (m / sqrt(v) = +-1 at step 1), so the updates of two optimizers differ by the ratio.
        let ids: [Int32] = [1, 2, 3, 4, 5, 6, 7, 8], targets: [Int32] = [2, 3, 4, 5, 6, 7, 8, 9]
        let hyper = AdamW.Hyperparameters(lr: 1e-3, weightDecay: 0)
        func update(_ rule: StructuredLRRule) throws -> [String: Tensor] {
            let m = try GPT2Model(config)
            let before = Dictionary(uniqueKeysWithValues: m.namedParameters.map { ($0.0, $0.1.value) })
            let t = m.learningRateMultipliers(rule)
            let opt = AdamW(m.namedParameters, hyper: hyper, lrScale: { name, _ in t[name] ?? 1 })
            XCTAssertEqual(zip(opt.parameters, opt.lrScales).first { $0.0.name == "h.0.mlp.c_proj.monarch.blkdiag2" }?.1,
                           rule == .fanIn ? 8 : 1, "the group's multiplier is on the optimizer's state")
            let tape = Tape()
            try tape.backward(try tape.record { try m.loss(ids, targets: targets, batch: 1, seqLen: 8) })
            opt.step()
            return Dictionary(uniqueKeysWithValues: try m.namedParameters.map { ($0.0, try $0.1.value - before[$0.0]!) })
        }
        let plain = try update(.none), ruled = try update(.fanIn)
        for name in ["h.0.mlp.c_proj.monarch.blkdiag2", "h.0.attn.c_attn.lowrank.v", "h.0.ln_1.weight", "wte.weight", "h.0.attn.c_proj.btt.core1"] {
            let expected = Double(table[name] ?? 1)
            let a = plain[name]?.scalars.map { abs(Double($0)) }.reduce(0, +) ?? 0, b = ruled[name]?.scalars.map { abs(Double($0)) }.reduce(0, +) ?? 0
            XCTAssertGreaterThan(a, 0, name)
            XCTAssertEqual(b / a, expected, accuracy: 1e-3 * expected, name)
        }
    }
}
