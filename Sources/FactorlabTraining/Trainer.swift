import FactorlabAutograd
import FactorlabCheckpoint
import FactorlabData
import FactorlabEval
import FactorlabGPT2
import FactorlabOptim
import FactorlabTensor
import FactorlabTokenizer
import Foundation

/// What a finished (or stopped) run reports.
public struct TrainSummary: Sendable {
    public let runDirectory: URL
    public let steps: Int
    public let tokens: Int
    public let finalTrainLoss: Float
    public let firstTrainLoss: Float
    public let finalValLoss: Double?
    public let firstValLoss: Double?
    public let bestValLoss: Double?
    public let wallSeconds: Double
    public let tokensPerSecond: Double
    public let flops: Double
    public let peakMemoryBytes: Int
    public let sample: String?
    public let parameters: Int
}

/// Pretraining from a recipe: tokenizer, cached token corpus, model (new, from `init_from`, or
/// resumed), AdamW with the recipe's schedule, periodic validation and checkpoints, run records,
/// and a sample generation at the end.
///
/// Determinism: one seed fixes initialisation, data order and dropout masks; kernels are
/// deterministic for a fixed thread count, so a resumed run reproduces an uninterrupted one
/// bit for bit.
public final class Trainer {
    public struct Options {
        /// Resume from the newest checkpoint in the run folder.
        public var resume = false
        /// Stop (as if interrupted, after saving) once this many steps are done: for tests of resume.
        public var stopAfter: Int?
        /// Progress messages (a live line on a terminal).
        public var progress: (String) -> Void = { _ in }
        /// One-off notes (tokenizer trained, checkpoint saved, ...).
        public var log: (String) -> Void = { _ in }
        public init() {}
    }

    public let recipe: Recipe
    public let options: Options
    public let runDirectory: URL

    public init(recipe: Recipe, options: Options = Options()) {
        self.recipe = recipe
        self.options = options
        runDirectory = URL(fileURLWithPath: recipe.checkpoint.dir ?? "Checkpoints/\(recipe.name)")
    }

    /// The recipe's tokenizer: loaded from `tokenizer.path` when it has vocab.json, otherwise
    /// trained on the training data and written there (or into the run folder). A copy always
    /// goes to `<run>/tokenizer` so evaluation and generation find it beside the checkpoints.
    func prepareTokenizer(source: DataSource) throws -> BPETokenizer {
        let runTok = runDirectory.appendingPathComponent("tokenizer")
        let target = recipe.tokenizer.path.map { URL(fileURLWithPath: $0) } ?? runTok
        let tokenizer: BPETokenizer
        if FileManager.default.fileExists(atPath: target.appendingPathComponent("vocab.json").path) {
            tokenizer = try BPETokenizer(directory: target)
        } else {
            options.log("training a \(recipe.tokenizer.vocabSize)-token byte-level BPE vocabulary on the training data")
            // Plain-text files train the vocabulary (JSONL/JSON documents are not used for it).
            let texts = try source.files().filter { $0.kind == .text }.map { file -> String in
                TextNormalizer.normalizedString(try Data(contentsOf: URL(fileURLWithPath: file.path)))
            }
            guard !texts.isEmpty else {
                throw TrainingError.recipe("tokenizer.path \(target.path) has no vocab.json and the data has no text to train one on")
            }
            tokenizer = try BPETokenizer.train(texts: texts, vocabularySize: recipe.tokenizer.vocabSize)
            try tokenizer.write(to: target)
        }
        if target.standardizedFileURL != runTok.standardizedFileURL { try tokenizer.write(to: runTok) }
        return tokenizer
    }

