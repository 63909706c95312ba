import Foundation
import XCTest
@testable import FactorlabStudy

final class StudyAnalysisTests: XCTestCase {
    static let budgets = [2.0e15, 4.0e15, 1.0e16, 3.0e16]

    func testRunsWithoutValidationAndNonScratchArmsAreExcludedWithReasons() throws {
        let analysis = try Fixtures.analysis()
        XCTAssertEqual(analysis.runs.count, 18)
        XCTAssertEqual(analysis.excluded, [
            ExcludedRun(name: "dense-4L-128d-noval", reason: "no validation points (no val_loss in metrics.jsonl)"),
            ExcludedRun(name: "lowrank32-4L-192d-projected-s0", reason: "arm \"projected\" starts from another model; local-minimum section only"),
            ExcludedRun(name: "lowrank32-4L-192d-projtrained-s0", reason: "arm \"projected+trained\" starts from another model; local-minimum section only"),
            ExcludedRun(name: "lowrank32-4L-192d-projtrained-s1", reason: "arm \"projected+trained\" starts from another model; local-minimum section only"),
        ])
        XCTAssertEqual(analysis.groups.map(\.key.label), ["4L-128d dense", "4L-192d dense", "4L-256d dense",
                                                          "4L-192d lowrank:32 [scratch]", "4L-192d monarch:4",
                                                          "4L-256d monarch:4", "4L-384d monarch:4"])
        XCTAssertEqual(analysis.groups.map(\.seedCount), [2, 2, 2, 2, 2, 2, 2])
        XCTAssertEqual(analysis.replicateCount, 128, "2 seeds in each of 7 sizes: every combination")
    }

    /// The frontier and fit match the numpy re-implementation in make_study_fixtures.py (same algorithm).
    func testFrontierAndFitMatchTheNumpyReference() throws {
        let analysis = try Fixtures.analysis()
        let fits = try Fixtures.section("fits")
        for family in ["dense", "monarch:4"] {
            let reference = try XCTUnwrap(fits[family] as? [String: Any])
            let trend = try XCTUnwrap(analysis.trend(family))
            let fit = try XCTUnwrap(trend.fit)
            let frontierX = try doubles(reference["frontier_x"])
            XCTAssertEqual(trend.frontier.points.count, frontierX.count)
            for (a, b) in zip(trend.frontier.points.map(\.x), frontierX) { XCTAssertEqual(a, b, accuracy: 1e-13 * b) }
            let frontierLoss = try doubles(reference["frontier_loss"])
            XCTAssertEqual(trend.frontier.points.count, frontierLoss.count)
            for (a, b) in zip(trend.frontier.points.map(\.loss), frontierLoss) { XCTAssertEqual(a, b, accuracy: 1e-12) }
            XCTAssertEqual(fit.a, try double(reference["a"]), accuracy: 1e-9 * fit.a, family)
            XCTAssertEqual(fit.b, try double(reference["b"]), accuracy: 1e-10, family)
            XCTAssertEqual(fit.rmsResidual, try double(reference["rms"]), accuracy: 1e-12, family)
            XCTAssertEqual(fit.pointCount, Int(try double(reference["points"])), family)
            XCTAssertEqual(fit.computeStart, try double(reference["start"]), family)
            XCTAssertEqual(fit.computeEnd, try double(reference["end"]), family)
        }
    }

    /// The fit recovers the generating law L* = a C^-b (closed form from the Chinchilla-style run law):
    /// exponent within 5 % and predicted loss within 0.5 % over the fitted range. (Not exact: the envelope
    /// of three discrete sizes sits slightly above L* between their tangent points, and the runs are noisy.)
    func testFitRecoversTheGeneratingPowerLaw() throws {
        let analysis = try Fixtures.analysis()
        let laws = try Fixtures.section("laws")
        for family in ["dense", "monarch:4"] {
            let law = try XCTUnwrap(laws[family] as? [String: Any])
            let (a, b) = (try double(law["a"]), try double(law["b"]))
            let fit = try XCTUnwrap(analysis.trend(family)?.fit)
            XCTAssertEqual(fit.b, b, accuracy: 0.05 * b, family)
            for c in Stats.logSpaced(fit.computeStart, fit.computeEnd, count: 9) {
                XCTAssertEqual(fit.loss(atCompute: c), a * pow(c, -b), accuracy: 0.005 * a * pow(c, -b), "\(family) at \(c)")
            }
            XCTAssertLessThan(fit.rmsResidual, 0.005)
            XCTAssertGreaterThan(try XCTUnwrap(analysis.trend(family)?.exponentSpread), 0)
        }
        XCTAssertEqual(analysis.trend("dense")!.fit!.b, 0.0576, accuracy: 5e-5)
        XCTAssertEqual(analysis.trend("monarch:4")!.fit!.b, 0.0722, accuracy: 5e-5)
    }

