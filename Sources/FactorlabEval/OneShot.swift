import FactorlabAutograd
import FactorlabGPT2
import FactorlabTasks
import FactorlabTensor
import FactorlabTokenizer
import Foundation

/// The GPT-2 paper's zero-, one- and few-shot generation tasks on an unfinetuned model, each with
/// the paper's prompt and decoding and the metric of its reference implementation:
/// - `coqa-zeroshot`: story, the conversation so far, `Q: ... A:`; greedy to the end of the line;
///   the official CoQA F1 (and EM).
/// - `cnndm`: the article, then `TL;DR:`; top-k 2 sampling of 100 tokens, the first 3 sentences;
///   ROUGE-1/2/L F (rouge-score with stemming).
/// - `wmt14-en-fr`: K pairs `english sentence = french sentence`, then `source =`; greedy to the
///   end of the line; corpus BLEU (sacreBLEU).
/// - `nq`: K pairs `Q: question` / `A: answer`, then the question and `A:`; greedy to the end of
///   the line; exact match against any reference after SQuAD normalization.
/// The K shots are the data's first K examples; the examples scored are the ones after them.
/// Prompts longer than the context minus the tokens to generate lose their beginning.
public enum OneShot {
    public enum Task: String, CaseIterable, Sendable {
        case coqa = "coqa-zeroshot", cnndm, wmt = "wmt14-en-fr", nq
    }

    public struct Example: Sendable {
        public var prompt: String
        public var references: [String]
    }

    public struct Result: Sendable {
        public var task: Task
        public var shots: Int
        public var examples: Int
        /// Metric name -> value (0-100).
        public var metrics: [String: Double]
        /// Each example's main metric (for paired comparisons).
        public var perExample: [Double]
        /// Per metric whose value is a mean over examples (F1, EM, ROUGE), each example's value.
        public var perExampleMetrics: [String: [Double]] = [:]
        /// WMT: each sentence's BLEU statistics (matches 1-4, totals 1-4, hypothesis and reference
        /// lengths); their sums give the corpus BLEU.
        public var bleuStatistics: [[Double]] = []
        public var predictions: [String]
        public var sequencesPerSecond: Double
    }

    struct Decoding {
        var maxNewTokens: Int
        var sampling: Sampling
        var stopAtNewline: Bool
    }

    /// The task's examples (prompts with their references) from `data`.
    public static func examples(_ task: Task, data: URL, shots: Int, maxExamples: Int?) throws -> [Example] {
        guard shots >= 0 && shots <= 64 else { throw EvalError("--shots must be between 0 and 64, got \(shots)") }
        let limit = maxExamples ?? Int.max
        switch task {
        case .coqa:
            guard shots == 0 else { throw EvalError("coqa-zeroshot: the prompt is the story and its conversation; --shots does not apply") }
            var out: [Example] = []
            for story in try CoQADataset.load(data) {
                var history = ""
                for turn in story.turns {
                    out.append(Example(prompt: "\(story.story)\n\n\(history)Q: \(turn.question)\nA:", references: turn.goldAnswers))
                    history += "Q: \(turn.question)\nA: \(turn.answer.inputText)\n"
                    if out.count >= limit { return out }
                }
            }
            return out
        case .cnndm:
            let all = try OneShotData.summaries(data)
            try enough(all.count, shots, data)
            let prefix = all.prefix(shots).map { "\($0.article)\nTL;DR: \($0.highlights.joined(separator: " "))\n\n" }.joined()
            return all.dropFirst(shots).prefix(limit).map { Example(prompt: prefix + "\($0.article)\nTL;DR:", references: [$0.highlights.joined(separator: " ")]) }
        case .wmt:
            let all = try OneShotData.translations(data)
            try enough(all.count, shots, data)
            let prefix = all.prefix(shots).map { "\($0.source) = \($0.target)\n" }.joined()
            return all.dropFirst(shots).prefix(limit).map { Example(prompt: prefix + "\($0.source) =", references: [$0.target]) }
        case .nq:
            let all = try OneShotData.questions(data)
            try enough(all.count, shots, data)
            let prefix = all.prefix(shots).map { "Q: \($0.question)\nA: \($0.answers[0])\n\n" }.joined()
            return all.dropFirst(shots).prefix(limit).map { Example(prompt: prefix + "Q: \($0.question)\nA:", references: $0.answers) }
        }
    }

    static func enough(_ count: Int, _ shots: Int, _ data: URL) throws {
        guard count > shots else { throw EvalError(file: data.path, "holds \(count) examples; \(shots) shots leave none to score") }
    }

    static func decoding(_ task: Task) -> Decoding {
        switch task {
        case .coqa: return Decoding(maxNewTokens: 24, sampling: .greedy, stopAtNewline: true)
        case .cnndm: return Decoding(maxNewTokens: 100, sampling: Sampling(temperature: 1, topK: 2), stopAtNewline: false)
        case .wmt: return Decoding(maxNewTokens: 64, sampling: .greedy, stopAtNewline: true)
        case .nq: return Decoding(maxNewTokens: 16, sampling: .greedy, stopAtNewline: true)
        }
    }

