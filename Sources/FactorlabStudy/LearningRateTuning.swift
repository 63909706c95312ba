import Foundation

/// The learning-rate tuning of a sweep (`tuning.json`, written by `factorlab sweep` when its file
/// has a `tune:` section): per family, the mean final validation loss at each tried value and the
/// value carried to every point. The report shows it as a table and as loss-vs-value curves.
public struct LearningRateTuning: Sendable, Equatable {
    public struct Family: Sendable, Equatable {
        public var name: String
        public var best: String
        /// (value, mean final validation loss) in increasing value.
        public var losses: [(value: Double, loss: Double)]
        public static func == (a: Family, b: Family) -> Bool {
            a.name == b.name && a.best == b.best && a.losses.map(\.value) == b.losses.map(\.value) && a.losses.map(\.loss) == b.losses.map(\.loss)
        }
    }

    public var key: String
    public var per: String
    public var families: [Family]

    /// Reads `tuning.json`; nil when the file does not exist.
    public static func load(_ url: URL) throws -> LearningRateTuning? {
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        let data = try StudyRun.readData(url)
        guard let o = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let key = o["key"] as? String,
              let per = o["per"] as? String, let families = o["families"] as? [String: Any] else {
            throw StudyDataError(.invalidValue, file: url.path, "expected {key, per, values, families: {FAMILY: {best, mean_final_val_loss}}}")
        }
        var out = LearningRateTuning(key: key, per: per, families: [])
        for name in families.keys.sorted() {
            guard let f = families[name] as? [String: Any], let best = f["best"] as? String,
                  let losses = f["mean_final_val_loss"] as? [String: Double] else {
                throw StudyDataError(.invalidValue, file: url.path, "family \(name.prefix(80)): expected best and mean_final_val_loss")
            }
            let points = try losses.map { v, l -> (value: Double, loss: Double) in
                guard let x = Double(v), x.isFinite, x > 0, l.isFinite else {
                    throw StudyDataError(.invalidValue, file: url.path, "family \(name.prefix(80)): value \(v.prefix(40)) -> \(l) is not a positive number and a finite loss")
                }
                return (x, l)
            }.sorted { $0.value < $1.value }
            out.families.append(Family(name: name, best: best, losses: points))
        }
        return out
    }

    /// `tuning.json` in any of `folders` (the first found).
    public static func find(in folders: [URL]) throws -> LearningRateTuning? {
        for f in folders {
            if let t = try load(f.appendingPathComponent("tuning.json")) { return t }
        }
        return nil
    }

    var markdown: String {
        let values = Array(Set(families.flatMap { $0.losses.map(\.value) })).sorted()
        var md = "## Learning-rate tuning\n\n"
        md += "Each family's \(key) was tuned at the smallest size (the sweep's `tune:` section): the mean final validation "
            + "loss at each value, and the value carried to every size and seed (bold).\n\n"
        md += "| \(per) | " + values.map { String(format: "%g", $0) }.joined(separator: " | ") + " | chosen |\n"
        md += "|---|" + String(repeating: "---|", count: values.count + 1) + "\n"
        for f in families {
            let cells = values.map { v -> String in
                guard let l = f.losses.first(where: { $0.value == v })?.loss else { return "-" }
                let s = String(format: "%.4f", l)
                return Double(f.best) == v ? "**\(s)**" : s
            }
            md += "| `\(f.name)` | " + cells.joined(separator: " | ") + " | \(f.best) |\n"
        }
        let edge = families.filter { f in
            guard let b = Double(f.best), let lo = f.losses.first?.value, let hi = f.losses.last?.value else { return false }
            return f.losses.count > 2 && (b == lo || b == hi)
        }.map { "`\($0.name)`" }
        if !edge.isEmpty {
            md += "\nThe best value is at the edge of the tried range for \(edge.joined(separator: ", ")): a wider range might find a better one.\n"
        }
        return md + "\n![learning-rate tuning](lr-tuning.svg)\n\n"
    }

    var plot: SVGPlot {
        let palette = StudyPlots.palette
        var series: [SVGPlot.Series] = [], legend: [SVGPlot.LegendEntry] = []
        for (i, f) in families.enumerated() {
            let color = palette[i % palette.count]
            series.append(SVGPlot.Series(points: f.losses.map { CurvePoint(x: $0.value, loss: $0.loss) }, color: color, marker: .circle))
            legend.append(SVGPlot.LegendEntry(text: f.name, color: color, marker: .circle, line: true))
        }
        return SVGPlot(title: "Learning-rate tuning at the smallest size", xLabel: "\(key), log scale",
                       yLabel: "mean final validation loss", series: series, legend: legend)
    }
}
