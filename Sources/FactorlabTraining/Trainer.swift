import FactorlabAutograd
import FactorlabCheckpoint
import FactorlabData
import FactorlabDistributed
import FactorlabGPT2
import FactorlabOptim
import FactorlabRecords
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

/// Pretraining from a recipe, in named stages:
///
/// 1. ``prepareData()``: the tokenizer (loaded or trained) and the cached token corpus;
/// 2. ``startModel(tokenizer:)``: a new model, one from `init_from`, or the run's newest
///    checkpoint (read once: weights, optimizer state and progress);
/// 3. ``makeLoader(corpus:start:)``: the data order, resumed where the checkpoint left it;
/// 4. the loop: ``OptimizerStep``, run records, validation (``validationLoss(model:corpus:)``)
///    and the checkpoint policy (``saveCheckpoints(_:state:improved:)``);
/// 5. ``sample(model:tokenizer:)`` and ``finish(_:)``: the sample generation and summary.json.
///
/// Determinism: one seed fixes initialisation, data order and dropout masks; kernels are
/// deterministic for a fixed thread count, so a resumed run reproduces an uninterrupted one
/// bit for bit.
public final class Trainer {
    public struct Options {
        /// Resume from the newest checkpoint in the run folder.
        public var resume = false
        /// Stop (as if interrupted, after saving) once this many steps are done: a test hook for
        /// resume (the CLI sets it from FACTORLAB_STOP_AFTER_STEPS).
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
    /// The run's tokenizer, recorded in every checkpoint (set once the tokenizer is ready).
    var tokenizerFingerprint: String?
    var comm: Communicator { options.communicator }

    public init(recipe: Recipe, options: Options = Options()) {
        self.recipe = recipe
        self.options = options
        runDirectory = URL(fileURLWithPath: recipe.checkpoint.dir ?? "Checkpoints/\(recipe.name)")
    }

    func log(_ message: String) { if comm.isRoot { options.log(message) } }

    /// How a run starts: its model and optimizer, where it stands, and where its weights came from.
    struct Start {
        let model: GPT2Model
        let optimizer: AdamW
        var progress: TrainingProgress
        /// The checkpoint resumed from, if any.
        let resumedFrom: URL?
        /// FLOPs already spent on `init_from` weights.
        let initFLOPs: Double
    }

    /// The state of the loop that checkpoints and records describe.
    struct LoopState {
        var progress: TrainingProgress
        var firstLoss: Float?
        var lastLoss: Float = .nan
        var firstVal: Double?
    }

