import FactorlabCheckpoint
import FactorlabRecords
import FactorlabGPT2
import FactorlabTasks
import FactorlabTensor
import FactorlabTokenizer
import Foundation

/// A whole finetuning run from a recipe: load the model and tokenizer, the data, train, score,
/// write predictions. Used by `factorlab finetune`; returns the results as a JSON-ready dictionary.
public enum FinetuneRun {
    public struct Hooks {
        public var progress: (String) -> Void = { _ in }
        public var log: (String) -> Void = { _ in }
        public init(progress: @escaping (String) -> Void = { _ in }, log: @escaping (String) -> Void = { _ in }) {
            self.progress = progress
            self.log = log
        }
    }

    /// Runs `recipe`. With `evalOnly`, scores the dev split(s) with the model as loaded and trains
    /// nothing (a model without a matching head gets a fresh, untrained one: chance level).
    public static func run(_ recipe: FinetuneRecipe, evalOnly: Bool = false, hooks: Hooks = Hooks()) throws -> FinetuneResult {
        let loaded = try ModelFiles.load(recipe.initFrom)
        try loaded.requireFloatWeights(for: "finetuning")
        let codec = try BPECodec(try ModelFiles.tokenizer(recipe.tokenizer, for: loaded))
        hooks.log("model \(loaded.source.path): \(loaded.model.parameterCount) parameters, mlp \(loaded.model.config.mlpSpec)")
        switch recipe.task {
        case .glue(let task): return try glue(task, recipe, loaded: loaded, codec: codec, evalOnly: evalOnly, hooks: hooks)
        case .coqa: return try coqa(recipe, loaded: loaded, codec: codec, evalOnly: evalOnly, hooks: hooks)
        }
    }

    /// A seeded subset of `n` items (all when `n` is nil or not smaller), in their original order.
    public static func subsample<T>(_ items: [T], _ n: Int?, seed: UInt64) -> [T] {
        guard let n, n < items.count else { return items }
        var rng = SplitMix64(state: seed)
        var idx = Array(items.indices)
        rng.shuffle(&idx)
        return idx.prefix(n).sorted().map { items[$0] }
    }

    /// Writes the tokenizer to `<run>/tokenizer`, so the run's checkpoints open on their own.
    static func saveTokenizer(_ codec: BPECodec, in dir: URL) throws {
        let target = dir.appendingPathComponent("tokenizer")
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
        try codec.tokenizer.write(to: target)
    }

    static func glue(_ task: GLUETask, _ recipe: FinetuneRecipe, loaded: ModelFiles.Loaded, codec: BPECodec,
                     evalOnly: Bool, hooks: Hooks) throws -> FinetuneResult {
        var recipe = recipe
        if recipe.clampMaxLengthToContext { recipe.maxLength = min(recipe.maxLength, loaded.model.config.nPositions) }
        guard recipe.maxLength <= loaded.model.config.nPositions else {
            throw FinetuneError.recipe("data.max_length \(recipe.maxLength) exceeds the model's context of \(loaded.model.config.nPositions)")
        }
        func load(_ split: GLUESplit, required: Bool) throws -> GLUEDataset? {
            guard let url = try recipe.glueFile(task, split) else {
                if required { throw FinetuneError.recipe("no \(split.rawValue) file: set data.root or data.\(split.rawValue)") }
                return nil
            }
            if !required && !FileManager.default.fileExists(atPath: url.path) { return nil }
            let d = try GLUEDataset(task: task, split: split, file: url)
            if d.skippedMalformedRows > 0 {
                hooks.log("warning: \(url.path): skipped \(d.skippedMalformedRows) malformed rows (lines \(d.skippedLines.prefix(10).map(String.init).joined(separator: ", "))\(d.skippedLines.count > 10 ? ", ..." : ""))")
            }
            return d
        }
        let devSplits: [GLUESplit] = task == .mnli ? [.dev, .devMismatched] : [.dev]
        let dev = try devSplits.map { s -> LabelledSplit in
            let d = try load(s, required: true)!
            let kept = subsample(d.examples, recipe.maxDevExamples, seed: recipe.seed &+ 1)
            return LabelledSplit(split: s, file: d.file, examples: kept)
        }
        let reuseHead = loaded.model.config.numLabels == task.outputCount
        let model = reuseHead ? loaded.model
            : try ClassifierModel.make(from: loaded.model, numLabels: task.outputCount, padTokenID: codec.endOfTextID, seed: recipe.seed)
        if !reuseHead { hooks.log("added a fresh \(task.outputCount)-output score head (pad id \(codec.endOfTextID))") }
        let encoder = try GLUEEncoder(codec: codec, maxLength: recipe.maxLength)
        var options = GLUEFinetuner.Options()
        options.epochs = recipe.epochs
        options.batchSize = recipe.batchSize
        options.lr = Float(recipe.lr)
        options.weightDecay = Float(recipe.weightDecay)
        options.beta1 = Float(recipe.beta1)
        options.beta2 = Float(recipe.beta2)
        options.eps = Float(recipe.eps)
        options.warmupRatio = recipe.warmupRatio
        options.warmupSteps = recipe.warmupSteps
        options.gradClip = recipe.gradClip
        options.maxSteps = recipe.maxSteps
        options.evalBatchSize = recipe.evalBatchSize
        options.seed = recipe.seed
        options.dropout = recipe.dropout
        let finetuner = try GLUEFinetuner(task: task, model: model, encoder: encoder, options: options)
        finetuner.progress = hooks.progress
        finetuner.log = hooks.log
        var result = FinetuneResult(task: task.name, model: loaded.source.path)
        result.mlp = model.config.mlpSpec
        result.parameters = model.parameterCount
        result.devExamples = dev.map(\.examples.count)
        result.head = reuseHead ? "from the model" : "fresh (untrained)"
        if evalOnly {
            result.dev = try finetuner.evaluateDev(dev)
            return result
        }
        let train = try load(.train, required: true)!
        let trainExamples = subsample(train.examples, recipe.maxTrainExamples, seed: recipe.seed)
        hooks.log("\(task.name): \(trainExamples.count) training rows (of \(train.examples.count)), dev \(dev.map { "\($0.examples.count)" }.joined(separator: " + ")) rows")
        let dir = recipe.runDirectory
        try saveTokenizer(codec, in: dir)
        let s = try finetuner.train(train: trainExamples, dev: dev, runDirectory: dir, recipeText: recipe.text)
        var written: [String] = []
        let testSplits: [GLUESplit] = task == .mnli ? [.test, .testMismatched] : [.test]
        for split in testSplits {
            if let test = try load(split, required: false) {
                written.append(try finetuner.writeSubmission(test, to: dir).path)
            } else {
                hooks.log("no \(split.rawValue) file; no submission file written for it")
            }
        }
        result.run = dir.path
        result.trainExamples = trainExamples.count
        result.steps = s.steps
        result.firstTrainLoss = s.firstTrainLoss.isFinite ? s.firstTrainLoss : nil
        result.finalTrainLoss = s.finalTrainLoss
        result.devBefore = s.initialDev
        result.devPerEpoch = s.epochDev
        result.bestEpoch = s.bestEpoch
        result.bestDev = s.bestDev
        result.bestCheckpoint = dir.appendingPathComponent("best.h5").path
        result.submissionFiles = written
        result.wallSeconds = s.wallSeconds
        return result
    }

