import FactorlabRecords
import Foundation

/// Scoring other systems' outputs on files (`factorlab score`): one example per line, references in
/// one or more files of the same number of lines (one reference set per file, as sacreBLEU's `-r`).
public enum ScoredLines {
    public enum Metric: String, CaseIterable, Sendable {
        case bleu, rouge, em, coqaF1 = "coqa-f1"
    }

    public struct Failure: Error, CustomStringConvertible {
        public let file: String
        public let message: String
        public var description: String { "\(file): \(message)" }
    }

    /// The lines of a UTF-8 text file: split at "\n", a "\r" before it dropped (Python's universal
    /// newlines), no final empty line after a trailing newline. Invalid UTF-8 names its line.
    public static func lines(of url: URL) throws -> [String] {
        let data: Data
        do { data = try FileReading.contents(of: url) } catch let e as FileReading.Failure {
            throw Failure(file: e.file, message: e.reason)
        }
        var out: [String] = []
        var pieces = data.split(separator: 0x0A, omittingEmptySubsequences: false)
        if pieces.last?.isEmpty == true { pieces.removeLast() }
        for (i, piece) in pieces.enumerated() {
            var bytes = piece
            if bytes.last == 0x0D { bytes = bytes.dropLast() }
            guard let line = String(bytes: bytes, encoding: .utf8) else {
                throw Failure(file: url.path, message: "line \(i + 1) is not valid UTF-8")
            }
            out.append(line)
        }
        return out
    }

    /// One metric over the hypotheses and reference sets (each set one line per hypothesis):
    /// the corpus score and, for the per-example metrics, each example's score.
    public static func score(_ metric: Metric, hypotheses: [String], references: [[String]]) -> (score: Double, perExample: [Double]?) {
        switch metric {
        case .bleu:
            return (BLEU.corpus(hypotheses: hypotheses, references: references).score, nil)
        case .rouge:
            // ROUGE-L F-measure, 0-100; ``rouge(hypotheses:references:)`` gives all three.
            let each = rouge(hypotheses: hypotheses, references: references).perExample.map(\.rougeL)
            return (100 * mean(each), each)
        case .em:
            // Exact match after SQuAD's normalization against any reference (Natural Questions open), 0-100.
            let each = hypotheses.indices.map { i in references.map { CoQAEvaluator.exactMatch(gold: $0[i], prediction: hypotheses[i]) }.max() ?? 0 }
            return (100 * mean(each), each)
        case .coqaF1:
            // The official CoQA turn F1 (with several references, each scored against the others), 0-100.
            let each = hypotheses.indices.map { i in CoQAEvaluator.turnScore(goldAnswers: references.map { $0[i] }, prediction: hypotheses[i]).f1 }
            return (100 * mean(each), each)
        }
    }

    /// ROUGE-1, -2 and -L F-measures of every example (rouge-score's `score_multi` over its
    /// references) and their means over examples, 0-100 (rouge-score's own aggregator draws bootstrap
    /// samples; the plain mean is what a fixed test can equal).
    public static func rouge(hypotheses: [String], references: [[String]]) -> (mean: ROUGE.Scores, perExample: [ROUGE.Scores]) {
        let each = hypotheses.indices.map { i in ROUGE.score(prediction: hypotheses[i], references: references.map { $0[i] }) }
        return (ROUGE.Scores(rouge1: 100 * mean(each.map(\.rouge1)), rouge2: 100 * mean(each.map(\.rouge2)),
                             rougeL: 100 * mean(each.map(\.rougeL))), each)
    }

    static func mean(_ xs: [Double]) -> Double { xs.isEmpty ? 0 : xs.reduce(0, +) / Double(xs.count) }

    /// Reads the files and checks that every reference file has as many lines as the hypotheses.
    public static func read(hypotheses: URL, references: [URL]) throws -> ([String], [[String]]) {
        let hyps = try lines(of: hypotheses)
        guard !references.isEmpty else { throw Failure(file: hypotheses.path, message: "no reference file given") }
        var refs: [[String]] = []
        for r in references {
            let l = try lines(of: r)
            guard l.count == hyps.count else {
                throw Failure(file: r.path, message: "has \(l.count) lines, the hypotheses (\(hypotheses.path)) have \(hyps.count); expected one reference per hypothesis line")
            }
            refs.append(l)
        }
        return (hyps, refs)
    }
}
