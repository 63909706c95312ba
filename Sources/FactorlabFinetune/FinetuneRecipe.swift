import FactorlabTasks
import FactorlabTraining
import Foundation

/// A finetuning recipe (YAML), read with the same path-aware reader as pretraining recipes:
/// unknown keys and wrong types are errors naming the file, line and key path.
///
/// ```yaml
/// name: glue-sst2
/// task: sst2                 # a GLUE task (cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli) or coqa
/// seed: 42
/// model:
///   init_from: Checkpoints/my-run      # required: checkpoint, run folder or Hugging Face folder
///   tokenizer: null                    # default: found beside the model
///   dropout: true                      # train with the model config's dropout
/// data:
///   root: Checkpoints/data/glue        # the official layout: SST-2/train.tsv, SST-2/dev.tsv, ...
///   train: null                        # or explicit files (override root)
///   dev: null
///   test: null
///   max_train_examples: null           # subsample (seeded) to this many training rows
///   max_dev_examples: null
///   max_length: 128
/// optimizer: {lr: 2.0e-5, weight_decay: 0.01, beta1: 0.9, beta2: 0.999, eps: 1.0e-8}
/// schedule: {warmup_ratio: 0.06}      # or warmup_steps; then linear decay to 0
/// training: {epochs: 3, batch_size: 32, max_steps: null, grad_clip: 1.0, eval_batch_size: 64}
/// generation: {max_answer_tokens: 24, keep_recent_turns: 2}   # CoQA only
/// output: {dir: null}                  # default Checkpoints/finetune/<name>
/// ```
public struct FinetuneRecipe: Sendable {
    public enum Task: Sendable, Equatable { case glue(GLUETask), coqa }

    public var name: String
    public var task: Task
    public var seed: UInt64 = 42
    public var initFrom: String
    public var tokenizer: String?
    public var dropout = true
    public var dataRoot: String?
    public var trainFile: String?
    public var devFile: String?
    public var devMismatchedFile: String?
    public var testFile: String?
    public var testMismatchedFile: String?
    public var maxTrainExamples: Int?
    public var maxDevExamples: Int?
    public var maxLength = 128
    /// Use min(maxLength, the model's context) instead of rejecting a longer maxLength.
    public var clampMaxLengthToContext = false
    public var lr: Double = 2e-5
    public var weightDecay: Double = 0.01
    public var beta1: Double = 0.9
    public var beta2: Double = 0.999
    public var eps: Double = 1e-8
    public var warmupRatio: Double = 0.06
    public var warmupSteps: Int?
    public var epochs = 3
    public var batchSize = 32
    public var maxSteps: Int?
    public var gradClip: Double? = 1.0
    public var evalBatchSize = 64
    public var maxAnswerTokens = 24
    public var keepRecentTurns = 2
    public var outputDir: String?
    /// The recipe text with the overrides appended as a comment (stored in checkpoints).
    public var text: String = ""

    public var runDirectory: URL { URL(fileURLWithPath: outputDir ?? "Checkpoints/finetune/\(name)") }

    /// A recipe with every other setting at its default (for evaluation-only use; set the data
    /// files or root before running).
    public init(name: String, task: Task, initFrom: String) {
        self.name = name
        self.task = task
        self.initFrom = initFrom
    }

    public static func load(_ url: URL, overrides: [String] = []) throws -> FinetuneRecipe {
        let text: String
        do { text = try RecipeText.read(url) } catch { throw FinetuneError.recipe("\(error)") }
        return try parse(text, file: url.path, overrides: overrides, defaultName: url.deletingPathExtension().lastPathComponent)
    }

    public static func parse(_ text: String, file: String, overrides: [String] = [], defaultName: String = "finetune") throws -> FinetuneRecipe {
        let root: RecipeReader
        do { root = try RecipeReader.parse(text, file: file, overrides: overrides) } catch { throw FinetuneError.recipe("\(error)") }
        do { return try read(root, text: text, file: file, overrides: overrides, defaultName: defaultName) } catch let e as FinetuneError {
            throw e
        } catch { throw FinetuneError.recipe("\(error)") }
    }

