import FactorlabAutograd
import FactorlabLayers
import FactorlabSafetensors
import FactorlabTensor
import Foundation

// Reading and writing Hugging Face GPT-2 model folders: config.json and model.safetensors.
//
// Hugging Face stores the attention and MLP projections as Conv1D weights, [in, out]; Factorlab
// keeps every linear weight [out, in] (torch.nn.Linear), so those four weights per block are
// transposed on the way in and out. Keys may carry the `transformer.` prefix (GPT2LMHeadModel)
// or not (GPT2Model); the causal-mask buffers `attn.bias` / `attn.masked_bias` are ignored, and
// `lm_head.weight` is the tied token embedding unless config.json says `tie_word_embeddings: false`
// (an untied head). Structured layers exist only in Factorlab: their kinds are recorded as
// `factorlab_linear` in config.json (read back here; transformers cannot load them), and
// `export-hf --densify` writes their dense equivalent instead.

extension GPT2Config {
    /// Reads a Hugging Face GPT-2 config.json.
    public static func huggingFace(_ url: URL) throws -> GPT2Config {
        let file = url.path
        guard let data = FileManager.default.contents(atPath: file) else {
            throw GPT2Error.modelFile(file: file, message: "cannot read the file")
        }
        let fields = try ConfigFields(data, file: file, what: "")
        let json = fields.object
        func int(_ key: String, _ fallback: Int? = nil) throws -> Int { try fields.int(key, fallback) }
        func float(_ key: String, _ fallback: Float) throws -> Float { try fields.float(key, fallback) }
        if let type = json["model_type"] as? String, type != "gpt2" {
            throw GPT2Error.modelFile(file: file, message: "model_type is '\(type)', expected 'gpt2'")
        }
        if let act = json["activation_function"] as? String, !["gelu_new", "gelu_pytorch_tanh"].contains(act) {
            throw GPT2Error.modelFile(file: file, message: "activation_function '\(act)' is not supported (GPT-2 uses gelu_new, the tanh approximation)")
        }
        for flag in ["scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn", "add_cross_attention"] where (json[flag] as? Bool) == true {
            throw GPT2Error.modelFile(file: file, message: "'\(flag)': true is not supported (Factorlab implements the original GPT-2 attention)")
        }
        if let scale = json["scale_attn_weights"] as? Bool, !scale {
            throw GPT2Error.modelFile(file: file, message: "'scale_attn_weights': false is not supported (attention scores are scaled by 1/sqrt(head size))")
        }
        let nEmbd = try int("n_embd")
        var config = GPT2Config(nLayer: try int("n_layer"), nHead: try int("n_head"), nEmbd: nEmbd,
                                nPositions: try int("n_positions", int("n_ctx", 1024)),
                                vocabSize: try int("vocab_size"), nInner: try fields.optionalInt("n_inner"))
        config.layerNormEpsilon = try float("layer_norm_epsilon", 1e-5)
        config.embdDropout = try float("embd_pdrop", 0.1)
        config.attnDropout = try float("attn_pdrop", 0.1)
        config.residDropout = try float("resid_pdrop", 0.1)
        if let spec = json["factorlab_linear"] as? String {
            do { config.linear = try LinearPlan.parse(spec, layers: config.nLayer) } catch {
                throw GPT2Error.modelFile(file: file, message: "factorlab_linear '\(spec.prefix(80))': \(error)")
            }
        } else if let spec = json["factorlab_mlp"] as? String {
            config.mlp = try GPT2Config.mlpKinds(spec, layers: config.nLayer)
        }
        if json["tie_word_embeddings"] as? Bool == false, config.linear.head == .tied { config.linear.head = .untied(.dense) }
        if let archs = json["architectures"] as? [String], archs.contains("GPT2ForSequenceClassification") {
            let fromMap = (json["id2label"] as? [String: Any])?.count
            config.numLabels = try fromMap ?? int("num_labels", 2)
        }
        config.padTokenID = try fields.optionalTokenID("pad_token_id")
        do { try config.validate() } catch let e as GPT2Error { throw GPT2Error.modelFile(file: file, message: "\(e)") }
        return config
    }

    /// The config.json Hugging Face writes for this model.
    public func huggingFaceJSON() -> [String: Any] {
        var obj: [String: Any] = [
            "model_type": "gpt2", "n_layer": nLayer, "n_head": nHead, "n_embd": nEmbd, "n_positions": nPositions,
            "n_ctx": nPositions, "vocab_size": vocabSize, "n_inner": nInner, "layer_norm_epsilon": Double(layerNormEpsilon),
            "activation_function": "gelu_new", "embd_pdrop": Double(embdDropout), "attn_pdrop": Double(attnDropout),
            "resid_pdrop": Double(residDropout), "initializer_range": 0.02, "bos_token_id": vocabSize - 1,
            "eos_token_id": vocabSize - 1, "tie_word_embeddings": !isUntied,
            "architectures": [numLabels > 0 ? "GPT2ForSequenceClassification" : "GPT2LMHeadModel"],
        ]
        if numLabels > 0 {
            obj["num_labels"] = numLabels
            obj["id2label"] = Dictionary(uniqueKeysWithValues: (0..<numLabels).map { ("\($0)", "LABEL_\($0)") })
            obj["label2id"] = Dictionary(uniqueKeysWithValues: (0..<numLabels).map { ("LABEL_\($0)", $0) })
        }
        if let pad = padTokenID { obj["pad_token_id"] = Int(pad) }
        if linear.head != .tied && linear.head != .untied(.dense) || !LinearSite.allCases.allSatisfy({ linear[$0].allSatisfy { $0 == .dense } }) {
            obj["factorlab_linear"] = linearSpec
        }
        return obj
    }

