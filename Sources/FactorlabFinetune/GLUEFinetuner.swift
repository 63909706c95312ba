import FactorlabAutograd
import FactorlabCheckpoint
import FactorlabGPT2
import FactorlabOptim
import FactorlabTasks
import FactorlabTensor
import FactorlabRecords
import FactorlabTraining
import Foundation

/// Finetunes a GPT-2 sequence classifier on one GLUE task (or a task in a GLUE layout, such as
/// the Shakespeare-vs-Milton attribution task in SST-2 format).
///
/// Per step: a batch of encoded rows (``GLUEEncoder``), the loss (cross-entropy over the classes,
/// or MSE of the single score for STS-B), backward, clipping, AdamW with linear warmup then linear
/// decay to 0. After each epoch the dev split(s) are scored with GLUE's official metrics (MNLI:
/// dev_matched and dev_mismatched); the best epoch on the task's first metric is saved as
/// `best.h5`, and at the end its predictions on the test file(s) are written in the GLUE
/// submission format.
public final class GLUEFinetuner {
    public struct Options: Sendable {
        public var epochs = 3
        public var batchSize = 32
        public var lr: Float = 2e-5
        public var weightDecay: Float = 0.01
        public var beta1: Float = 0.9
        public var beta2: Float = 0.999
        public var eps: Float = 1e-8
        /// Warmup as a fraction of all steps (used when ``warmupSteps`` is nil).
        public var warmupRatio: Double = 0.06
        public var warmupSteps: Int? = nil
        public var gradClip: Double? = 1.0
        /// Stop after this many optimizer steps in total (nil: all epochs).
        public var maxSteps: Int? = nil
        public var evalBatchSize = 64
        public var seed: UInt64 = 42
        /// Use dropout from the model config during training.
        public var dropout = true
        public init() {}
    }

    /// One scored pass over a dev split.
    public struct Evaluation: Sendable {
        public var split: GLUESplit
        public var metrics: [String: Double]
        public var loss: Double
        public var predictedLabels: [Int]
        public var predictedScores: [Double]
    }

    public let task: GLUETask
    public let model: GPT2Model
    public let encoder: GLUEEncoder
    public var options: Options
    /// Called with progress lines (stderr in the CLI).
    public var progress: (String) -> Void = { _ in }
    public var log: (String) -> Void = { _ in }

    /// `model` must already have a head of `task.outputCount` outputs (see ``ClassifierModel``).
    public init(task: GLUETask, model: GPT2Model, encoder: GLUEEncoder, options: Options = Options()) throws {
        guard model.config.numLabels == task.outputCount else {
            throw FinetuneError.model("\(task.name) needs a head of \(task.outputCount) outputs; the model has \(model.config.numLabels)")
        }
        self.task = task
        self.model = model
        self.encoder = encoder
        self.options = options
    }

    // MARK: - Loss

    /// The batch loss: mean cross-entropy over the rows' classes, or for STS-B the mean squared
    /// error between the single output and the gold score.
    public func loss(rows: [[Int32]], examples: [GLUEExample], dropoutKey: UInt64?) throws -> Variable {
        let (ids, seqLen) = GLUEEncoder.pad(rows, with: encoder.padID)
        let out = try model.classify(ids, batch: rows.count, seqLen: seqLen, dropoutKey: dropoutKey)  // [B, L]
        if task.isRegression {
            let gold = try examples.map { e -> Float in
                guard let s = e.score else { throw FinetuneError.data("\(task.name) row \(e.id) (line \(e.line)) has no score") }
                return Float(s)
            }
            let target = Variable(try Tensor(shape: [rows.count, 1], scalars: gold))
            return try (out - target).squared().mean()
        }
        let labels = try examples.map { e -> Int32 in
            guard let l = e.label else { throw FinetuneError.data("\(task.name) row \(e.id) (line \(e.line)) has no label") }
            return Int32(l)
        }
        return try Variable.crossEntropy(logits: out, targets: labels)
    }

    // MARK: - Prediction and evaluation

    /// Model outputs for `examples`, in order: one row of `numLabels` values each.
    public func outputs(_ examples: [GLUEExample]) throws -> [[Float]] {
        var result: [[Float]] = []
        result.reserveCapacity(examples.count)
        let n = model.config.numLabels
        try Tape.withoutRecording {
            var start = 0
            while start < examples.count {
                let chunk = examples[start..<min(start + options.evalBatchSize, examples.count)]
                let rows = chunk.map { encoder.encode(textA: $0.textA, textB: $0.textB) }
                let (ids, seqLen) = GLUEEncoder.pad(rows, with: encoder.padID)
                let values = try model.classify(ids, batch: rows.count, seqLen: seqLen).value.scalars
                for r in 0..<rows.count { result.append(Array(values[(r * n)..<((r + 1) * n)])) }
                start += chunk.count
            }
        }
        return result
    }

