import Foundation

// The records a run leaves in its folder, as types shared by the code that writes them (the
// trainer, the finetuners) and the code that reads them (the study report, the CLI). A field
// renamed on one side is renamed on both; the JSON key of every field is written once, in its
// CodingKeys.
//
//   run.json        RunDescription   what was trained (and, once measured, its inference cost)
//   metrics.jsonl   MetricsRow       one line per optimizer step (pretraining)
//                   FinetuneRow      one line per step or epoch (finetuning)
//   summary.json    RunSummary       how a pretraining run ended
//                   FinetuneSummary  how a finetuning run ended
//
// Every record carries `format_version` when written by this version; readers accept records
// without it (written before it existed) and refuse newer versions.

/// The version of the run records this Factorlab writes.
public let runRecordsFormatVersion = 1

/// The model shape recorded in `run.json` under `model`.
public struct ModelShape: Codable, Hashable, Sendable {
    public var nLayer: Int
    public var nEmbd: Int
    public var nHead: Int
    public var nPositions: Int
    public var vocabSize: Int
    /// The MLP layer spec string (`dense`, `monarch:4`, ...).
    public var mlp: String
    /// The spec of every linear layer (`mlp=monarch:4,attn=monarch:4,head=lowrank:256`), when
    /// more than the MLP is structured; absent in records written before per-site kinds.
    public var linear: String?

    public init(nLayer: Int, nEmbd: Int, nHead: Int, nPositions: Int, vocabSize: Int, mlp: String, linear: String? = nil) {
        self.nLayer = nLayer
        self.nEmbd = nEmbd
        self.nHead = nHead
        self.nPositions = nPositions
        self.vocabSize = vocabSize
        self.mlp = mlp
        self.linear = linear
    }

    /// Short size name used in tables and sentences: `4L-256d` (layers, embedding width).
    public var sizeLabel: String { "\(nLayer)L-\(nEmbd)d" }

    enum CodingKeys: String, CodingKey {
        case nLayer = "n_layer", nEmbd = "n_embd", nHead = "n_head", nPositions = "n_positions", vocabSize = "vocab_size", mlp, linear
    }
}

/// Inference cost measured for a run on the machine that trained it (`run.json` → `inference`).
public struct InferenceRecord: Codable, Equatable, Sendable {
    /// KV-cache generation latency per token at batch 1 (median), milliseconds.
    public var latencyMsPerToken: Double
    /// Peak resident memory of the process while generating, bytes: it counts whatever else the
    /// process holds (in a trainer, the optimizer state and the data).
    public var peakMemoryBytes: Int
    /// What generation itself needs, bytes: the weights as stored plus the resident growth while
    /// generating (KV cache, activations). Comparable across processes and formats, unlike
    /// `peakMemoryBytes` (a quantized copy measured beside its float32 original counts only its own weights).
    public var generationMemoryBytes: Int?
    /// Prompt length before the measured tokens.
    public var prefixTokens: Int?
    /// Forward (no-grad) tokens per second at batch `forwardBatch`.
    public var forwardTokensPerSecond: Double?
    public var forwardBatch: Int?
    public var parameters: Int?
    /// Bytes of weights read per generated token (all parameters at their storage precision).
    public var weightBytes: Int?
    /// Weight storage precision (`float32`, `bf16`, `int8`).
    public var weightPrecision: String?
    /// Validation loss of the model as measured (the run's validation batches), so that a
    /// low-precision variant is judged by its own loss.
    public var valLoss: Double?
    /// The same model with low-precision weights (`factorlab quantize`'s bf16 and int8), each
    /// measured the same way: the inference budget's weight-only accelerators.
    public var quantized: [InferenceRecord]?

    public init(latencyMsPerToken: Double, peakMemoryBytes: Int, prefixTokens: Int? = nil, forwardTokensPerSecond: Double? = nil,
                forwardBatch: Int? = nil, parameters: Int? = nil, weightBytes: Int? = nil, weightPrecision: String? = nil) {
        self.latencyMsPerToken = latencyMsPerToken
        self.peakMemoryBytes = peakMemoryBytes
        self.prefixTokens = prefixTokens
        self.forwardTokensPerSecond = forwardTokensPerSecond
        self.forwardBatch = forwardBatch
        self.parameters = parameters
        self.weightBytes = weightBytes
        self.weightPrecision = weightPrecision
    }

    enum CodingKeys: String, CodingKey {
        case latencyMsPerToken = "latency_ms_per_token", peakMemoryBytes = "peak_memory_bytes", prefixTokens = "prefix_tokens"
        case generationMemoryBytes = "generation_memory_bytes"
        case forwardTokensPerSecond = "forward_tokens_per_s", forwardBatch = "forward_batch", parameters
        case weightBytes = "weight_bytes", weightPrecision = "weight_precision", valLoss = "val_loss", quantized
    }
}