    public func run() throws -> TrainSummary {
        let start = Date()
        try claimRunFolder()
        let (tokenizer, corpus) = try prepareData()
        tokenizerFingerprint = tokenizer.fingerprint
        var begin = try startModel(tokenizer: tokenizer)
        let model = begin.model
        let flopsPerToken = model.costs(seqLen: recipe.training.seqLen).trainingFLOPs
        let flopsPerStep = flopsPerToken * Double(recipe.tokensPerStep * comm.size)
        let total = recipe.totalSteps(flopsPerStep: flopsPerStep, stepsDone: begin.progress.step, flopsSoFar: begin.progress.flops)
        if recipe.usesFLOPBudget {
            log(String(format: "flop budget %.3g: %d steps at %.3g FLOPs each", recipe.training.flopBudget!, total - begin.progress.step, flopsPerStep)
                + (begin.progress.flops > 0 ? String(format: " after %.3g already spent", begin.progress.flops) : ""))
        }
        var schedule = recipe.schedule
        schedule.totalSteps = total
        schedule.warmupSteps = min(schedule.warmupSteps, total)
        let averager = comm.size > 1 ? GradientAverager(communicator: comm, bucketBytes: options.bucketBytes) : nil
        let stepper = OptimizerStep(optimizer: begin.optimizer, schedule: schedule, clipNorm: recipe.training.gradClip, averager: averager)
        var loader = try makeLoader(corpus: corpus, start: &begin)

        let records = comm.isRoot ? try RunRecords(directory: runDirectory, resumingAt: begin.resumedFrom == nil ? nil : begin.progress.step) : nil
        try records?.write("run.json", description(model: model, flopsPerToken: flopsPerToken, totalSteps: total, initFLOPs: begin.initFLOPs))

        var state = LoopState(progress: begin.progress)
        if state.progress.step == 0 {
            let v = try validationLoss(model: model, corpus: corpus, step: 0)
            state.firstVal = v
            if total == 0 { (state.progress.lastValLoss, state.progress.bestValLoss) = (v, v) } // evaluation-only run
            records?.append(MetricsRow(step: 0, tokens: 0, valLoss: v, lr: Double(schedule.lr(at: 0)), wallSeconds: 0, flops: state.progress.flops))
        }
        var dropoutRNG = RandomGenerator(state: state.progress.rngStates["dropout"] ?? RandomGenerator(seed: recipe.seed ^ 0xD0).state)
        let usesDropout = model.config.embdDropout > 0 || model.config.attnDropout > 0 || model.config.residDropout > 0
        let wallBefore = state.progress.wallSeconds
        var throughput = Throughput()
        let stopAt = min(total, options.stopAfter ?? total)
        while state.progress.step < stopAt {
            let micro = (0..<recipe.training.gradAccum).map { _ in loader.next() }
            let key: UInt64? = usesDropout ? dropoutRNG.next() : nil
            let result = try stepper.run(step: state.progress.step, model: model, microBatches: micro, dropoutKey: key)
            state.progress.step += 1
            state.progress.tokensSeen += result.tokens
            state.progress.flops += flopsPerToken * Double(result.tokens)
            state.progress.wallSeconds = wallBefore + Date().timeIntervalSince(start)
            state.progress.loaderState = String(decoding: try JSONEncoder().encode(loader.state), as: UTF8.self)
            state.progress.rngStates["dropout"] = dropoutRNG.state
            state.firstLoss = state.firstLoss ?? result.loss
            state.lastLoss = result.loss
            let tokensPerSecond = throughput.add(result.tokens)
            var row = MetricsRow(step: state.progress.step, tokens: state.progress.tokensSeen, trainLoss: Double(result.loss),
                                 lr: Double(result.lr), gradNorm: result.gradNorm, tokensPerSecond: tokensPerSecond,
                                 wallSeconds: state.progress.wallSeconds, flops: state.progress.flops)
            row.allreduceSeconds = averager?.lastCommunicationSeconds
            row.allreduceWaitSeconds = averager?.lastWaitSeconds
            let isLast = state.progress.step == total
            var improved = false
            if state.progress.step % recipe.eval.interval == 0 || isLast,
               let v = try validationLoss(model: model, corpus: corpus, step: state.progress.step) {
                row.valLoss = v
                state.progress.lastValLoss = v
                if v < (state.progress.bestValLoss ?? .infinity) { state.progress.bestValLoss = v; improved = true }
            }
            records?.append(row)
            if comm.isRoot { options.progress(progressLine(state.progress, total: total, result: result, tokensPerSecond: tokensPerSecond)) }
            let due = state.progress.step % recipe.checkpoint.interval == 0 || isLast || state.progress.step == stopAt
                || recipe.checkpoint.keepSteps.contains(state.progress.step)
            try saveCheckpoints(due ? begin.optimizer : nil, state: state, improved: improved, model: model)
        }
        let sample = state.progress.step == total ? try sample(model: model, tokenizer: tokenizer) : nil
        let summary = TrainSummary(runDirectory: runDirectory, steps: state.progress.step, tokens: state.progress.tokensSeen,
                                   finalTrainLoss: state.lastLoss, firstTrainLoss: state.firstLoss ?? .nan,
                                   finalValLoss: state.progress.lastValLoss, firstValLoss: state.firstVal,
                                   bestValLoss: state.progress.bestValLoss, wallSeconds: state.progress.wallSeconds,
                                   tokensPerSecond: Double(state.progress.tokensSeen) / max(state.progress.wallSeconds, 1e-9),
                                   flops: state.progress.flops, peakMemoryBytes: ProcessTuning.peakResidentBytes(), sample: sample,
                                   parameters: model.parameterCount)
        if let records {
            let finished = state.progress.step == total
            try finish(summary, records: records, inference: finished ? model : nil,
                       description: description(model: model, flopsPerToken: flopsPerToken, totalSteps: total, initFLOPs: begin.initFLOPs),
                       validate: { [self] m in try validationLoss(model: m, corpus: corpus, step: state.progress.step, local: true) })
        }
        return summary
    }