    func testFamilyWithTooFewSizesIsInterpolatedNotFitted() throws {
        let trend = try XCTUnwrap(Fixtures.analysis().trend("lowrank:32"))
        XCTAssertNil(trend.fit)
        XCTAssertEqual(trend.sizes, ["4L-192d [scratch]"])
        XCTAssertEqual(trend.note, "1 size (a fit needs 3): no power law, the frontier is interpolated and nothing is extrapolated")
        // The frontier of one size is its seed-mean curve (running minimum): interpolation reproduces its points.
        let loss = trend.frontier.points[5].loss
        XCTAssertEqual(trend.compute(atLoss: loss)!, trend.frontier.points[5].x, accuracy: 1e-3 * trend.frontier.points[5].x)
        XCTAssertNil(trend.frontier.compute(atLoss: 3.0), "below the frontier: no extrapolation")
    }

    /// Compute multiplier of Monarch against dense vs the closed form (a_d/L)^(1/b_d) / (a_m/L)^(1/b_m), within 8 %
    /// (the exponent error above, amplified by 1/b).
    func testMonarchMultiplierMatchesTheAnalyticValue() throws {
        let analysis = try Fixtures.analysis()
        let laws = try Fixtures.section("laws")
        let dense = try XCTUnwrap(laws["dense"] as? [String: Any])
        let monarch = try XCTUnwrap(laws["monarch:4"] as? [String: Any])
        let (ad, bd, am, bm) = (try double(dense["a"]), try double(dense["b"]), try double(monarch["a"]), try double(monarch["b"]))
        let estimates = analysis.multipliers.filter { $0.family == "monarch:4" && $0.axis == .flops }
        XCTAssertEqual(estimates.count, 5)
        XCTAssertEqual(estimates.map(\.loss), estimates.map(\.loss).sorted(by: >), "highest loss first")
        for m in estimates {
            let analytic = pow(ad / m.loss, 1 / bd) / pow(am / m.loss, 1 / bm)
            let value = try XCTUnwrap(m.multiplier)
            XCTAssertEqual(value, analytic, accuracy: 0.08 * analytic, "L = \(m.loss)")
            XCTAssertFalse(m.extrapolated)
            XCTAssertEqual(m.method, "fit/fit")
            XCTAssertEqual(m.replicates, 128)
            let spread = try XCTUnwrap(m.spread)
            XCTAssertTrue(spread > 0.005 && spread < 0.1, "spread \(spread)")
        }
        // Monarch gets more efficient as the loss falls: 1.10x at the top of the overlap, 1.30x at the bottom.
        XCTAssertEqual(estimates.first!.multiplier!, 1.10, accuracy: 0.01)
        XCTAssertEqual(estimates.last!.multiplier!, 1.30, accuracy: 0.01)
        // In wall-clock, Monarch's slower kernels make it less efficient than dense.
        let wall = analysis.multipliers.filter { $0.family == "monarch:4" && $0.axis == .wallSeconds }
        XCTAssertTrue(wall.allSatisfy { $0.multiplier! < 1 })
    }

    func testLowRankMultipliersOutsideTheDenseRangeAreMarkedExtrapolated() throws {
        let estimates = try Fixtures.analysis().multipliers.filter { $0.family == "lowrank:32" && $0.axis == .flops }
        XCTAssertEqual(estimates.count, 5)
        XCTAssertTrue(estimates.allSatisfy(\.extrapolated))
        XCTAssertTrue(estimates.allSatisfy { $0.method == "fit/frontier" })
        XCTAssertTrue(estimates.allSatisfy { $0.multiplier! < 0.5 }, "low-rank from scratch is far less efficient")
    }

