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

    static func readConfig(_ url: URL) throws -> RunConfig {
        let json = try JSONFields.parse(readData(url), file: url.path)
        let model = try json.object("model")
        let shape = ModelShape(
            nLayer: try model.check("n_layer", model.int("n_layer"), "positive") { $0 > 0 },
            nEmbd: try model.check("n_embd", model.int("n_embd"), "positive") { $0 > 0 },
            nHead: try model.check("n_head", model.int("n_head"), "positive") { $0 > 0 },
            nPositions: try model.int("n_positions"), vocabSize: try model.int("vocab_size"),
            mlp: try model.string("mlp"))
        var inference: InferenceCost?
        if let object = try json.optionalObject("inference") {
            inference = InferenceCost(
                latencyMsPerToken: try object.check("latency_ms_per_token", object.double("latency_ms_per_token"),
                                                    "positive") { $0 > 0 },
                peakMemoryBytes: try object.check("peak_memory_bytes", object.int("peak_memory_bytes"), "positive") { $0 > 0 })
        }
        let family = try json.string("family")
        guard !family.isEmpty else { throw json.error(.invalidValue, "family", "must not be empty") }
        return RunConfig(
            name: try json.string("name"), family: family, model: shape,
            parameters: try json.check("parameters", json.int("parameters"), "positive") { $0 > 0 },
            nonEmbeddingParameters: try json.int("non_embedding_parameters"),
            flopsPerToken: try json.check("flops_per_token", json.double("flops_per_token"), "positive") { $0 > 0 },
            seed: try json.int("seed"), arm: try json.optionalString("arm"), inference: inference)
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
            let json: JSONFields
            do {
                json = try JSONFields.parse(Data(bytes), file: url.path, line: lineNumber)
            } catch let error as StudyDataError where error.kind == .invalidJSON && index == lines.count - 1 && !endsWithNewline {
                // A run still being written (or killed mid-write) leaves a partial last line.
                notes.append("\(url.lastPathComponent) line \(lineNumber) is incomplete (no newline, not valid JSON) and was ignored")
                continue
            }
            let point = MetricPoint(
                step: try json.check("step", json.int("step"), "non-negative") { $0 >= 0 },
                tokens: try json.check("tokens", json.int("tokens"), "non-negative") { $0 >= 0 },
                trainLoss: try json.optionalDouble("train_loss"),
                valLoss: try json.optionalDouble("val_loss").map { try json.check("val_loss", $0, "positive") { $0 > 0 } },
                lr: try json.double("lr"), gradNorm: try json.optionalDouble("grad_norm"),
                tokensPerSecond: try json.optionalDouble("tokens_per_s"),
                wallSeconds: try json.check("wall_s", json.double("wall_s"), "non-negative") { $0 >= 0 },
                flops: try json.check("flops", json.double("flops"), "non-negative") { $0 >= 0 })
            if byStep[point.step] != nil {
                notes.append("\(url.lastPathComponent) line \(lineNumber) repeats step \(point.step); the later line is used")
            }
            byStep[point.step] = point
        }
        return (byStep.values.sorted { $0.step < $1.step }, notes)
    }

    static func readSummary(_ url: URL) throws -> RunSummary {
        let json = try JSONFields.parse(readData(url), file: url.path)
        return RunSummary(finalValLoss: try json.optionalDouble("final_val_loss"),
                          bestValLoss: try json.optionalDouble("best_val_loss"),
                          steps: try json.int("steps"), tokens: try json.int("tokens"),
                          wallSeconds: try json.double("wall_s"), flops: try json.double("flops"),
                          peakMemoryBytes: try json.optionalInt("peak_memory_bytes"))
    }
}
