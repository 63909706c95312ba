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
        let step = LanguageModelStep(model: model, optimizer: opt,
                                     schedule: LRSchedule(peak: 3e-3, warmupSteps: 3, totalSteps: 10, decay: .cosine, floor: 1e-4),
                                     clipNorm: 1.0)
        let (b, t) = (2, 8)
        for i in 0..<10 {
            let chunk = Array(tokens[(i * b * t)...(i * b * t + b * t)])
            let batch = TokenBatch(inputs: Array(chunk.dropLast()), targets: Array(chunk.dropFirst()), batch: b, seqLen: t)
            let r = try step.run(step: i, microBatches: [batch], dropoutKey: nil)
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
}
