import Foundation

extension StudyReport {
    /// The Markdown report; `plots` are the SVG file names written next to it (linked relatively).
    public static func markdown(_ analysis: StudyAnalysis, plots: [String], tuning: LearningRateTuning? = nil) -> String {
        var md = "# Factorlab study: validation loss against compute\n\n"
        md += "\(analysis.runs.count) runs read; \(analysis.groups.reduce(0) { $0 + $1.runs.count }) from-scratch runs in "
            + "\(analysis.groups.count) sizes enter the curves and fits"
            + (analysis.excluded.isEmpty ? "." : "; \(analysis.excluded.count) are left out (listed below).") + "\n\n"
        if !analysis.recommendations.isEmpty {
            md += "**Recommendations**\n\n" + analysis.recommendations.map { "- " + $0.sentence }.joined(separator: "\n") + "\n\n"
        }
        if !analysis.inferenceRecommendations.isEmpty {
            md += "**Recommendations for inference budgets**\n\n"
                + analysis.inferenceRecommendations.map { "- " + $0.sentence }.joined(separator: "\n") + "\n\n"
        }
        md += runsSection(analysis)
        md += curvesSection(analysis, plots: plots)
        if let tuning { md += tuning.markdown }
        md += fitSection(analysis)
        md += multiplierSection(analysis)
        md += budgetSection(analysis)
        md += inferenceSection(analysis, plots: plots)
        if let result = analysis.localMinimum { md += localMinimumSection(result) }
        md += methodSection(analysis)
        return md
    }

    static func table(_ header: [String], _ rows: [[String]]) -> String {
        var out = "| " + header.joined(separator: " | ") + " |\n"
        out += "|" + header.map { _ in " --- |" }.joined() + "\n"
        for row in rows { out += "| " + row.map(Fmt.cell).joined(separator: " | ") + " |\n" }
        return out + "\n"
    }

    static func runsSection(_ analysis: StudyAnalysis) -> String {
        var md = "## Runs\n\n"
        let runs = analysis.runs.sorted { ($0.config.family == "dense" ? 0 : 1, $0.config.family, $0.config.model.nEmbd, $0.name)
            < ($1.config.family == "dense" ? 0 : 1, $1.config.family, $1.config.model.nEmbd, $1.name) }
        md += table(["run", "family", "size", "arm", "seed", "params", "tokens", "FLOPs", "wall", "final val", "best val", "tokens/s"],
                    runs.map { run in
            let last = run.metrics.last
            let speeds = run.metrics.compactMap(\.tokensPerSecond).filter { $0 > 0 }
            return [run.name, run.config.family, run.config.model.sizeLabel, run.config.arm ?? "", "\(run.config.seed)",
                    Fmt.int(run.config.parameters), Fmt.sci(Double(run.summary?.tokens ?? last?.tokens ?? 0)),
                    Fmt.sci(run.summary?.flops ?? last?.flops ?? 0), Fmt.duration(run.summary?.wallSeconds ?? last?.wallSeconds ?? 0),
                    run.finalValLoss.map(Fmt.loss) ?? "–", run.bestValLoss.map(Fmt.loss) ?? "–",
                    speeds.isEmpty ? "–" : Fmt.fixed(Stats.mean(speeds), 0)]
        })
        if !analysis.excluded.isEmpty {
            md += "Left out of the curves and fits:\n\n" + analysis.excluded.map { "- `\($0.name)`: \($0.reason)" }.joined(separator: "\n") + "\n\n"
        }
        if !analysis.notes.isEmpty {
            md += "Notes from reading:\n\n" + analysis.notes.map { "- \($0)" }.joined(separator: "\n") + "\n\n"
        }
        return md
    }

    static func curvesSection(_ analysis: StudyAnalysis, plots: [String]) -> String {
        var md = "## Loss against training compute\n\n"
        md += "Seed-mean validation curves (one colour per family, one marker per size), each family's compute-efficient "
            + "frontier (pale) and its fitted law (dashed).\n\n"
        if plots.contains("loss_vs_flops.svg") { md += "![Validation loss vs training FLOPs](loss_vs_flops.svg)\n\n" }
        if plots.contains("loss_vs_wall.svg") { md += "![Validation loss vs training wall-clock](loss_vs_wall.svg)\n\n" }
        return md
    }

