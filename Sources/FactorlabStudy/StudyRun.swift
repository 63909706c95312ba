import Foundation

/// One training run read from its directory (`run.json`, `metrics.jsonl`, optional `summary.json`).
///
/// ```swift
/// let run = try StudyRun.load(from: URL(fileURLWithPath: "Checkpoints/dense-4L-128d-s0"))
/// run.validationPoints.last?.valLoss
/// ```
public struct StudyRun: Sendable {
    public var directory: URL
    public var config: RunConfig
    /// All metric lines, sorted by step; a step logged twice (a resumed run) keeps its last line.
    public var metrics: [MetricPoint]
    public var summary: RunSummary?
    /// Things noticed while reading that did not stop it (a truncated last line, replaced steps).
    public var notes: [String]

    public var name: String { config.name }

    /// The metric lines that carry a validation loss.
    public var validationPoints: [MetricPoint] { metrics.filter { $0.valLoss != nil } }

    /// Lowest validation loss recorded (summary's `best_val_loss` if no metric line has one).
    public var bestValLoss: Double? {
        validationPoints.compactMap(\.valLoss).min() ?? summary?.bestValLoss
    }

    /// Last validation loss recorded.
    public var finalValLoss: Double? { validationPoints.last?.valLoss ?? summary?.finalValLoss }

    /// Peak memory: the inference measurement in run.json, else the summary's training peak.
    public var peakMemoryBytes: Int? { config.inference?.peakMemoryBytes ?? summary?.peakMemoryBytes }

    public init(directory: URL, config: RunConfig, metrics: [MetricPoint], summary: RunSummary?, notes: [String] = []) {
        self.directory = directory
        self.config = config
        self.metrics = metrics
        self.summary = summary
        self.notes = notes
    }

    /// Reads a run directory. Throws ``StudyDataError`` naming the file, line and key of the first problem.
    public static func load(from directory: URL) throws -> StudyRun {
        let config = try readConfig(directory.appendingPathComponent("run.json"))
        let (metrics, notes) = try readMetrics(directory.appendingPathComponent("metrics.jsonl"))
        let summaryURL = directory.appendingPathComponent("summary.json")
        let summary = FileManager.default.fileExists(atPath: summaryURL.path) ? try readSummary(summaryURL) : nil
        return StudyRun(directory: directory, config: config, metrics: metrics, summary: summary, notes: notes)
    }