/// A run's `run.json`: what was trained.
public struct RunDescription: Codable, Equatable, Sendable {
    public var formatVersion: Int?
    public var name: String
    /// The accelerator family: `dense`, `monarch:4`, `lowrank:64`, `butterfly`, ...
    public var family: String
    public var model: ModelShape
    public var parameters: Int
    public var nonEmbeddingParameters: Int
    /// Training FLOPs per token (forward + backward).
    public var flopsPerToken: Double
    public var seed: Int
    /// Experiment arm (`scratch`, `projected`, `projected-trained`); nil for ordinary runs.
    public var arm: String?
    public var inference: InferenceRecord?
    /// The recipe's preset, if it named one.
    public var preset: String?
    /// Sequences per rank and step, tokens per sequence, micro-batches per step.
    public var batchSize: Int?
    public var seqLen: Int?
    public var gradAccum: Int?
    public var totalSteps: Int?
    public var ranks: Int?
    /// Training FLOPs already spent on the starting weights (`init_from`).
    /// The structured learning-rate rule of the optimizer (`fan-in`), absent for none.
    public var structuredLR: String?
    public var initFlops: Double?

    public init(name: String, family: String, model: ModelShape, parameters: Int, nonEmbeddingParameters: Int,
                flopsPerToken: Double, seed: Int, arm: String? = nil, inference: InferenceRecord? = nil) {
        self.name = name
        self.family = family
        self.model = model
        self.parameters = parameters
        self.nonEmbeddingParameters = nonEmbeddingParameters
        self.flopsPerToken = flopsPerToken
        self.seed = seed
        self.arm = arm
        self.inference = inference
    }

    /// Whether the family is the dense baseline.
    public var isDense: Bool { family == "dense" }

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", name, family, model, parameters, nonEmbeddingParameters = "non_embedding_parameters"
        case flopsPerToken = "flops_per_token", seed, arm, inference, preset, batchSize = "batch_size", seqLen = "seq_len"
        case gradAccum = "grad_accum", totalSteps = "total_steps", ranks, initFlops = "init_flops", structuredLR = "structured_lr"
    }
}

/// One line of a pretraining run's `metrics.jsonl`. The first line (step 0, before any update)
/// has a validation loss but no training loss, gradient norm or throughput yet.
public struct MetricsRow: Codable, Equatable, Sendable {
    public var step: Int
    public var tokens: Int
    public var trainLoss: Double?
    public var valLoss: Double?
    public var lr: Double
    public var gradNorm: Double?
    public var tokensPerSecond: Double?
    /// Elapsed wall-clock seconds since the run started.
    public var wallSeconds: Double
    /// Training FLOPs so far.
    public var flops: Double
    /// Data parallel: seconds spent in gradient all-reduce, and waiting for it after backward.
    public var allreduceSeconds: Double?
    public var allreduceWaitSeconds: Double?

    public init(step: Int, tokens: Int, trainLoss: Double? = nil, valLoss: Double? = nil, lr: Double, gradNorm: Double? = nil,
                tokensPerSecond: Double? = nil, wallSeconds: Double, flops: Double) {
        self.step = step
        self.tokens = tokens
        self.trainLoss = trainLoss
        self.valLoss = valLoss
        self.lr = lr
        self.gradNorm = gradNorm
        self.tokensPerSecond = tokensPerSecond
        self.wallSeconds = wallSeconds
        self.flops = flops
    }

    public enum CodingKeys: String, CodingKey {
        case step, tokens, trainLoss = "train_loss", valLoss = "val_loss", lr, gradNorm = "grad_norm"
        case tokensPerSecond = "tokens_per_s", wallSeconds = "wall_s", flops, allreduceSeconds = "allreduce_s"
        case allreduceWaitSeconds = "allreduce_wait_s"
    }

    /// The columns of `metrics.csv`, in order (the same keys as the JSON lines).
    public static let csvColumns: [CodingKeys] = [.step, .tokens, .trainLoss, .valLoss, .lr, .gradNorm, .tokensPerSecond, .wallSeconds, .flops]

    /// This row's cells under ``csvColumns`` (empty where a value is absent).
    public var csvCells: [String] {
        func cell(_ v: Double?) -> String { v.map { "\($0)" } ?? "" }
        return [String(step), String(tokens), cell(trainLoss), cell(valLoss), cell(lr), cell(gradNorm), cell(tokensPerSecond),
                cell(wallSeconds), cell(flops)]
    }
}

/// A pretraining run's `summary.json`, written when training ends.
public struct RunSummary: Codable, Equatable, Sendable {
    public var formatVersion: Int?
    public var finalValLoss: Double?
    public var bestValLoss: Double?
    public var finalTrainLoss: Double?
    public var steps: Int
    public var tokens: Int
    public var wallSeconds: Double
    public var flops: Double
    public var peakMemoryBytes: Int?
    public var sample: String?
    public var ranks: Int?

