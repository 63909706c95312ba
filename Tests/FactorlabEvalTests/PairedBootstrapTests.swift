@testable import FactorlabEval
import FactorlabTasks
import XCTest

/// The suite's per-example metrics and the paired bootstrap.
final class PairedBootstrapTests: XCTestCase {
    func testIntervalsOfKnownDifferencesAndOfIdenticalModels() throws {
        let base = MetricSample.mean("accuracy", [1, 0, 1, 0, 1, 0, 1, 0])
        // Identical: zero difference and a zero-width interval.
        XCTAssertEqual(PairedBootstrap.interval(base, base), .init(difference: 0, low: 0, high: 0))
        // Right exactly where the baseline is wrong: the same accuracy, but each resample differs,
        // so the interval is wide and contains the difference 0.
        let flipped = MetricSample.mean("accuracy", [0, 1, 0, 1, 0, 1, 0, 1])
        let f = try XCTUnwrap(PairedBootstrap.interval(flipped, base, resamples: 2000))
        XCTAssertEqual(f.difference, 0)
        XCTAssertTrue(f.low < 0 && f.high > 0, "\(f)")
        // Right on every example the baseline got right, and on two more: a resample's difference
        // is X / 8 with X ~ Binomial(8, 1/4) draws of those two. P(X = 0) = 0.10, so the 2.5th
        // percentile is 0; P(X <= 3) = 0.886 and P(X <= 5) = 0.996, so the 97.5th is 4/8 to 5/8.
        let better = MetricSample.mean("accuracy", [1, 1, 1, 1, 1, 0, 1, 0])
        let b = try XCTUnwrap(PairedBootstrap.interval(better, base, resamples: 2000))
        XCTAssertEqual(b.difference, 0.25, accuracy: 1e-12)
        XCTAssertEqual(b.low, 0)
        XCTAssertTrue(b.high >= 0.5 && b.high <= 0.625, "\(b)")
        // Seeded: the same call gives the same interval.
        XCTAssertEqual(PairedBootstrap.interval(better, base, resamples: 500, seed: 9), PairedBootstrap.interval(better, base, resamples: 500, seed: 9))
        // Different examples (counts) cannot be paired.
        XCTAssertNil(PairedBootstrap.interval(MetricSample.mean("accuracy", [1, 0]), base))
        XCTAssertNil(PairedBootstrap.interval(MetricSample(name: "x", value: 1, higherIsBetter: true), base))
    }

    func testRatioAndCorpusMetricsAggregateLikeTheirWholeDataValues() {
        // Perplexity from windows is exp(total NLL / total tokens), not the mean of window perplexities.
        let ppl = MetricSample(name: "perplexity", components: [[2.0, 1], [6.0, 3]], higherIsBetter: false) { exp($0[0] / $0[1]) }
        XCTAssertEqual(ppl.value, exp(8.0 / 4.0), accuracy: 1e-12)
        // Corpus BLEU from summed sentence statistics equals BLEU of the corpus.
        let hyps = ["the cat sat on the mat", "a dog ran home today", "hello there"]
        let refs = ["the cat sat on a mat", "the dog ran home", "hello there my friend"]
        let stats = zip(hyps, refs).map { h, r -> [Double] in
            let s = BLEU.corpus(hypotheses: [h], references: [[r]])
            return (s.correct + s.total + [s.hypothesisLength, s.referenceLength]).map(Double.init)
        }
        let bleu = MetricSample(name: "bleu", components: stats, higherIsBetter: true) { s in
            BLEU.fromStatistics(correct: s[0..<4].map { Int($0) }, total: s[4..<8].map { Int($0) },
                                hypothesisLength: Int(s[8]), referenceLength: Int(s[9])).score
        }
        XCTAssertEqual(bleu.value, BLEU.corpus(hypotheses: hyps, references: [refs]).score, accuracy: 1e-12)
    }

    func testSuiteFilesAreValidatedWithFileAndLine() {
        XCTAssertThrowsError(try EvalSuite.parse("tasks:\n  - {task: nope, data: x}\n", file: "s.yaml")) {
            XCTAssertTrue("\($0)".hasPrefix("s.yaml:2: task must be one of perplexity"), "\($0)")
        }
        XCTAssertThrowsError(try EvalSuite.parse("tasks:\n  - {task: nq, data: x, shots: 99}\n", file: "s.yaml")) {
            XCTAssertTrue("\($0)".contains("shots must be an integer from 0 to 64"), "\($0)")
        }
        XCTAssertThrowsError(try EvalSuite.parse("tasks:\n  - {task: cbt, data: x}\n  - {task: cbt, data: y}\n", file: "s.yaml")) {
            XCTAssertTrue("\($0)".contains("two tasks are named 'cbt'"), "\($0)")
        }
        XCTAssertThrowsError(try EvalSuite.parse("name: x\ncolour: red\ntasks: []\n", file: "s.yaml")) {
            XCTAssertTrue("\($0)".contains("unknown key colour"), "\($0)")
        }
        let ok = try? EvalSuite.parse("name: held\ntasks:\n  - {task: nq, data: q.jsonl, shots: 1}\n", file: "s.yaml")
        XCTAssertEqual(ok?.tasks.first?.name, "nq-1shot")
        XCTAssertEqual(ok?.name, "held")
    }
}