    static func fitSection(_ analysis: StudyAnalysis) -> String {
        var md = "## Fitted laws\n\n`L(C) = a · C^(-b)` on each family's frontier (C in FLOPs or seconds). "
            + "`b spread` is the standard deviation of `b` over \(analysis.replicateCount) seed replicates.\n\n"
        var rows: [[String]] = []
        for axis in ComputeAxis.allCases {
            for t in analysis.trends[axis] ?? [] {
                if let f = t.fit {
                    rows.append([t.family, axis.unit, t.sizes.joined(separator: ", "), Fmt.fixed(f.a, 3), Fmt.fixed(f.b, 4),
                                 t.exponentSpread.map { Fmt.fixed($0, 4) } ?? "single seed", "\(f.pointCount)",
                                 "\(Fmt.sci(f.computeStart))–\(Fmt.sci(f.computeEnd))", Fmt.fixed(f.rmsResidual, 4),
                                 Fmt.fixed(f.maxResidual, 4), t.note ?? ""])
                } else {
                    rows.append([t.family, axis.unit, t.sizes.joined(separator: ", "), "–", "–", "–", "–",
                                 "\(Fmt.sci(t.frontier.computeRange.lowerBound))–\(Fmt.sci(t.frontier.computeRange.upperBound))",
                                 "–", "–", t.note ?? "not fitted"])
                }
            }
        }
        md += table(["family", "axis", "sizes", "a", "b", "b spread", "points", "range", "rms residual", "max residual", "note"], rows)
        return md
    }

    static func multiplierSection(_ analysis: StudyAnalysis) -> String {
        var md = "## Compute multipliers relative to dense\n\n"
        md += "`C_dense(L) / C_family(L)`: how many times more compute the dense family needs to reach the same loss "
            + "(> 1: the accelerator is more compute-efficient). ± is the standard deviation over seed replicates; "
            + "*extrapolated* marks loss levels outside a family's measured range.\n\n"
        guard !analysis.multipliers.isEmpty else {
            return md + "No multipliers: they need a dense family and at least one other family.\n\n"
        }
        md += table(["family", "axis", "loss", "dense needs", "family needs", "multiplier", "± seed spread", "method", "extrapolated"],
                    analysis.multipliers.map { m in
            [m.family, m.axis.unit, Fmt.loss(m.loss), m.denseCompute.map(Fmt.sci) ?? "not reached",
             m.familyCompute.map(Fmt.sci) ?? "not reached", m.multiplier.map { Fmt.fixed($0, 2) + "×" } ?? "–",
             m.spread.map { Fmt.fixed($0, 2) + (m.replicates < analysis.replicateCount ? " (\(m.replicates) of \(analysis.replicateCount))" : "") }
                ?? (analysis.replicateCount == 0 ? "single seed" : "–"), m.method,
             m.extrapolated ? "**extrapolated**" : "no"]
        })
        return md
    }

    static func budgetSection(_ analysis: StudyAnalysis) -> String {
        var md = "## Budget recommendations\n\n"
        md += "For each FLOP budget: the lowest seed-mean validation loss any size reaches at or below it on its curve. "
            + "± is the standard deviation over seeds of each seed's best loss within the budget.\n\n"
        let entry = { (e: BudgetEntry?) in e.map { "\($0.label): \(Fmt.lossWithSpread($0.loss, $0.spread))" } ?? "–" }
        md += table(["budget (FLOPs)", "best", "runner-up", "best dense", "best accelerated", "accelerator wins"],
                    analysis.recommendations.map { r in
            [Fmt.sci(r.budget), entry(r.best), entry(r.runnerUp), entry(r.bestDense), entry(r.bestAccelerated),
             r.acceleratorWins ? (r.conclusive ? "yes" : "yes (within noise)") : "no"]
        })
        md += analysis.recommendations.map { "- " + $0.sentence }.joined(separator: "\n") + "\n\n"
        return md
    }

    static func inferenceSection(_ analysis: StudyAnalysis, plots: [String]) -> String {
        var md = "## Inference cost\n\nBest seed-mean validation loss of each size against what it costs to serve.\n\n"
        md += table(["size", "family", "params", "non-embedding", "latency (ms/token)", "inference memory",
                     "training peak memory", "best val loss"],
                    analysis.groups.map { g in
            let latency = StudyPlots.groupMean(g) { $0.config.inference?.latencyMsPerToken }
            let mib = { (bytes: Double?) in bytes.map { Fmt.fixed($0 / 1_048_576, 1) + " MiB" } ?? "not measured" }
            return [g.key.model.sizeLabel, g.key.family, Fmt.int(g.runs[0].config.parameters),
                    Fmt.int(g.runs[0].config.nonEmbeddingParameters), latency.map { Fmt.fixed($0, 3) } ?? "not measured",
                    mib(StudyPlots.inferenceMemory(g)), mib(StudyPlots.trainingMemory(g)),
                    g.meanCurve(.flops).map(\.loss).min().map(Fmt.loss) ?? "–"]
        })
        for (file, title) in [("loss_vs_latency.svg", "Validation loss vs latency per token"),
                              ("loss_vs_params.svg", "Validation loss vs parameters"),
                              ("loss_vs_memory.svg", "Validation loss vs peak memory")] {
            md += plots.contains(file) ? "![\(title)](\(file))\n\n" : "(\(title): no run records it.)\n\n"
        }
        md += "Latency and inference memory come from run.json, training peak memory from summary.json (means over the "
            + "seeds that have them). Inference memory is what generation needs: the weights as stored plus the resident "
            + "growth while generating (`generation_memory_bytes`); runs recorded before it existed show the trainer "
            + "process's peak while generating, which includes the optimizer state. The memory plot uses inference memory "
            + "when any size has it, else training memory.\n\n"
        if !analysis.inferenceArms.isEmpty {
            md += "### Inference budgets: every way to serve each size\n\n"
            md += "Each finished run is measured after training as trained (float32) and with its weights in bf16 and int8 "
                + "(`factorlab quantize`'s rule), each with its own validation loss on the run's validation batches. Weight "
                + "bytes are what one generated token reads and what a device must hold (means over seeds).\n\n"
            md += table(["arm", "weights", "latency (ms/token)", "weight MiB", "val loss", "seeds"], analysis.inferenceArms.map { a in
                [a.family == "dense" ? "dense \(a.size)" : "\(a.size) \(a.family)", a.weights, Fmt.fixed(a.latencyMsPerToken, 3),
                 Fmt.fixed(a.weightBytes / 1_048_576, 2), Fmt.loss(a.valLoss), "\(a.seeds)"]
            })
            md += analysis.inferenceRecommendations.map { "- " + $0.sentence }.joined(separator: "\n") + "\n\n"
        }
        return md
    }