    public init(finalValLoss: Double? = nil, bestValLoss: Double? = nil, finalTrainLoss: Double? = nil, steps: Int, tokens: Int,
                wallSeconds: Double, flops: Double, peakMemoryBytes: Int? = nil, sample: String? = nil, ranks: Int? = nil) {
        self.finalValLoss = finalValLoss
        self.bestValLoss = bestValLoss
        self.finalTrainLoss = finalTrainLoss
        self.steps = steps
        self.tokens = tokens
        self.wallSeconds = wallSeconds
        self.flops = flops
        self.peakMemoryBytes = peakMemoryBytes
        self.sample = sample
        self.ranks = ranks
    }

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", finalValLoss = "final_val_loss", bestValLoss = "best_val_loss"
        case finalTrainLoss = "final_train_loss", steps, tokens, wallSeconds = "wall_s", flops, peakMemoryBytes = "peak_memory_bytes"
        case sample, ranks
    }
}

/// One line of a finetuning run's `metrics.jsonl`: a step (loss, lr, gradient norm) or an
/// epoch's end (mean loss and dev metrics, each under `dev_<metric>`).
public struct FinetuneRow: Codable, Equatable, Sendable {
    public var epoch: Int
    public var step: Int
    public var trainLoss: Double?
    public var lr: Double?
    public var gradNorm: Double?
    public var wallSeconds: Double?
    /// Dev metrics by name (`accuracy`, `f1`, `loss`, ...), written as `dev_<name>`.
    public var dev: [String: Double]

    public init(epoch: Int, step: Int, trainLoss: Double? = nil, lr: Double? = nil, gradNorm: Double? = nil,
                wallSeconds: Double? = nil, dev: [String: Double] = [:]) {
        self.epoch = epoch
        self.step = step
        self.trainLoss = trainLoss
        self.lr = lr
        self.gradNorm = gradNorm
        self.wallSeconds = wallSeconds
        self.dev = dev
    }

    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ s: String) { stringValue = s }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
        static let epoch = Key("epoch"), step = Key("step"), trainLoss = Key("train_loss"), lr = Key("lr")
        static let gradNorm = Key("grad_norm"), wallSeconds = Key("wall_s")
        static let devPrefix = "dev_"
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(epoch, forKey: .epoch)
        try c.encode(step, forKey: .step)
        try c.encodeIfPresent(trainLoss, forKey: .trainLoss)
        try c.encodeIfPresent(lr, forKey: .lr)
        try c.encodeIfPresent(gradNorm, forKey: .gradNorm)
        try c.encodeIfPresent(wallSeconds, forKey: .wallSeconds)
        for (name, value) in dev { try c.encode(value, forKey: Key(Key.devPrefix + name)) }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        epoch = try c.decode(Int.self, forKey: .epoch)
        step = try c.decode(Int.self, forKey: .step)
        trainLoss = try c.decodeIfPresent(Double.self, forKey: .trainLoss)
        lr = try c.decodeIfPresent(Double.self, forKey: .lr)
        gradNorm = try c.decodeIfPresent(Double.self, forKey: .gradNorm)
        wallSeconds = try c.decodeIfPresent(Double.self, forKey: .wallSeconds)
        dev = [:]
        for key in c.allKeys where key.stringValue.hasPrefix(Key.devPrefix) {
            dev[String(key.stringValue.dropFirst(Key.devPrefix.count))] = try c.decode(Double.self, forKey: key)
        }
    }
}

/// A finetuning run's `summary.json` (GLUE or CoQA), and what `factorlab finetune --json` prints.
public struct FinetuneSummary: Codable, Equatable, Sendable {
    public var formatVersion: Int?
    /// `SST-2`, `MNLI`, `CoQA`, ...
    public var task: String
    public var steps: Int
    public var firstTrainLoss: Double?
    public var finalTrainLoss: Double?
    public var wallSeconds: Double
    public var parameters: Int?
    public var mlp: String?
    public var trainExamples: Int?
    /// GLUE: dev metrics before training, after each epoch, and of the best epoch on the
    /// task's primary metric.
    public var devBefore: [String: Double]?
    public var devPerEpoch: [[String: Double]]?
    public var bestEpoch: Int?
    public var bestDev: [String: Double]?
    public var primaryMetric: String?
    /// CoQA: official exact match and F1 on the dev stories.
    public var devEM: Double?
    public var devF1: Double?

