import FactorlabAutograd
import FactorlabCheckpoint
import FactorlabGPT2
import FactorlabOptim
import FactorlabTasks
import FactorlabTensor
import FactorlabRecords
import FactorlabTraining
import Foundation

/// One CoQA turn as a language-model row: `inputs` and next-token `targets` of equal length, with
/// every target -100 except those that predict an answer token.
public struct CoQATrainingRow: Equatable, Sendable {
    public var storyID: String
    public var turnID: Int
    public var inputs: [Int32]
    public var targets: [Int32]
}

/// Generative CoQA finetuning: the prompt (story, history, question, "A:") and the target
/// (" answer\n") from ``CoQAPromptBuilder``, the loss on the target tokens only, and greedy
/// decoding for dev predictions scored with the official evaluator.
public final class CoQAFinetuner {
    public struct Options: Sendable {
        public var epochs = 1
        public var batchSize = 8
        public var lr: Float = 5e-5
        public var weightDecay: Float = 0.01
        public var warmupRatio: Double = 0.06
        public var gradClip: Double? = 1.0
        public var maxSteps: Int? = nil
        /// Prompt plus answer must fit this many tokens (at most the model's context).
        public var maxLength = 512
        public var keepRecentTurns = 2
        /// Greedy decoding stops after this many tokens, or at a newline or `<|endoftext|>`.
        public var maxAnswerTokens = 24
        public var seed: UInt64 = 42
        public init() {}
    }

    public let model: GPT2Model
    public let codec: any TextCodec
    public var options: Options
    public var progress: (String) -> Void = { _ in }
    public var log: (String) -> Void = { _ in }

    public init(model: GPT2Model, codec: any TextCodec, options: Options = Options()) throws {
        guard options.maxLength <= model.config.nPositions else {
            throw FinetuneError.recipe("max_length \(options.maxLength) exceeds the model's context of \(model.config.nPositions)")
        }
        self.model = model
        self.codec = codec
        self.options = options
    }

    /// The training row of a prompt: ids = tokens(prompt) + tokens(target); inputs are ids without
    /// the last, targets are ids shifted by one, and a target is kept only where it is a target
    /// token (position >= prompt length - 1), -100 elsewhere.
    public static func row(prompt: CoQAPrompt, storyID: String, turnID: Int, codec: any TextCodec) -> CoQATrainingRow {
        let p = codec.encode(prompt.prompt), t = codec.encode(prompt.target)
        let ids = p + t
        let inputs = Array(ids.dropLast())
        var targets = [Int32](repeating: -100, count: inputs.count)
        for i in inputs.indices where i + 1 >= p.count { targets[i] = ids[i + 1] }
        return CoQATrainingRow(storyID: storyID, turnID: turnID, inputs: inputs, targets: targets)
    }

    /// Training rows of every turn of `stories`, each fitted to ``Options/maxLength``.
    public func rows(_ stories: [CoQAStory]) throws -> [CoQATrainingRow] {
        var out: [CoQATrainingRow] = []
        for s in stories {
            let examples: [CoQAPromptExample]
            do {
                examples = try CoQAPromptBuilder.examples(for: s, tokenBudget: options.maxLength, keepRecentTurns: options.keepRecentTurns,
                                                          count: { self.codec.encode($0).count })
            } catch { throw FinetuneError.data("CoQA story \(s.id): \(error)") }
            out += examples.map { CoQAFinetuner.row(prompt: $0.prompt, storyID: $0.storyID, turnID: $0.turnID, codec: codec) }
        }
        return out
    }

    /// Pads rows on the right: inputs with `<|endoftext|>`, targets with -100.
    public func batch(_ rows: [CoQATrainingRow]) -> (inputs: [Int32], targets: [Int32], seqLen: Int) {
        let t = rows.map(\.inputs.count).max() ?? 1
        var inputs: [Int32] = [], targets: [Int32] = []
        for r in rows {
            inputs += r.inputs + [Int32](repeating: codec.endOfTextID, count: t - r.inputs.count)
            targets += r.targets + [Int32](repeating: -100, count: t - r.targets.count)
        }
        return (inputs, targets, t)
    }

    /// Greedy continuation of `prompt`: at most ``Options/maxAnswerTokens`` tokens, stopping before
    /// `<|endoftext|>` or a token whose text contains a newline, or when the context is full.
    /// Returns the answer text, trimmed.
    public func answer(prompt: [Int32]) throws -> String {
        try answers(prompts: [prompt])[0]
    }