    // MARK: - Stages

    /// The recipe's tokenizer and the cached token corpus. Rank 0 trains the tokenizer and writes
    /// the token cache; the other ranks then read both.
    func prepareData() throws -> (BPETokenizer, TokenCorpus) {
        let source = DataSource(paths: recipe.data.paths.map { URL(fileURLWithPath: $0) }, textField: recipe.data.jsonlField)
        let split: CorpusSplit
        switch recipe.data.split {
        case .tail: split = .tail(fraction: recipe.data.valFraction)
        case .documents: split = .everyKthDocument(k: recipe.data.valEvery)
        }
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
        return (tokenizer, corpus)
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
            log("training a \(recipe.tokenizer.vocabSize)-token byte-level BPE vocabulary on the training data")
            // Plain-text files train the vocabulary (JSONL/JSON documents are not used for it).
            let texts = try source.files().filter { $0.kind == .text }.map { file -> String in
                String(decoding: try TextNormalizer.decodeFile(try FileReading.contents(of: URL(fileURLWithPath: file.path)), path: file.path),
                       as: UTF8.self)
            }
            guard texts.contains(where: { !$0.isEmpty }) else {
                throw TrainingError.data("tokenizer.path \(target.path) has no vocab.json and the data (\(recipe.data.paths.joined(separator: ", "))) has no text to train one on")
            }
            tokenizer = try BPETokenizer.train(texts: texts, vocabularySize: recipe.tokenizer.vocabSize)
            try tokenizer.write(to: target)
        }
        if target.standardizedFileURL != runTok.standardizedFileURL { try tokenizer.write(to: runTok) }
        return tokenizer
    }

    /// The model and optimizer the run starts from: the newest checkpoint (resume: read once,
    /// weights, moments and progress), `init_from` weights (their compute counts), or a new model.
    func startModel(tokenizer: BPETokenizer) throws -> Start {
        var progress = TrainingProgress(rngStates: ["dropout": RandomGenerator(seed: recipe.seed ^ 0xD0).state])
        if options.resume, let latest = try CheckpointFiles.latest(in: runDirectory) {
            let contents = try Checkpoint.read(latest)
            let optimizer = makeOptimizer(contents.model)
            try Checkpoint.restore(optimizer, from: contents, file: latest.path)
            progress = contents.progress ?? progress
            log("resuming from \(latest.lastPathComponent) at step \(progress.step)")
            return Start(model: contents.model, optimizer: optimizer, progress: progress, resumedFrom: latest, initFLOPs: 0)
        }
        if let initFrom = recipe.model.initFrom {
            let loaded = try ModelFiles.load(initFrom)
            try loaded.requireFloatWeights(for: "training (model.init_from)")
            // Compute is cumulative: the training behind the starting weights counts.
            progress.flops = loaded.checkpoint?.progress?.flops ?? 0
            guard loaded.model.config.vocabSize >= tokenizer.vocabularySize else {
                throw TrainingError.recipe("model.init_from \(initFrom) has a vocabulary of \(loaded.model.config.vocabSize), smaller than the tokenizer's \(tokenizer.vocabularySize)")
            }
            log("initialised from \(loaded.source.path)")
            return Start(model: loaded.model, optimizer: makeOptimizer(loaded.model), progress: progress, resumedFrom: nil,
                         initFLOPs: progress.flops)
        }
        let config = try recipe.modelConfig(vocabSize: tokenizer.vocabularySize)
        do { try config.checkFitsInMemory(training: true) } catch { throw TrainingError.recipe("model: \(error)") }
        let model = try GPT2Model(config, seed: recipe.seed)
        return Start(model: model, optimizer: makeOptimizer(model), progress: progress, resumedFrom: nil, initFLOPs: 0)
    }

    func makeOptimizer(_ model: GPT2Model) -> AdamW {
        let multipliers = model.learningRateMultipliers(recipe.structuredLR)
        return AdamW(model.namedParameters, hyper: recipe.optimizer, decay: { name, _ in self.recipe.decays(name) },
                     lrScale: { name, _ in multipliers[name] ?? 1 })
    }

