import FactorlabRecords
import Foundation

/// The per-run record files under `Checkpoints/<run>/`: `run.json` (``RunDescription``),
/// `metrics.jsonl` and `metrics.csv` (one row per step), `summary.json` (``RunSummary`` or
/// ``FinetuneSummary``). The record types live in FactorlabRecords, shared with the study report
/// that reads them.
public final class RunRecords {
    public let directory: URL
    private let jsonl: FileHandle
    private let csv: FileHandle
    static var csvHeader: String { MetricsRow.csvColumns.map(\.stringValue).joined(separator: ",") + "\n" }

    /// Opens the metrics files for appending. When resuming from `step`, rows after it (written
    /// after the checkpoint by a run that then died) are dropped first, so the curve has no
    /// duplicates.
    public init(directory: URL, resumingAt step: Int? = nil) throws {
        self.directory = directory
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let jsonlURL = directory.appendingPathComponent("metrics.jsonl"), csvURL = directory.appendingPathComponent("metrics.csv")
        if let step {
            try RunRecords.truncate(jsonlURL, keepingSteps: step, csv: false)
            try RunRecords.truncate(csvURL, keepingSteps: step, csv: true)
        } else {
            try Data().write(to: jsonlURL)
            try Data(RunRecords.csvHeader.utf8).write(to: csvURL)
        }
        if !FileManager.default.fileExists(atPath: csvURL.path) { try Data(RunRecords.csvHeader.utf8).write(to: csvURL) }
        if !FileManager.default.fileExists(atPath: jsonlURL.path) { try Data().write(to: jsonlURL) }
        jsonl = try FileHandle(forWritingTo: jsonlURL)
        csv = try FileHandle(forWritingTo: csvURL)
        jsonl.seekToEndOfFile()
        csv.seekToEndOfFile()
    }

    deinit {
        try? jsonl.close()
        try? csv.close()
    }

    /// Keeps rows whose step is at most `keepingSteps`.
    static func truncate(_ url: URL, keepingSteps: Int, csv: Bool) throws {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { return }
        struct StepOnly: Decodable { let step: Int }
        var kept: [Substring] = []
        for (i, line) in text.split(separator: "\n").enumerated() {
            if csv && i == 0 { kept.append(line); continue }
            let step = csv ? Int(line.split(separator: ",").first ?? "") : (try? JSONDecoder().decode(StepOnly.self, from: Data(line.utf8)))?.step
            if let step, step <= keepingSteps { kept.append(line) }
        }
        try Data((kept.joined(separator: "\n") + (kept.isEmpty ? "" : "\n")).utf8).write(to: url, options: .atomic)
    }

    /// Appends one pretraining row to both files. A non-finite loss (a validation set with no
    /// batch) is left out of the row rather than written as invalid JSON.
    public func append(_ row: MetricsRow) {
        var row = row
        if row.valLoss?.isFinite == false { row.valLoss = nil }
        if row.trainLoss?.isFinite == false { row.trainLoss = nil }
        write(row, csvCells: row.csvCells)
    }

    /// Appends one finetuning row (the CSV has the same columns as pretraining's).
    public func append(_ row: FinetuneRow) {
        func cell(_ v: Double?) -> String { v.map { "\($0)" } ?? "" }
        write(row, csvCells: [String(row.step), "", cell(row.trainLoss), "", cell(row.lr), cell(row.gradNorm), "", cell(row.wallSeconds), ""])
    }

    private func write<T: Encodable>(_ row: T, csvCells: [String]) {
        if let data = try? RecordFiles.encode(row, pretty: false) { jsonl.write(data + Data("\n".utf8)) }
        csv.write(Data((csvCells.joined(separator: ",") + "\n").utf8))
    }

    /// Writes a record atomically as `name` in the run folder.
    public func write<T: Encodable>(_ name: String, _ record: T) throws {
        try RecordFiles.write(record, to: directory.appendingPathComponent(name))
    }
}
