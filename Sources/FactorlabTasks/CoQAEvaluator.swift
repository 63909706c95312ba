import Foundation

/// A (story, turn) pair: how the official evaluator keys gold answers and predictions.
public struct CoQATurnKey: Hashable, Sendable, CustomStringConvertible {
    public var storyID: String
    public var turnID: Int

    public init(storyID: String, turnID: Int) {
        self.storyID = storyID
        self.turnID = turnID
    }

    public var description: String { "\(storyID) turn \(turnID)" }
}

/// Exact match and F1 of one turn, as fractions in [0, 1].
public struct CoQATurnScore: Equatable, Sendable {
    public var em: Double
    public var f1: Double
}

/// Scores over a group of turns as the official script reports them: percentages, and the number
/// of turns in the group.
public struct CoQAScore: Equatable, Sendable {
    /// Exact match in percent (unrounded; ``rounded`` gives the official one-decimal value).
    public var em: Double
    /// Token F1 in percent (unrounded).
    public var f1: Double
    public var turns: Int

    /// em and f1 rounded to one decimal as the official script does (Python's `round(x, 1)`:
    /// the exact binary value rounded, ties to even).
    public var rounded: CoQAScore {
        CoQAScore(em: Self.roundOneDecimal(em), f1: Self.roundOneDecimal(f1), turns: turns)
    }

    /// Python's `round(x, 1)` on a double: glibc/Darwin `printf` rounds the exact binary value
    /// correctly (ties to even), as CPython's `round` does.
    static func roundOneDecimal(_ x: Double) -> Double { Double(String(format: "%.1f", x))! }
}

/// The result of ``CoQAEvaluator/evaluate(stories:predictions:)``.
public struct CoQAEvaluation: Sendable {
    /// The report's keys in the official script's order: the seven domains, then "in_domain",
    /// "out_domain" and "overall".
    public static let reportKeys = ["children_stories", "literature", "mid-high_school", "news", "wikipedia",
                                    "reddit", "science", "in_domain", "out_domain", "overall"]

    /// Unrounded scores keyed as in ``reportKeys``.
    public let scores: [String: CoQAScore]
    /// The score of every gold turn that had a prediction.
    public let turnScores: [CoQATurnKey: CoQATurnScore]
    /// Gold turns without a prediction, in gold order; they count as 0 (the official script warns
    /// "Missing prediction for ..." and does the same).
    public let missingPredictions: [CoQATurnKey]

    /// The official script's output, `json.dumps(model_performance(...), indent=2)`: keys in
    /// ``reportKeys`` order, each `{"em", "f1", "turns"}` with em and f1 rounded to one decimal.
    public func officialJSON() -> String {
        var lines = ["{"]
        for (i, key) in Self.reportKeys.enumerated() {
            let s = scores[key]!.rounded
            lines.append("  \"\(key)\": {")
            lines.append("    \"em\": \(s.em),")
            lines.append("    \"f1\": \(s.f1),")
            lines.append("    \"turns\": \(s.turns)")
            lines.append(i + 1 < Self.reportKeys.count ? "  }," : "  }")
        }
        lines.append("}")
        return lines.joined(separator: "\n")
    }
}

/// A problem with the inputs to the CoQA evaluation.
public enum CoQAEvaluationError: Error, Equatable, CustomStringConvertible {
    case unknownSource(storyID: String, source: String)
    case duplicateTurn(CoQATurnKey)

    public var description: String {
        switch self {
        case .unknownSource(let id, let source):
            return "story \"\(id)\" has source \"\(source)\"; the official evaluator knows only "
                + (CoQAEvaluator.inDomainSources + CoQAEvaluator.outOfDomainSources).joined(separator: ", ")
        case .duplicateTurn(let key):
            return "gold stories contain \(key) twice; story ids must be unique"
        }
    }
}

/// A port of CoQA's official `evaluate-v1.0.py` (`CoQAEvaluator.model_performance`): answer
/// normalization, exact match, token F1, the leave-one-out average over gold answers, and the
/// in-domain / out-of-domain breakdown.
public enum CoQAEvaluator {
    /// Sources scored as in-domain, in report order, with their report names.
    public static let inDomainSources = ["mctest", "gutenberg", "race", "cnn", "wikipedia"]
    public static let outOfDomainSources = ["reddit", "science"]
    /// `domain_mappings` of the official script.
    public static let domainNames = ["mctest": "children_stories", "gutenberg": "literature", "race": "mid-high_school",
                                     "cnn": "news", "wikipedia": "wikipedia", "science": "science", "reddit": "reddit"]