    static func read(_ root: RecipeReader, text: String, file: String, overrides: [String], defaultName: String) throws -> FinetuneRecipe {
        let name = try root.string("name") ?? defaultName
        guard let taskName = try root.string("task") else {
            throw FinetuneError.recipe("\(file): task is required (a GLUE task: \(GLUETask.validNames); or coqa)")
        }
        let task: Task
        if taskName.lowercased() == "coqa" {
            task = .coqa
        } else {
            do { task = .glue(try GLUETask(parsing: taskName)) } catch { throw FinetuneError.recipe("\(file): task: \(error); or coqa") }
        }
        let seed = try root.int("seed")
        guard let m = try root.section("model"), let initFrom = try m.string("init_from") else {
            throw FinetuneError.recipe("\(file): model.init_from is required (a checkpoint .h5, a run folder or a Hugging Face folder; or pass --init-from)")
        }
        var r = FinetuneRecipe(name: name, task: task, initFrom: initFrom)
        if let seed { r.seed = UInt64(truncatingIfNeeded: seed) }
        r.tokenizer = try m.string("tokenizer")
        r.dropout = try m.bool("dropout") ?? r.dropout
        try m.finish(allowed: ["init_from", "tokenizer", "dropout"])
        if let d = try root.section("data") {
            r.dataRoot = try d.string("root")
            r.trainFile = try d.string("train")
            r.devFile = try d.string("dev")
            r.devMismatchedFile = try d.string("dev_mismatched")
            r.testFile = try d.string("test")
            r.testMismatchedFile = try d.string("test_mismatched")
            r.maxTrainExamples = try d.int("max_train_examples")
            r.maxDevExamples = try d.int("max_dev_examples")
            r.maxLength = try d.int("max_length") ?? r.maxLength
            try d.finish(allowed: ["root", "train", "dev", "dev_mismatched", "test", "test_mismatched", "max_train_examples",
                                   "max_dev_examples", "max_length"])
        }
        if let o = try root.section("optimizer") {
            r.lr = try o.double("lr") ?? r.lr
            r.weightDecay = try o.double("weight_decay") ?? r.weightDecay
            r.beta1 = try o.double("beta1") ?? r.beta1
            r.beta2 = try o.double("beta2") ?? r.beta2
            r.eps = try o.double("eps") ?? r.eps
            try o.finish(allowed: ["lr", "weight_decay", "beta1", "beta2", "eps"])
        }
        if let s = try root.section("schedule") {
            r.warmupRatio = try s.double("warmup_ratio") ?? r.warmupRatio
            r.warmupSteps = try s.int("warmup_steps")
            try s.finish(allowed: ["warmup_ratio", "warmup_steps"])
        }
        if let t = try root.section("training") {
            r.epochs = try t.int("epochs") ?? r.epochs
            r.batchSize = try t.int("batch_size") ?? r.batchSize
            r.maxSteps = try t.int("max_steps")
            r.gradClip = try t.double("grad_clip") ?? r.gradClip
            r.evalBatchSize = try t.int("eval_batch_size") ?? r.evalBatchSize
            try t.finish(allowed: ["epochs", "batch_size", "max_steps", "grad_clip", "eval_batch_size"])
        }
        if let g = try root.section("generation") {
            r.maxAnswerTokens = try g.int("max_answer_tokens") ?? r.maxAnswerTokens
            r.keepRecentTurns = try g.int("keep_recent_turns") ?? r.keepRecentTurns
            try g.finish(allowed: ["max_answer_tokens", "keep_recent_turns"])
        }
        if let o = try root.section("output") {
            r.outputDir = try o.string("dir")
            try o.finish(allowed: ["dir"])
        }
        try root.finish(allowed: ["name", "task", "seed", "model", "data", "optimizer", "schedule", "training", "generation", "output"])
        try r.validate(file: file)
        r.text = RecipeText.recording(text, overrides: overrides)
        return r
    }

    /// Every key within its range; the message names the recipe file and the key.
    func validate(file: String) throws {
        func check(_ ok: Bool, _ key: String, _ what: String) throws {
            if !ok { throw FinetuneError.recipe("\(file): \(key) \(what)") }
        }
        try check(RunName.isValid(name), "name", "must be 1-100 characters of letters, digits, '.', '_' and '-' (it names the run folder)")
        try check(epochs >= 1 && epochs <= 10_000, "training.epochs", "must be between 1 and 10000")
        try check(batchSize >= 1 && batchSize <= 1 << 16, "training.batch_size", "must be between 1 and 65536")
        try check(evalBatchSize >= 1 && evalBatchSize <= 1 << 16, "training.eval_batch_size", "must be between 1 and 65536")
        try check((maxSteps ?? 0) >= 0 && (maxSteps ?? 0) <= 1 << 40, "training.max_steps", "must be between 0 and 2^40")
        try check(gradClip.map { $0.isFinite && $0 > 0 } ?? true, "training.grad_clip", "must be a positive finite norm")
        try check(maxLength >= 4 && maxLength <= 1 << 20, "data.max_length", "must be between 4 and 2^20")
        try check(lr > 0 && lr.isFinite, "optimizer.lr", "must be positive")
        try check(beta1 >= 0 && beta1 < 1, "optimizer.beta1", "must be in [0, 1)")
        try check(beta2 >= 0 && beta2 < 1, "optimizer.beta2", "must be in [0, 1)")
        try check(eps > 0 && eps <= 1, "optimizer.eps", "must be positive and at most 1")
        try check(weightDecay >= 0 && weightDecay <= 1, "optimizer.weight_decay", "must be in [0, 1]")
        try check(warmupRatio >= 0 && warmupRatio < 1, "schedule.warmup_ratio", "must be in [0, 1)")
        try check((warmupSteps ?? 0) >= 0 && (warmupSteps ?? 0) <= 1 << 40, "schedule.warmup_steps", "must be between 0 and 2^40")
        try check(maxTrainExamples.map { $0 >= 1 } ?? true, "data.max_train_examples", "must be at least 1")
        try check(maxDevExamples.map { $0 >= 1 } ?? true, "data.max_dev_examples", "must be at least 1")
        try check(task != .coqa || (maxAnswerTokens >= 1 && maxAnswerTokens < maxLength), "generation.max_answer_tokens",
                  "must be at least 1 and below data.max_length (\(maxLength))")
        try check(keepRecentTurns >= 0 && keepRecentTurns <= 1 << 16, "generation.keep_recent_turns", "must be between 0 and 65536")
        try check(dataRoot != nil || trainFile != nil, "data", "needs root (the GLUE/CoQA folder) or train (a file)")
    }