    static func localMinimumSection(_ result: LocalMinimumResult) -> String {
        var md = "## Local-minimum experiment\n\n"
        md += "Arms compared at equal training compute, \(Fmt.sci(result.compute)) FLOPs (the smallest final compute among "
            + "trained arms and the dense reference): each seed's lowest validation loss at or below it (0.5% above it still "
            + "counts: budgets are spent in whole steps), mean ± standard "
            + "deviation over seeds. Compute is cumulative: a run initialised from a checkpoint (`init_from`, such as a "
            + "projected dense model) starts from that checkpoint's training compute, so projected arms include the dense "
            + "training behind them.\n\n"
        let rows = (result.denseReference.map { [$0] } ?? []) + result.arms
        md += table(["arm", "family", "size", "seeds", "FLOPs used", "val loss", "± seed spread", "gap to dense"], rows.map { a in
            [a.arm, a.family, a.size, "\(a.runs.count)", Fmt.sci(a.compute), Fmt.loss(a.loss),
             a.spread.map(Fmt.loss) ?? "single seed", a.gapToDense.map { Fmt.fixed($0, 3) } ?? "–"]
        })
        md += "**Verdict.** " + result.verdict + "\n\n"
        return md
    }

    static func methodSection(_ analysis: StudyAnalysis) -> String {
        """
        ## How this was computed

        - **Runs.** Each run directory holds `run.json`, `metrics.jsonl` and optionally `summary.json`. Runs that differ \
        only in seed (same family, model shape and arm) form a *size*; its curve is the seed mean of the validation \
        points (point by point when the seeds share a step schedule, else interpolated in log compute). Runs without \
        validation points, and arms other than `scratch` (they start from another model), are left out of the curves.
        - **Frontier.** For each family, the lower envelope of its size curves, sampled at \(StudyFrontier.gridPointsPerDecade) \
        points per decade of compute (linear interpolation in log compute, no extrapolation) and made non-increasing.
        - **Fit.** Kaplan-style `L = a · C^(-b)`, least squares of `ln L` on `ln C` over the frontier from the point where \
        the earliest-finishing size ends (before it the frontier is a single learning curve), with at least \
        \(FamilyTrend.minimumSizesForFit) sizes. No irreducible-loss term: with few sizes over about a decade of compute it is \
        not identifiable. Families with fewer sizes are not fitted; their frontier is interpolated instead.
        - **Compute multiplier.** At loss `L`, `C_dense(L) / C_X(L)`, each compute read from the family's fit (inverted) \
        or frontier. Levels are spread over the loss range both families cover; values outside it are marked extrapolated.
        - **Uncertainty.** A seed replicate takes one seed of every size; frontier, fit and multiplier are recomputed for \
        each of \(analysis.replicateCount) replicates (all combinations up to \(StudyAnalysis.maximumReplicates), else that \
        many draws with a fixed seed) and the spread is their standard deviation. Budget and arm spreads are the standard \
        deviation over seeds. With a single seed there is no spread and the report says so.
        - **Budgets.** For each FLOP budget, every size's lowest seed-mean validation loss at compute at or below it. An \
        accelerator is recommended when its best size has a lower mean loss than the best dense size; the margin counts as \
        conclusive above twice the combined seed spread.
        - **Local minimum.** Arms are compared at the smallest final compute among trained arms and the dense reference \
        (an arm-labelled dense run, else the dense size with the same depth and width). The from-scratch arm reaches the \
        dense loss when its mean is within twice the combined seed spread (\(Fmt.fixed(LocalMinimumResult.singleSeedTolerance, 2)) \
        nats with a single seed).

        """
    }
}