    /// The training data order. Rank r takes rows r*B ..< (r+1)*B of each global batch of
    /// ranks x B rows; a resumed run continues from the checkpoint's loader position, which
    /// counts global batches, so the number of rows per step must not change.
    func makeLoader(corpus: TokenCorpus, start: inout Start) throws -> BatchLoader {
        let (b, t) = (recipe.training.batchSize, recipe.training.seqLen)
        let globalRows = comm.size * b
        if let resumed = start.resumedFrom, let saved = start.progress.globalBatchRows, saved != globalRows {
            throw TrainingError.resume("\(resumed.path) was written by a run of \(saved) sequences per step; this run has \(comm.size) rank(s) x training.batch_size \(b) = \(globalRows). Keep ranks x batch_size equal to \(saved) (e.g. --set training.batch_size=\(saved / max(1, comm.size))) so the data position and the schedule mean the same")
        }
        start.progress.globalBatchRows = globalRows
        let saved = start.resumedFrom == nil ? nil : try? JSONDecoder().decode(LoaderState.self, from: Data(start.progress.loaderState.utf8))
        let (rank, ranks) = (comm.rank, comm.size)
        switch recipe.data.loader {
        case .sequential:
            return try SequentialLoader(tokens: corpus.train, batch: b, seqLen: t, rank: rank, worldSize: ranks, state: saved ?? LoaderState())
        case .shuffled:
            if let saved { return try ShuffledLoader(tokens: corpus.train, batch: b, seqLen: t, rank: rank, worldSize: ranks, state: saved) }
            return try ShuffledLoader(tokens: corpus.train, batch: b, seqLen: t, seed: recipe.seed, rank: rank, worldSize: ranks)
        }
    }

    /// Mean validation loss. Batches of ranks x B rows, each rank taking its B rows (the same
    /// rows a single process with batch ranks x B sees); the mean is over all ranks. Nil when the
    /// validation split holds no batch; a non-finite loss stops the run (after `step`, before any
    /// checkpoint of that step is written).
    /// With `local`, this process alone scores every batch (rank 0 of 1) and nothing is reduced
    /// across ranks: the root's measurements after training, which the other ranks do not join.
    func validationLoss(model: GPT2Model, corpus: TokenCorpus, step: Int, local: Bool = false) throws -> Double? {
        let (b, t) = (recipe.training.batchSize, recipe.training.seqLen)
        let eval = try EvalLoader(tokens: corpus.validation, batch: b, seqLen: min(t, max(1, corpus.validation.count - 1)),
                                  maxBatches: recipe.eval.batches, rank: local ? 0 : comm.rank, worldSize: local ? 1 : comm.size)
        var sum = 0.0, n = 0
        for batch in eval {
            let loss = try Tape.withoutRecording {
                try model.loss(batch.inputs, targets: batch.targets, batch: batch.batch, seqLen: batch.seqLen)
            }
            sum += Double(loss.value.item)
            n += 1
        }
        let totals = local ? [sum, Double(n)] : try comm.allreduceSum([sum, Double(n)])
        guard totals[1] > 0 else { return nil }
        let mean = totals[0] / totals[1]
        guard mean.isFinite else { throw TrainingError.nonFiniteValidation(step: step, value: mean) }
        return mean
    }

    /// Makes sure the run folder is this run's: a folder that holds another run's results (its
    /// checkpoints, best.h5 or summary.json) is refused unless this is that run resuming, before
    /// anything in it is touched. A run stopped before its first checkpoint left nothing to resume
    /// or lose, so it may be started again. Then creates the folder, saying why when it cannot.
    func claimRunFolder() throws {
        let fm = FileManager.default
        if !options.resume, fm.fileExists(atPath: runDirectory.path) {
            let held = ["best.h5", "summary.json"].filter { fm.fileExists(atPath: runDirectory.appendingPathComponent($0).path) }
                + ((try? CheckpointFiles.steps(in: runDirectory))?.contains { !Trainer.isFolder($0.url) } == true ? ["checkpoints"] : [])
            if !held.isEmpty {
                throw TrainingError.resume("\(runDirectory.path) already holds a run (\(held.joined(separator: ", "))); nothing was changed. Continue it with `factorlab resume \(runDirectory.path)`, or start this one elsewhere with --set name=NEW_NAME or --set checkpoint.dir=DIR")
            }
        }
        do { try fm.createDirectory(at: runDirectory, withIntermediateDirectories: true) } catch {
            throw TrainingError.recipe("cannot create the run folder \(runDirectory.path): \(FileSystemReason.of(error, path: runDirectory.path))")
        }
        guard fm.isWritableFile(atPath: runDirectory.path) else {
            throw TrainingError.recipe("the run folder \(runDirectory.path) is not writable (permission denied)")
        }
    }