    /// Class predictions (argmax; the first class wins a tie) or scores for `examples`.
    public func predict(_ examples: [GLUEExample]) throws -> (labels: [Int], scores: [Double]) {
        let out = try outputs(examples)
        if task.isRegression { return ([], out.map { Double($0[0]) }) }
        return (out.map { Scoring.argmax($0) }, [])
    }

    /// Scores a labelled split with the official metrics, and its mean loss.
    public func evaluate(_ data: LabelledSplit) throws -> Evaluation {
        guard !data.examples.isEmpty else { throw FinetuneError.data("\(data.file): no examples to evaluate") }
        let out = try outputs(data.examples)
        var lossSum = 0.0
        var metrics: [String: Double]
        var labels: [Int] = [], scores: [Double] = []
        if task.isRegression {
            scores = out.map { Double($0[0]) }
            let gold = try data.examples.map { e -> Double in
                guard let s = e.score else { throw FinetuneError.data("\(data.file) line \(e.line): no score (is this a test file?)") }
                return s
            }
            for (p, g) in zip(scores, gold) { lossSum += (p - g) * (p - g) }
            metrics = try GLUEMetrics.compute(task: task, predictions: scores, references: gold)
        } else {
            let gold = try data.examples.map { e -> Int in
                guard let l = e.label else { throw FinetuneError.data("\(data.file) line \(e.line): no label (is this a test file?)") }
                return l
            }
            for (row, g) in zip(out, gold) {
                let (logProb, best) = row.withUnsafeBufferPointer { Scoring.score($0.baseAddress!, count: $0.count, target: g) }
                lossSum -= logProb
                labels.append(best)
            }
            metrics = try GLUEMetrics.compute(task: task, predictions: labels, references: gold)
        }
        return Evaluation(split: data.split, metrics: metrics, loss: lossSum / Double(out.count),
                          predictedLabels: labels, predictedScores: scores)
    }

    /// Metrics of all dev splits in one dictionary: MNLI's keys get `_matched`/`_mismatched`
    /// suffixes ("accuracy_matched"); other tasks keep the metric names. Also "loss".
    public func evaluateDev(_ splits: [LabelledSplit]) throws -> [String: Double] {
        var all: [String: Double] = [:]
        for d in splits {
            let e = try evaluate(d)
            let suffix = task == .mnli ? (d.split == .devMismatched ? "_mismatched" : "_matched") : ""
            for (k, v) in e.metrics { all[k + suffix] = v }
            all["loss" + suffix] = e.loss
        }
        return all
    }

    /// The metric that picks the best epoch: the task's first metric (MNLI: matched accuracy).
    public var primaryMetric: String {
        let m = task.metrics[0].rawValue
        return task == .mnli ? m + "_matched" : m
    }

    // MARK: - Training

    /// Result of ``train(train:dev:runDirectory:recipeText:)``.
    public struct Summary: Sendable {
        public var steps: Int
        public var firstTrainLoss: Double
        public var finalTrainLoss: Double
        /// Dev metrics before the first step and after each epoch.
        public var initialDev: [String: Double]
        public var epochDev: [[String: Double]]
        public var bestEpoch: Int
        public var bestDev: [String: Double]
        public var wallSeconds: Double
    }