    // MARK: - Normalization and per-answer scores

    /// `normalize_answer`: lowercase, remove ASCII punctuation (`string.punctuation`), replace the
    /// whole words a/an/the with a space (`\b(a|an|the)\b`), collapse whitespace.
    ///
    /// Word characters are Python's `\w` for `str` patterns (Unicode letters and numbers, and
    /// `_`, which punctuation removal has already dropped); whitespace is Python's `str.split()`
    /// set (Unicode White_Space plus the separators U+001C...U+001F).
    public static func normalizeAnswer(_ s: String) -> String {
        let scalars = Array(s.lowercased().unicodeScalars.filter { !isPunctuation($0) })
        var out = String.UnicodeScalarView()
        var i = 0
        while i < scalars.count {
            guard isWordCharacter(scalars[i]) else {
                out.append(scalars[i])
                i += 1
                continue
            }
            var j = i
            while j < scalars.count && isWordCharacter(scalars[j]) { j += 1 }
            let word = String(String.UnicodeScalarView(scalars[i..<j]))
            if word == "a" || word == "an" || word == "the" { out.append(" ") } else { out.append(contentsOf: scalars[i..<j]) }
            i = j
        }
        return splitWhitespace(String(out)).joined(separator: " ")
    }

    /// `get_tokens`: the normalized answer split on whitespace; [] for the empty string.
    public static func tokens(_ s: String) -> [String] {
        s.isEmpty ? [] : splitWhitespace(normalizeAnswer(s))
    }

    /// `compute_exact`: 1 when the normalized strings are equal, else 0.
    public static func exactMatch(gold: String, prediction: String) -> Double {
        normalizeAnswer(gold) == normalizeAnswer(prediction) ? 1 : 0
    }

    /// `compute_f1`: harmonic mean of token precision and recall with multiset overlap; when
    /// either side has no tokens, 1 if both have none, else 0.
    public static func f1(gold: String, prediction: String) -> Double {
        let goldTokens = tokens(gold), predTokens = tokens(prediction)
        if goldTokens.isEmpty || predTokens.isEmpty { return goldTokens == predTokens ? 1 : 0 }
        var goldCounts: [String: Int] = [:]
        for t in goldTokens { goldCounts[t, default: 0] += 1 }
        var same = 0
        for t in predTokens where (goldCounts[t] ?? 0) > 0 {
            goldCounts[t]! -= 1
            same += 1
        }
        if same == 0 { return 0 }
        let precision = Double(same) / Double(predTokens.count)
        let recall = Double(same) / Double(goldTokens.count)
        return (2 * precision * recall) / (precision + recall)
    }

    /// `_compute_turn_score`: with one gold answer, its EM and F1; with n > 1, for each gold
    /// answer the maximum over the other n − 1, averaged over the n (so a prediction is scored
    /// the way a human annotator is).
    public static func turnScore(goldAnswers: [String], prediction: String) -> CoQATurnScore {
        precondition(!goldAnswers.isEmpty, "a turn needs at least one gold answer")
        var emSum = 0.0, f1Sum = 0.0
        if goldAnswers.count > 1 {
            for i in goldAnswers.indices {
                let others = goldAnswers[..<i] + goldAnswers[(i + 1)...]
                emSum += others.map { exactMatch(gold: $0, prediction: prediction) }.max()!
                f1Sum += others.map { f1(gold: $0, prediction: prediction) }.max()!
            }
        } else {
            emSum = exactMatch(gold: goldAnswers[0], prediction: prediction)
            f1Sum = f1(gold: goldAnswers[0], prediction: prediction)
        }
        let n = Double(goldAnswers.count)
        return CoQATurnScore(em: emSum / n, f1: f1Sum / n)
    }

    // MARK: - Whole evaluation