    /// The checkpoint policy: with an `optimizer` (a checkpoint is due) the full state as
    /// `ckpt-<step>.h5`, keeping the newest `keep_last`; and `best.h5` (weights only) whenever
    /// validation improved. Ranks first check that their weights agree; rank 0 alone writes.
    func saveCheckpoints(_ optimizer: AdamW?, state: LoopState, improved: Bool, model: GPT2Model) throws {
        let step = state.progress.step
        if optimizer != nil && comm.size > 1 { try Trainer.checkRanksAgree(model: model, communicator: comm, step: step) }
        guard comm.isRoot else { return }
        if let optimizer {
            try Checkpoint.save(model: model, optimizer: optimizer, progress: state.progress, recipe: recipe.text, tokenizer: tokenizerFingerprint,
                                to: runDirectory.appendingPathComponent(CheckpointFiles.name(step: step)))
            try CheckpointFiles.prune(in: runDirectory, keep: recipe.checkpoint.keepLast, sparing: Set(recipe.checkpoint.keepSteps))
        }
        if improved && recipe.checkpoint.keepBest {
            try Checkpoint.save(model: model, optimizer: nil, progress: state.progress, recipe: recipe.text, tokenizer: tokenizerFingerprint,
                                to: runDirectory.appendingPathComponent("best.h5"))
        }
    }

    /// The sample generation printed at the end of a finished run (rank 0 only).
    func sample(model: GPT2Model, tokenizer: BPETokenizer) throws -> String? {
        guard recipe.eval.sampleTokens > 0 && comm.isRoot else { return nil }
        var rng = RandomGenerator(seed: recipe.seed ^ 0x5A)
        let prompt = tokenizer.encode(recipe.eval.prompt)
        let ids = try model.generate(prompt: prompt.isEmpty ? [tokenizer.endOfTextID ?? 0] : prompt,
                                     maxNewTokens: recipe.eval.sampleTokens, sampling: Sampling(temperature: 0.8, topK: 40),
                                     rng: &rng, stopToken: tokenizer.endOfTextID)
        return recipe.eval.prompt + (try tokenizer.decode(ids.filter { $0 != tokenizer.endOfTextID }))
    }

    /// Writes summary.json; for a finished run (`inference` is its model), measures the model's
    /// inference cost on this machine and records it in run.json, where the study reads it.
    func finish(_ s: TrainSummary, records: RunRecords, inference model: GPT2Model?, description: RunDescription,
                validate: ((GPT2Model) throws -> Double?)? = nil) throws {
        if let model, recipe.eval.measureInference {
            options.log("measuring inference (generation latency at batch 1, forward tokens/s at batch 8; float32, bf16 and int8 weights)")
            var d = description
            d.inference = try InferenceMeasurement.measureWithQuantized(model) { m in try validate?(m) }
            try records.write("run.json", d)
        }
        var summary = RunSummary(finalValLoss: s.finalValLoss.flatMap { $0.isFinite ? $0 : nil },
                                 bestValLoss: s.bestValLoss.flatMap { $0.isFinite ? $0 : nil },
                                 finalTrainLoss: s.finalTrainLoss.isFinite ? Double(s.finalTrainLoss) : nil,
                                 steps: s.steps, tokens: s.tokens, wallSeconds: s.wallSeconds, flops: s.flops,
                                 peakMemoryBytes: s.peakMemoryBytes, sample: s.sample, ranks: comm.size > 1 ? comm.size : nil)
        summary.formatVersion = runRecordsFormatVersion
        try records.write("summary.json", summary)
    }

