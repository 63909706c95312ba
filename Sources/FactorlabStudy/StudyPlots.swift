import Foundation

/// The report's figures, built from a ``StudyAnalysis``: one colour per family, one marker per size,
/// fitted laws dashed, frontiers as wide pale lines.
enum StudyPlots {
    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]

    struct Style {
        var colors: [String: String]
        var markers: [String: SVGPlot.Marker]
        var families: [String]
        var sizes: [String]

        init(_ groups: [RunGroup]) {
            var families: [String] = []
            for g in groups where !families.contains(g.key.family) { families.append(g.key.family) }
            let shapes = Set(groups.map(\.key.model)).sorted { ($0.nEmbd, $0.nLayer, $0.nHead) < ($1.nEmbd, $1.nLayer, $1.nHead) }
            var sizes: [String] = []
            for shape in shapes where !sizes.contains(shape.sizeLabel) { sizes.append(shape.sizeLabel) }
            self.families = families
            self.sizes = sizes
            colors = Dictionary(uniqueKeysWithValues: families.enumerated().map { ($1, palette[$0 % palette.count]) })
            let all = SVGPlot.Marker.allCases
            markers = Dictionary(uniqueKeysWithValues: sizes.enumerated().map { ($1, all[$0 % all.count]) })
        }

        /// Legend rows for the families and sizes in `shown` (all when nil).
        func legend(fits: Bool, frontier: Bool, shown: Set<String>? = nil) -> [SVGPlot.LegendEntry] {
            let keep = { (name: String) in shown?.contains(name) ?? true }
            var entries = families.filter(keep).map { SVGPlot.LegendEntry(text: $0, color: colors[$0]!, line: true) }
            entries += sizes.filter(keep).map { SVGPlot.LegendEntry(text: $0, color: "#555555", marker: markers[$0]!) }
            if frontier { entries.append(SVGPlot.LegendEntry(text: "frontier (pale)", color: "#bbbbbb", line: true)) }
            if fits { entries.append(SVGPlot.LegendEntry(text: "fit L = a·C^-b", color: "#555555", line: true, dashed: true)) }
            return entries
        }
    }

    /// Seed-mean validation curves on `axis`, each family's frontier and fitted law.
    static func lossVsCompute(_ analysis: StudyAnalysis, axis: ComputeAxis) -> SVGPlot {
        let style = Style(analysis.groups)
        var series: [SVGPlot.Series] = []
        let trends = analysis.trends[axis] ?? []
        for trend in trends {
            let color = style.colors[trend.family] ?? "#000000"
            series.append(SVGPlot.Series(points: trend.frontier.points.map { CurvePoint(x: $0.x, loss: $0.loss) },
                                         color: color, lineWidth: 7, opacity: 0.18))
        }
        for group in analysis.groups {
            series.append(SVGPlot.Series(points: group.meanCurve(axis), color: style.colors[group.key.family]!,
                                         marker: style.markers[group.key.model.sizeLabel], lineWidth: 1.3))
        }
        for trend in trends {
            guard let fit = trend.fit else { continue }
            let xs = Stats.logSpaced(fit.computeStart, fit.computeEnd, count: 24)
            series.append(SVGPlot.Series(points: xs.map { CurvePoint(x: $0, loss: fit.loss(atCompute: $0)) },
                                         color: style.colors[trend.family]!, dashed: true, lineWidth: 2))
        }
        let title = axis == .flops ? "Validation loss vs training FLOPs" : "Validation loss vs training wall-clock"
        return SVGPlot(title: title, xLabel: axis.title + ", log scale", yLabel: "validation loss (nats/token)",
                       series: series, legend: style.legend(fits: trends.contains { $0.fit != nil }, frontier: true))
    }

    /// Best seed-mean validation loss of each size against an inference cost; nil when no size has it.
    static func lossVsCost(_ analysis: StudyAnalysis, title: String, xLabel: String,
                           cost: (RunGroup) -> Double?) -> SVGPlot? {
        let style = Style(analysis.groups)
        var series: [SVGPlot.Series] = []
        var shown: Set<String> = []
        for group in analysis.groups {
            guard let x = cost(group), x > 0, let loss = group.meanCurve(.flops).map(\.loss).min() else { continue }
            series.append(SVGPlot.Series(points: [CurvePoint(x: x, loss: loss)], color: style.colors[group.key.family]!,
                                         marker: style.markers[group.key.model.sizeLabel], line: false))
            shown.formUnion([group.key.family, group.key.model.sizeLabel])
        }
        guard !series.isEmpty else { return nil }
        return SVGPlot(title: title, xLabel: xLabel, yLabel: "best validation loss (nats/token)", series: series,
                       legend: style.legend(fits: false, frontier: false, shown: shown))
    }

    /// Mean over a group's runs of a per-run value, over the runs that have it; nil if none does.
    static func groupMean(_ group: RunGroup, _ value: (StudyRun) -> Double?) -> Double? {
        let values = group.runs.compactMap(value)
        return values.isEmpty ? nil : Stats.mean(values)
    }

    /// A size's inference memory (run.json), mean over the seeds that measured it: what
    /// generation needs (`generation_memory_bytes`) where recorded, else the process's peak.
    static func inferenceMemory(_ group: RunGroup) -> Double? {
        groupMean(group) { $0.config.inference.map { Double($0.generationMemoryBytes ?? $0.peakMemoryBytes) } }
    }

    /// A size's training peak memory (summary.json), mean over the seeds that have one.
    static func trainingMemory(_ group: RunGroup) -> Double? {
        groupMean(group) { $0.summary?.peakMemoryBytes.map(Double.init) }
    }

    /// All figures as (file name, plot).
    static func all(_ analysis: StudyAnalysis) -> [(String, SVGPlot)] {
        var plots: [(String, SVGPlot)] = [("loss_vs_flops.svg", lossVsCompute(analysis, axis: .flops)),
                                          ("loss_vs_wall.svg", lossVsCompute(analysis, axis: .wallSeconds))]
        let costs: [(String, String, String, (StudyRun) -> Double?)] = [
            ("loss_vs_latency.svg", "Validation loss vs inference latency", "latency per token (ms), log scale",
             { $0.config.inference?.latencyMsPerToken }),
            ("loss_vs_params.svg", "Validation loss vs parameters", "parameters, log scale", { Double($0.config.parameters) }),
        ]
        var all: [(String, String, String, (RunGroup) -> Double?)] = costs.map { cost in
            (cost.0, cost.1, cost.2, { (group: RunGroup) in groupMean(group, cost.3) })
        }
        // Inference and training peaks are not comparable: plot inference memory when any size has it.
        if analysis.groups.contains(where: { inferenceMemory($0) != nil }) {
            all.append(("loss_vs_memory.svg", "Validation loss vs inference memory", "inference memory (bytes), log scale",
                        inferenceMemory))
        } else {
            all.append(("loss_vs_memory.svg", "Validation loss vs training peak memory", "training peak memory (bytes), log scale",
                        trainingMemory))
        }
        for (file, title, label, value) in all {
            if let plot = lossVsCost(analysis, title: title, xLabel: label, cost: value) {
                plots.append((file, plot))
            }
        }
        return plots
    }
}
