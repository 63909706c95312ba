import FactorlabAutograd
import FactorlabGPT2
import FactorlabLayers
import FactorlabOptim
import FactorlabTensor
import Foundation

/// Times a GPT-2 forward pass component by component and counts each component's FLOPs, to see
/// where the compute goes (the source study: about 40:60 attention : MLP at GPT-2 scale, nearer
/// 50:50 for small models, 20:80 after the MLP is factorized).
///
/// "Attention" is the whole attention sub-block: QKV projection, attention core (scores, softmax,
/// weighted values) and output projection; "MLP" is c_fc, GELU and c_proj. Each component is timed
/// inside a real no-grad forward pass, layer after layer, summed over layers.
public enum Profiler {
    public struct Component: Sendable {
        public let name: String
        public var seconds: Double
        public var flops: Double
    }

    public struct Report: Sendable {
        public let components: [Component]
        public let totalSeconds: Double
        public let tokens: Int
        /// Mean time of a training step's forward and backward passes (gradient norm and AdamW
        /// excluded) when requested.
        public var trainStepSeconds: Double?
        public let trainStepFLOPs: Double?
        /// With a training step: time per operation (mean per step, forward and backward), and
        /// the gradient norm and AdamW update that complete a step.
        public var trainOperations: [OperationProfile.Entry] = []
        public var gradNormSeconds: Double?
        public var optimizerSeconds: Double?

        func sum(_ names: Set<String>, _ key: KeyPath<Component, Double>) -> Double {
            components.filter { names.contains($0.name) }.reduce(0) { $0 + $1[keyPath: key] }
        }
        static let attention: Set<String> = ["qkv_projection", "attention_core", "output_projection"]
        static let mlp: Set<String> = ["mlp"]
        public var attentionSeconds: Double { sum(Report.attention, \.seconds) }
        public var mlpSeconds: Double { sum(Report.mlp, \.seconds) }
        public var attentionFLOPs: Double { sum(Report.attention, \.flops) }
        public var mlpFLOPs: Double { sum(Report.mlp, \.flops) }
        /// Attention share of (attention + MLP) time, in percent.
        public var attentionTimeShare: Double { 100 * attentionSeconds / max(attentionSeconds + mlpSeconds, 1e-12) }
        public var attentionFLOPShare: Double { 100 * attentionFLOPs / max(attentionFLOPs + mlpFLOPs, 1e-12) }
    }

    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    /// Profiles `repeats` forward passes (after one warm-up) on random token ids.
    public static func run(model: GPT2Model, batch: Int, seqLen: Int, repeats: Int = 3, trainStep: Bool = false) throws -> Report {
        let c = model.config
        guard seqLen <= c.nPositions else { throw GPT2Error.input("profile: sequence length \(seqLen) exceeds the context \(c.nPositions)") }
        var rng = RandomGenerator(seed: 1)
        let ids = (0..<(batch * seqLen)).map { _ in Int32(rng.next() % UInt64(c.vocabSize)) }
        let names = ["embeddings", "layer_norm", "qkv_projection", "attention_core", "output_projection", "mlp", "lm_head"]
        var seconds = [String: Double](uniqueKeysWithValues: names.map { ($0, 0) })
        let costs = model.costs(seqLen: seqLen)
        let tokens = Double(batch * seqLen)
        var total = 0.0
        for r in 0...repeats {
            var t = [String: Double](uniqueKeysWithValues: names.map { ($0, 0) })
            func timed<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
                let s = now()
                let v = try body()
                t[name, default: 0] += now() - s
                return v
            }
            let start = now()
            try Tape.withoutRecording {
                var x = try timed("embeddings") {
                    try model.wte(ids, shape: [batch, seqLen]) + model.wpe.weight.variable.slice(axis: 0, 0..<seqLen)
                }
                for block in model.blocks {
                    let h = try timed("layer_norm") { try block.ln1(x) }
                    let qkv = try timed("qkv_projection") { try block.cAttn(h) }
                    let a = try timed("attention_core") { try Variable.causalSelfAttention(qkv, heads: c.nHead) }
                    let o = try timed("output_projection") { try block.attnProj(a) }
                    x = try x + o
                    let h2 = try timed("layer_norm") { try block.ln2(x) }
                    let m = try timed("mlp") { try block.mlpProj(try block.cFc(h2).gelu()) }
                    x = try x + m
                }
                let f = try timed("layer_norm") { try model.lnF(x) }
                _ = try timed("lm_head") { try Variable.linear(f, weight: model.wte.weight.variable, bias: nil) }
            }
            if r > 0 {
                total += now() - start
                for (k, v) in t { seconds[k, default: 0] += v }
            }
        }
        let flops: [String: Double] = [
            "embeddings": Double(costs.embeddings) * tokens, "layer_norm": Double(costs.layerNorm) * tokens,
            "qkv_projection": 2 * Double(costs.qkv) * tokens, "attention_core": 2 * Double(costs.attentionCore) * tokens,
            "output_projection": 2 * Double(costs.attentionProjection) * tokens, "mlp": 2 * Double(costs.mlp) * tokens,
            "lm_head": 2 * Double(costs.lmHead) * tokens,
        ]
        var report = Report(components: names.map { Component(name: $0, seconds: seconds[$0]! / Double(repeats), flops: flops[$0]!) },
                            totalSeconds: total / Double(repeats), tokens: batch * seqLen,
                            trainStepSeconds: trainStep ? 0 : nil, trainStepFLOPs: trainStep ? costs.trainingFLOPs * tokens : nil)
        if trainStep { try profileTrainingStep(model: model, ids: ids, batch: batch, seqLen: seqLen, repeats: repeats, into: &report) }
        return report
    }

    /// Times training steps (after one warm-up) operation by operation: forward and backward
    /// through a profiled tape, then the global gradient norm and an AdamW update, as a
    /// pretraining step does them. The weights are restored afterwards.
    static func profileTrainingStep(model: GPT2Model, ids: [Int32], batch: Int, seqLen: Int, repeats: Int,
                                    into report: inout Report) throws {
        let targets = ids.map { ($0 + 1) % Int32(model.config.vocabSize) }
        let saved = model.parameters.map(\.value)
        defer { for (p, v) in zip(model.parameters, saved) { p.value = v } }
        let optimizer = AdamW(model.namedParameters, hyper: .init(lr: 1e-4))
        let profile = OperationProfile()
        var steps = 0.0, norms = 0.0, updates = 0.0
        let params = model.parameters
        for r in 0...max(1, repeats) {
            if r == 1 { profile.reset() }
            let s = now()
            let tape = Tape(profile: profile)
            let loss = try tape.record { try model.loss(ids, targets: targets, batch: batch, seqLen: seqLen) }
            try tape.backward(loss)
            let s1 = now()
            let norm = Gradients.globalNorm(params)
            let s2 = now()
            optimizer.step(gradScale: Gradients.clipCoefficient(norm: norm, maxNorm: 1))
            optimizer.zeroGrad()
            let s3 = now()
            if r > 0 { steps += s1 - s; norms += s2 - s1; updates += s3 - s2 }
        }
        let n = Double(max(1, repeats))
        report.trainStepSeconds = steps / n
        report.gradNormSeconds = norms / n
        report.optimizerSeconds = updates / n
        report.trainOperations = profile.operations.map { e in
            var e = e
            e.forwardSeconds /= n
            e.backwardSeconds /= n
            e.count = Int((Double(e.count) / n).rounded())
            return e
        }
    }
}
