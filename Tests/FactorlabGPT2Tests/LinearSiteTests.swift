import FactorlabAutograd
import FactorlabGPT2
import FactorlabLayers
import FactorlabTensor
import FactorlabTestSupport
import XCTest

/// Every linear layer a choice: specs, counts, gradients at every site and head, dense equivalents.
final class LinearSiteTests: XCTestCase {
    func message(_ body: () throws -> Any) -> String {
        do { _ = try body(); return "" } catch { return "\(error)" }
    }

    /// A small model with `spec`, every parameter redrawn at a scale where finite differences are
    /// meaningful (std 0.5; LayerNorm weights and BTT core scales around 1).
    func model(_ spec: String, layers: Int = 1, seed: UInt64 = 3) throws -> GPT2Model {
        var c = GPT2Config(nLayer: layers, nHead: 2, nEmbd: 8, nPositions: 6, vocabSize: 10, nInner: 16)
        c.linear = try LinearPlan.parse(spec, layers: layers)
        let m = try GPT2Model(c, seed: seed)
        var rng = RandomGenerator(seed: seed + 100)
        for (name, p) in m.namedParameters {
            let noise = Tensor.randomNormal(p.shape, std: 0.5, using: &rng)
            let aroundOne = name.contains("ln_") && name.hasSuffix(".weight") || name.contains(".gamma")
            p.value = aroundOne ? noise * 0.2 + 1 : noise
        }
        return m
    }

    func testSpecsParseRoundTripAndKeepTheOldForm() throws {
        let plan = try LinearPlan.parse("mlp=monarch:4,attn=monarch:4@6-11,head=lowrank:256", layers: 12)
        XCTAssertEqual(plan[.mlpFc], Array(repeating: .monarch(nblocks: 4), count: 12))
        XCTAssertEqual(plan[.qkv].filter { $0 != .dense }.count, 6)
        XCTAssertEqual(plan[.attnProj][6], .monarch(nblocks: 4))
        XCTAssertEqual(plan.head, .tiedLowRank(rank: 256))
        XCTAssertEqual(plan.spec, "mlp=monarch:4,attn=monarch:4@6-11,head=lowrank:256")
        XCTAssertEqual(try LinearPlan.parse(plan.spec, layers: 12), plan)
        // The MLP-only form of earlier versions, and its spec, are unchanged.
        XCTAssertEqual(try LinearPlan.parse("monarch:4@6-11", layers: 12).spec, "monarch:4@6-11")
        XCTAssertEqual(try LinearPlan.parse("mlp=monarch:4", layers: 12).spec, "monarch:4")
        XCTAssertEqual(try LinearPlan.parse("dense", layers: 3).spec, "dense")
        // Layer lists with commas, single sites, and later entries overriding earlier ones.
        let mixed = try LinearPlan.parse("mlp=lowrank:8@0,2,attn.c_attn=btt:2,mlp.c_proj=dense,head=untied:monarch:2", layers: 3)
        XCTAssertEqual(mixed[.mlpFc], [.lowRank(rank: 8), .dense, .lowRank(rank: 8)])
        XCTAssertEqual(mixed[.mlpProj], [.dense, .dense, .dense])
        XCTAssertEqual(mixed[.qkv], Array(repeating: .btt(rank: 2, normalized: false), count: 3))
        XCTAssertEqual(mixed.head, .untied(.monarch(nblocks: 2)))
        XCTAssertEqual(try LinearPlan.parse(mixed.spec, layers: 3), mixed)
        XCTAssertEqual(try HeadKind(spec: "untied"), .untied(.dense))
        XCTAssertEqual(try HeadKind(spec: "tied"), .tied)
    }

