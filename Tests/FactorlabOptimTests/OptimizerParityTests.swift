import FactorlabAutograd
import FactorlabGPT2
import FactorlabOptim
import FactorlabSafetensors
import FactorlabTensor
import FactorlabTestSupport
import FactorlabTraining
import XCTest

/// 10 AdamW steps of a small GPT-2 against torch.optim.AdamW (Tools/reference/make_training_fixtures.py):
/// losses within 1e-4, gradient norms within 1e-4 relative, final parameters within 1e-4 absolute.
final class OptimizerParityTests: XCTestCase {
    func testTenAdamWStepsMatchTorch() throws {
        guard let dir = Bundle.module.url(forResource: "adamw-gpt2", withExtension: nil, subdirectory: "Fixtures"),
              let refURL = Bundle.module.url(forResource: "adamw-reference", withExtension: "safetensors", subdirectory: "Fixtures") else {
            return XCTFail("fixtures missing: re-run python3 Tools/reference/make_training_fixtures.py")
        }
        let model = try GPT2Model.loadHuggingFace(dir)
        let ref = try SafetensorsFile.read(refURL)
        let tokens = try ref.tensor("tokens").scalars.map { Int32($0) }
        let losses = try ref.tensor("losses").scalars, norms = try ref.tensor("grad_norms").scalars
        let opt = AdamW(model.namedParameters, hyper: .init(lr: 3e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1))
        let step = OptimizerStep(optimizer: opt,
                                     schedule: LRSchedule(peak: 3e-3, warmupSteps: 3, totalSteps: 10, decay: .cosine, floor: 1e-4),
                                     clipNorm: 1.0)
        let (b, t) = (2, 8)
        for i in 0..<10 {
            let chunk = Array(tokens[(i * b * t)...(i * b * t + b * t)])
            let batch = TokenBatch(inputs: Array(chunk.dropLast()), targets: Array(chunk.dropFirst()), batch: b, seqLen: t)
            let r = try step.run(step: i, model: model, microBatches: [batch], dropoutKey: nil)
            XCTAssertEqual(r.loss, losses[i], accuracy: 1e-4, "loss at step \(i)")
            XCTAssertEqual(r.gradNorm, Double(norms[i]), accuracy: 1e-4 * Double(norms[i]), "grad norm at step \(i)")
            XCTAssertEqual(r.lr, try ref.tensor("lrs").scalars[i], accuracy: 1e-9)
        }
        for (name, p) in model.namedParameters {
            assertClose(p.value, try ref.tensor("final." + name), rtol: 0, atol: 1e-4, "final \(name)")
        }
    }

    func testDefaultDecayGroups() throws {
        let model = try GPT2Model(GPT2Config(nLayer: 1, nHead: 2, nEmbd: 8, nPositions: 4, vocabSize: 10))
        let opt = AdamW(model.namedParameters, hyper: .init())
        let decayed = Set(opt.parameters.filter(\.decay).map(\.name))
        XCTAssertEqual(decayed, ["h.0.attn.c_attn.weight", "h.0.attn.c_proj.weight", "h.0.mlp.c_fc.weight", "h.0.mlp.c_proj.weight"])
    }

    func testScheduleShapes() {
        let s = LRSchedule(peak: 1, warmupSteps: 4, totalSteps: 14, decay: .cosine, floor: 0.1)
        XCTAssertEqual(s.lr(at: 0), 0.25)
        XCTAssertEqual(s.lr(at: 3), 1)
        XCTAssertEqual(s.lr(at: 4), 1)
        XCTAssertEqual(s.lr(at: 9), 0.55, accuracy: 1e-6) // halfway: floor + 0.5 * (peak - floor)
        XCTAssertEqual(s.lr(at: 14), 0.1)
        XCTAssertEqual(s.lr(at: 100), 0.1)
        let lin = LRSchedule(peak: 1, warmupSteps: 0, totalSteps: 10, decay: .linear, floor: 0)
        XCTAssertEqual(lin.lr(at: 5), 0.5, accuracy: 1e-6)
        XCTAssertEqual(LRSchedule(peak: 2, totalSteps: 10, decay: .constant).lr(at: 7), 2)
    }

    func testClippingMatchesTorchRule() throws {
        let p = Parameter("w", Tensor(zeros: [2]))
        p.grad = try Tensor(shape: [2], scalars: [3, 4])
        let norm = Gradients.clip([p], maxNorm: 1)
        XCTAssertEqual(norm, 5, accuracy: 1e-12)
        XCTAssertEqual(p.grad!.scalars[0], Float(3 / (5 + 1e-6)), accuracy: 1e-7)
        p.grad = try Tensor(shape: [2], scalars: [0.3, 0.4])
        Gradients.clip([p], maxNorm: 1)
        XCTAssertEqual(p.grad!.scalars, [0.3, 0.4], "norm below the limit: unchanged")
    }

    func testGlobalNormOverManyBlocksMatchesDoubleSum() throws {
        // 10,007 and 5 elements: several 4,096-element blocks, a partial block and a vector tail.
        var rng = RandomGenerator(seed: 7)
        let a = Parameter("a", Tensor(zeros: [10_007])), b = Parameter("b", Tensor(zeros: [5]))
        a.grad = Tensor.randomNormal([10_007], std: 3, using: &rng)
        b.grad = try Tensor(shape: [5], scalars: [1, -2, 3, -4, 5])
        let expected = (a.grad!.scalars + b.grad!.scalars).reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        XCTAssertEqual(Gradients.globalNorm([a, b]), expected, accuracy: 1e-6 * expected)
        XCTAssertEqual(Gradients.globalNorm([a, b]), Gradients.globalNorm([a, b]), "deterministic")
    }

    func testVectorUpdateEqualsScalarFormulaBitForBit() throws {
        // 19 elements: two 8-lane vectors and a 3-element scalar tail, with clipping and decay.
        var rng = RandomGenerator(seed: 11)
        let p = Parameter("w", Tensor.randomNormal([19], std: 1, using: &rng))
        let hyper = AdamW.Hyperparameters(lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1)
        let opt = AdamW([("w", p)], hyper: hyper, decay: { _, _ in true })
        var ref = p.value.scalars, m = [Float](repeating: 0, count: 19), v = m
        for step in 1...3 {
            let g = Tensor.randomNormal([19], std: 2, using: &rng)
            p.grad = g
            let scale: Float = step == 2 ? 0.5 : 1
            opt.step(lr: 1e-2, gradScale: scale)
            let bc1 = 1 - powf(0.9, Float(step)), bc2Sqrt = (1 - powf(0.95, Float(step))).squareRoot()
            for j in 0..<19 {
                let gj = scale == 1 ? g.scalars[j] : g.scalars[j] * scale
                let pj = ref[j] * (1 - 1e-2 * 0.1)
                m[j] = m[j] + (1 - 0.9) * (gj - m[j])
                v[j] = 0.95 * v[j] + (1 - 0.95) * gj * gj
                ref[j] = pj - (1e-2 / bc1) * (m[j] / (v[j].squareRoot() / bc2Sqrt + 1e-8))
            }
            XCTAssertEqual(p.value.scalars, ref, "step \(step)")
        }
    }
}
