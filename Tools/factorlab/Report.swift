import ArgumentParser
import FactorlabStudy
import Foundation

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Turn training runs into budget curves, compute multipliers and a Markdown guideline with SVG plots.")

    @Argument(help: "Run folders (each with run.json and metrics.jsonl), or folders of runs.")
    var runs: [String]
    @Option(help: "Output folder for report.md and the plots.")
    var out: String = "Checkpoints/report"
    @Option(parsing: .upToNextOption, help: "Compute budgets in FLOPs (default: log-spaced over the observed range).")
    var budgets: [Double] = []
    @Flag(help: "Print the summary (recommendations, multipliers) as JSON on stdout.")
    var json = false

    func run() throws {
        // The folders as given (generate discovers the runs in them), so a sweep folder's tuning.json is found.
        let folders = runs.map { URL(fileURLWithPath: $0) }
        let dirs = try StudyRun.discover(folders)
        let summary = try StudyReport.generate(runDirectories: folders, outputDirectory: URL(fileURLWithPath: out),
                                               budgets: budgets.isEmpty ? nil : budgets)
        if json { print(try StudyReport.json(summary)) } else { print("wrote \(out)/report.md (\(dirs.count) runs)") }
    }
}