    func testBadSpecsNameTheSiteLayerAndConstraint() throws {
        XCTAssertTrue(message { try LinearPlan.parse("mlps=monarch:4", layers: 2) }.contains("unknown linear site 'mlps'"))
        XCTAssertTrue(message { try LinearPlan.parse("head=monarch:4", layers: 2) }.contains("for a monarch:4 head, untie it: untied:monarch:4"))
        XCTAssertTrue(message { try LinearPlan.parse("attn=monarch:4@5", layers: 2) }.contains("outside 0-1"))
        XCTAssertTrue(message { try LinearPlan.parse("attn=", layers: 2) }.contains("attn"))
        var c = GPT2Config(nLayer: 2, nHead: 2, nEmbd: 16, nPositions: 8, vocabSize: 30)
        c.linear = try LinearPlan.parse("attn.c_proj=monarch:3@1", layers: 2)
        XCTAssertTrue(message { try c.validate() }.contains("layer 1 attn.c_proj (16 -> 16): nblocks 3 must divide"), message { try c.validate() })
        c.linear = try LinearPlan.parse("attn=lowrank:17", layers: 2)
        XCTAssertTrue(message { try c.validate() }.contains("layer 0 attn.c_attn (16 -> 48)"), message { try c.validate() })
        c.linear = try LinearPlan.parse("head=lowrank:31", layers: 2)
        XCTAssertTrue(message { try c.validate() }.contains("head lowrank:31: rank must be between 1 and min(vocab_size, n_embd) = 16"))
        c.linear = try LinearPlan.parse("head=untied:monarch:4", layers: 2)
        XCTAssertTrue(message { try c.validate() }.contains("head untied:monarch:4 (16 -> vocabulary 30)"), message { try c.validate() })
    }

    /// Parameter counts from the config equal the built model's; FLOPs per site equal the closed forms.
    func testCountsAndFLOPsPerSite() throws {
        let (c, v, inner, t) = (16, 30, 64, 8)
        var config = GPT2Config(nLayer: 2, nHead: 2, nEmbd: c, nPositions: t, vocabSize: v)
        config.linear = try LinearPlan.parse("mlp=monarch:4,attn.c_attn=lowrank:4,attn.c_proj=btt:2@1,head=lowrank:8", layers: 2)
        let m = try GPT2Model(config)
        XCTAssertEqual(try config.parameterCount(), m.parameterCount)
        let costs = m.costs(seqLen: t)
        // Monarch:4 c -> 4c and back: (k p p + k s p) and (k s p + k s s) with k 4, p = s = 4 (then 16).
        XCTAssertEqual(costs.mlp, 2 * ((4 * 4 * 4 + 4 * 16 * 4) + (4 * 4 * 16 + 4 * 4 * 4)))
        XCTAssertEqual(costs.qkv, 2 * (4 * (c + 3 * c)))
        // Layer 0 dense c x c; layer 1 BTT rank 2: c r n0 + c r m1 with 16 = 4 x 4.
        XCTAssertEqual(costs.attentionProjection, c * c + (c * 2 * 4 + c * 2 * 4))
        XCTAssertEqual(costs.lmHead, 8 * (v + c))
        XCTAssertEqual(costs.embeddings, 2 * c + 2 * 8 * c)
        _ = inner
        var untied = config
        untied.linear.head = .untied(.monarch(nblocks: 2))
        let u = try GPT2Model(untied)
        XCTAssertEqual(try untied.parameterCount(), u.parameterCount)
        XCTAssertEqual(u.costs(seqLen: t).lmHead, try LinearKind.monarch(nblocks: 2).parameterCount(inFeatures: c, outFeatures: v, bias: false))
        XCTAssertTrue(u.namedParameters.map(\.0).contains("lm_head.monarch.blkdiag1"))
        XCTAssertTrue(m.namedParameters.map(\.0).contains("wte.lowrank.a"))
        XCTAssertTrue(m.namedParameters.map(\.0).contains("h.1.attn.c_proj.btt.core1"))
    }

    /// Finite differences through the whole model for every kind at every site (the fused QKV
    /// projection feeding the head split, the factorized tied embedding read twice, untied heads).
    func testGradientsOfEveryKindAtEverySite() throws {
        let specs = ["mlp=lowrank:2,attn=lowrank:2,head=lowrank:2", "mlp=monarch:2,attn=monarch:2,head=untied:monarch:2",
                     "mlp=butterfly,attn=butterfly,head=untied:butterfly", "mlp=btt:1,attn=btt:2,head=untied:btt:1",
                     "mlp=btt-norm:2,attn=btt-norm:1,head=untied:lowrank:3", "attn=dense,head=untied"]
        let ids: [Int32] = [1, 7, 3, 9, 0, 4, 4, 2]
        for spec in specs {
            let m = try model(spec)
            let r = try GradientCheck.checkParameters(m.parameters) { try m.logits(ids, batch: 2, seqLen: 4) }
            let worst = zip(m.namedParameters.map(\.0), r.normalizedErrors).max { $0.1 < $1.1 }!
            XCTAssertLessThan(r.worst, 1e-2, "\(spec): worst \(worst.0) \(worst.1)")
        }
    }