    /// Greedy answers of several prompts at once (batched generation).
    public func answers(prompts: [[Int32]]) throws -> [String] {
        var unused = RandomGenerator(seed: 0) // greedy decoding draws nothing
        let codec = self.codec
        let stop = StopRule(maxNewTokens: options.maxAnswerTokens, whenFull: .stop) { CoQAFinetuner.isStop($0, codec: codec) }
        let contexts = prompts.map { Array($0.suffix(model.config.nPositions - 1)) }
        // Batches of at most 8 turns, each cache only as long as its prompts and answers need.
        var answers: [String] = []
        for start in stride(from: 0, to: contexts.count, by: 8) {
            let chunk = Array(contexts[start..<min(start + 8, contexts.count)])
            let capacity = min(model.config.nPositions, (chunk.map(\.count).max() ?? 1) + options.maxAnswerTokens)
            answers += try model.generate(prompts: chunk, rng: &unused, stop: stop, capacity: capacity).map {
                try codec.decode($0.tokens).trimmingCharacters(in: .whitespacesAndNewlines)
            }
        }
        return answers
    }

    /// The decoding stop rule: `<|endoftext|>`, or a token whose text contains "\n".
    public static func isStop(_ token: Int32, codec: any TextCodec) -> Bool {
        if token == codec.endOfTextID { return true }
        return ((try? codec.decode([token])) ?? "").contains("\n")
    }

    /// Predictions for every turn of `stories`, the history being the gold answers of earlier turns.
    public func predict(_ stories: [CoQAStory]) throws -> [CoQAPrediction] {
        var out: [CoQAPrediction] = []
        let total = stories.reduce(0) { $0 + $1.turns.count }
        for s in stories {
            let qa = s.turns.map { (question: $0.question, answer: $0.answer.inputText) }
            // A story's turns are independent given the gold history: one batch.
            let prompts = try s.turns.enumerated().map { t, turn in
                codec.encode(try CoQAPromptBuilder.build(story: s.story, history: Array(qa[..<t]), question: turn.question, answer: nil,
                                                         tokenBudget: options.maxLength - options.maxAnswerTokens,
                                                         keepRecentTurns: options.keepRecentTurns, count: { self.codec.encode($0).count }).prompt)
            }
            for (turn, answer) in zip(s.turns, try answers(prompts: prompts)) {
                out.append(CoQAPrediction(id: s.id, turnID: turn.turnID, answer: answer))
            }
            progress("decoding \(out.count)/\(total)")
        }
        return out
    }

    /// Trains, then decodes the dev stories and scores them; writes `predictions.json` (official
    /// format), `metrics.jsonl`, `summary.json` and `best.h5` (the final weights) into `runDirectory`.
    public func train(train: [CoQAStory], dev: [CoQAStory], runDirectory: URL?, recipeText: String? = nil) throws -> FinetuneSummary {
        let started = Date()
        let rows = try rows(train)
        guard !rows.isEmpty else { throw FinetuneError.data("CoQA: no training turns") }
        let loop = EpochLoop(examples: rows.count, batchSize: options.batchSize, epochs: options.epochs, maxSteps: options.maxSteps)
        let total = loop.totalSteps
        let schedule = LRSchedule(peak: options.lr, warmupSteps: Int((Double(total) * options.warmupRatio).rounded()),
                                  totalSteps: total, decay: .linear, floor: 0)
        let optimizer = AdamW(model.namedParameters, hyper: .init(lr: options.lr, weightDecay: options.weightDecay))
        let stepper = OptimizerStep(optimizer: optimizer, schedule: schedule, clipNorm: options.gradClip)
        let records = try runDirectory.map { try RunRecords(directory: $0) }
        var first: Double? = nil, last = 0.0
        let steps = try loop.run(seed: options.seed, dropout: true, step: stepper, loss: { idx, key in
            let chosen = idx.map { rows[$0] }
            let (inputs, targets, seqLen) = batch(chosen)
            return try model.loss(inputs, targets: targets, batch: chosen.count, seqLen: seqLen, dropoutKey: key)
        }, onStep: { epoch, step, r in
            let value = Double(r.loss)
            first = first ?? value
            last = value
            records?.append(FinetuneRow(epoch: epoch, step: step, trainLoss: value, lr: Double(r.lr), gradNorm: r.gradNorm))
            progress(String(format: "epoch %d/%d | step %d/%d | answer-token loss %.4f | lr %.2e", epoch, options.epochs, step, total, value, Double(r.lr)))
        })
        var summary = FinetuneSummary(task: "CoQA", steps: steps, wallSeconds: 0)
        summary.firstTrainLoss = first
        summary.finalTrainLoss = last
        summary.trainExamples = rows.count
        if !dev.isEmpty {
            let predictions = try predict(dev)
            let evaluation = try CoQAEvaluator.evaluate(stories: dev, predictions: predictions)
            if let overall = evaluation.scores["overall"] { summary.devEM = overall.em; summary.devF1 = overall.f1 }
            if let dir = runDirectory {
                try CoQAPredictionsFile.write(predictions, to: dir.appendingPathComponent("predictions.json"))
                try Data(evaluation.officialJSON().utf8).write(to: dir.appendingPathComponent("dev_eval.json"))
            }
        }
        summary.wallSeconds = Date().timeIntervalSince(started)
        if let dir = runDirectory {
            try Checkpoint.save(model: model, recipe: recipeText, tokenizer: codec.fingerprint, to: dir.appendingPathComponent("best.h5"))
            try records?.write("summary.json", summary)
        }
        return summary
    }
}
