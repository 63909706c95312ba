import FactorlabBench
import FactorlabGPT2
import FactorlabLayers
import FactorlabTensor
import XCTest

final class ProfilerTests: XCTestCase {
    /// Per-token MACs against the closed-form formulas for GPT-2 small (d = 768, 12 layers,
    /// V = 50257) at T = 1024, dense and with Monarch (4 blocks) MLPs.
    func testCostsMatchClosedForms() throws {
        let d = 768, l = 12, v = 50257, t = 1024
        var config = try GPT2Config.preset("gpt2")
        let dense = try GPT2Model(config).costs(seqLen: t)
        XCTAssertEqual(dense.qkv, l * 3 * d * d)
        XCTAssertEqual(dense.attentionProjection, l * d * d)
        XCTAssertEqual(dense.attentionCore, l * 2 * t * d)     // Q K^T and P V: T * d MACs each per token
        XCTAssertEqual(dense.mlp, l * 8 * d * d)
        XCTAssertEqual(dense.lmHead, v * d)
        XCTAssertEqual(dense.trainingFLOPs, 6 * Double(dense.totalMACs) + 3 * Double(dense.layerNorm + dense.embeddings))
        config.mlp = try GPT2Config.mlpKinds("monarch:4", layers: l)
        let monarch = try GPT2Model(config).costs(seqLen: t)
        XCTAssertEqual(monarch.mlp, l * 2 * 737_280, "Monarch: 31.25% of the dense MLP")
        XCTAssertEqual(monarch.qkv, dense.qkv)
    }

    /// Every site's kind reaches the component split: structured attention projections and a
    /// factorized head move FLOPs out of attention and the head, the MLP's stay where they were.
    func testComponentSplitFollowsEverySite() throws {
        var config = try GPT2Config.preset("nano")
        config.linear = try LinearPlan.parse("attn=monarch:2,head=lowrank:16", layers: config.nLayer)
        let model = try GPT2Model(config)
        let r = try Profiler.run(model: model, batch: 2, seqLen: 16, repeats: 1)
        let c = model.costs(seqLen: 16), d = 64
        XCTAssertEqual(c.attentionProjection, 2 * 2 * (2 * 32 * 32), "two layers of Monarch:2 64 -> 64: two [2, 32, 32] factors")
        XCTAssertEqual(c.qkv, 2 * (2 * 32 * 32 + 2 * 96 * 32), "[2, 32, 32] and [2, 96, 32] per layer")
        XCTAssertEqual(c.lmHead, 16 * (4096 + d))
        XCTAssertEqual(r.components.first { $0.name == "qkv_projection" }!.flops, 2 * Double(c.qkv) * 32)
        XCTAssertEqual(r.components.first { $0.name == "output_projection" }!.flops, 2 * Double(c.attentionProjection) * 32)
        XCTAssertEqual(r.components.first { $0.name == "lm_head" }!.flops, 2 * Double(c.lmHead) * 32)
        XCTAssertEqual(r.components.first { $0.name == "mlp" }!.flops, 2 * Double(2 * 8 * d * d) * 32, "the MLP stays dense")
    }

    func testProfileReportsEveryComponentAndItsFLOPs() throws {
        let model = try GPT2Model(try GPT2Config.preset("nano"))
        let r = try Profiler.run(model: model, batch: 2, seqLen: 16, repeats: 1)
        XCTAssertEqual(r.components.map(\.name),
                       ["embeddings", "layer_norm", "qkv_projection", "attention_core", "output_projection", "mlp", "lm_head"])
        let c = model.costs(seqLen: 16)
        XCTAssertEqual(r.components.first { $0.name == "mlp" }!.flops, 2 * Double(c.mlp) * 32)
        XCTAssertEqual(r.attentionFLOPShare, 100 * Double(c.qkv + c.attentionCore + c.attentionProjection)
                       / Double(c.qkv + c.attentionCore + c.attentionProjection + c.mlp), accuracy: 1e-9)
        XCTAssertTrue(r.components.allSatisfy { $0.seconds >= 0 })
        XCTAssertGreaterThan(r.totalSeconds, 0)
    }