    /// Expands `urls` into run directories: a directory holding `run.json` is a run; otherwise its
    /// immediate subdirectories that hold one are (sorted by name), so `Checkpoints/` works as an argument.
    public static func discover(_ urls: [URL]) throws -> [URL] {
        let fm = FileManager.default
        var found: [URL] = []
        for url in urls {
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw StudyDataError(.missingFile, file: url.path, "no such directory; pass run directories (holding run.json) or a folder of them")
            }
            if fm.fileExists(atPath: url.appendingPathComponent("run.json").path) {
                found.append(url)
                continue
            }
            let children = (try? fm.contentsOfDirectory(atPath: url.path)) ?? []
            let runs = children.sorted().map { url.appendingPathComponent($0) }
                .filter { fm.fileExists(atPath: $0.appendingPathComponent("run.json").path) }
            guard !runs.isEmpty else {
                throw StudyDataError(.noRuns, file: url.path, "holds no run.json and no subdirectory with one")
            }
            found += runs
        }
        return found
    }

    static func readData(_ url: URL) throws -> Data {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw StudyDataError(.missingFile, file: url.path, "missing; every run directory needs run.json and metrics.jsonl")
        }
        do { return try Data(contentsOf: url) } catch {
            throw StudyDataError(.unreadableFile, file: url.path, "cannot be read (\(error.localizedDescription))")
        }
    }

    /// Decodes one record, turning a ``RecordError`` into a ``StudyDataError`` that names the file and line.
    static func decode<T: Decodable>(_ type: T.Type, _ data: Data, file: String, line: Int? = nil) throws -> T {
        do { return try RecordDecoder.decode(type, from: data) } catch let e as RecordError {
            throw StudyDataError(e, file: file, line: line)
        }
    }

    static func readConfig(_ url: URL) throws -> RunConfig {
        let file = url.path
        let config = try decode(RunConfig.self, try readData(url), file: file)
        let check = Validation(file: file, line: nil)
        try check.version(config.formatVersion)
        for (key, value) in [("model.n_layer", config.model.nLayer), ("model.n_embd", config.model.nEmbd), ("model.n_head", config.model.nHead)] {
            try check.positive(key, value)
        }
        if let inference = config.inference {
            try check.positive("inference.latency_ms_per_token", inference.latencyMsPerToken)
            try check.positive("inference.peak_memory_bytes", inference.peakMemoryBytes)
            if let g = inference.generationMemoryBytes { try check.positive("inference.generation_memory_bytes", g) }
            for (i, v) in (inference.quantized ?? []).enumerated() {
                try check.positive("inference.quantized[\(i)].latency_ms_per_token", v.latencyMsPerToken)
                if let loss = v.valLoss { try check.check("inference.quantized[\(i)].val_loss", loss, "finite", loss.isFinite) }
            }
            if let loss = inference.valLoss { try check.check("inference.val_loss", loss, "finite", loss.isFinite) }
        }
        guard !config.family.isEmpty else { throw StudyDataError(.invalidValue, file: file, key: "family", "must not be empty") }
        try check.positive("parameters", config.parameters)
        try check.positive("flops_per_token", config.flopsPerToken)
        return config
    }

    static func readMetrics(_ url: URL) throws -> ([MetricPoint], [String]) {
        let data = try readData(url)
        var lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        let endsWithNewline = data.last == UInt8(ascii: "\n")
        if endsWithNewline { lines.removeLast() }
        var byStep: [Int: MetricPoint] = [:]
        var notes: [String] = []
        for (index, bytes) in lines.enumerated() {
            let lineNumber = index + 1
            if bytes.allSatisfy({ $0 == 32 || $0 == 9 || $0 == 13 }) { continue }
            let point: MetricPoint
            do {
                point = try decode(MetricPoint.self, Data(bytes), file: url.path, line: lineNumber)
            } catch let error as StudyDataError where error.kind == .invalidJSON && index == lines.count - 1 && !endsWithNewline {
                // A run still being written (or killed mid-write) leaves a partial last line.
                notes.append("\(url.lastPathComponent) line \(lineNumber) is incomplete (no newline, not valid JSON) and was ignored")
                continue
            }
            let check = Validation(file: url.path, line: lineNumber)
            try check.nonNegative("step", point.step)
            try check.nonNegative("tokens", point.tokens)
            if let v = point.valLoss { try check.positive("val_loss", v) }
            try check.nonNegative("wall_s", point.wallSeconds)
            try check.nonNegative("flops", point.flops)
            if byStep[point.step] != nil {
                notes.append("\(url.lastPathComponent) line \(lineNumber) repeats step \(point.step); the later line is used")
            }
            byStep[point.step] = point
        }
        return (byStep.values.sorted { $0.step < $1.step }, notes)
    }

    static func readSummary(_ url: URL) throws -> RunSummary {
        let summary = try decode(RunSummary.self, try readData(url), file: url.path)
        try Validation(file: url.path, line: nil).version(summary.formatVersion)
        return summary
    }
}

/// Range checks on decoded records, naming the file, line and key.
struct Validation {
    let file: String
    let line: Int?

    func check<T: Comparable>(_ key: String, _ value: T, _ requirement: String, _ isValid: Bool) throws {
        guard isValid else { throw StudyDataError(.invalidValue, file: file, line: line, key: key, "must be \(requirement), found \(value)") }
    }
    func positive<T: Comparable & Numeric>(_ key: String, _ value: T) throws { try check(key, value, "positive", value > 0) }
    func nonNegative<T: Comparable & Numeric>(_ key: String, _ value: T) throws { try check(key, value, "non-negative", value >= 0) }

    /// Records newer than this Factorlab writes are refused (absent: written before versions existed).
    func version(_ v: Int?) throws {
        guard let v, v > runRecordsFormatVersion else { return }
        throw StudyDataError(.invalidValue, file: file, line: line, key: "format_version",
                             "is \(v), newer than this Factorlab reads (\(runRecordsFormatVersion)); update Factorlab")
    }
}
