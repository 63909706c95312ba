import Foundation

/// `factorlab report RUN_DIR...`: reads runs, analyses them and writes `report.md` plus SVG plots.
///
/// ```swift
/// let summary = try StudyReport.generate(runDirectories: [URL(fileURLWithPath: "Checkpoints")],
///                                        outputDirectory: URL(fileURLWithPath: "Reports/study"))
/// for r in summary.recommendations { print(r.sentence) }
/// ```
public enum StudyReport {
    public static let reportFileName = "report.md"

    /// Reads every run (a directory with run.json, or a folder of them), analyses them, writes
    /// `report.md` and the SVGs into `outputDirectory` (created if needed) and returns the values.
    /// `budgets` are FLOP budgets; nil picks 5 log-spaced budgets across the observed range.
    public static func generate(runDirectories: [URL], outputDirectory: URL, budgets: [Double]? = nil) throws -> ReportSummary {
        let directories = try StudyRun.discover(runDirectories)
        guard !directories.isEmpty else {
            throw StudyDataError(.noRuns, file: outputDirectory.path, "no run directories given")
        }
        let runs = try directories.map { try StudyRun.load(from: $0) }
        let analysis = StudyAnalysis(runs: runs, budgets: budgets)
        return try write(analysis, tuning: try LearningRateTuning.find(in: runDirectories), to: outputDirectory)
    }

    /// Writes the report and plots of an existing analysis (with a sweep's learning-rate tuning, when given).
    public static func write(_ analysis: StudyAnalysis, tuning: LearningRateTuning? = nil, to outputDirectory: URL) throws -> ReportSummary {
        try FileManager.default.createDirectory(at: outputDirectory, withIntermediateDirectories: true)
        var plots = StudyPlots.all(analysis)
        if let tuning { plots.append(("lr-tuning.svg", tuning.plot)) }
        for (file, plot) in plots {
            try Data(plot.render().utf8).write(to: outputDirectory.appendingPathComponent(file), options: .atomic)
        }
        let reportURL = outputDirectory.appendingPathComponent(reportFileName)
        let text = markdown(analysis, plots: plots.map(\.0), tuning: tuning)
        try Data(text.utf8).write(to: reportURL, options: .atomic)
        return ReportSummary(analysis: analysis, reportPath: reportURL.path, plots: plots.map(\.0))
    }

    /// The SVG text of each plot, by file name (what ``write(_:to:)`` writes).
    public static func plots(_ analysis: StudyAnalysis) -> [(fileName: String, svg: String)] {
        StudyPlots.all(analysis).map { ($0.0, $0.1.render()) }
    }

    /// `summary` as pretty JSON with sorted keys (for `--json`).
    public static func json(_ summary: ReportSummary) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: try encoder.encode(summary), as: UTF8.self)
    }
}