    public func run() throws -> TrainSummary {
        let start = Date()
        try FileManager.default.createDirectory(at: runDirectory, withIntermediateDirectories: true)
        let source = DataSource(paths: recipe.data.paths.map { URL(fileURLWithPath: $0) }, textField: recipe.data.jsonlField)
        let tokenizer = try prepareTokenizer(source: source)
        let split: CorpusSplit = recipe.data.split == "tail"
            ? .tail(fraction: recipe.data.valFraction) : .everyKthDocument(k: recipe.data.valEvery)
        let corpus = try TokenCorpus.prepare(source: source, tokenizer: tokenizer,
                                             cacheDirectory: runDirectory.appendingPathComponent("data"), split: split)
        options.log("data: \(corpus.train.count) training and \(corpus.validation.count) validation tokens\(corpus.reusedCache ? " (cached)" : "")")

        // Model and optimizer: resumed, initialised from a file, or new.
        var progress = TrainingProgress(rngStates: ["dropout": RandomGenerator(seed: recipe.seed ^ 0xD0).state])
        let model: GPT2Model
        var resumedFrom: URL?
        if options.resume, let latest = try CheckpointFiles.latest(in: runDirectory) {
            let contents = try Checkpoint.read(latest)
            model = try GPT2Model(contents.config)
            try Checkpoint.assign(contents.parameters, to: model, file: latest.path)
            progress = contents.progress ?? progress
            resumedFrom = latest
            options.log("resuming from \(latest.lastPathComponent) at step \(progress.step)")
        } else if let initFrom = recipe.model.initFrom {
            let loaded = try ModelFiles.load(initFrom)
            model = loaded.model
            guard model.config.vocabSize >= tokenizer.vocabularySize else {
                throw TrainingError.recipe("model.init_from \(initFrom) has a vocabulary of \(model.config.vocabSize), smaller than the tokenizer's \(tokenizer.vocabularySize)")
            }
            options.log("initialised from \(loaded.source.path)")
        } else {
            model = try GPT2Model(try recipe.modelConfig(vocabSize: tokenizer.vocabularySize), seed: recipe.seed)
        }
        let optimizer = AdamW(model.namedParameters, hyper: recipe.optimizer) { name, _ in self.recipe.decays(name) }
        if let resumedFrom { try Checkpoint.restore(optimizer, from: try Checkpoint.read(resumedFrom), file: resumedFrom.path) }
        let total = recipe.totalSteps
        var schedule = recipe.schedule
        schedule.totalSteps = total
        schedule.warmupSteps = min(schedule.warmupSteps, total)
        let stepper = LanguageModelStep(model: model, optimizer: optimizer, schedule: schedule, clipNorm: recipe.training.gradClip)

        // Data order.
        let (b, t) = (recipe.training.batchSize, recipe.training.seqLen)
        var loader: BatchLoader
        let savedLoader = try? JSONDecoder().decode(LoaderState.self, from: Data(progress.loaderState.utf8))
        if recipe.data.loader == "sequential" {
            loader = try SequentialLoader(tokens: corpus.train, batch: b, seqLen: t, state: resumedFrom == nil ? LoaderState() : savedLoader ?? LoaderState())
        } else if let saved = savedLoader, resumedFrom != nil {
            loader = try ShuffledLoader(tokens: corpus.train, batch: b, seqLen: t, state: saved)
        } else {
            loader = try ShuffledLoader(tokens: corpus.train, batch: b, seqLen: t, seed: recipe.seed)
        }
        var dropoutRNG = RandomGenerator(state: progress.rngStates["dropout"] ?? RandomGenerator(seed: recipe.seed ^ 0xD0).state)
        let usesDropout = model.config.embdDropout > 0 || model.config.attnDropout > 0 || model.config.residDropout > 0

        let records = try RunRecords(directory: runDirectory, resumingAt: resumedFrom == nil ? nil : progress.step)
        let flopsPerToken = model.costs(seqLen: t).trainingFLOPs
        try records.writeJSON("run.json", runDescription(model: model, flopsPerToken: flopsPerToken))

        var firstLoss: Float?, lastLoss: Float = .nan, firstVal: Double?
        let wallBefore = progress.wallSeconds
        var recentTokens = 0, recentStart = Date()
        var tokensPerSecond = 0.0
        let stopAt = min(total, options.stopAfter ?? total)
        func evaluate() throws -> Double {
            let eval = try EvalLoader(tokens: corpus.validation, batch: b, seqLen: min(t, max(1, corpus.validation.count - 1)),
                                      maxBatches: recipe.eval.batches)
            var sum = 0.0, n = 0
            for batch in eval {
                let loss = try Tape.withoutRecording {
                    try model.loss(batch.inputs, targets: batch.targets, batch: batch.batch, seqLen: batch.seqLen)
                }
                sum += Double(loss.value.item)
                n += 1
            }
            return n == 0 ? .nan : sum / Double(n)
        }
        if progress.step == 0 {
            let v = try evaluate()
            firstVal = v
            records.append(["step": 0, "tokens": 0, "val_loss": v, "lr": Double(schedule.lr(at: 0)), "wall_s": 0.0, "flops": 0.0])
        }
        while progress.step < stopAt {
            let micro = (0..<recipe.training.gradAccum).map { _ in loader.next() }
            let key: UInt64? = usesDropout ? dropoutRNG.next() : nil
            let result = try stepper.run(step: progress.step, microBatches: micro, dropoutKey: key)
            progress.step += 1
            progress.tokensSeen += result.tokens
            progress.flops += flopsPerToken * Double(result.tokens)
            progress.wallSeconds = wallBefore + Date().timeIntervalSince(start)
            progress.loaderState = String(decoding: try JSONEncoder().encode(loader.state), as: UTF8.self)
            progress.rngStates["dropout"] = dropoutRNG.state
            firstLoss = firstLoss ?? result.loss
            lastLoss = result.loss
            recentTokens += result.tokens
            let recentTime = Date().timeIntervalSince(recentStart)
            if recentTime > 2 || tokensPerSecond == 0 {
                tokensPerSecond = Double(recentTokens) / max(recentTime, 1e-9)
                recentTokens = 0
                recentStart = Date()
            }
            var row: [String: Any] = ["step": progress.step, "tokens": progress.tokensSeen, "train_loss": Double(result.loss),
                                      "lr": Double(result.lr), "grad_norm": result.gradNorm, "tokens_per_s": tokensPerSecond,
                                      "wall_s": progress.wallSeconds, "flops": progress.flops]
            let isLast = progress.step == total
            var improved = false
            if progress.step % recipe.eval.interval == 0 || isLast {
                let v = try evaluate()
                row["val_loss"] = v
                progress.lastValLoss = v
                if v < (progress.bestValLoss ?? .infinity) { progress.bestValLoss = v; improved = true }
            }
            records.append(row)
            let remaining = Double(total - progress.step) * Double(recipe.tokensPerStep) / max(tokensPerSecond, 1e-9)
            options.progress(String(format: "step %d/%d | loss %.4f | lr %.2e | %.0f tok/s | %@ elapsed | ETA %@%@",
                                    progress.step, total, result.loss, result.lr, tokensPerSecond,
                                    Trainer.clock(progress.wallSeconds), Trainer.clock(remaining),
                                    progress.lastValLoss.map { String(format: " | val %.4f", $0) } ?? ""))
            if progress.step % recipe.checkpoint.interval == 0 || isLast || progress.step == stopAt {
                let url = runDirectory.appendingPathComponent(CheckpointFiles.name(step: progress.step))
                try Checkpoint.save(model: model, optimizer: optimizer, progress: progress, recipe: recipe.text, to: url)
                try CheckpointFiles.prune(in: runDirectory, keep: recipe.checkpoint.keepLast)
                if improved && recipe.checkpoint.keepBest {
                    try Checkpoint.save(model: model, optimizer: nil, progress: progress, recipe: recipe.text,
                                        to: runDirectory.appendingPathComponent("best.h5"))
                }
            } else if improved && recipe.checkpoint.keepBest {
                try Checkpoint.save(model: model, optimizer: nil, progress: progress, recipe: recipe.text,
                                    to: runDirectory.appendingPathComponent("best.h5"))
            }
        }
        var sample: String?
        if progress.step == total && recipe.eval.sampleTokens > 0 {
            var rng = RandomGenerator(seed: recipe.seed ^ 0x5A)
            let prompt = tokenizer.encode(recipe.eval.prompt)
            let ids = try model.generate(prompt: prompt.isEmpty ? [tokenizer.endOfTextID ?? 0] : prompt,
                                         maxNewTokens: recipe.eval.sampleTokens, sampling: Sampling(temperature: 0.8, topK: 40),
                                         rng: &rng, stopToken: tokenizer.endOfTextID)
            sample = recipe.eval.prompt + (try tokenizer.decode(ids.filter { $0 != tokenizer.endOfTextID }))
        }
        let summary = TrainSummary(runDirectory: runDirectory, steps: progress.step, tokens: progress.tokensSeen,
                                   finalTrainLoss: lastLoss, firstTrainLoss: firstLoss ?? .nan, finalValLoss: progress.lastValLoss,
                                   firstValLoss: firstVal, bestValLoss: progress.bestValLoss, wallSeconds: progress.wallSeconds,
                                   tokensPerSecond: Double(progress.tokensSeen) / max(progress.wallSeconds, 1e-9),
                                   flops: progress.flops, peakMemoryBytes: Trainer.peakResidentBytes(), sample: sample,
                                   parameters: model.parameterCount)
        var summaryJSON: [String: Any] = ["steps": summary.steps, "tokens": summary.tokens, "wall_s": summary.wallSeconds,
                                          "flops": summary.flops, "peak_memory_bytes": summary.peakMemoryBytes,
                                          "final_train_loss": Double(summary.finalTrainLoss)]
        if let v = summary.finalValLoss { summaryJSON["final_val_loss"] = v }
        if let v = summary.bestValLoss { summaryJSON["best_val_loss"] = v }
        if let s = sample { summaryJSON["sample"] = s }
        try records.writeJSON("summary.json", summaryJSON)
        return summary
    }

