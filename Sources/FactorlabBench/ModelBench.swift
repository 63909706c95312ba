import FactorlabAutograd
import FactorlabGPT2
import FactorlabLayers
import FactorlabOptim
import FactorlabTensor
import FactorlabTraining
import Foundation

/// Whole-model benchmarks: a training step (forward, backward, AdamW), a forward pass and KV-cache
/// generation of GPT-2 models, for the configurations of the performance issue.
public enum ModelBench {
    /// A benchmark configuration: model shape and batch.
    public struct Setup: Sendable {
        public let name: String
        public let nLayer: Int, nEmbd: Int, nHead: Int, vocab: Int, context: Int
        public let batch: Int, seqLen: Int

        public func config(mlp: LinearKind) -> GPT2Config {
            GPT2Config(nLayer: nLayer, nHead: nHead, nEmbd: nEmbd, nPositions: context, vocabSize: vocab, mlp: mlp)
        }

        /// The configuration with every linear layer as `spec` says (``LinearPlan``).
        public func config(linear spec: String) throws -> GPT2Config {
            var c = config(mlp: .dense)
            c.linear = try LinearPlan.parse(spec, layers: nLayer)
            try c.validate()
            return c
        }
    }

    /// The key of a linear spec in figure names: the kind's family for the MLP-only specs of
    /// earlier versions (`dense`, `monarch`, `lowrank`), otherwise the spec with `=` as `-`, `,`
    /// as `+` and no `:` or `.` (`mlp-monarch4+attn-monarch4+head-lowrank256`).
    public static func specKey(_ spec: String) -> String {
        if !spec.contains("="), !spec.contains("@"), !spec.contains(";"), let kind = try? LinearKind(spec: spec) {
            return KernelBench.kindKey(kind)
        }
        return spec.replacingOccurrences(of: "=", with: "-").replacingOccurrences(of: ",", with: "+")
            .replacingOccurrences(of: ":", with: "").replacingOccurrences(of: ".", with: "_")
            .replacingOccurrences(of: "@", with: "at").replacingOccurrences(of: ";", with: "_")
    }

    /// The figure key of a spec with its weights stored as `weights`: ``specKey(_:)``, then
    /// `-bf16` or `-int8` for low-precision weights (`dense-int8`, `monarch-bf16`).
    public static func variantKey(_ spec: String, weights: WeightFormat) -> String {
        specKey(spec) + (weights == .float32 ? "" : "-\(weights.rawValue)")
    }

    /// tiny (4 layers, d 256, 4 heads, vocabulary 8192, B 8, T 128), mini (6, 384, 6, 50257, B 8,
    /// T 128) and gpt2 (124M, B 4, T 128). The same shapes as Tools/bench/compare_models.py.
    public static let setups: [Setup] = [
        Setup(name: "tiny", nLayer: 4, nEmbd: 256, nHead: 4, vocab: 8192, context: 256, batch: 8, seqLen: 128),
        Setup(name: "mini", nLayer: 6, nEmbd: 384, nHead: 6, vocab: 50257, context: 256, batch: 8, seqLen: 128),
        Setup(name: "gpt2", nLayer: 12, nEmbd: 768, nHead: 12, vocab: 50257, context: 1024, batch: 4, seqLen: 128),
    ]

    public static func setup(named name: String) throws -> Setup {
        guard let s = setups.first(where: { $0.name == name }) else {
            throw GPT2Error.config("unknown bench model '\(name)'; expected one of \(setups.map(\.name).joined(separator: ", "))")
        }
        return s
    }