    var isUntied: Bool { if case .untied = linear.head { return true } else { return false } }
}

extension GPT2Model {
    /// True for the four projection weights Hugging Face stores as Conv1D ([in, out]).
    static func isConv1DWeight(_ name: String) -> Bool {
        name.hasSuffix(".weight") && (name.contains(".attn.c_attn.") || name.contains(".attn.c_proj.")
            || name.hasSuffix(".mlp.c_fc.weight") || name.hasSuffix(".mlp.c_proj.weight"))
    }

    /// Loads a Hugging Face GPT-2 folder (config.json + model.safetensors).
    public static func loadHuggingFace(_ directory: URL) throws -> GPT2Model {
        let config = try GPT2Config.huggingFace(directory.appendingPathComponent("config.json"))
        let file = directory.appendingPathComponent("model.safetensors")
        guard FileManager.default.fileExists(atPath: file.path) else {
            throw GPT2Error.modelFile(file: file.path, message: "missing (only safetensors weights are read; convert pytorch_model.bin with transformers first)")
        }
        do { try config.checkFitsInMemory(training: false) } catch let e as GPT2Error {
            throw GPT2Error.modelFile(file: directory.appendingPathComponent("config.json").path, message: "\(e)")
        }
        let st = try SafetensorsFile.read(file)
        let model = try GPT2Model.shapeOnly(config)
        var keys: [String: String] = [:]
        try model.assignParameters(
            missing: { GPT2Error.modelFile(file: file.path, message: "tensor '\($0)' is missing (also looked for 'transformer.\($0)')") },
            mismatch: { name, t, p in
                let conv = isConv1DWeight(name)
                let stored = conv ? Array(t.shape.reversed()) : t.shape, expected = conv ? Array(p.shape.reversed()) : p.shape
                return GPT2Error.modelFile(file: file.path, message: "tensor '\(keys[name] ?? name)' has shape \(describe(stored)), the config needs \(describe(expected))")
            }) { name, p in
            guard let key = [name, "transformer." + name].first(where: { st.contains($0) }) else { return nil }
            keys[name] = key
            let t = try st.tensor(key)
            if let bad = t.firstNonFinite() {
                throw GPT2Error.modelFile(file: file.path, message: "tensor '\(key)' holds a non-finite value (\(t.scalar(at: bad))) at element \(bad)")
            }
            guard isConv1DWeight(name) else { return t }
            guard t.rank == 2 else {
                throw GPT2Error.modelFile(file: file.path, message: "tensor '\(key)' has shape \(describe(t.shape)), expected a 2-D Conv1D weight [in, out] = \(describe(p.shape.reversed()))")
            }
            return t.transposed().contiguous()
        }
        if !config.isUntied, let table = model.wte, st.contains("lm_head.weight") {
            let t = try st.tensor("lm_head.weight")
            guard t.shape == table.weight.shape else {
                throw GPT2Error.modelFile(file: file.path, message: "tensor 'lm_head.weight' has shape \(describe(t.shape)), expected the tied embedding's \(describe(table.weight.shape))")
            }
        }
        return model
    }

    /// Writes config.json and model.safetensors that `transformers` loads as GPT2LMHeadModel (or
    /// GPT2ForSequenceClassification). Only dense layers exist in Hugging Face's GPT-2: a model with
    /// structured layers or a factorized embedding is refused (export its dense equivalent).
    public func saveHuggingFace(_ directory: URL) throws {
        for site in LinearSite.allCases {
            if let l = config.linear[site].firstIndex(where: { $0 != .dense }) {
                throw GPT2Error.config("layer \(l) \(site.rawValue) is \(config.linear[site][l]); Hugging Face's GPT-2 has dense layers only. Export the dense equivalent (export-hf --densify, denseEquivalent())")
            }
        }
        guard config.linear.head == .tied || config.linear.head == .untied(.dense) else {
            throw GPT2Error.config("the head is \(config.linear.head); Hugging Face's GPT-2 has a dense embedding and head only. Export the dense equivalent (export-hf --densify, denseEquivalent())")
        }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var tensors: [(String, Tensor)] = []
        for (name, p) in namedParameters {
            let key = name == "score.weight" || name == "lm_head.weight" ? name : "transformer." + name
            tensors.append((key, GPT2Model.isConv1DWeight(name) ? p.value.transposed().contiguous() : p.value))
        }
        try SafetensorsFile.write(tensors, metadata: ["format": "pt"], to: directory.appendingPathComponent("model.safetensors"))
        let json = try JSONSerialization.data(withJSONObject: config.huggingFaceJSON(), options: [.prettyPrinted, .sortedKeys])
        try json.write(to: directory.appendingPathComponent("config.json"), options: .atomic)
    }

    /// The same model with every structured layer replaced by its dense matrix (for export): a
    /// factorized embedding becomes E = A B (tied), a structured untied head a dense one.
    public func denseEquivalent() throws -> GPT2Model {
        var cfg = config
        cfg.linear = LinearPlan(layers: cfg.nLayer)
        cfg.linear.head = config.isUntied ? .untied(.dense) : .tied
        let out = try GPT2Model.shapeOnly(cfg)
        try out.copyMatchingParameters(from: self)
        for (i, b) in blocks.enumerated() {
            for site in LinearSite.allCases where b[site].kind != .dense {
                let layer = b[site]
                try out.replace(site, layer: i, with: try DenseLinear(weight: try layer.denseMatrix(), bias: layer.bias?.value.contiguousCopy()))
            }
        }
        if case .tiedLowRank = config.linear.head { out.wte!.weight.value = try tokens.denseTable() }
        if let head = tokens.head, head.kind != .dense, let target = out.tokens.head as? DenseLinear {
            target.weight.value = try head.denseMatrix().contiguousCopy()
        }
        return out
    }
}