    /// The file of a GLUE split: the explicit one, or the official name under `data.root`.
    public func glueFile(_ task: GLUETask, _ split: GLUESplit) throws -> URL? {
        let explicit: String?
        switch split {
        case .train: explicit = trainFile
        case .dev: explicit = devFile
        case .devMismatched: explicit = devMismatchedFile
        case .test: explicit = testFile
        case .testMismatched: explicit = testMismatchedFile
        }
        if let explicit { return URL(fileURLWithPath: explicit) }
        guard let dataRoot else { return nil }
        return URL(fileURLWithPath: dataRoot).appendingPathComponent(try task.fileName(split))
    }

    /// CoQA files: `train` and `dev`, or `coqa-train-v1.0.json` / `coqa-dev-v1.0.json` under `root`.
    public func coqaFile(train: Bool) -> URL? {
        if let f = train ? trainFile : devFile { return URL(fileURLWithPath: f) }
        guard let dataRoot else { return nil }
        return URL(fileURLWithPath: dataRoot).appendingPathComponent(train ? "coqa-train-v1.0.json" : "coqa-dev-v1.0.json")
    }
}

extension FinetuneRecipe {
    /// The recipe `factorlab eval --task glue-TASK|coqa` runs (evaluation only): `data` is a GLUE
    /// root (SST-2/dev.tsv, ...), the task's own folder (dev.tsv, or MNLI's dev_matched.tsv and
    /// dev_mismatched.tsv), or a dev file; for CoQA, coqa-dev-v1.0.json or its folder.
    public static func evaluation(task: String, model: String, data: String, tokenizer: String?, maxExamples: Int?,
                                  maxLength: Int?, outputDir: String?) throws -> FinetuneRecipe {
        let kind: Task
        if task == "coqa" { kind = .coqa } else {
            do { kind = .glue(try GLUETask(parsing: String(task.dropFirst("glue-".count)))) } catch {
                throw FinetuneError.recipe("unknown task '\(task)': \(error)")
            }
        }
        guard (maxExamples ?? 1) >= 1 else { throw FinetuneError.recipe("--max-examples must be at least 1, got \(maxExamples!)") }
        guard (maxLength ?? 4) >= 4 && (maxLength ?? 4) <= 1 << 20 else {
            throw FinetuneError.recipe("--max-length must be between 4 and 2^20, got \(maxLength!)")
        }
        var recipe = FinetuneRecipe(name: task, task: kind, initFrom: model)
        recipe.tokenizer = tokenizer
        recipe.maxDevExamples = maxExamples
        if let maxLength { recipe.maxLength = maxLength } else { recipe.clampMaxLengthToContext = true }
        recipe.outputDir = outputDir ?? "Checkpoints/eval/\(task)"
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: data, isDirectory: &isDirectory) else {
            throw FinetuneError.recipe("--data \(data): no such file or folder")
        }
        switch kind {
        case .coqa:
            if isDirectory.boolValue { recipe.dataRoot = data } else { recipe.devFile = data }
        case .glue(let t):
            if !isDirectory.boolValue {
                recipe.devFile = data
            } else if FileManager.default.fileExists(atPath: URL(fileURLWithPath: data).appendingPathComponent(try t.fileName(.dev)).path) {
                recipe.dataRoot = data
            } else {
                // The task's own folder (…/SST-2): dev.tsv, or MNLI's dev_matched/dev_mismatched.tsv.
                let dir = URL(fileURLWithPath: data)
                recipe.devFile = dir.appendingPathComponent(URL(fileURLWithPath: try t.fileName(.dev)).lastPathComponent).path
                if t == .mnli { recipe.devMismatchedFile = dir.appendingPathComponent("dev_mismatched.tsv").path }
            }
        }
        return recipe
    }
}
