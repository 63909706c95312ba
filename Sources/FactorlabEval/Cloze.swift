import FactorlabAutograd
import FactorlabGPT2
import FactorlabTensor
import FactorlabTokenizer
import FactorlabRecords
import Foundation

/// Log-probabilities of continuations under a model (no tape).
enum ContinuationScoring {
    /// log p(continuation | context), token by token, from one forward pass over the last
    /// `nPositions` tokens of context + continuation. Returns the per-token log-probabilities and
    /// whether each continuation token was the greedy (argmax) prediction.
    static func continuation(model: GPT2Model, context: [Int32], continuation: [Int32]) throws -> (logProbs: [Double], greedy: [Bool]) {
        guard !continuation.isEmpty else { return ([], []) }
        var ids = context + continuation
        if ids.count > model.config.nPositions { ids = Array(ids.suffix(model.config.nPositions)) }
        guard ids.count > continuation.count else {
            throw EvalError("the continuation (\(continuation.count) tokens) does not fit the model's context of \(model.config.nPositions) with any context")
        }
        let logits = try Tape.withoutRecording { try model.logits(ids, batch: 1, seqLen: ids.count) }.value
        let v = model.config.vocabSize
        let start = ids.count - continuation.count
        var lps: [Double] = [], greedy: [Bool] = []
        logits.withUnsafePointer { p in
            for (k, target) in continuation.enumerated() {
                let (lp, best) = Scoring.score(p + (start + k - 1) * v, count: v, target: Int(target))
                lps.append(lp)
                greedy.append(best == Int(target))
            }
        }
        return (lps, greedy)
    }
}

/// LAMBADA-style last-word prediction: the whole final word (with its leading space) must be the
/// greedy continuation of the text before it; its perplexity is reported too.
public enum Lambada {
    public struct Result: Sendable {
        public let examples: Int
        public let correct: Int
        public let targetTokens: Int
        public let targetNLL: Double
        /// Each scored example: whether its last word was the greedy continuation, and the word's
        /// NLL and token count.
        public var perExample: [(correct: Bool, nll: Double, tokens: Int)] = []
        public var accuracy: Double { Double(correct) / Double(max(examples, 1)) }
        public var perplexity: Double { Foundation.exp(targetNLL / Double(max(targetTokens, 1))) }
        /// lm-evaluation-harness's `perplexity` of a loglikelihood task (lambada_openai): exp of the
        /// mean over examples of the whole target's NLL (per example, not per token).
        public var harnessPerplexity: Double { Foundation.exp(targetNLL / Double(max(examples, 1))) }
    }

    /// Reads JSONL lines with a `text` field (the LAMBADA test set format used by GPT-2's evaluation).
    public static func load(_ url: URL, field: String = "text") throws -> [String] {
        let data = try readFile(url)
        var texts: [String] = []
        for (i, line) in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty { continue }
            guard let obj = try? JSONSerialization.jsonObject(with: Data(trimmed.utf8)) as? [String: Any] else {
                throw EvalError(file: url.path, line: i + 1, "not a JSON object")
            }
            guard let text = obj[field] as? String else {
                throw EvalError(file: url.path, line: i + 1, "no string field '\(field)'")
            }
            texts.append(text)
        }
        guard !texts.isEmpty else { throw EvalError(file: url.path, "holds no examples (expected JSON lines with a string field '\(field)')") }
        return texts
    }

    /// Splits a passage into (context, " lastword").
    public static func split(_ text: String) -> (context: String, target: String)? {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let space = trimmed.lastIndex(where: { $0 == " " || $0 == "\n" }) else { return nil }
        return (String(trimmed[..<space]), " " + trimmed[trimmed.index(after: space)...])
    }

    public static func evaluate(model: GPT2Model, tokenizer: BPETokenizer, texts: [String],
                                progress: (Int, Int) -> Void = { _, _ in }) throws -> Result {
        guard !texts.isEmpty else { throw EvalError("LAMBADA: no examples to score") }
        var correct = 0, tokens = 0, nll = 0.0, n = 0
        var perExample: [(correct: Bool, nll: Double, tokens: Int)] = []
        for (i, text) in texts.enumerated() {
            guard let (context, target) = split(text) else { continue }
            let (lps, greedy) = try ContinuationScoring.continuation(model: model, context: tokenizer.encode(context), continuation: tokenizer.encode(target))
            n += 1
            if greedy.allSatisfy({ $0 }) { correct += 1 }
            tokens += lps.count
            nll -= lps.reduce(0, +)
            perExample.append((greedy.allSatisfy { $0 }, -lps.reduce(0, +), lps.count))
            progress(i + 1, texts.count)
        }
        guard n > 0 else { throw EvalError("LAMBADA: none of the \(texts.count) texts has a last word to predict (a text needs a space before its last word)") }
        return Result(examples: n, correct: correct, targetTokens: tokens, targetNLL: nll, perExample: perExample)
    }
}