    /// run.json: what this run trains.
    func description(model: GPT2Model, flopsPerToken: Double, totalSteps: Int, initFLOPs: Double) -> RunDescription {
        let c = model.config
        var d = RunDescription(name: recipe.name, family: recipe.familyLabel(resolved: c.linearSpec),
                               model: ModelShape(nLayer: c.nLayer, nEmbd: c.nEmbd, nHead: c.nHead, nPositions: c.nPositions,
                                                 vocabSize: c.vocabSize, mlp: c.mlpSpec,
                                                 linear: c.linearSpec == c.mlpSpec ? nil : c.linearSpec),
                               parameters: model.parameterCount, nonEmbeddingParameters: model.nonEmbeddingParameterCount,
                               flopsPerToken: flopsPerToken, seed: Int(truncatingIfNeeded: recipe.seed), arm: recipe.arm)
        d.formatVersion = runRecordsFormatVersion
        d.preset = recipe.model.preset
        d.batchSize = recipe.training.batchSize
        d.seqLen = recipe.training.seqLen
        d.gradAccum = recipe.training.gradAccum
        d.totalSteps = totalSteps
        d.ranks = comm.size
        d.initFlops = initFLOPs > 0 ? initFLOPs : nil
        d.structuredLR = recipe.structuredLR == .none ? nil : recipe.structuredLR.rawValue
        return d
    }

    /// Stops the job if the ranks' parameters differ (they apply identical updates to identical
    /// reduced gradients, so they should agree bit for bit). Each rank hashes its parameter bytes;
    /// the sums of the hash's 16-bit pieces and of their squares over the ranks equal
    /// ranks x (piece) and ranks x (piece)^2 only if every rank has the same piece.
    static func checkRanksAgree(model: GPT2Model, communicator comm: Communicator, step: Int) throws {
        var hash = FNV1a64()
        for (_, p) in model.namedParameters {
            p.value.withUnsafePointer { ptr in
                ptr.withMemoryRebound(to: UInt32.self, capacity: p.value.count) { words in
                    hash.update(words: UnsafeBufferPointer(start: words, count: p.value.count))
                }
            }
        }
        let h = hash.value
        let pieces = (0..<4).map { Double((h >> (16 * UInt64($0))) & 0xffff) }
        let sums = try comm.allreduceSum(pieces + pieces.map { $0 * $0 })
        let n = Double(comm.size)
        for k in 0..<4 where sums[k] != n * pieces[k] || sums[4 + k] != n * pieces[k] * pieces[k] {
            throw TrainingError.distributed("data parallel: the ranks' parameters differ after step \(step) (rank \(comm.rank) hash \(String(h, radix: 16))); stopping before saving a checkpoint")
        }
    }

    /// `step 40/400 | loss 5.1234 | lr 1.00e-03 | 12000 tok/s | 00:00:12 elapsed | ETA 00:01:48 | val 5.2000`
    func progressLine(_ p: TrainingProgress, total: Int, result: StepResult, tokensPerSecond: Double) -> String {
        let remaining = Double(total - p.step) * Double(recipe.tokensPerStep * comm.size) / max(tokensPerSecond, 1e-9)
        return String(format: "step %d/%d | loss %.4f | lr %.2e | %.0f tok/s | %@ elapsed | ETA %@%@", p.step, total, result.loss, result.lr,
                      tokensPerSecond, Trainer.clock(p.wallSeconds), Trainer.clock(remaining),
                      p.lastValLoss.map { String(format: " | val %.4f", $0) } ?? "")
    }

    static func isFolder(_ url: URL) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    static func clock(_ seconds: Double) -> String {
        guard seconds.isFinite, abs(seconds) < 1e12 else { return "--:--:--" }
        let s = Int(seconds.rounded())
        return String(format: "%02d:%02d:%02d", s / 3600, (s / 60) % 60, s % 60)
    }
}

/// Training tokens per second over the last two seconds or so (the progress line's figure).
struct Throughput {
    var tokens = 0
    var since = Date()
    var rate = 0.0

    /// Adds a step's tokens; returns the current rate.
    mutating func add(_ n: Int) -> Double {
        tokens += n
        let elapsed = Date().timeIntervalSince(since)
        if elapsed > 2 || rate == 0 {
            rate = Double(tokens) / max(elapsed, 1e-9)
            tokens = 0
            since = Date()
        }
        return rate
    }
}