    public init(task: String, steps: Int, wallSeconds: Double) {
        self.formatVersion = runRecordsFormatVersion
        self.task = task
        self.steps = steps
        self.wallSeconds = wallSeconds
    }

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", task, steps, firstTrainLoss = "first_train_loss", finalTrainLoss = "final_train_loss"
        case wallSeconds = "wall_s", parameters, mlp, trainExamples = "train_examples", devBefore = "dev_before"
        case devPerEpoch = "dev_per_epoch", bestEpoch = "best_epoch", bestDev = "best_dev", primaryMetric = "primary_metric"
        case devEM = "dev_em", devF1 = "dev_f1"
    }
}

/// Encoding and atomic writing of records.
public enum RecordFiles {
    /// Pretty JSON with sorted keys (files people read), or one compact line (metrics.jsonl).
    public static func encode<T: Encodable>(_ value: T, pretty: Bool) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys] : [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .throw
        do { return try encoder.encode(value) } catch {
            throw RecordError(.invalidValue, key: nil, "cannot encode \(T.self): \(error) (a value is NaN or infinite)")
        }
    }

    /// Writes `value` as pretty JSON to `url` through a temporary file and a rename.
    public static func write<T: Encodable>(_ value: T, to url: URL) throws {
        try encode(value, pretty: true).write(to: url, options: .atomic)
    }
}

/// What `factorlab finetune` reports (stdout with `--json`): the run, the model, and the scores.
public struct FinetuneResult: Codable, Equatable, Sendable {
    public var task: String
    /// The model file read.
    public var model: String
    public var mlp: String?
    public var parameters: Int?
    /// The run folder (absent for GLUE eval-only runs, which write nothing).
    public var run: String?
    /// GLUE: how the score head came about (`from the model`, `fresh (untrained)`).
    public var head: String?
    public var devExamples: [Int]?
    public var trainExamples: Int?
    /// Eval-only: the dev metrics of the model as loaded.
    public var dev: [String: Double]?
    public var steps: Int?
    public var firstTrainLoss: Double?
    public var finalTrainLoss: Double?
    public var devBefore: [String: Double]?
    public var devPerEpoch: [[String: Double]]?
    public var bestEpoch: Int?
    public var bestDev: [String: Double]?
    public var bestCheckpoint: String?
    public var submissionFiles: [String]?
    public var wallSeconds: Double?
    /// CoQA: official exact match and F1, stories and turns used.
    public var devEM: Double?
    public var devF1: Double?
    public var devStories: Int?
    public var trainTurns: Int?

    public init(task: String, model: String) {
        self.task = task
        self.model = model
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case task, model, mlp, parameters, run, head, devExamples = "dev_examples", trainExamples = "train_examples", dev, steps
        case firstTrainLoss = "first_train_loss", finalTrainLoss = "final_train_loss", devBefore = "dev_before"
        case devPerEpoch = "dev_per_epoch", bestEpoch = "best_epoch", bestDev = "best_dev", bestCheckpoint = "best_checkpoint"
        case submissionFiles = "submission_files", wallSeconds = "wall_s", devEM = "dev_em", devF1 = "dev_f1"
        case devStories = "dev_stories", trainTurns = "train_turns"
    }

    /// `key: value` lines for a terminal, keys sorted as in the JSON.
    public var textLines: [String] {
        var rows: [(CodingKeys, String)] = []
        func add(_ key: CodingKeys, _ value: String?) { if let value { rows.append((key, value)) } }
        func number(_ d: Double?) -> String? { d.map { String(format: "%.4f", $0) } }
        func metrics(_ m: [String: Double]?) -> String? {
            m.map { d in d.keys.sorted().map { "\($0) \(String(format: "%.4f", d[$0]!))" }.joined(separator: ", ") }
        }
        add(.task, task); add(.model, model); add(.mlp, mlp); add(.parameters, parameters.map(String.init)); add(.run, run)
        add(.head, head); add(.devExamples, devExamples.map { "\($0)" }); add(.trainExamples, trainExamples.map(String.init))
        add(.dev, metrics(dev)); add(.steps, steps.map(String.init)); add(.firstTrainLoss, number(firstTrainLoss))
        add(.finalTrainLoss, number(finalTrainLoss)); add(.devBefore, metrics(devBefore))
        add(.devPerEpoch, devPerEpoch.map { $0.map { metrics($0)! }.joined(separator: " | ") }); add(.bestEpoch, bestEpoch.map(String.init))
        add(.bestDev, metrics(bestDev)); add(.bestCheckpoint, bestCheckpoint); add(.submissionFiles, submissionFiles.map { "\($0)" })
        add(.wallSeconds, number(wallSeconds)); add(.devEM, number(devEM)); add(.devF1, number(devF1))
        add(.devStories, devStories.map(String.init)); add(.trainTurns, trainTurns.map(String.init))
        return rows.sorted { $0.0.rawValue < $1.0.rawValue }.map { "\($0.0.rawValue):".padding(toLength: 20, withPad: " ", startingAt: 0) + $0.1 }
    }
}
