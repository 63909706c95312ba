import Foundation

/// The per-run records under `Checkpoints/<run>/`: `run.json` (what was trained), `metrics.jsonl`
/// and `metrics.csv` (one row per step), `summary.json` (the outcome). FactorlabStudy reads them.
public final class RunRecords {
    public let directory: URL
    private let jsonl: FileHandle
    private let csv: FileHandle
    static let columns = ["step", "tokens", "train_loss", "val_loss", "lr", "grad_norm", "tokens_per_s", "wall_s", "flops"]

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
            try Data((RunRecords.columns.joined(separator: ",") + "\n").utf8).write(to: csvURL)
        }
        if !FileManager.default.fileExists(atPath: csvURL.path) {
            try Data((RunRecords.columns.joined(separator: ",") + "\n").utf8).write(to: csvURL)
        }
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
        var kept: [Substring] = []
        for (i, line) in text.split(separator: "\n").enumerated() {
            if csv && i == 0 { kept.append(line); continue }
            let step: Int?
            if csv {
                step = Int(line.split(separator: ",").first ?? "")
            } else {
                step = (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["step"] as? Int
            }
            if let step, step <= keepingSteps { kept.append(line) }
        }
        try Data((kept.joined(separator: "\n") + (kept.isEmpty ? "" : "\n")).utf8).write(to: url, options: .atomic)
    }

    /// Appends one row to both files.
    public func append(_ row: [String: Any]) {
        if let data = try? JSONSerialization.data(withJSONObject: row, options: [.sortedKeys]) {
            jsonl.write(data + Data("\n".utf8))
        }
        let cells = RunRecords.columns.map { key -> String in
            guard let v = row[key] else { return "" }
            return "\(v)"
        }
        csv.write(Data((cells.joined(separator: ",") + "\n").utf8))
    }

    /// Writes a JSON object atomically as `name` in the run folder.
    public func writeJSON(_ name: String, _ object: [String: Any]) throws {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: directory.appendingPathComponent(name), options: .atomic)
    }
}