    /// Scores predictions keyed by (story id, turn id) against every gold turn of `stories`.
    /// Predictions for turns not in the gold stories are ignored, as in the official script.
    public static func evaluate(stories: [CoQAStory], predictions: [CoQATurnKey: String]) throws -> CoQAEvaluation {
        var seen = Set<CoQATurnKey>()
        var turnScores: [CoQATurnKey: CoQATurnScore] = [:]
        var missing: [CoQATurnKey] = []
        var emTotal: [String: Double] = [:], f1Total: [String: Double] = [:], turnCount: [String: Int] = [:]
        for story in stories {
            guard domainNames[story.source] != nil else {
                throw CoQAEvaluationError.unknownSource(storyID: story.id, source: story.source)
            }
            for turn in story.turns {
                let key = CoQATurnKey(storyID: story.id, turnID: turn.turnID)
                guard seen.insert(key).inserted else { throw CoQAEvaluationError.duplicateTurn(key) }
                turnCount[story.source, default: 0] += 1
                guard let prediction = predictions[key] else {
                    missing.append(key)
                    continue
                }
                let score = turnScore(goldAnswers: turn.goldAnswers, prediction: prediction)
                turnScores[key] = score
                emTotal[story.source, default: 0] += score.em
                f1Total[story.source, default: 0] += score.f1
            }
        }

        // Sums in the official script's order, so the floating-point results agree to the last bit.
        func totals(_ sources: [String]) -> (em: Double, f1: Double, turns: Int) {
            (sources.reduce(0.0) { $0 + (emTotal[$1] ?? 0) }, sources.reduce(0.0) { $0 + (f1Total[$1] ?? 0) },
             sources.reduce(0) { $0 + (turnCount[$1] ?? 0) })
        }
        func score(_ t: (em: Double, f1: Double, turns: Int)) -> CoQAScore {
            let denominator = Double(max(1, t.turns))
            return CoQAScore(em: t.em / denominator * 100, f1: t.f1 / denominator * 100, turns: t.turns)
        }
        var scores: [String: CoQAScore] = [:]
        for source in inDomainSources + outOfDomainSources { scores[domainNames[source]!] = score(totals([source])) }
        let inDomain = totals(inDomainSources), outDomain = totals(outOfDomainSources)
        scores["in_domain"] = score(inDomain)
        scores["out_domain"] = score(outDomain)
        scores["overall"] = score((inDomain.em + outDomain.em, inDomain.f1 + outDomain.f1, inDomain.turns + outDomain.turns))
        return CoQAEvaluation(scores: scores, turnScores: turnScores, missingPredictions: missing)
    }

    /// Scores predictions as read from an official-format predictions file (later duplicates win).
    public static func evaluate(stories: [CoQAStory], predictions: [CoQAPrediction]) throws -> CoQAEvaluation {
        var byKey: [CoQATurnKey: String] = [:]
        for p in predictions { byKey[CoQATurnKey(storyID: p.id, turnID: p.turnID)] = p.answer }
        return try evaluate(stories: stories, predictions: byKey)
    }

    // MARK: - Character classes of Python's `re` and `str`

    /// `string.punctuation`: !"#$%&'()*+,-./:;<=>?@[\]^_`{|}~
    static func isPunctuation(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x21...0x2F, 0x3A...0x40, 0x5B...0x60, 0x7B...0x7E: return true
        default: return false
        }
    }

    /// Python's `\w` for `str`: `str.isalnum()` (letters Lu/Ll/Lt/Lm/Lo and any numeric character) or `_`.
    static func isWordCharacter(_ c: Unicode.Scalar) -> Bool {
        if c == "_" { return true }
        switch c.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return c.properties.numericType != nil
        }
    }

    /// Python's `str.isspace()`.
    static func isPythonWhitespace(_ c: Unicode.Scalar) -> Bool {
        c.properties.isWhitespace || (0x1C...0x1F).contains(c.value)
    }

    /// `str.split()` with no argument: runs of whitespace separate, no empty pieces.
    static func splitWhitespace(_ s: String) -> [String] {
        var pieces: [String] = []
        var current = String.UnicodeScalarView()
        for c in s.unicodeScalars {
            if isPythonWhitespace(c) {
                if !current.isEmpty { pieces.append(String(current)); current = String.UnicodeScalarView() }
            } else {
                current.append(c)
            }
        }
        if !current.isEmpty { pieces.append(String(current)) }
        return pieces
    }
}