    func runDescription(model: GPT2Model, flopsPerToken: Double) -> [String: Any] {
        let c = model.config
        var obj: [String: Any] = [
            "name": recipe.name, "family": c.mlpSpec, "seed": Int(truncatingIfNeeded: recipe.seed),
            "model": ["n_layer": c.nLayer, "n_embd": c.nEmbd, "n_head": c.nHead, "n_positions": c.nPositions,
                      "vocab_size": c.vocabSize, "mlp": c.mlpSpec],
            "parameters": model.parameterCount, "non_embedding_parameters": model.nonEmbeddingParameterCount,
            "flops_per_token": flopsPerToken, "batch_size": recipe.training.batchSize, "seq_len": recipe.training.seqLen,
            "grad_accum": recipe.training.gradAccum, "total_steps": recipe.totalSteps,
        ]
        if let arm = recipe.arm { obj["arm"] = arm }
        if let preset = recipe.model.preset { obj["preset"] = preset }
        return obj
    }

    static func clock(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "--:--:--" }
        let s = Int(seconds.rounded())
        return String(format: "%02d:%02d:%02d", s / 3600, (s / 60) % 60, s % 60)
    }

    /// Peak resident set size (VmHWM), in bytes.
    public static func peakResidentBytes() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            return (line.split(separator: " ").compactMap { Int($0) }.first ?? 0) * 1024
        }
        return 0
    }
}
