import FactorlabLayers
import Foundation

extension GPT2Config {
    /// The configuration as a JSON object (stored in checkpoints as the `model_config` attribute).
    /// Keys follow Hugging Face's names where they exist; `mlp` is the per-layer kind spec.
    public var jsonObject: [String: Any] {
        var obj: [String: Any] = [
            "n_layer": nLayer, "n_head": nHead, "n_embd": nEmbd, "n_positions": nPositions, "vocab_size": vocabSize,
            "n_inner": nInner, "layer_norm_epsilon": Double(layerNormEpsilon), "embd_pdrop": Double(embdDropout),
            "attn_pdrop": Double(attnDropout), "resid_pdrop": Double(residDropout), "mlp": mlpSpec, "num_labels": numLabels,
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
        guard let obj = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw GPT2Error.modelFile(file: source, message: "model config is not a JSON object")
        }
        func int(_ key: String) throws -> Int {
            guard let v = obj[key] as? Int else {
                throw GPT2Error.modelFile(file: source, message: "model config key '\(key)' must be an integer")
            }
            return v
        }
        func float(_ key: String) throws -> Float {
            guard let v = obj[key] as? Double else {
                throw GPT2Error.modelFile(file: source, message: "model config key '\(key)' must be a number")
            }
            return Float(v)
        }
        self.init(nLayer: try int("n_layer"), nHead: try int("n_head"), nEmbd: try int("n_embd"),
                  nPositions: try int("n_positions"), vocabSize: try int("vocab_size"), nInner: try int("n_inner"))
        layerNormEpsilon = try float("layer_norm_epsilon")
        embdDropout = try float("embd_pdrop")
        attnDropout = try float("attn_pdrop")
        residDropout = try float("resid_pdrop")
        numLabels = try int("num_labels")
        if let pad = obj["pad_token_id"] as? Int { padTokenID = Int32(pad) }
        guard let spec = obj["mlp"] as? String else {
            throw GPT2Error.modelFile(file: source, message: "model config key 'mlp' must be a string such as \"dense\" or \"monarch:4@6-11\"")
        }
        do { mlp = try GPT2Config.mlpKinds(spec, layers: nLayer) } catch {
            throw GPT2Error.modelFile(file: source, message: "model config 'mlp': \(error)")
        }
        do { try validate() } catch { throw GPT2Error.modelFile(file: source, message: "\(error)") }
    }
}
