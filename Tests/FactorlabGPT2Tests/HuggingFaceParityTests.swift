import FactorlabAutograd
import FactorlabGPT2
import FactorlabLayers
import FactorlabSafetensors
import FactorlabTensor
import FactorlabTestSupport
import XCTest

/// A random-init transformers GPT-2 (Tools/reference/make_gpt2_fixtures.py) loaded from its
/// Hugging Face folder: logits within 1e-4 absolute, loss within 1e-5 relative, every parameter
/// gradient within 1e-3 relative (plus 1e-6 absolute for entries near zero).
final class HuggingFaceParityTests: XCTestCase {
    func fixtureURL(_ name: String) throws -> URL {
        guard let url = Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures") else {
            throw GPT2Error.input("fixture \(name) missing: re-run `python3 Tools/reference/make_gpt2_fixtures.py`")
        }
        return url
    }

    func testLanguageModelLogitsLossAndGradients() throws {
        let checked = try compareLanguageModel("tiny-gpt2")
        XCTAssertEqual(checked, 2 + 12 * 2 + 2, "every parameter compared")
    }

    /// Every block site structured (BTT QKV, low-rank attention output, Monarch MLP): the
    /// transformers model with its linear modules replaced by einsum references.
    func testFactorizedAttentionAndMLPMatchTransformersWithReferenceModules() throws {
        let checked = try compareLanguageModel("tiny-gpt2-factorized")
        XCTAssertEqual(checked, 2 + (4 + 3 + 3 + 3 + 3) * 2 + 2, "every parameter compared")
    }

    /// Logits, loss and every parameter gradient of the folder `name` against its reference file;
    /// returns the number of parameters compared.
    func compareLanguageModel(_ name: String) throws -> Int {
        let model = try GPT2Model.loadHuggingFace(try fixtureURL(name))
        let ref = try SafetensorsFile.read(try fixtureURL("\(name)-reference.safetensors"))
        let ids = try ref.tensor("ids").scalars.map { Int32($0) }
        let (b, t) = (2, 16)
        var targets = [Int32](repeating: -100, count: ids.count)
        for r in 0..<b { for p in 0..<(t - 1) { targets[r * t + p] = ids[r * t + p + 1] } }
        let tape = Tape()
        let (logits, loss) = try tape.record { () -> (Variable, Variable) in
            let l = try model.logits(ids, batch: b, seqLen: t)
            return (l, try Variable.crossEntropy(logits: l, targets: targets))
        }
        assertClose(logits.value, try ref.tensor("logits"), rtol: 0, atol: 1e-4, "logits")
        let refLoss = try ref.tensor("loss").item
        XCTAssertEqual(loss.value.item, refLoss, accuracy: 1e-5 * refLoss, "loss")
        try tape.backward(loss)
        var checked = 0
        for (name, p) in model.namedParameters {
            let g = try ref.tensor("grad." + name)
            assertClose(p.grad!, g, rtol: 1e-3, atol: 1e-6, "grad \(name)")
            checked += 1
        }
        return checked
    }

    func testSequenceClassificationHead() throws {
        let model = try GPT2Model.loadHuggingFace(try fixtureURL("tiny-gpt2-cls"))
        XCTAssertEqual(model.config.numLabels, 3)
        XCTAssertEqual(model.config.padTokenID, 0)
        let ref = try SafetensorsFile.read(try fixtureURL("tiny-gpt2-cls-reference.safetensors"))
        let ids = try ref.tensor("ids").scalars.map { Int32($0) }
        XCTAssertEqual(model.lastTokenIndices(ids, batch: 3, seqLen: 10), [6, 9, 3])
        let labels = try ref.tensor("labels").scalars.map { Int32($0) }
        let tape = Tape()
        let (logits, loss) = try tape.record { () -> (Variable, Variable) in
            let l = try model.classify(ids, batch: 3, seqLen: 10)
            return (l, try Variable.crossEntropy(logits: l, targets: labels))
        }
        assertClose(logits.value, try ref.tensor("logits"), rtol: 0, atol: 1e-4, "classification logits")
        XCTAssertEqual(loss.value.item, try ref.tensor("loss").item, accuracy: 1e-5)
        try tape.backward(loss)
        for (name, p) in model.namedParameters {
            assertClose(p.grad!, try ref.tensor("grad." + name), rtol: 1e-3, atol: 1e-6, "grad \(name)")
        }
    }

    func testSaveAndReloadRoundTrip() throws {
        let model = try GPT2Model.loadHuggingFace(try fixtureURL("tiny-gpt2"))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("factorlab-hf-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try model.saveHuggingFace(dir)
        let again = try GPT2Model.loadHuggingFace(dir)
        for ((n1, p1), (_, p2)) in zip(model.namedParameters, again.namedParameters) {
            XCTAssertEqual(p1.value.scalars, p2.value.scalars, n1)
        }
        let st = try SafetensorsFile.read(dir.appendingPathComponent("model.safetensors"))
        XCTAssertEqual(st.info("transformer.h.0.attn.c_attn.weight")?.shape, [32, 96], "Conv1D orientation [in, out] on disk")
    }

    func testMissingAndMisshapedTensorsAreNamed() throws {
        let src = try fixtureURL("tiny-gpt2")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("factorlab-bad-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.copyItem(at: src.appendingPathComponent("config.json"), to: dir.appendingPathComponent("config.json"))
        let st = try SafetensorsFile.read(src.appendingPathComponent("model.safetensors"))
        var tensors = try st.names.filter { $0 != "transformer.h.1.ln_2.bias" }.map { ($0, try st.tensor($0)) }
        try SafetensorsFile.write(tensors, to: dir.appendingPathComponent("model.safetensors"))
        XCTAssertThrowsError(try GPT2Model.loadHuggingFace(dir)) { e in
            XCTAssertTrue("\(e)".contains("tensor 'h.1.ln_2.bias' is missing"), "\(e)")
        }
        tensors = try st.names.map { ($0, $0 == "transformer.h.0.mlp.c_fc.weight" ? Tensor(zeros: [32, 100]) : try st.tensor($0)) }
        try SafetensorsFile.write(tensors, to: dir.appendingPathComponent("model.safetensors"))
        XCTAssertThrowsError(try GPT2Model.loadHuggingFace(dir)) { e in
            XCTAssertTrue("\(e)".contains("tensor 'transformer.h.0.mlp.c_fc.weight' has shape [32, 100], the config needs [32, 128]"), "\(e)")
        }
    }
}