    /// The training-step breakdown names every kind of operation a GPT-2 step records, with the
    /// number of calls per step, and leaves the model's weights as they were.
    func testTrainingStepBreakdownCountsEachOperationAndRestoresTheWeights() throws {
        let model = try GPT2Model(try GPT2Config.preset("nano"))
        let before = model.parameters.map { $0.value.scalars }
        let r = try Profiler.run(model: model, batch: 2, seqLen: 16, repeats: 2, trainStep: true)
        let layers = model.config.nLayer
        let calls = Dictionary(uniqueKeysWithValues: r.trainOperations.map { ($0.name, $0.count) })
        XCTAssertEqual(calls["attention"], layers)
        XCTAssertEqual(calls["gelu"], layers)
        XCTAssertEqual(calls["layerNorm"], 2 * layers + 1)
        XCTAssertEqual(calls["linear"], 4 * layers, "four projections per block")
        XCTAssertEqual(calls["linearCrossEntropy"], 1, "the tied LM head fused with the loss")
        XCTAssertTrue(r.trainOperations.allSatisfy { $0.forwardSeconds >= 0 && $0.backwardSeconds >= 0 })
        XCTAssertGreaterThan(r.trainOperations.first { $0.name == "linear" }!.backwardSeconds, 0)
        XCTAssertGreaterThan(r.trainStepSeconds ?? 0, 0)
        XCTAssertNotNil(r.optimizerSeconds)
        XCTAssertEqual(model.parameters.map { $0.value.scalars }, before, "the AdamW updates are undone")
        XCTAssertTrue(model.parameters.allSatisfy { $0.grad == nil })
    }

    /// Speed-ups, FLOP ratios, efficiency and the bandwidth fraction follow from the measured figures.
    func testDerivedFiguresOfTheModelBench() throws {
        let setup = try ModelBench.setup(named: "tiny")
        let measured = [BenchFigure("tiny.dense.train_tokens_per_s", 1000, ""), BenchFigure("tiny.monarch.train_tokens_per_s", 1500, ""),
                        BenchFigure("tiny.dense.train_flops_per_token", 6e6, ""), BenchFigure("tiny.monarch.train_flops_per_token", 3e6, ""),
                        BenchFigure("tiny.monarch.generate_weight_gbps", 18, "")]
        let derived = ModelBench.derivedFigures(measured, setups: [setup], specs: ["dense", "monarch:4"], sgemmGFLOPs: 200,
                                                readGBps: 36)
        let value = { (k: String) in derived.first { $0.key == k }?.value }
        XCTAssertEqual(value("tiny.monarch.train_speedup"), 1.5)
        XCTAssertEqual(value("tiny.monarch.train_flop_ratio"), 2)
        XCTAssertEqual(value("tiny.monarch.train_efficiency"), 0.75)
        XCTAssertEqual(value("tiny.monarch.generate_bandwidth_fraction"), 0.5)
        XCTAssertNil(value("tiny.monarch.generate_ceiling_fraction"), "no kernel rates, no ceiling")
    }

    /// With the in-cache kernel rates, generation is measured against the lower ceiling, and the
    /// figure says which one that is.
    func testGenerationCeilingIsTheLowerOfMemoryAndKernel() throws {
        let setup = try ModelBench.setup(named: "tiny")
        let measured = [BenchFigure("tiny.dense.generate_weight_gbps", 18, ""), BenchFigure("tiny.dense-int8.generate_weight_gbps", 12, "")]
        let derived = ModelBench.derivedFigures(measured, setups: [setup], specs: ["dense"], weights: [.float32, .int8], sgemmGFLOPs: 200,
                                                readGBps: 20, kernelGBps: [.float32: 60, .int8: 16])
        let figure = { (k: String) in derived.first { $0.key == k } }
        XCTAssertEqual(figure("tiny.dense.generate_bandwidth_fraction")?.value, 0.9)
        XCTAssertEqual(figure("tiny.dense.generate_ceiling_fraction")?.value, 0.9)
        XCTAssertTrue(figure("tiny.dense.generate_ceiling_fraction")?.unit.contains("memory bound") ?? false)
        XCTAssertEqual(figure("tiny.dense-int8.generate_bandwidth_fraction")?.value, 0.6)
        XCTAssertEqual(figure("tiny.dense-int8.generate_ceiling_fraction")?.value, 0.75)
        XCTAssertTrue(figure("tiny.dense-int8.generate_ceiling_fraction")?.unit.contains("kernel bound") ?? false)
    }
}
