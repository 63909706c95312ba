import FactorlabAutograd
import FactorlabGPT2
import FactorlabLayers
import FactorlabOptim
import FactorlabTraining
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

    /// Profiles `repeats` forward passes (after one warm-up) on random token ids: the model's one
    /// forward path, each component timed by a ``ForwardTimer``.
    public static func run(model: GPT2Model, batch: Int, seqLen: Int, repeats: Int = 3, trainStep: Bool = false) throws -> Report {
        let c = model.config
        guard seqLen <= c.nPositions else { throw GPT2Error.input("profile: sequence length \(seqLen) exceeds the context \(c.nPositions)") }
        var rng = RandomGenerator(seed: 1)
        let ids = (0..<(batch * seqLen)).map { _ in Int32(rng.next() % UInt64(c.vocabSize)) }
        let costs = model.costs(seqLen: seqLen)
        let tokens = Double(batch * seqLen)
        let timer = ForwardTimer()
        var total = 0.0
        for r in 0...repeats {
            if r == 1 { timer.reset() }
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try Tape.withoutRecording { try model.logits(ids, batch: batch, seqLen: seqLen, timer: timer) }
            if r > 0 { total += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
        }
        let flops: [ForwardComponent: Double] = [
            .embeddings: Double(costs.embeddings) * tokens, .layerNorm: Double(costs.layerNorm) * tokens,
            .qkvProjection: 2 * Double(costs.qkv) * tokens, .attentionCore: 2 * Double(costs.attentionCore) * tokens,
            .outputProjection: 2 * Double(costs.attentionProjection) * tokens, .mlp: 2 * Double(costs.mlp) * tokens,
            .lmHead: 2 * Double(costs.lmHead) * tokens,
        ]
        let components = ForwardComponent.allCases.map {
            Component(name: $0.rawValue, seconds: (timer.seconds[$0] ?? 0) / Double(repeats), flops: flops[$0]!)
        }
        var report = Report(components: components, totalSeconds: total / Double(repeats), tokens: batch * seqLen,
                            trainStepSeconds: trainStep ? 0 : nil, trainStepFLOPs: trainStep ? costs.trainingFLOPs * tokens : nil)
        if trainStep { try profileTrainingStep(model: model, ids: ids, batch: batch, seqLen: seqLen, repeats: repeats, into: &report) }
        return report
    }

    /// Times training steps (after one warm-up) operation by operation: the pretraining step
    /// itself (``OptimizerStep``, clipping at 1) on a profiled tape. The weights are restored
    /// afterwards.
    static func profileTrainingStep(model: GPT2Model, ids: [Int32], batch: Int, seqLen: Int, repeats: Int,
                                    into report: inout Report) throws {
        let targets = ids.map { ($0 + 1) % Int32(model.config.vocabSize) }
        let saved = model.parameters.map(\.value)
        defer { for (p, v) in zip(model.parameters, saved) { p.value = v } }
        let optimizer = AdamW(model.namedParameters, hyper: .init(lr: 1e-4))
        let step = OptimizerStep(optimizer: optimizer, schedule: LRSchedule(peak: 1e-4, totalSteps: 1 << 30, decay: .constant), clipNorm: 1)
        let profile = OperationProfile()
        step.profile = profile
        let microBatch = TokenBatch(inputs: ids, targets: targets, batch: batch, seqLen: seqLen)
        var steps = 0.0, norms = 0.0, updates = 0.0
        for r in 0...max(1, repeats) {
            if r == 1 { profile.reset() }
            let result = try step.run(step: r, model: model, microBatches: [microBatch], dropoutKey: nil)
            if r > 0 { steps += result.forwardBackwardSeconds; norms += result.normSeconds; updates += result.updateSeconds }
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