    /// The fused loss of each head kind has the gradients of cross-entropy over its logits.
    func testFusedLossOfEveryHeadMatchesCrossEntropyOfLogits() throws {
        let ids: [Int32] = [1, 7, 3, 9, 0, 4, 4, 2], targets: [Int32] = [7, 3, 9, 0, 4, 4, 2, -100]
        for spec in ["dense", "head=lowrank:3", "head=untied", "head=untied:monarch:2"] {
            let m = try model(spec)
            func grads(_ f: () throws -> Variable) throws -> [Tensor] {
                for p in m.parameters { p.zeroGrad() }
                let tape = Tape()
                try tape.backward(try tape.record { try f() })
                return m.parameters.map { $0.grad ?? Tensor(zeros: $0.shape) }
            }
            let fused = try grads { try m.loss(ids, targets: targets, batch: 2, seqLen: 4) }
            let plain = try grads {
                try Variable.crossEntropy(logits: try m.logits(ids, batch: 2, seqLen: 4).reshaped([8, 10]), targets: targets)
            }
            for (i, (a, b)) in zip(fused, plain).enumerated() {
                assertClose(a, b, rtol: 1e-4, atol: 1e-6, "\(spec) \(m.namedParameters[i].0)")
            }
        }
    }

    /// The dense equivalent of a model with every site structured and each head kind computes
    /// the same logits, and is a model Hugging Face's GPT-2 can hold.
    func testDenseEquivalentOfEverySiteAndHead() throws {
        for spec in ["mlp=monarch:2,attn=btt:2,head=lowrank:3", "mlp=btt-norm:1,attn=lowrank:3,head=untied:monarch:2",
                     "attn.c_attn=butterfly,head=untied"] {
            let m = try model(spec, layers: 2)
            let d = try m.denseEquivalent()
            XCTAssertTrue(d.config.linear[.qkv].allSatisfy { $0 == .dense } && d.config.linear[.mlpFc].allSatisfy { $0 == .dense })
            let ids: [Int32] = [1, 7, 3, 9, 0, 4]
            assertClose(try d.logits(ids, batch: 2, seqLen: 3).value, try m.logits(ids, batch: 2, seqLen: 3).value,
                        rtol: 1e-4, atol: 1e-4, "\(spec) dense equivalent")
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("factorlab-sites-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: dir) }
            XCTAssertThrowsError(try m.saveHuggingFace(dir)) { e in XCTAssertTrue("\(e)".contains("dense"), "\(e)") }
            try d.saveHuggingFace(dir)
            let back = try GPT2Model.loadHuggingFace(dir)
            XCTAssertEqual(back.config.linear.head, d.config.linear.head, spec)
            assertClose(try back.logits(ids, batch: 2, seqLen: 3).value, try m.logits(ids, batch: 2, seqLen: 3).value,
                        rtol: 1e-4, atol: 1e-4, "\(spec) through Hugging Face files")
        }
    }

    /// Projection of attention sites and of the head: exact when the target is the class the
    /// weights are already in, and the config records the new kinds.
    func testProjectionOfEverySiteAndTheHead() throws {
        let m = try model("attn=btt:2,mlp=monarch:2", layers: 2)
        let ids: [Int32] = [1, 7, 3, 9, 0, 4]
        let before = try m.logits(ids, batch: 2, seqLen: 3).value
        // Densify then project back: the projections recover the structured weights exactly.
        let d = try m.denseEquivalent()
        let report = try ModelProjection.project(d, to: .btt(rank: 2, normalized: false), sites: [.qkv, .attnProj], layers: [0, 1])
        _ = try ModelProjection.project(d, to: .monarch(nblocks: 2), layers: [0, 1])
        XCTAssertEqual(report.layers.map(\.name), ["h.0.attn.c_attn", "h.0.attn.c_proj", "h.1.attn.c_attn", "h.1.attn.c_proj"])
        XCTAssertLessThan(report.layers.map(\.relativeError).max()!, 1e-5)
        XCTAssertEqual(d.config.linearSpec, "mlp=monarch:2,attn=btt:2")
        assertClose(try d.logits(ids, batch: 2, seqLen: 3).value, before, rtol: 1e-4, atol: 1e-4, "projected back")
        // The head: a tied embedding to a factorized one of full rank (exact), and to an untied head.
        let full = try ModelProjection.project(d, head: .tiedLowRank(rank: 8))
        XCTAssertLessThan(full.layers[0].relativeError, 1e-5)
        XCTAssertEqual(d.config.linear.head, .tiedLowRank(rank: 8))
        assertClose(try d.logits(ids, batch: 2, seqLen: 3).value, before, rtol: 1e-3, atol: 1e-3, "full-rank factorized embedding")
        let untied = try ModelProjection.project(d, head: .untied(.lowRank(rank: 2)))
        XCTAssertGreaterThan(untied.layers[0].relativeError, 0.05)
        XCTAssertEqual(d.config.linearSpec, "mlp=monarch:2,attn=btt:2,head=untied:lowrank:2")
        XCTAssertEqual(try d.config.parameterCount(), d.parameterCount)
    }

    /// The MLP ablation computes exactly what a model with its MLP output weights zeroed by hand does.
    func testMLPAblationEqualsHandZeroedWeights() throws {
        let m = try model("mlp=monarch:2", layers: 2), byHand = try model("dense", layers: 2)
        try byHand.copyMatchingParameters(from: try m.denseEquivalent())
        for b in byHand.blocks {
            let proj = b.mlpProj as! DenseLinear
            proj.weight.value = Tensor(zeros: proj.weight.shape)
            proj.bias!.value = Tensor(zeros: proj.bias!.shape)
        }
        try m.ablateMLP()
        let ids: [Int32] = [1, 7, 3, 9, 0, 4]
        assertClose(try m.logits(ids, batch: 2, seqLen: 3).value, try byHand.logits(ids, batch: 2, seqLen: 3).value,
                    rtol: 1e-5, atol: 1e-6, "ablated")
    }

    /// Data-aware projection through the model, both orders: every site's errors recorded, and
    /// the output error never above the data-free start.
    func testDataAwareProjectionOfAModel() throws {
        for sequential in [false, true] {
            let m = try model("dense", layers: 2)
            var rng = RandomGenerator(seed: 9)
            let ids = (0..<40).map { _ in Int32(rng.next() % 10) }
            let data = try CalibrationData(ids: ids, seqLen: 6, maxTokens: 36, source: "test")
            XCTAssertEqual(data.tokens, 36)
            let report = try ModelProjection.project(m, to: .lowRank(rank: 2), sites: [.qkv, .mlpFc, .mlpProj], layers: [0, 1],
                                                     calibration: data, sequential: sequential)
            XCTAssertEqual(report.layers.map(\.name), ["h.0.attn.c_attn", "h.0.mlp.c_fc", "h.0.mlp.c_proj",
                                                       "h.1.attn.c_attn", "h.1.mlp.c_fc", "h.1.mlp.c_proj"])
            for l in report.layers {
                XCTAssertLessThanOrEqual(l.outputError!, l.dataFreeOutputError! + 1e-6, "\(l.name) sequential \(sequential)")
            }
            XCTAssertEqual(report.calibration?.sequential, sequential)
            XCTAssertEqual(m.config.linearSpec, "mlp=lowrank:2,attn.c_attn=lowrank:2")
            XCTAssertTrue(report.jsonString.contains("calibration_output_error"))
        }
        XCTAssertThrowsError(try CalibrationData(ids: [], seqLen: 6, maxTokens: 10, source: "empty.txt")) { e in
            XCTAssertTrue("\(e)".contains("empty.txt: the calibration text holds no tokens"), "\(e)")
        }
    }
}