    /// Generates for every example in batches of `batch` rows and scores the task's metric.
    public static func run(_ task: Task, model: GPT2Model, tokenizer: BPETokenizer, examples: [Example], shots: Int,
                           batch: Int = 8, seed: UInt64 = 0, progress: (Int, Int) -> Void = { _, _ in }) throws -> Result {
        guard !examples.isEmpty else { throw EvalError("\(task.rawValue): no examples to score") }
        let d = decoding(task)
        let room = model.config.nPositions - d.maxNewTokens
        guard room >= 8 else {
            throw EvalError("\(task.rawValue): the model's context of \(model.config.nPositions) leaves no room for a prompt beside \(d.maxNewTokens) generated tokens")
        }
        // Tokens whose text holds a newline end a line.
        let newline: (Int32) -> Bool = { id in ((try? tokenizer.decodeBytes([id])) ?? []).contains(0x0A) }
        var rng = RandomGenerator(seed: seed)
        var predictions: [String] = []
        let start = Date()
        var done = 0
        while done < examples.count {
            let chunk = examples[done..<min(done + batch, examples.count)]
            let prompts = chunk.map { e -> [Int32] in
                let ids = tokenizer.encode(e.prompt)
                return ids.count > room ? Array(ids.suffix(room)) : ids
            }
            let stop = StopRule(maxNewTokens: d.maxNewTokens, whenFull: .stop, predicate: d.stopAtNewline ? newline : nil)
            let out = try model.generate(prompts: prompts, sampling: d.sampling, rng: &rng, stop: stop)
            for g in out {
                var text = (try? tokenizer.decode(g.tokens)) ?? ""
                if let cut = text.firstIndex(of: "\n") { text = String(text[..<cut]) }
                predictions.append(postprocess(task, text))
            }
            done += chunk.count
            progress(done, examples.count)
        }
        let seconds = max(Date().timeIntervalSince(start), 1e-9)
        let refs = examples.map(\.references)
        var metrics: [String: Double] = [:], perExample: [Double] = [], bleuStatistics: [[Double]] = []
        var perExampleMetrics: [String: [Double]] = [:]
        switch task {
        case .coqa:
            let scores = zip(refs, predictions).map { CoQAEvaluator.turnScore(goldAnswers: $0, prediction: $1) }
            perExample = scores.map { 100 * $0.f1 }
            metrics["f1"] = perExample.reduce(0, +) / Double(perExample.count)
            metrics["em"] = 100 * scores.map(\.em).reduce(0, +) / Double(scores.count)
            perExampleMetrics = ["f1": perExample, "em": scores.map { 100 * $0.em }]
        case .cnndm:
            let r = ScoredLines.rouge(hypotheses: predictions, references: [refs.map { $0[0] }])
            metrics = ["rouge1": r.mean.rouge1, "rouge2": r.mean.rouge2, "rougeL": r.mean.rougeL]
            perExample = r.perExample.map { 100 * $0.rougeL }
            perExampleMetrics = ["rouge1": r.perExample.map { 100 * $0.rouge1 }, "rouge2": r.perExample.map { 100 * $0.rouge2 },
                                 "rougeL": perExample]
        case .wmt:
            metrics["bleu"] = BLEU.corpus(hypotheses: predictions, references: [refs.map { $0[0] }]).score
            // Per example (for paired comparisons): the same formula on each sentence alone, not the corpus metric.
            let sentences = zip(predictions, refs).map { BLEU.corpus(hypotheses: [$0], references: [[$1[0]]]) }
            perExample = sentences.map(\.score)
            bleuStatistics = sentences.map { ($0.correct + $0.total + [$0.hypothesisLength, $0.referenceLength]).map(Double.init) }
        case .nq:
            let maxRefs = refs.map(\.count).max() ?? 1
            // Pad reference sets by repeating each example's first answer: "any reference" is unchanged.
            let sets = (0..<maxRefs).map { k in refs.map { k < $0.count ? $0[k] : $0[0] } }
            let r = ScoredLines.score(.em, hypotheses: predictions, references: sets)
            metrics["em"] = r.score
            perExample = (r.perExample ?? []).map { 100 * $0 }
            perExampleMetrics = ["em": perExample]
        }
        return Result(task: task, shots: shots, examples: examples.count, metrics: metrics, perExample: perExample,
                      perExampleMetrics: perExampleMetrics, bleuStatistics: bleuStatistics, predictions: predictions, sequencesPerSecond: Double(examples.count) / seconds)
    }

    /// CNN/DM keeps the first 3 generated sentences (the paper's protocol); others are trimmed.
    static func postprocess(_ task: Task, _ text: String) -> String {
        let t = text.trimmingCharacters(in: .whitespaces)
        guard task == .cnndm else { return t }
        var sentences: [String] = [], current = ""
        for c in t {
            current.append(c)
            if ".!?".contains(c) {
                sentences.append(current.trimmingCharacters(in: .whitespaces))
                current = ""
                if sentences.count == 3 { break }
            }
        }
        if sentences.count < 3, !current.trimmingCharacters(in: .whitespaces).isEmpty { sentences.append(current.trimmingCharacters(in: .whitespaces)) }
        return sentences.joined(separator: " ")
    }
}