    static func coqa(_ recipe: FinetuneRecipe, loaded: ModelFiles.Loaded, codec: BPECodec, evalOnly: Bool,
                     hooks: Hooks) throws -> FinetuneResult {
        var options = CoQAFinetuner.Options()
        options.epochs = recipe.epochs
        options.batchSize = recipe.batchSize
        options.lr = Float(recipe.lr)
        options.weightDecay = Float(recipe.weightDecay)
        options.warmupRatio = recipe.warmupRatio
        options.gradClip = recipe.gradClip
        options.maxSteps = recipe.maxSteps
        options.maxLength = min(recipe.maxLength, loaded.model.config.nPositions)
        options.keepRecentTurns = recipe.keepRecentTurns
        options.maxAnswerTokens = recipe.maxAnswerTokens
        options.seed = recipe.seed
        let finetuner = try CoQAFinetuner(model: loaded.model, codec: codec, options: options)
        finetuner.progress = hooks.progress
        finetuner.log = hooks.log
        guard let devURL = recipe.coqaFile(train: false) else { throw FinetuneError.recipe("no CoQA dev file: set data.root or data.dev") }
        let dev = subsample(try CoQADataset.load(devURL), recipe.maxDevExamples, seed: recipe.seed &+ 1)
        if evalOnly {
            let predictions = try finetuner.predict(dev)
            let e = try CoQAEvaluator.evaluate(stories: dev, predictions: predictions)
            let dir = recipe.runDirectory
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try CoQAPredictionsFile.write(predictions, to: dir.appendingPathComponent("predictions-eval-only.json"))
            var result = FinetuneResult(task: "CoQA", model: loaded.source.path)
            result.devEM = e.scores["overall"]?.em ?? 0
            result.devF1 = e.scores["overall"]?.f1 ?? 0
            result.devStories = dev.count
            result.run = dir.path
            return result
        }
        guard let trainURL = recipe.coqaFile(train: true) else { throw FinetuneError.recipe("no CoQA train file: set data.root or data.train") }
        let train = subsample(try CoQADataset.load(trainURL), recipe.maxTrainExamples, seed: recipe.seed)
        try saveTokenizer(codec, in: recipe.runDirectory)
        let s = try finetuner.train(train: train, dev: dev, runDirectory: recipe.runDirectory, recipeText: recipe.text)
        var result = FinetuneResult(task: "CoQA", model: loaded.source.path)
        result.run = recipe.runDirectory.path
        result.mlp = loaded.model.config.mlpSpec
        result.parameters = loaded.model.parameterCount
        result.steps = s.steps
        result.firstTrainLoss = s.firstTrainLoss
        result.finalTrainLoss = s.finalTrainLoss
        result.trainTurns = s.trainExamples
        result.devEM = s.devEM
        result.devF1 = s.devF1
        result.devStories = dev.count
        result.bestCheckpoint = recipe.runDirectory.appendingPathComponent("best.h5").path
        result.wallSeconds = s.wallSeconds
        return result
    }
}