    /// Measures one configuration and linear spec. Keys: `<setup>.<specKey>.<measure>`, e.g.
    /// `tiny.dense.train_tokens_per_s`. `growthSteps` > 0 also runs that many training steps and
    /// reports the resident memory growth between step 100 (or a tenth of the way) and the end.
    /// Each timing takes at least `repeats` runs and at least `minSeconds` (see ``Measurement``).
    /// With `weights` bf16 or int8 the model is quantized first (``GPT2Model/quantize(_:)``) and the
    /// training step, which quantized models do not take, is skipped.
    public static func run(_ setup: Setup, linear spec: String, weights: WeightFormat = .float32, repeats: Int, minSeconds: Double = 3,
                           generateTokens: Int = 96, growthSteps: Int = 0, monarchSerialBlocks: Bool = false,
                           progress: (String) -> Void) throws -> [BenchFigure] {
        let key = "\(setup.name).\(variantKey(spec, weights: weights))"
        let model = try GPT2Model(try setup.config(linear: spec), seed: 1)
        if weights != .float32 { try model.quantize(weights) }
        for b in model.blocks { for site in LinearSite.allCases { (b[site] as? MonarchLinear)?.serialBlocks = monarchSerialBlocks } }
        let (b, t) = (setup.batch, setup.seqLen)
        var rng = RandomGenerator(seed: 2)
        let ids = (0..<(b * t)).map { _ in Int32(rng.next() % UInt64(setup.vocab)) }
        let targets = (0..<(b * t)).map { _ in Int32(rng.next() % UInt64(setup.vocab)) }
        let tokens = Double(b * t)
        let costs = model.costs(seqLen: t)
        var out: [BenchFigure] = [BenchFigure("\(key).parameters", Double(model.parameterCount), "")]

        // Training step: exactly the trainer's (record, backward, clip, AdamW).
        if weights == .float32 {
            let optimizer = AdamW(model.namedParameters, hyper: .init(lr: 1e-4, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1))
            let step = OptimizerStep(optimizer: optimizer, schedule: LRSchedule(peak: 1e-4, totalSteps: 1 << 30, decay: .constant), clipNorm: 1)
            let batch = TokenBatch(inputs: ids, targets: targets, batch: b, seqLen: t)
            var stepIndex = 0
            progress("\(key) training step")
            let train = try Measurement.of(repeats: repeats, minSeconds: minSeconds) {
                _ = try step.run(step: stepIndex, model: model, microBatches: [batch], dropoutKey: nil)
                stepIndex += 1
            }
            out.append(BenchFigure("\(key).train_tokens_per_s", tokens / train.median, "tokens/s"))
            out.append(BenchFigure("\(key).train_step_ms", train.median * 1e3, "ms"))
            out.append(BenchFigure("\(key).train_spread", train.spread, "(max-min)/median"))
            out.append(BenchFigure("\(key).train_gflops", costs.trainingFLOPs * tokens / train.median / 1e9, "GFLOP/s"))
            out.append(BenchFigure("\(key).train_flops_per_token", costs.trainingFLOPs, "FLOP"))
            if growthSteps > 0 {
                // Resident memory after `mark` steps, half way and at the end: a leak grows in both
                // halves, a heap that has settled does not grow in the second.
                let mark = min(100, max(1, growthSteps / 10)), half = max(mark, growthSteps / 2)
                var atMark = 0, atHalf = 0
                for s in 0..<growthSteps {
                    _ = try step.run(step: stepIndex, model: model, microBatches: [batch], dropoutKey: nil)
                    stepIndex += 1
                    if s + 1 == mark { atMark = ProcessTuning.residentBytes() }
                    if s + 1 == half { atHalf = ProcessTuning.residentBytes() }
                    if (s + 1) % 50 == 0 {
                        progress("\(key) memory growth: step \(s + 1)/\(growthSteps), resident \(ProcessTuning.residentBytes() >> 20) MiB")
                    }
                }
                let end = ProcessTuning.residentBytes()
                out.append(BenchFigure("\(key).rss_growth_mb", Double(end - atMark) / 1_048_576, "MiB (step \(mark) to \(growthSteps))"))
                out.append(BenchFigure("\(key).rss_growth_second_half_mb", Double(end - atHalf) / 1_048_576,
                                       "MiB (step \(half) to \(growthSteps))"))
            }
        }

        progress("\(key) forward")
        let forward = try Measurement.of(repeats: repeats, minSeconds: minSeconds) {
            _ = try Tape.withoutRecording { try model.loss(ids, targets: targets, batch: b, seqLen: t) }
        }
        out.append(BenchFigure("\(key).forward_tokens_per_s", tokens / forward.median, "tokens/s"))
        out.append(BenchFigure("\(key).forward_gflops", costs.forwardFLOPs * tokens / forward.median / 1e9, "GFLOP/s"))

        // Generation, one row, greedy, with the KV cache: a 8-token prompt then one token at a
        // time. Per-token time early (positions 8..<40) and late (the last 32) shows whether the
        // cost stays flat as the prefix grows.
        progress("\(key) generation")
        // The resident memory of generation is its own peak from here on (the training step's
        // activations above are freed): the weights as stored (packed ones at their packed size),
        // the KV caches and the process. Freed blocks the heap kept (the activations above, a
        // float32 copy quantized away) go back to the system first.
        ProcessTuning.startMemoryMeasurement()
        let prompt = Array(ids.prefix(8))
        let total = min(setup.context, prompt.count + generateTokens)
        var perToken: [Double] = []
        var unused = RandomGenerator(seed: 0) // greedy sampling draws nothing
        // The one generation loop; the time between consecutive tokens is one cached forward
        // pass (and an argmax). The context holds exactly `total` positions, so it never slides.
        func generateOnce() throws {
            perToken.removeAll(keepingCapacity: true)
            var last = DispatchTime.now().uptimeNanoseconds
            var first = true
            _ = try model.generate(prompts: [prompt], rng: &unused, stop: StopRule(maxNewTokens: total - prompt.count + 1, whenFull: .stop),
                                   capacity: total, onToken: { _, _ in
                let now = DispatchTime.now().uptimeNanoseconds
                if !first { perToken.append(Double(now - last) / 1e9) }
                first = false
                last = now
            })
        }
        let generation = try Measurement.of(repeats: max(1, repeats / 2), minSeconds: minSeconds) { try generateOnce() }
        let newTokens = Double(total - prompt.count)
        out.append(BenchFigure("\(key).generate_tokens_per_s", newTokens / generation.median, "tokens/s"))
        let window = min(32, perToken.count / 2)
        if window > 0 {
            let early = median(Array(perToken.prefix(window))), late = median(Array(perToken.suffix(window)))
            out.append(BenchFigure("\(key).generate_ms_per_token_early", early * 1e3, "ms (prefix 8-\(8 + window))"))
            out.append(BenchFigure("\(key).generate_ms_per_token_late", late * 1e3, "ms (prefix \(total - window)-\(total))"))
            out.append(BenchFigure("\(key).generate_late_over_early", late / early, "ratio"))
        }
        // Batched generation: 8 rows (prompts of different lengths) through the same loop; each
        // step reads the weights once for all rows, so tokens/s should grow nearly with the batch.
        progress("\(key) batched generation")
        // generate's default cache holds the longest prompt and all its new tokens, so no row
        // fills its context and slides (before 2026-12-04 the cache held `total`, and the three
        // prompts longer than 8 tokens each rebuilt a 52-token context inside the timed run).
        let prompts = (0..<8).map { Array(ids[($0 * 16)..<($0 * 16 + 4 + $0)]) }
        let batchedNew = total - prompt.count
        var batchedTokens = 0
        let batched = try Measurement.of(repeats: max(1, repeats / 2), minSeconds: minSeconds) {
            let rows = try model.generate(prompts: prompts, rng: &unused, stop: StopRule(maxNewTokens: batchedNew, whenFull: .stop))
            batchedTokens = rows.reduce(0) { $0 + $1.tokens.count }
        }
        let batchedRate = Double(batchedTokens) / batched.median
        out.append(BenchFigure("\(key).generate_batch8_tokens_per_s", batchedRate, "tokens/s (8 rows)"))
        out.append(BenchFigure("\(key).generate_batch8_over_batch1", batchedRate / (newTokens / generation.median), "ratio"))

        // Batch-1 generation reads every weight once per token (the tied head reads the whole
        // token embedding; of the position embedding only one row): its ceiling is memory bandwidth.
        // Packed weights count at their packed size (scales included); the position embedding is float32.
        let weightBytes = Double(model.weightBytes - 4 * (setup.context * setup.nEmbd - setup.nEmbd))
        out.append(BenchFigure("\(key).generate_weight_bytes_per_token", weightBytes, "bytes"))
        if !perToken.isEmpty {
            out.append(BenchFigure("\(key).generate_weight_gbps", weightBytes / median(perToken) / 1e9, "GB/s of weights read"))
        }

        out.append(BenchFigure("\(key).peak_memory_mb", Double(ProcessTuning.peakResidentBytes()) / 1_048_576, "MiB (peak resident during generation)"))
        return out
    }