    func testBudgetRecommendationsAreTheExpectedOnes() throws {
        let analysis = try Fixtures.analysis(budgets: Self.budgets)
        let expected = try XCTUnwrap(Fixtures.expected()["budgets"] as? [[String: Any]])
        XCTAssertEqual(analysis.recommendations.count, expected.count)
        for (r, e) in zip(analysis.recommendations, expected) {
            XCTAssertEqual(r.budget, try double(e["budget"]))
            for (entry, key) in [(r.best, "winner"), (r.runnerUp, "runner_up"), (r.bestDense, "best_dense"),
                                 (r.bestAccelerated, "best_accelerated")] {
                let want = try XCTUnwrap(e[key] as? [String: Any])
                let got = try XCTUnwrap(entry, key)
                XCTAssertEqual(got.family, want["family"] as? String, "\(key) at \(r.budget)")
                XCTAssertEqual(got.size, want["size"] as? String, "\(key) at \(r.budget)")
                XCTAssertEqual(got.loss, try double(want["loss"]), accuracy: 1e-12, "\(key) at \(r.budget)")
                XCTAssertEqual(got.seeds, 2)
            }
            XCTAssertEqual(r.acceleratorWins, e["accelerator_wins"] as? Bool)
        }
        XCTAssertEqual(analysis.recommendations.map(\.acceleratorWins), [false, false, true, true])
        XCTAssertEqual(analysis.recommendations[0].sentence,
                       "At 2.0e15 FLOPs no accelerator beats the dense baseline (best dense: 4L-192d, val loss 3.947 ± 0.011; "
                       + "best accelerated: 4L-192d monarch:4, val loss 3.997 ± 0.009; margin 0.051 nats = 3.5 × the combined seed spread).")
        XCTAssertEqual(analysis.recommendations[2].sentence,
                       "At 1.0e16 FLOPs, use 4L-384d with monarch:4 instead of dense 4L-256d: val loss 3.524 ± 0.004 vs "
                       + "3.588 ± 0.006 (margin 0.064 nats = 9.0 × the combined seed spread).")
        XCTAssertTrue(analysis.recommendations[2].conclusive)
    }

    func testDefaultBudgetsSpanTheObservedRange() throws {
        let analysis = try Fixtures.analysis()
        XCTAssertEqual(analysis.budgets, [3.0e15, 4.4e15, 6.5e15, 9.6e15, 1.4e16])
        XCTAssertEqual(analysis.recommendations.map(\.acceleratorWins), [false, true, true, true, true])
        XCTAssertFalse(analysis.recommendations[1].conclusive, "4.4e15: margin within the seed spread")
    }

    /// Runs that all end at about one budget (a sweep at one FLOP budget) get distinct budgets over
    /// the last factor of 8 below it, not five copies of one.
    func testDefaultBudgetsOfRunsEndingTogether() {
        XCTAssertEqual(BudgetRecommendation.defaultBudgets(ends: [4.0e12, 4.01e12, 3.99e12, 4.02e12]), [5.0e11, 8.5e11, 1.4e12, 2.4e12, 4.0e12])
        XCTAssertEqual(BudgetRecommendation.defaultBudgets(ends: [3.0e15, 1.4e16]), [3.0e15, 4.4e15, 6.5e15, 9.5e15, 1.4e16])
        XCTAssertEqual(BudgetRecommendation.defaultBudgets(ends: []), [])
    }

    func testLocalMinimumArmsAtEqualCompute() throws {
        let result = try XCTUnwrap(Fixtures.analysis().localMinimum)
        let expected = try Fixtures.section("local_minimum")
        XCTAssertEqual(result.compute, try double(expected["compute"]))
        let arms = try XCTUnwrap(expected["arms"] as? [String: [String: Any]])
        let all = [try XCTUnwrap(result.denseReference)] + result.arms
        XCTAssertEqual(Set(all.map(\.arm)), Set(arms.keys))
        for arm in all {
            let want = try XCTUnwrap(arms[arm.arm])
            XCTAssertEqual(arm.loss, try double(want["loss"]), accuracy: 1e-12, arm.arm)
            XCTAssertEqual(arm.runs, want["runs"] as? [String], arm.arm)
            if let spread = want["spread"] as? NSNumber {
                XCTAssertEqual(try XCTUnwrap(arm.spread), spread.doubleValue, accuracy: 1e-12, arm.arm)
            } else {
                XCTAssertNil(arm.spread, arm.arm)
            }
        }
        XCTAssertEqual(result.scratchReachesDense, false)
        XCTAssertEqual(result.arms.first { $0.arm == "projected" }?.compute, 0)
        XCTAssertTrue(result.verdict.hasPrefix("Factorized from scratch (4L-192d lowrank:32) does not reach the dense loss at 6.5e15 "
                                               + "training FLOPs: 3.895 ± 0.009 vs dense 4L-192d 3.682 ± 0.011 (gap 0.213 nats; "
                                               + "tolerance 0.028 = 2 × combined seed spread)."), result.verdict)
        XCTAssertTrue(result.verdict.contains("Arm projected+trained: 3.564 ± 0.004, reaches the dense loss (gap -0.118)."))
    }

