import ArgumentParser
import FactorlabTasks
import Foundation

struct Score: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Score outputs on files: corpus BLEU (sacreBLEU's defaults), ROUGE (rouge-score's), exact match, CoQA F1.",
        discussion: """
        One example per line. --ref may be repeated: each file is one reference set with a line per hypothesis.
        bleu: sacreBLEU 2.x corpus BLEU (13a tokenization, exp smoothing), 0-100.
        rouge: rouge-score's ROUGE-1, ROUGE-2 and ROUGE-L F-measures (Porter stemming on; the best reference per
        example), means over examples, 0-100; the score is ROUGE-L.
        em: exact match after SQuAD normalization against any reference, 0-100 (Natural Questions open).
        coqa-f1: the official CoQA F1 (several references scored as the official script does), 0-100.
        """)

    @Option(help: "bleu, rouge, em or coqa-f1.")
    var metric: String
    @Option(help: "Hypotheses, one per line.")
    var hyp: String
    @Option(help: "References, one per line (repeatable: one reference set per file).")
    var ref: [String] = []
    @Flag(help: "Print one JSON object of results on stdout.")
    var json = false

    func run() throws {
        guard let m = ScoredLines.Metric(rawValue: metric) else {
            throw ValidationError("--metric must be one of \(ScoredLines.Metric.allCases.map(\.rawValue).joined(separator: ", ")), got '\(metric)'")
        }
        guard !ref.isEmpty else { throw ValidationError("--ref is required (one or more reference files)") }
        let (hyps, refs) = try ScoredLines.read(hypotheses: URL(fileURLWithPath: hyp), references: ref.map { URL(fileURLWithPath: $0) })
        // Each metric computed once: BLEU and ROUGE keep their details for the output.
        var extra: [String: Any] = [:]
        var rouge: ROUGE.Scores?
        let score: Double, perExample: [Double]?
        switch m {
        case .bleu:
            let b = BLEU.corpus(hypotheses: hyps, references: refs)
            (score, perExample) = (b.score, nil)
            extra = ["precisions": b.precisions, "brevity_penalty": b.brevityPenalty, "hypothesis_length": b.hypothesisLength,
                     "reference_length": b.referenceLength]
        case .rouge:
            let r = ScoredLines.rouge(hypotheses: hyps, references: refs)
            (score, perExample, rouge) = (r.mean.rougeL, r.perExample.map(\.rougeL), r.mean)
            extra = ["rouge1": r.mean.rouge1, "rouge2": r.mean.rouge2, "rougeL": r.mean.rougeL]
        case .em, .coqaF1:
            (score, perExample) = ScoredLines.score(m, hypotheses: hyps, references: refs)
        }
        if json {
            var obj: [String: Any] = ["metric": m.rawValue, "score": score, "examples": hyps.count, "references": refs.count]
            obj.merge(extra) { a, _ in a }
            if let perExample { obj["per_example"] = perExample }
            try Console.printJSON(obj)
        } else if let r = rouge {
            print(String(format: "rouge1 = %.4f  rouge2 = %.4f  rougeL = %.4f (%d examples)", r.rouge1, r.rouge2, r.rougeL, hyps.count))
        } else {
            print(String(format: "%@ = %.4f (%d examples, %d reference set%@)", m.rawValue, score, hyps.count, refs.count, refs.count == 1 ? "" : "s"))
        }
    }
}