/// Children's Book Test-style cloze: the query's XXXXX is filled with each candidate and the
/// candidate whose completed query is most likely (given the context) wins.
public enum ClozeTest {
    public struct Example: Sendable, Equatable {
        public var context: String
        public var query: String
        public var candidates: [String]
        public var answer: String
        public init(context: String, query: String, candidates: [String], answer: String) {
            self.context = context
            self.query = query
            self.candidates = candidates
            self.answer = answer
        }
    }

    public struct Result: Sendable {
        public let examples: Int
        public let correct: Int
        /// Whether each example's answer won.
        public var perExample: [Bool] = []
        public var accuracy: Double { Double(correct) / Double(max(examples, 1)) }
    }

    /// Reads the original CBT format: numbered lines 1-20 of context, line 21 `query<TAB>answer<TAB><TAB>c1|c2|...`,
    /// a blank line between examples. Also accepts JSONL with context, query, candidates, answer.
    public static func load(_ url: URL) throws -> [Example] {
        let examples = try parse(try readFile(url), url: url)
        guard !examples.isEmpty else { throw EvalError(file: url.path, "holds no examples (expected CBT's numbered lines or JSON lines)") }
        return examples
    }

    static func parse(_ data: Data, url: URL) throws -> [Example] {
        let text = String(decoding: data, as: UTF8.self).replacingOccurrences(of: "\r\n", with: "\n")
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        if lines.first(where: { !$0.isEmpty })?.hasPrefix("{") == true {
            return try lines.enumerated().compactMap { i, line in
                guard !line.trimmingCharacters(in: .whitespaces).isEmpty else { return nil }
                guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                      let c = o["context"] as? String, let q = o["query"] as? String,
                      let cands = o["candidates"] as? [String], let a = o["answer"] as? String else {
                    throw EvalError(file: url.path, line: i + 1, "expected {\"context\", \"query\", \"candidates\", \"answer\"}")
                }
                return try validated(Example(context: c, query: q, candidates: cands, answer: a), url.path, i + 1)
            }
        }
        var examples: [Example] = []
        var context: [String] = []
        for (i, raw) in lines.enumerated() {
            let line = String(raw)
            if line.trimmingCharacters(in: .whitespaces).isEmpty { context = []; continue }
            guard let space = line.firstIndex(of: " "), let number = Int(line[..<space]) else {
                throw EvalError(file: url.path, line: i + 1, "expected a numbered line (\"N sentence\")")
            }
            let body = String(line[line.index(after: space)...])
            if number < 21 { context.append(body); continue }
            let parts = body.components(separatedBy: "\t")
            guard parts.count >= 4 else {
                throw EvalError(file: url.path, line: i + 1, "query line needs query, answer, (empty), candidates separated by tabs")
            }
            let ex = Example(context: context.joined(separator: " "), query: parts[0],
                             candidates: parts[3].split(separator: "|").map(String.init), answer: parts[1])
            examples.append(try validated(ex, url.path, i + 1))
            context = []
        }
        return examples
    }

    static func validated(_ e: Example, _ file: String, _ line: Int) throws -> Example {
        guard e.query.contains("XXXXX") else { throw EvalError(file: file, line: line, "the query has no XXXXX placeholder") }
        guard e.candidates.contains(e.answer) else {
            throw EvalError(file: file, line: line, "the answer '\(e.answer)' is not among the candidates")
        }
        return e
    }

    public static func evaluate(model: GPT2Model, tokenizer: BPETokenizer, examples: [Example],
                                progress: (Int, Int) -> Void = { _, _ in }) throws -> Result {
        guard !examples.isEmpty else { throw EvalError("CBT: no examples to score") }
        var correct = 0
        var perExample: [Bool] = []
        for (i, e) in examples.enumerated() {
            let context = tokenizer.encode(e.context)
            var best = "", bestScore = -Double.infinity
            for c in e.candidates {
                let completed = tokenizer.encode(" " + e.query.replacingOccurrences(of: "XXXXX", with: c))
                let score = try ContinuationScoring.continuation(model: model, context: context, continuation: completed).logProbs.reduce(0, +)
                if score > bestScore { bestScore = score; best = c }
            }
            if best == e.answer { correct += 1 }
            perExample.append(best == e.answer)
            progress(i + 1, examples.count)
        }
        return Result(examples: examples.count, correct: correct, perExample: perExample)
    }
}

/// A data file's bytes, or an ``EvalError`` that says why it cannot be read.
func readFile(_ url: URL) throws -> Data {
    do { return try FileReading.contents(of: url) } catch let e as FileReading.Failure {
        throw EvalError(file: e.file, e.reason)
    }
}
