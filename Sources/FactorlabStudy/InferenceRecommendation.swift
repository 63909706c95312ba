import Foundation

/// One way to serve a trained size: a family at a size with its weights in float32, bf16 or int8,
/// with what it costs (measured after training, `run.json` -> `inference` and its `quantized`
/// variants) and its validation loss as served. Means over the seeds that measured it.
public struct InferenceArm: Codable, Equatable, Sendable {
    public var family: String
    public var size: String
    public var weights: String
    public var latencyMsPerToken: Double
    public var weightBytes: Double
    public var valLoss: Double
    public var seeds: Int

    public var label: String {
        (family == "dense" ? "dense \(size)" : "\(size) \(family)") + (weights == "float32" ? "" : " with \(weights) weights")
    }
    /// The study's baseline: a plain (smaller) GPT-2, dense and float32.
    public var isPlainDense: Bool { family == "dense" && weights == "float32" }

    enum CodingKeys: String, CodingKey {
        case family, size, weights, latencyMsPerToken = "latency_ms_per_token", weightBytes = "weight_bytes", valLoss = "val_loss", seeds
    }
}

/// The recommendation for an inference budget: at most `budget` of latency per generated token, or
/// of bytes of weights (what a small device must hold), the arm with the lowest validation loss.
public struct InferenceRecommendation: Codable, Equatable, Sendable {
    public enum Axis: String, Codable, Sendable, CaseIterable {
        case latency = "latency_ms_per_token"
        case weightBytes = "weight_bytes"
    }

    public var axis: Axis
    public var budget: Double
    public var best: InferenceArm?
    /// The best plain dense float32 arm within the budget (the "smaller GPT-2" answer).
    public var bestPlainDense: InferenceArm?
    public var sentence: String

    enum CodingKeys: String, CodingKey { case axis, budget, best, bestPlainDense = "best_plain_dense", sentence }

    /// Every (size, family, weights) arm that measured its inference cost and validation loss.
    static func arms(_ groups: [RunGroup]) -> [InferenceArm] {
        var out: [InferenceArm] = []
        for g in groups {
            var byWeights: [String: [InferenceRecord]] = [:]
            for run in g.runs {
                guard let r = run.config.inference else { continue }
                for v in [r] + (r.quantized ?? []) where v.valLoss != nil && v.weightBytes != nil {
                    byWeights[v.weightPrecision ?? "float32", default: []].append(v)
                }
            }
            for (weights, records) in byWeights {
                let n = Double(records.count)
                out.append(InferenceArm(family: g.key.family, size: g.key.model.sizeLabel, weights: weights,
                                        latencyMsPerToken: records.reduce(0) { $0 + $1.latencyMsPerToken } / n,
                                        weightBytes: records.reduce(0) { $0 + Double($1.weightBytes!) } / n,
                                        valLoss: records.reduce(0) { $0 + $1.valLoss! } / n, seeds: records.count))
            }
        }
        return out.sorted { ($0.valLoss, $0.label) < ($1.valLoss, $1.label) }
    }

    /// Four log-spaced budgets on `axis` from the cheapest arm to the dearest (two significant digits).
    static func budgets(_ arms: [InferenceArm], axis: Axis) -> [Double] {
        let values = arms.map { value($0, axis) }
        guard let lo = values.min(), let hi = values.max(), lo > 0 else { return [] }
        var out: [Double] = []
        for x in Stats.logSpaced(lo, hi, count: 4) {
            let scale = pow(10, floor(log10(x)) - 1)
            let rounded = (x / scale).rounded(.up) * scale // up, so the cheapest arm fits its own budget
            if out.last != rounded { out.append(rounded) }
        }
        return out
    }

    static func value(_ arm: InferenceArm, _ axis: Axis) -> Double {
        axis == .latency ? arm.latencyMsPerToken : arm.weightBytes
    }

    static func describe(_ x: Double, _ axis: Axis) -> String {
        axis == .latency ? "\(Fmt.fixed(x, 3)) ms per generated token" : "\(Fmt.fixed(x / 1_048_576, 2)) MiB of weights"
    }

    /// The best arm within `budget` on `axis`, against the best plain dense float32 arm.
    static func make(budget: Double, axis: Axis, arms: [InferenceArm]) -> InferenceRecommendation {
        let fits = arms.filter { value($0, axis) <= budget * (1 + 1e-9) }  // arms is sorted by loss
        let best = fits.first, dense = fits.first { $0.isPlainDense }
        let at = "With at most \(describe(budget, axis))"
        let sentence: String
        switch (best, dense) {
        case let (b?, d?) where b == d:
            sentence = "\(at), a plain dense GPT-2 is best: \(d.label), val loss \(Fmt.loss(d.valLoss)) (\(describe(value(d, axis), axis)))."
        case let (b?, d?):
            sentence = "\(at), use \(b.label) instead of dense \(d.size): val loss \(Fmt.loss(b.valLoss)) vs \(Fmt.loss(d.valLoss)) "
                + "(\(describe(value(b, axis), axis)) vs \(describe(value(d, axis), axis)))."
        case let (b?, nil):
            sentence = "\(at), no plain dense GPT-2 fits; the best arm is \(b.label), val loss \(Fmt.loss(b.valLoss))."
        case (nil, _):
            sentence = "\(at), no measured arm fits."
        }
        return InferenceRecommendation(axis: axis, budget: budget, best: best, bestPlainDense: dense, sentence: sentence)
    }

    /// Recommendations on both inference axes for the runs' measured arms.
    public static func all(_ groups: [RunGroup]) -> (arms: [InferenceArm], recommendations: [InferenceRecommendation]) {
        let a = arms(groups)
        let recs = Axis.allCases.flatMap { axis in budgets(a, axis: axis).map { make(budget: $0, axis: axis, arms: a) } }
        return (a, recs)
    }
}