    /// Figures computed from the measured ones: each dense model's fraction of the sgemm ceiling,
    /// and for each structured kind its training and forward speed-up over dense at the same shape
    /// and its FLOP ratio (the speed-up equal efficiency would give). With the read bandwidth,
    /// batch-1 generation's fraction of it; with the in-cache kernel rates as well
    /// (``MemoryBench/kernelRates(repeats:progress:)``), its fraction of the lower of the two
    /// ceilings, and which one that is: what holds generation back.
    public static func derivedFigures(_ measured: [BenchFigure], setups: [Setup], specs: [String], weights: [WeightFormat] = [.float32],
                                      sgemmGFLOPs: Double, readGBps: Double? = nil,
                                      kernelGBps: [WeightFormat: Double] = [:]) -> [BenchFigure] {
        let keys = specs.flatMap { spec in weights.map { variantKey(spec, weights: $0) } }
        let value = { (key: String) in measured.first { $0.key == key }?.value }
        var out = [BenchFigure("machine.sgemm_2048_gflops", sgemmGFLOPs, "GFLOP/s")]
        if let readGBps {
            // Achieved weight bandwidth of batch-1 generation over the machine's read bandwidth.
            for s in setups {
                for spec in specs {
                    for format in weights {
                        let k = "\(s.name).\(variantKey(spec, weights: format))"
                        guard let g = value("\(k).generate_weight_gbps") else { continue }
                        out.append(BenchFigure("\(k).generate_bandwidth_fraction", g / readGBps, "of memory.read_gbps_all_threads"))
                        if let kernel = kernelGBps[format] {
                            let memoryBound = readGBps <= kernel
                            out.append(BenchFigure("\(k).generate_ceiling_fraction", g / min(readGBps, kernel),
                                                   memoryBound ? "of the read bandwidth (memory bound: the \(format.rawValue) kernel runs faster in cache)"
                                                               : "of the \(format.rawValue) kernel's in-cache rate (kernel bound: below the read bandwidth)"))
                        }
                    }
                }
            }
        }
        for s in setups {
            let denseKey = "\(s.name).dense"
            if let g = value("\(denseKey).train_gflops") {
                out.append(BenchFigure("\(denseKey).train_fraction_of_sgemm", g / sgemmGFLOPs, "of raw sgemm 2048"))
            }
            for spec in keys where spec != "dense" {
                let k = "\(s.name).\(spec)"
                if let d = value("\(denseKey).train_tokens_per_s"), let m = value("\(k).train_tokens_per_s") {
                    out.append(BenchFigure("\(k).train_speedup", m / d, "x dense"))
                }
                if let d = value("\(denseKey).train_flops_per_token"), let m = value("\(k).train_flops_per_token") {
                    out.append(BenchFigure("\(k).train_flop_ratio", d / m, "dense FLOPs / these"))
                    // How much of the speed-up the FLOP count allows is achieved (1: every FLOP as fast as dense's).
                    if let sd = value("\(denseKey).train_tokens_per_s"), let sm = value("\(k).train_tokens_per_s") {
                        out.append(BenchFigure("\(k).train_efficiency", (sm / sd) / (d / m), "speed-up / FLOP ratio"))
                    }
                }
                if let d = value("\(denseKey).forward_tokens_per_s"), let m = value("\(k).forward_tokens_per_s") {
                    out.append(BenchFigure("\(k).forward_speedup", m / d, "x dense"))
                }
                if let d = value("\(denseKey).generate_tokens_per_s"), let m = value("\(k).generate_tokens_per_s") {
                    out.append(BenchFigure("\(k).generate_speedup", m / d, "x dense (batch 1)"))
                }
                if let d = value("\(denseKey).generate_weight_bytes_per_token"), let m = value("\(k).generate_weight_bytes_per_token") {
                    out.append(BenchFigure("\(k).generate_bytes_ratio", d / m, "dense weight bytes / these"))
                }
            }
        }
        return out
    }

    static func median(_ xs: [Double]) -> Double { Measurement(samples: xs).median }
}
