import FactorlabAutograd
import FactorlabCheckpoint
import FactorlabData
import FactorlabDistributed
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
        /// The data-parallel job this process belongs to (``Communicator/single`` by default).
        /// Rank 0 alone prints, writes the run records and saves checkpoints; `progress` and `log`
        /// are only called there.
        public var communicator: Communicator = .single
        /// Target size of the gradient buckets reduced while backward runs (data parallel).
        public var bucketBytes = 8 << 20
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
        let comm = options.communicator
        let log: (String) -> Void = comm.isRoot ? options.log : { _ in }
        let showProgress: (String) -> Void = comm.isRoot ? options.progress : { _ in }
        try FileManager.default.createDirectory(at: runDirectory, withIntermediateDirectories: true)
        let source = DataSource(paths: recipe.data.paths.map { URL(fileURLWithPath: $0) }, textField: recipe.data.jsonlField)
        let split: CorpusSplit = recipe.data.split == "tail"
            ? .tail(fraction: recipe.data.valFraction) : .everyKthDocument(k: recipe.data.valEvery)
        // Rank 0 trains the tokenizer and writes the token cache; the other ranks then read both.
        var prepared: (BPETokenizer, TokenCorpus)?
        for turn in 0..<(comm.size > 1 ? 2 : 1) {
            if (turn == 0) == comm.isRoot {
                let tokenizer = try prepareTokenizer(source: source)
                let corpus = try TokenCorpus.prepare(source: source, tokenizer: tokenizer,
                                                     cacheDirectory: runDirectory.appendingPathComponent("data"), split: split)
                prepared = (tokenizer, corpus)
            }
            if comm.size > 1 { try comm.barrier() }
        }
        let (tokenizer, corpus) = prepared!
        log("data: \(corpus.train.count) training and \(corpus.validation.count) validation tokens\(corpus.reusedCache ? " (cached)" : "")")

        // Model and optimizer: resumed, initialised from a file, or new.
        var progress = TrainingProgress(rngStates: ["dropout": RandomGenerator(seed: recipe.seed ^ 0xD0).state])
        let model: GPT2Model
        var resumedFrom: URL?
        var initFLOPs = 0.0
        if options.resume, let latest = try CheckpointFiles.latest(in: runDirectory) {
            let contents = try Checkpoint.read(latest)
            model = try GPT2Model(contents.config)
            try Checkpoint.assign(contents.parameters, to: model, file: latest.path)
            progress = contents.progress ?? progress
            resumedFrom = latest
            log("resuming from \(latest.lastPathComponent) at step \(progress.step)")
        } else if let initFrom = recipe.model.initFrom {
            let loaded = try ModelFiles.load(initFrom)
            model = loaded.model
            // Compute is cumulative: the training behind the starting weights counts.
            progress.flops = loaded.checkpoint?.progress?.flops ?? 0
            initFLOPs = progress.flops
            guard model.config.vocabSize >= tokenizer.vocabularySize else {
                throw TrainingError.recipe("model.init_from \(initFrom) has a vocabulary of \(model.config.vocabSize), smaller than the tokenizer's \(tokenizer.vocabularySize)")
            }
            log("initialised from \(loaded.source.path)")
        } else {
            model = try GPT2Model(try recipe.modelConfig(vocabSize: tokenizer.vocabularySize), seed: recipe.seed)
        }
        let optimizer = AdamW(model.namedParameters, hyper: recipe.optimizer) { name, _ in self.recipe.decays(name) }
        if let resumedFrom { try Checkpoint.restore(optimizer, from: try Checkpoint.read(resumedFrom), file: resumedFrom.path) }
        let flopsPerToken = model.costs(seqLen: recipe.training.seqLen).trainingFLOPs
        let total = recipe.totalSteps(flopsPerStep: flopsPerToken * Double(recipe.tokensPerStep * comm.size),
                                      stepsDone: progress.step, flopsSoFar: progress.flops)
        if recipe.usesFLOPBudget {
            log(String(format: "flop budget %.3g: %d steps at %.3g FLOPs each", recipe.training.flopBudget!, total - progress.step,
                       flopsPerToken * Double(recipe.tokensPerStep * comm.size)) + (progress.flops > 0 ? String(format: " after %.3g already spent", progress.flops) : ""))
        }
        var schedule = recipe.schedule
        schedule.totalSteps = total
        schedule.warmupSteps = min(schedule.warmupSteps, total)
        let averager = comm.size > 1 ? GradientAverager(communicator: comm, bucketBytes: options.bucketBytes) : nil
        let stepper = LanguageModelStep(model: model, optimizer: optimizer, schedule: schedule, clipNorm: recipe.training.gradClip,
                                        averager: averager)

        // Data order: rank r takes rows r*B ..< (r+1)*B of each global batch of ranks x B rows.
        let (b, t) = (recipe.training.batchSize, recipe.training.seqLen)
        let globalRows = comm.size * b
        if resumedFrom != nil, let saved = progress.globalBatchRows, saved != globalRows {
            throw TrainingError.recipe("\(resumedFrom!.path) was written by a run of \(saved) sequences per step; this run has \(comm.size) rank(s) x training.batch_size \(b) = \(globalRows). Keep ranks x batch_size equal to \(saved) (e.g. --set training.batch_size=\(saved / max(1, comm.size))) so the data position and the schedule mean the same")
        }
        progress.globalBatchRows = globalRows
        var loader: BatchLoader
        let savedLoader = try? JSONDecoder().decode(LoaderState.self, from: Data(progress.loaderState.utf8))
        let (rank, ranks) = (comm.rank, comm.size)
        if recipe.data.loader == "sequential" {
            loader = try SequentialLoader(tokens: corpus.train, batch: b, seqLen: t, rank: rank, worldSize: ranks,
                                          state: resumedFrom == nil ? LoaderState() : savedLoader ?? LoaderState())
        } else if let saved = savedLoader, resumedFrom != nil {
            loader = try ShuffledLoader(tokens: corpus.train, batch: b, seqLen: t, rank: rank, worldSize: ranks, state: saved)
        } else {
            loader = try ShuffledLoader(tokens: corpus.train, batch: b, seqLen: t, seed: recipe.seed, rank: rank, worldSize: ranks)
        }
        var dropoutRNG = RandomGenerator(state: progress.rngStates["dropout"] ?? RandomGenerator(seed: recipe.seed ^ 0xD0).state)
        let usesDropout = model.config.embdDropout > 0 || model.config.attnDropout > 0 || model.config.residDropout > 0

        let records = comm.isRoot ? try RunRecords(directory: runDirectory, resumingAt: resumedFrom == nil ? nil : progress.step) : nil
        var description = runDescription(model: model, flopsPerToken: flopsPerToken, ranks: comm.size, totalSteps: total)
        if initFLOPs > 0 { description["init_flops"] = initFLOPs }
        try records?.writeJSON("run.json", description)

        var firstLoss: Float?, lastLoss: Float = .nan, firstVal: Double?
        let wallBefore = progress.wallSeconds
        var recentTokens = 0, recentStart = Date()
        var tokensPerSecond = 0.0
        let stopAt = min(total, options.stopAfter ?? total)
        // Validation: batches of ranks x B rows, each rank taking its B rows (the same rows a
        // single process with batch ranks x B sees); the mean is over all ranks.
        func evaluate() throws -> Double {
            let eval = try EvalLoader(tokens: corpus.validation, batch: b, seqLen: min(t, max(1, corpus.validation.count - 1)),
                                      maxBatches: recipe.eval.batches, rank: comm.rank, worldSize: comm.size)
            var sum = 0.0, n = 0
            for batch in eval {
                let loss = try Tape.withoutRecording {
                    try model.loss(batch.inputs, targets: batch.targets, batch: batch.batch, seqLen: batch.seqLen)
                }
                sum += Double(loss.value.item)
                n += 1
            }
            let totals = try comm.allreduceSum([sum, Double(n)])
            return totals[1] == 0 ? .nan : totals[0] / totals[1]
        }
        if progress.step == 0 {
            let v = try evaluate()
            firstVal = v
            if total == 0 { (progress.lastValLoss, progress.bestValLoss) = (v, v) } // evaluation-only run
            records?.append(["step": 0, "tokens": 0, "val_loss": v, "lr": Double(schedule.lr(at: 0)), "wall_s": 0.0, "flops": progress.flops])
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
            if let averager {
                row["allreduce_s"] = averager.lastCommunicationSeconds
                row["allreduce_wait_s"] = averager.lastWaitSeconds
            }
            let isLast = progress.step == total
            var improved = false
            if progress.step % recipe.eval.interval == 0 || isLast {
                let v = try evaluate()
                row["val_loss"] = v
                progress.lastValLoss = v
                if v < (progress.bestValLoss ?? .infinity) { progress.bestValLoss = v; improved = true }
            }
            records?.append(row)
            let remaining = Double(total - progress.step) * Double(recipe.tokensPerStep * comm.size) / max(tokensPerSecond, 1e-9)
            showProgress(String(format: "step %d/%d | loss %.4f | lr %.2e | %.0f tok/s | %@ elapsed | ETA %@%@",
                                    progress.step, total, result.loss, result.lr, tokensPerSecond,
                                    Trainer.clock(progress.wallSeconds), Trainer.clock(remaining),
                                    progress.lastValLoss.map { String(format: " | val %.4f", $0) } ?? ""))
            if progress.step % recipe.checkpoint.interval == 0 || isLast || progress.step == stopAt {
                // Every rank must hold the same weights; check before rank 0 saves them.
                if comm.size > 1 { try Trainer.checkRanksAgree(model: model, communicator: comm, step: progress.step) }
                guard comm.isRoot else { continue }
                let url = runDirectory.appendingPathComponent(CheckpointFiles.name(step: progress.step))
                try Checkpoint.save(model: model, optimizer: optimizer, progress: progress, recipe: recipe.text, to: url)
                try CheckpointFiles.prune(in: runDirectory, keep: recipe.checkpoint.keepLast)
                if improved && recipe.checkpoint.keepBest {
                    try Checkpoint.save(model: model, optimizer: nil, progress: progress, recipe: recipe.text,
                                        to: runDirectory.appendingPathComponent("best.h5"))
                }
            } else if improved && recipe.checkpoint.keepBest && comm.isRoot {
                try Checkpoint.save(model: model, optimizer: nil, progress: progress, recipe: recipe.text,
                                    to: runDirectory.appendingPathComponent("best.h5"))
            }
        }
        var sample: String?
        if progress.step == total && recipe.eval.sampleTokens > 0 && comm.isRoot {
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
                                          "flops": summary.flops, "peak_memory_bytes": summary.peakMemoryBytes]
        if summary.finalTrainLoss.isFinite { summaryJSON["final_train_loss"] = Double(summary.finalTrainLoss) }
        if let v = summary.finalValLoss { summaryJSON["final_val_loss"] = v }
        if let v = summary.bestValLoss { summaryJSON["best_val_loss"] = v }
        if let s = sample { summaryJSON["sample"] = s }
        if averager != nil { summaryJSON["ranks"] = comm.size }
        try records?.writeJSON("summary.json", summaryJSON)
        return summary
    }

    func runDescription(model: GPT2Model, flopsPerToken: Double, ranks: Int, totalSteps: Int) -> [String: Any] {
        let c = model.config
        var obj: [String: Any] = [
            "name": recipe.name, "family": c.mlpSpec, "seed": Int(truncatingIfNeeded: recipe.seed),
            "model": ["n_layer": c.nLayer, "n_embd": c.nEmbd, "n_head": c.nHead, "n_positions": c.nPositions,
                      "vocab_size": c.vocabSize, "mlp": c.mlpSpec],
            "parameters": model.parameterCount, "non_embedding_parameters": model.nonEmbeddingParameterCount,
            "flops_per_token": flopsPerToken, "batch_size": recipe.training.batchSize, "seq_len": recipe.training.seqLen,
            "grad_accum": recipe.training.gradAccum, "total_steps": totalSteps, "ranks": ranks,
        ]
        if let arm = recipe.arm { obj["arm"] = arm }
        if let preset = recipe.model.preset { obj["preset"] = preset }
        return obj
    }

    /// Stops the job if the ranks' parameters differ (they apply identical updates to identical
    /// reduced gradients, so they should agree bit for bit). Each rank hashes its parameter bytes;
    /// the sums of the hash's 16-bit pieces and of their squares over the ranks equal
    /// ranks x (piece) and ranks x (piece)^2 only if every rank has the same piece.
    static func checkRanksAgree(model: GPT2Model, communicator comm: Communicator, step: Int) throws {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for (_, p) in model.namedParameters {
            p.value.withUnsafePointer { ptr in
                ptr.withMemoryRebound(to: UInt32.self, capacity: p.value.count) { words in
                    for i in 0..<p.value.count { h = (h ^ UInt64(words[i])) &* 0x100_0000_01b3 }
                }
            }
        }
        let pieces = (0..<4).map { Double((h >> (16 * UInt64($0))) & 0xffff) }
        let sums = try comm.allreduceSum(pieces + pieces.map { $0 * $0 })
        let n = Double(comm.size)
        for k in 0..<4 where sums[k] != n * pieces[k] || sums[4 + k] != n * pieces[k] * pieces[k] {
            throw TrainingError.recipe("data parallel: the ranks' parameters differ after step \(step) (rank \(comm.rank) hash \(String(h, radix: 16))); stopping before saving a checkpoint")
        }
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