    func testSingleSeedStudySaysSoAndHasNoSpread() throws {
        let runs = try Fixtures.runs().filter { $0.config.seed == 0 }
        let analysis = StudyAnalysis(runs: runs, budgets: [1.0e16])
        XCTAssertEqual(analysis.replicateCount, 0)
        XCTAssertTrue(analysis.multipliers.allSatisfy { $0.spread == nil && $0.replicates == 0 })
        XCTAssertNil(analysis.trend("dense")?.exponentSpread)
        let sentence = analysis.recommendations[0].sentence
        XCTAssertTrue(sentence.hasPrefix("At 1.0e16 FLOPs, use 4L-384d with monarch:4 instead of dense 4L-256d: val loss "), sentence)
        XCTAssertTrue(sentence.contains("(single seed) vs "), sentence)
        XCTAssertTrue(sentence.hasSuffix("single seed on at least one side, so there is no seed spread to judge it by)."), sentence)
    }

    func testSeedReplicatesEnumerateOrDrawDeterministically() {
        func group(_ width: Int, seeds: Int) -> RunGroup {
            let shape = ModelShape(nLayer: 1, nEmbd: width, nHead: 1, nPositions: 8, vocabSize: 8, mlp: "dense")
            let runs = (0..<seeds).map { seed in
                StudyRun(directory: URL(fileURLWithPath: "/r\(width)-\(seed)"),
                         config: RunConfig(name: "r\(width)-\(seed)", family: "dense", model: shape, parameters: 1,
                                           nonEmbeddingParameters: 1, flopsPerToken: 1, seed: seed, arm: nil, inference: nil),
                         metrics: [], summary: nil)
            }
            return RunGroup(key: GroupKey(family: "dense", model: shape, arm: nil), runs: runs)
        }
        XCTAssertEqual(StudyAnalysis.replicates([group(1, seeds: 2), group(2, seeds: 1), group(3, seeds: 3)]),
                       [[0, 0, 0], [1, 0, 0], [0, 0, 1], [1, 0, 1], [0, 0, 2], [1, 0, 2]])
        XCTAssertEqual(StudyAnalysis.replicates([group(1, seeds: 1)]), [])
        let many = (1...9).map { group($0, seeds: 3) }  // 3^9 combinations: drawn
        let draws = StudyAnalysis.replicates(many)
        XCTAssertEqual(draws.count, StudyAnalysis.maximumReplicates)
        XCTAssertEqual(draws, StudyAnalysis.replicates(many))
        XCTAssertTrue(draws.allSatisfy { $0.count == 9 && $0.allSatisfy { (0..<3).contains($0) } })
    }

