import FactorlabGPT2
import FactorlabTensor

/// Building a sequence-classification model from any loaded GPT-2 (dense or factorized; imported,
/// projected or pretrained here).
public enum ClassifierModel {
    /// A copy of `base` with a `score` head of `numLabels` outputs (1: regression) and `padTokenID`.
    /// Every transformer weight is copied; the head is freshly initialised (N(0, 0.02^2), seeded)
    /// unless `base` already has a head of the same size, which is then kept.
    public static func make(from base: GPT2Model, numLabels: Int, padTokenID: Int32, seed: UInt64) throws -> GPT2Model {
        var config = base.config
        config.numLabels = numLabels
        config.padTokenID = padTokenID
        let model = try GPT2Model(config, seed: seed)
        let source = Dictionary(base.namedParameters.map { ($0.0, $0.1.value) }, uniquingKeysWith: { a, _ in a })
        try model.assignParameters(copy: true, missing: { FinetuneError.model("the base model has no parameter \($0)") },
                                   mismatch: { name, t, p in
            FinetuneError.model("parameter \(name): base shape \(t.shape), classifier needs \(p.value.shape)")
        }) { name, p in
            // A head of the same size is kept; any other head is replaced by the fresh one.
            if name == "score.weight" { return source[name].flatMap { $0.shape == p.shape ? $0 : nil } ?? p.value }
            return source[name]
        }
        return model
    }
}