    /// Trains for the configured epochs. With a `runDirectory`, writes `metrics.jsonl`/`.csv`
    /// (rows with epoch, step, train_loss, lr, and the dev metrics as `dev_<name>` after each
    /// epoch), `best.h5` and `summary.json`; the model is left with the best epoch's weights.
    public func train(train: [GLUEExample], dev: [LabelledSplit], runDirectory: URL?, recipeText: String? = nil) throws -> Summary {
        guard !train.isEmpty else { throw FinetuneError.data("\(task.name): the training set is empty") }
        let started = Date()
        let loop = EpochLoop(examples: train.count, batchSize: options.batchSize, epochs: options.epochs, maxSteps: options.maxSteps)
        let total = loop.totalSteps
        let warmup = options.warmupSteps ?? Int((Double(total) * options.warmupRatio).rounded())
        let optimizer = AdamW(model.namedParameters, hyper: .init(lr: options.lr, beta1: options.beta1, beta2: options.beta2,
                                                                   eps: options.eps, weightDecay: options.weightDecay))
        let stepper = OptimizerStep(optimizer: optimizer,
                                    schedule: LRSchedule(peak: options.lr, warmupSteps: warmup, totalSteps: total, decay: .linear, floor: 0),
                                    clipNorm: options.gradClip)
        let records = try runDirectory.map { try RunRecords(directory: $0) }
        let rows = train.map { encoder.encode(textA: $0.textA, textB: $0.textB) }

        let initialDev = dev.isEmpty ? [:] : try evaluateDev(dev)
        if !initialDev.isEmpty {
            log("before finetuning: " + GLUEFinetuner.format(initialDev))
            records?.append(FinetuneRow(epoch: 0, step: 0, dev: initialDev))
        }
        var best = (epoch: 0, value: -Double.infinity, metrics: [String: Double]())
        var epochDev: [[String: Double]] = []
        var first: Double? = nil, last = 0.0
        var epochLoss = (sum: 0.0, count: 0)
        let steps = try loop.run(seed: options.seed, dropout: options.dropout, step: stepper, loss: { idx, key in
            try self.loss(rows: idx.map { rows[$0] }, examples: idx.map { train[$0] }, dropoutKey: key)
        }, onStep: { epoch, step, r in
            let value = Double(r.loss)
            first = first ?? value
            last = value
            epochLoss = (epochLoss.sum + value, epochLoss.count + 1)
            records?.append(FinetuneRow(epoch: epoch, step: step, trainLoss: value, lr: Double(r.lr), gradNorm: r.gradNorm,
                                        wallSeconds: Date().timeIntervalSince(started)))
            progress(String(format: "epoch %d/%d | step %d/%d | loss %.4f (epoch mean %.4f) | lr %.2e",
                            epoch, options.epochs, step, total, value, epochLoss.sum / Double(epochLoss.count), Double(r.lr)))
        }, onEpochEnd: { epoch, step in
            defer { epochLoss = (0, 0) }
            guard !dev.isEmpty else { return }
            let metrics = try evaluateDev(dev)
            epochDev.append(metrics)
            let mean = epochLoss.sum / Double(max(1, epochLoss.count))
            log("epoch \(epoch): train loss \(String(format: "%.4f", mean)); dev " + GLUEFinetuner.format(metrics))
            records?.append(FinetuneRow(epoch: epoch, step: step, trainLoss: mean, dev: metrics))
            let value = metrics[primaryMetric] ?? -Double.infinity
            if value > best.value || best.epoch == 0 {
                best = (epoch, value, metrics)
                if let dir = runDirectory {
                    try Checkpoint.save(model: model, recipe: recipeText, tokenizer: encoder.codec.fingerprint,
                                        to: dir.appendingPathComponent("best.h5"))
                }
            }
        })
        // Leave the model with the best epoch's weights.
        if let dir = runDirectory, best.epoch > 0, best.epoch != epochDev.count {
            let contents = try Checkpoint.read(dir.appendingPathComponent("best.h5"), includeOptimizer: false)
            try Checkpoint.assign(contents, to: model, file: dir.appendingPathComponent("best.h5").path)
        }
        let summary = Summary(steps: steps, firstTrainLoss: first ?? .nan, finalTrainLoss: last, initialDev: initialDev,
                              epochDev: epochDev, bestEpoch: best.epoch, bestDev: best.metrics,
                              wallSeconds: Date().timeIntervalSince(started))
        var record = FinetuneSummary(task: task.name, steps: steps, wallSeconds: summary.wallSeconds)
        record.firstTrainLoss = first
        record.finalTrainLoss = last
        record.devBefore = initialDev
        record.devPerEpoch = epochDev
        record.bestEpoch = best.epoch
        record.bestDev = best.metrics
        record.primaryMetric = primaryMetric
        record.parameters = model.parameterCount
        record.mlp = model.config.mlpSpec
        record.trainExamples = train.count
        try records?.write("summary.json", record)
        return summary
    }

    /// Writes predictions on the test split(s) in the GLUE submission format into `directory`.
    @discardableResult
    public func writeSubmission(_ test: GLUEDataset, to directory: URL) throws -> URL {
        let (labels, scores) = try predict(test.examples)
        if task.isRegression {
            return try GLUESubmission.write(task: task, split: test.split, examples: test.examples, scores: scores, to: directory)
        }
        return try GLUESubmission.write(task: task, split: test.split, examples: test.examples, labels: labels, to: directory)
    }

    /// "accuracy 0.8120, loss 0.4011" in key order.
    public static func format(_ m: [String: Double]) -> String {
        m.keys.sorted().map { "\($0) " + String(format: "%.4f", m[$0]!) }.joined(separator: ", ")
    }
}

/// Labelled rows of a dev split (possibly a subsample of a ``GLUEDataset``), with the file they
/// came from for messages.
public struct LabelledSplit: Sendable {
    public var split: GLUESplit
    public var file: String
    public var examples: [GLUEExample]
    public init(split: GLUESplit, file: String, examples: [GLUEExample]) {
        self.split = split
        self.file = file
        self.examples = examples
    }
    public init(_ d: GLUEDataset) { self.init(split: d.split, file: d.file, examples: d.examples) }
}