    /// The inference-budget arms: each size and family as trained and with bf16 and int8 weights
    /// (run.json `inference.quantized`), averaged over seeds; the best arm within each latency and
    /// weight-memory budget against the best plain dense float32 arm.
    func testInferenceBudgetArmsIncludeQuantizedVariants() {
        func record(_ weights: String, latency: Double, bytes: Int, loss: Double, quantized: [InferenceRecord]? = nil) -> InferenceRecord {
            var r = InferenceRecord(latencyMsPerToken: latency, peakMemoryBytes: 1, weightBytes: bytes, weightPrecision: weights)
            r.valLoss = loss
            r.quantized = quantized
            return r
        }
        func run(_ family: String, width: Int, seed: Int, latency: Double, bytes: Int, loss: Double) -> StudyRun {
            let shape = ModelShape(nLayer: 2, nEmbd: width, nHead: 1, nPositions: 8, vocabSize: 8, mlp: family)
            let inference = record("float32", latency: latency, bytes: bytes, loss: loss, quantized: [
                record("bf16", latency: latency * 0.7, bytes: bytes / 2, loss: loss + 0.001),
                record("int8", latency: latency * 0.5, bytes: bytes / 4, loss: loss + 0.01 + 0.01 * Double(seed)),
            ])
            return StudyRun(directory: URL(fileURLWithPath: "/\(family)\(width)-\(seed)"),
                            config: RunConfig(name: "\(family)\(width)-\(seed)", family: family, model: shape, parameters: 1,
                                              nonEmbeddingParameters: 1, flopsPerToken: 1, seed: seed, arm: nil, inference: inference),
                            metrics: [MetricPoint(step: 1, tokens: 1, valLoss: loss, lr: 0, wallSeconds: 1, flops: 1)], summary: nil)
        }
        let runs = [run("dense", width: 64, seed: 0, latency: 1.0, bytes: 4_000_000, loss: 5.0),
                    run("dense", width: 64, seed: 1, latency: 1.2, bytes: 4_000_000, loss: 5.2),
                    run("dense", width: 128, seed: 0, latency: 2.0, bytes: 16_000_000, loss: 4.0),
                    run("monarch:4", width: 128, seed: 0, latency: 1.4, bytes: 8_000_000, loss: 4.3)]
        let analysis = StudyAnalysis(runs: runs)
        XCTAssertEqual(analysis.inferenceArms.count, 9, "3 groups x 3 weight formats")
        let denseSmallInt8 = analysis.inferenceArms.first { $0.size == "2L-64d" && $0.weights == "int8" }!
        XCTAssertEqual(denseSmallInt8.seeds, 2)
        XCTAssertEqual(denseSmallInt8.latencyMsPerToken, 0.55, accuracy: 1e-12)
        XCTAssertEqual(denseSmallInt8.valLoss, (5.01 + 5.22) / 2, accuracy: 1e-12)
        XCTAssertEqual(denseSmallInt8.weightBytes, 1_000_000)
        // 1.2 ms: dense 128 in int8 (latency 1.0, loss 4.01) beats every plain dense arm that fits (dense 64, 1.1 ms, 5.1).
        let r = InferenceRecommendation.make(budget: 1.2, axis: .latency, arms: analysis.inferenceArms)
        XCTAssertEqual(r.best?.label, "dense 2L-128d with int8 weights")
        XCTAssertEqual(r.bestPlainDense?.label, "dense 2L-64d")
        XCTAssertTrue(r.sentence.hasPrefix("With at most 1.200 ms per generated token, use dense 2L-128d with int8 weights instead of dense 2L-64d: val loss 4.010 vs 5.100"), r.sentence)
        // 5 MB of weights: Monarch 128 in bf16 (4 MB, loss 4.301) and dense 128 in int8 (4 MB, 4.01) fit; int8 dense wins.
        let m = InferenceRecommendation.make(budget: 5_000_000, axis: .weightBytes, arms: analysis.inferenceArms)
        XCTAssertEqual(m.best?.label, "dense 2L-128d with int8 weights")
        let none = InferenceRecommendation.make(budget: 0.1, axis: .latency, arms: analysis.inferenceArms)
        XCTAssertNil(none.best)
        XCTAssertEqual(none.sentence, "With at most 0.100 ms per generated token, no measured arm fits.")
        XCTAssertFalse(analysis.inferenceRecommendations.isEmpty)
        XCTAssertTrue(analysis.inferenceRecommendations.allSatisfy { $0.best != nil }, "every default budget fits its cheapest arm")
        XCTAssertTrue(StudyReport.markdown(analysis, plots: []).contains("Recommendations for inference budgets"))
    }
}

/// A sweep's tuning.json in the report: the table, the chosen values and the curves.
final class LearningRateTuningTests: XCTestCase {
    func testTuningIsReadAndShownAndBadFilesNameTheFamily() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lr-tuning-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("tuning.json")
        try #"{"key": "optimizer.lr", "per": "model.linear", "values": ["1.0e-3", "2.0e-3", "4.0e-3"], "families": {"dense": {"best": "2.0e-3", "mean_final_val_loss": {"1.0e-3": 4.5, "2.0e-3": 4.25, "4.0e-3": 4.4}}, "mlp=monarch:4": {"best": "4.0e-3", "mean_final_val_loss": {"1.0e-3": 4.9, "2.0e-3": 4.6, "4.0e-3": 4.3}}}}"#
            .write(to: url, atomically: true, encoding: .utf8)
        let t = try XCTUnwrap(try LearningRateTuning.find(in: [dir.appendingPathComponent("none"), dir]))
        XCTAssertEqual(t.families.map(\.name), ["dense", "mlp=monarch:4"])
        XCTAssertEqual(t.families[0].losses.map(\.value), [1e-3, 2e-3, 4e-3])
        let md = t.markdown
        XCTAssertTrue(md.contains("| `dense` | 4.5000 | **4.2500** | 4.4000 | 2.0e-3 |"), md)
        XCTAssertTrue(md.contains("edge of the tried range for `mlp=monarch:4`"), md)
        XCTAssertEqual(t.plot.series.count, 2)
        XCTAssertEqual(t.plot.series[1].points.map(\.loss), [4.9, 4.6, 4.3])
        try #"{"key": "optimizer.lr", "per": "model.linear", "families": {"dense": {"best": "x", "mean_final_val_loss": {"abc": 4.5}}}}"#
            .write(to: url, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try LearningRateTuning.load(url)) { XCTAssertTrue("\($0)".contains("family dense: value abc"), "\($0)") }
        XCTAssertNil(try LearningRateTuning.load(dir.appendingPathComponent("missing.json")))
    }
}
