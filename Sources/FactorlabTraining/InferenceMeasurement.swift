import FactorlabAutograd
import FactorlabGPT2
import FactorlabRecords
import FactorlabTensor
import Foundation

/// The inference cost of a model on this machine, as the study's inference budget needs it:
/// KV-cache generation latency per token at batch 1 (median over the generated tokens, after a
/// prefix), no-grad forward tokens per second at a batch, parameters, bytes of weights read per
/// token, and the peak resident memory while generating.
public enum InferenceMeasurement {
    public struct Options: Sendable {
        /// Prompt length before the timed tokens (capped at half the context).
        public var prefixTokens = 64
        /// Tokens generated and timed.
        public var generatedTokens = 32
        /// Rows and length of the forward measurement (length capped at the context).
        public var forwardBatch = 8
        public var forwardSeqLen = 128
        /// Timed forward passes (after one warm-up); the median is kept.
        public var forwardRepeats = 3
        public init() {}
    }

    /// Measures `model` with token ids drawn from `seed` (the numbers do not depend on the ids).
    public static func measure(_ model: GPT2Model, options: Options = Options(), seed: UInt64 = 7) throws -> InferenceRecord {
        let c = model.config
        var rng = RandomGenerator(seed: seed)
        func ids(_ n: Int) -> [Int32] { (0..<n).map { _ in Int32(rng.next() % UInt64(c.vocabSize)) } }
        let prefix = max(1, min(options.prefixTokens, c.nPositions / 2))
        let newTokens = max(1, min(options.generatedTokens, c.nPositions - prefix))

        // Generation at batch 1. Its memory is the weights as stored plus how far the resident
        // size grows above where it starts (freed blocks the heap kept are returned first).
        let residentBefore = ProcessTuning.startMemoryMeasurement()
        var gaps: [Double] = []
        var last = DispatchTime.now().uptimeNanoseconds
        var unused = RandomGenerator(seed: 0)  // greedy decoding draws nothing
        _ = try model.generate(prompts: [ids(prefix)], rng: &unused, stop: StopRule(maxNewTokens: newTokens + 1, whenFull: .stop),
                               onToken: { _, _ in
            let now = DispatchTime.now().uptimeNanoseconds
            gaps.append(Double(now - last) / 1e6)
            last = now
        })
        let peak = ProcessTuning.peakResidentBytes()
        // The first gap is the prefix's prefill; the others are one cached token each.
        let perToken = Array(gaps.dropFirst())
        let latency = median(perToken.isEmpty ? gaps : perToken)

        let (b, t) = (options.forwardBatch, min(options.forwardSeqLen, c.nPositions))
        let batch = ids(b * t)
        var seconds: [Double] = []
        for r in 0...max(1, options.forwardRepeats) {
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try Tape.withoutRecording { try model.hidden(batch, batch: b, seqLen: t) }
            if r > 0 { seconds.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9) }
        }
        let parameters = model.parameterCount
        var record = InferenceRecord(latencyMsPerToken: latency, peakMemoryBytes: max(peak, 1), prefixTokens: prefix,
                                     forwardTokensPerSecond: Double(b * t) / median(seconds), forwardBatch: b, parameters: parameters,
                                     weightBytes: model.weightBytes, weightPrecision: model.weightFormat.rawValue)
        record.generationMemoryBytes = model.weightBytes + max(0, peak - residentBefore)
        return record
    }

    /// ``measure(_:options:seed:)`` of `model` as it is and of copies with bf16 and int8 weights
    /// (in `quantized`), each with its validation loss from `validate` (the trainer's batches).
    /// `model` itself is left unchanged.
    public static func measureWithQuantized(_ model: GPT2Model, options: Options = Options(),
                                            validate: (GPT2Model) throws -> Double?) throws -> InferenceRecord {
        var record = try measure(model, options: options)
        record.valLoss = try validate(model)
        var variants: [InferenceRecord] = []
        for format in [WeightFormat.bf16, .int8] {
            let copy = try GPT2Model.shapeOnly(model.config)
            let source = Dictionary(model.namedParameters.map { ($0.0, $0.1.value) }, uniquingKeysWith: { a, _ in a })
            try copy.assignParameters(copy: true, missing: { TrainingError.recipe("quantized copy: no tensor for \($0)") },
                                      mismatch: { name, _, _ in TrainingError.recipe("quantized copy: \(name) does not match") }) { name, _ in
                source[name]
            }
            try copy.quantize(format)
            var v = try measure(copy, options: options)
            v.valLoss = try validate(copy)
            variants.append(v)
        }
        record.quantized = variants
        return record
    }

    static func median(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        guard !s.isEmpty else { return .nan }
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
}
