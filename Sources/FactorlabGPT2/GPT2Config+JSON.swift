import FactorlabLayers
import FactorlabRecords
import Foundation

extension GPT2Config {
    /// The configuration as a JSON object (stored in checkpoints as the `model_config` attribute).
    /// Keys follow Hugging Face's names where they exist; `linear` is the spec of every linear
    /// layer (``LinearPlan``) and `mlp` the MLP part alone (what files before per-site kinds held).
    public var jsonObject: [String: Any] {
        var obj: [String: Any] = [
            "n_layer": nLayer, "n_head": nHead, "n_embd": nEmbd, "n_positions": nPositions, "vocab_size": vocabSize,
            "n_inner": nInner, "layer_norm_epsilon": Double(layerNormEpsilon), "embd_pdrop": Double(embdDropout),
            "attn_pdrop": Double(attnDropout), "resid_pdrop": Double(residDropout), "mlp": mlpSpec, "linear": linearSpec,
            "num_labels": numLabels,
        ]
        if let pad = padTokenID { obj["pad_token_id"] = Int(pad) }
        return obj
    }

    /// Compact JSON text of `jsonObject` with sorted keys.
    public var jsonString: String {
        let data = (try? JSONSerialization.data(withJSONObject: jsonObject, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    /// Parses `jsonString` / `jsonObject`; `source` names where it came from in errors.
    public init(json text: String, source: String) throws {
        let fields = try ConfigFields(Data(text.utf8), file: source, what: "model config")
        self.init(nLayer: try fields.int("n_layer"), nHead: try fields.int("n_head"), nEmbd: try fields.int("n_embd"),
                  nPositions: try fields.int("n_positions"), vocabSize: try fields.int("vocab_size"), nInner: try fields.int("n_inner"))
        layerNormEpsilon = try fields.float("layer_norm_epsilon")
        embdDropout = try fields.float("embd_pdrop")
        attnDropout = try fields.float("attn_pdrop")
        residDropout = try fields.float("resid_pdrop")
        numLabels = try fields.int("num_labels")
        padTokenID = try fields.optionalTokenID("pad_token_id")
        if !fields.isAbsent("linear") {
            guard let spec = fields.object["linear"] as? String else {
                throw fields.error("key 'linear' must be a string such as \"dense\" or \"mlp=monarch:4,attn=monarch:4\"")
            }
            do { linear = try LinearPlan.parse(spec, layers: nLayer) } catch {
                throw GPT2Error.modelFile(file: source, message: "model config 'linear': \(error)")
            }
        } else {
            guard let spec = fields.object["mlp"] as? String else {
                throw fields.error("key 'mlp' must be a string such as \"dense\" or \"monarch:4@6-11\"")
            }
            do { mlp = try GPT2Config.mlpKinds(spec, layers: nLayer) } catch {
                throw GPT2Error.modelFile(file: source, message: "model config 'mlp': \(error)")
            }
        }
        do { try validate() } catch { throw GPT2Error.modelFile(file: source, message: "\(error)") }
    }
}

/// Typed reads of one model-config JSON object (a checkpoint's `model_config`, a Hugging Face
/// config.json): integers must be whole numbers, and every error names the file and the key.
struct ConfigFields {
    let object: [String: Any]
    let file: String
    /// "model config" or "" (prefix of messages).
    let what: String

    init(_ data: Data, file: String, what: String) throws {
        guard let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw GPT2Error.modelFile(file: file, message: what.isEmpty ? "not a JSON object" : "\(what) is not a JSON object")
        }
        object = obj
        self.file = file
        self.what = what
    }

    func error(_ message: String) -> GPT2Error {
        GPT2Error.modelFile(file: file, message: what.isEmpty ? message : "\(what) \(message)")
    }

    func isAbsent(_ key: String) -> Bool { object[key] == nil || object[key] is NSNull }

    /// An integer (a JSON number with no fraction; `true` is not 1), or nil when absent.
    func optionalInt(_ key: String) throws -> Int? {
        if isAbsent(key) { return nil }
        guard let value = object[key], let n = JSONValues.number(value), let v = Int(exactly: n.doubleValue) else {
            throw error("key '\(key)' must be an integer, got \(describe(object[key] ?? NSNull()))")
        }
        return v
    }

    func int(_ key: String, _ fallback: Int? = nil) throws -> Int {
        if let v = try optionalInt(key) { return v }
        if let fallback { return fallback }
        throw error("key '\(key)' must be an integer, got nothing")
    }

    func float(_ key: String, _ fallback: Float? = nil) throws -> Float {
        if isAbsent(key) {
            if let fallback { return fallback }
            throw error("key '\(key)' is missing (expected a number)")
        }
        guard let value = object[key], let n = JSONValues.number(value), n.doubleValue.isFinite, Float(n.doubleValue).isFinite else {
            throw error("key '\(key)' must be a finite number, got \(describe(object[key] ?? NSNull()))")
        }
        return Float(n.doubleValue)
    }

    func describe(_ value: Any) -> String { JSONValues.describe(value) }

    /// A token id (pad, bos, eos) that fits Int32, or nil when absent.
    func optionalTokenID(_ key: String) throws -> Int32? {
        guard let v = try optionalInt(key) else { return nil }
        guard let id = Int32(exactly: v), id >= 0 else { throw error("key '\(key)' must be a token id between 0 and \(Int32.max), got \(v)") }
        return id
    }
}
