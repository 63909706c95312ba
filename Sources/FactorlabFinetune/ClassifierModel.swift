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
        let source = Dictionary(base.namedParameters.map { ($0.0, $0.1) }, uniquingKeysWith: { a, _ in a })
        for (name, p) in model.namedParameters {
            if name == "score.weight" {
                if let old = source[name], old.value.shape == p.value.shape { p.value = try copy(old.value) }
                continue
            }
            guard let old = source[name] else { throw FinetuneError.model("the base model has no parameter \(name)") }
            guard old.value.shape == p.value.shape else {
                throw FinetuneError.model("parameter \(name): base shape \(old.value.shape), classifier needs \(p.value.shape)")
            }
            p.value = try copy(old.value)
        }
        return model
    }

    /// A copy with its own storage (the optimizer updates values in place).
    static func copy(_ t: Tensor) throws -> Tensor { try Tensor(shape: t.shape, scalars: t.scalars) }
}
