import FactorlabData
import FactorlabGPT2
import FactorlabRandom
import FactorlabTasks
import FactorlabTokenizer
import Foundation
import Yams

/// One metric of one model on one task, kept per example so two models can be compared on the
/// same examples: each example contributes a row of components, and the metric is `aggregate`
/// of the components summed over examples (a mean: [value, 1]; perplexity: [NLL, tokens] and
/// exp(a / b); corpus BLEU: the sentence statistics and BLEU of their sums).
public struct MetricSample: Sendable {
    public var name: String
    /// Per example; nil when only the whole-data value is known (no confidence interval then).
    public var components: [[Double]]?
    public var aggregate: @Sendable ([Double]) -> Double
    public var higherIsBetter: Bool
    /// The value over every example (or the whole-data value).
    public var value: Double

    public init(name: String, components: [[Double]], higherIsBetter: Bool, aggregate: @escaping @Sendable ([Double]) -> Double) {
        self.name = name
        self.components = components
        self.aggregate = aggregate
        self.higherIsBetter = higherIsBetter
        value = aggregate(MetricSample.sums(components, Array(components.indices)))
    }

    /// A whole-data value without per-example scores.
    public init(name: String, value: Double, higherIsBetter: Bool) {
        self.name = name
        components = nil
        aggregate = { _ in value }
        self.higherIsBetter = higherIsBetter
        self.value = value
    }

    /// The mean of per-example values (accuracy as 0/1, F1, EM, ROUGE).
    public static func mean(_ name: String, _ values: [Double], higherIsBetter: Bool = true) -> MetricSample {
        MetricSample(name: name, components: values.map { [$0, 1] }, higherIsBetter: higherIsBetter) { $0[0] / max($0[1], 1) }
    }

    public var examples: Int? { components?.count }

    static func sums(_ rows: [[Double]], _ indices: [Int]) -> [Double] {
        guard let width = rows.first?.count else { return [] }
        var s = [Double](repeating: 0, count: width)
        for i in indices { for k in 0..<width { s[k] += rows[i][k] } }
        return s
    }
}

/// The paired bootstrap (Koehn 2004; sacreBLEU's `--paired-bs`): resample the examples with
/// replacement, score both models on the same resample, and take the 2.5th and 97.5th
/// percentiles of the differences.
public enum PairedBootstrap {
    public struct Interval: Sendable, Equatable {
        /// model - baseline on every example.
        public var difference: Double
        public var low: Double
        public var high: Double
    }

    /// nil when the two samples do not have the same examples (or no per-example scores).
    public static func interval(_ model: MetricSample, _ baseline: MetricSample, resamples: Int = 1000,
                                seed: UInt64 = 12345) -> Interval? {
        guard let a = model.components, let b = baseline.components, a.count == b.count, !a.isEmpty, resamples > 0 else { return nil }
        var rng = SplitMix64(state: seed)
        let n = a.count
        var diffs: [Double] = []
        diffs.reserveCapacity(resamples)
        var idx = [Int](repeating: 0, count: n)
        for _ in 0..<resamples {
            for i in 0..<n { idx[i] = Int(rng.next() % UInt64(n)) }
            diffs.append(model.aggregate(MetricSample.sums(a, idx)) - baseline.aggregate(MetricSample.sums(b, idx)))
        }
        diffs.sort()
        func percentile(_ p: Double) -> Double {
            let x = p * Double(resamples - 1)
            let lo = Int(x.rounded(.down)), hi = min(lo + 1, resamples - 1)
            return diffs[lo] + (x - Double(lo)) * (diffs[hi] - diffs[lo])
        }
        return Interval(difference: model.value - baseline.value, low: percentile(0.025), high: percentile(0.975))
    }
}

/// A suite file: the tasks `factorlab eval --suite` runs for every model.
///
/// ```yaml
/// name: heldout
/// bootstrap: {resamples: 1000, seed: 12345}
/// tasks:
///   - {task: perplexity, data: Recipes/corpora/milton/paradise_regained_gut.txt, max_tokens: 20000}
///   - {task: lambada, data: Tests/.../lambada.jsonl}
///   - {name: nq-1shot, task: nq, data: ..., shots: 1, max_examples: 100}
///   - {task: glue-sst2, data: ...}
/// ```
/// Paths are relative to the current directory.
public struct EvalSuite: Sendable {
    public struct Task: Sendable, Equatable {
        /// The column label (default: the task, with its shots).
        public var name: String
        public var task: String
        public var data: String
        public var shots: Int = 0
        public var maxExamples: Int?
        /// Perplexity: score only the first this many tokens of the text.
        public var maxTokens: Int?
        public var stride: Int?
    }

    public var name: String
    public var tasks: [Task]
    public var resamples = 1000
    public var seed: UInt64 = 12345

    public static let knownTasks = ["perplexity", "lambada", "cbt"] + OneShot.Task.allCases.map(\.rawValue)

    public static func load(_ url: URL) throws -> EvalSuite {
        let data = try readFile(url)
        guard data.count <= 1 << 20 else { throw EvalError(file: url.path, "is \(data.count) bytes; a suite file is at most 1 MiB") }
        return try parse(String(decoding: data, as: UTF8.self), file: url.path)
    }

    public static func parse(_ text: String, file: String) throws -> EvalSuite {
        let node: Node?
        do { node = try Yams.compose(yaml: text) } catch { throw EvalError(file: file, "is not valid YAML: \(error)") }
        guard let root = node?.mapping else { throw EvalError(file: file, "expected a mapping with name and tasks") }
        func line(_ n: Node) -> Int? { n.mark.map { $0.line } }
        var suite = EvalSuite(name: URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent, tasks: [])
        for (k, v) in root {
            switch k.string {
            case "name"?:
                guard let s = v.string else { throw EvalError(file: file, line: line(v), "name must be a string") }
                suite.name = s
            case "bootstrap"?:
                guard let m = v.mapping else { throw EvalError(file: file, line: line(v), "bootstrap must be a mapping {resamples, seed}") }
                for (bk, bv) in m {
                    switch bk.string {
                    case "resamples"?:
                        guard let n = bv.int, (1...100_000).contains(n) else {
                            throw EvalError(file: file, line: line(bv), "bootstrap.resamples must be an integer from 1 to 100000")
                        }
                        suite.resamples = n
                    case "seed"?:
                        guard let n = bv.int, n >= 0 else { throw EvalError(file: file, line: line(bv), "bootstrap.seed must be a non-negative integer") }
                        suite.seed = UInt64(n)
                    default: throw EvalError(file: file, line: line(bk), "unknown key bootstrap.\(bk.string ?? "?"); keys are resamples, seed")
                    }
                }
            case "tasks"?:
                guard let list = v.sequence, !list.isEmpty else { throw EvalError(file: file, line: line(v), "tasks must be a non-empty list") }
                guard list.count <= 256 else { throw EvalError(file: file, line: line(v), "tasks lists \(list.count) tasks; at most 256") }
                suite.tasks = try list.map { try parseTask($0, file: file) }
            default:
                throw EvalError(file: file, line: line(k), "unknown key \(k.string ?? "?"); keys are name, bootstrap, tasks")
            }
        }
        guard !suite.tasks.isEmpty else { throw EvalError(file: file, "lists no tasks") }
        let names = suite.tasks.map(\.name)
        if let dup = names.first(where: { n in names.filter { $0 == n }.count > 1 }) {
            throw EvalError(file: file, "two tasks are named '\(dup)'; give one a name")
        }
        return suite
    }

    static func parseTask(_ node: Node, file: String) throws -> Task {
        let at = node.mark?.line
        guard let m = node.mapping else { throw EvalError(file: file, line: at, "each task is a mapping {task, data, ...}") }
        var name: String?, task: String?, data: String?
        var t = Task(name: "", task: "", data: "")
        for (k, v) in m {
            let key = k.string ?? "?"
            func int(_ range: ClosedRange<Int>) throws -> Int {
                guard let n = v.int, range.contains(n) else {
                    throw EvalError(file: file, line: v.mark?.line, "\(key) must be an integer from \(range.lowerBound) to \(range.upperBound)")
                }
                return n
            }
            switch key {
            case "name": name = v.string
            case "task": task = v.string
            case "data": data = v.string
            case "shots": t.shots = try int(0...64)
            case "max_examples": t.maxExamples = try int(1...10_000_000)
            case "max_tokens": t.maxTokens = try int(2...1_000_000_000)
            case "stride": t.stride = try int(1...1_000_000)
            default: throw EvalError(file: file, line: k.mark?.line, "unknown task key \(key); keys are name, task, data, shots, max_examples, max_tokens, stride")
            }
        }
        guard let task, knownTasks.contains(task) || task.hasPrefix("glue-") else {
            throw EvalError(file: file, line: at, "task must be one of \(knownTasks.joined(separator: ", ")) or glue-TASK")
        }
        guard let data else { throw EvalError(file: file, line: at, "task \(task) needs data (a path)") }
        t.task = task
        t.data = data
        t.name = name ?? (t.shots > 0 ? "\(task)-\(t.shots)shot" : task)
        return t
    }

    /// Scores one model on one language-model task (everything but GLUE) as metric samples.
    public static func score(_ t: Task, model: GPT2Model, tokenizer: BPETokenizer, batch: Int = 8,
                             progress: (Int, Int) -> Void = { _, _ in }) throws -> [MetricSample] {
        let url = URL(fileURLWithPath: t.data)
        switch t.task {
        case "perplexity":
            let text = TextNormalizer.normalizedString(try readFile(url))
            var ids = tokenizer.encode(text)
            if let cap = t.maxTokens, ids.count > cap { ids = Array(ids.prefix(cap)) }
            let bytes = t.maxTokens == nil ? text.utf8.count : ((try? tokenizer.decodeBytes(ids).count) ?? text.utf8.count)
            let r = try Perplexity.evaluate(model: model, ids: ids, bytes: bytes, stride: t.stride, progress: progress)
            let windows = r.perWindow.map { [$0.nll, Double($0.tokens)] }
            // The harness's definitions beside the per-token perplexity (whole-text values).
            let words = PerplexityResult.harnessWordCount(t.maxTokens == nil ? text : ((try? tokenizer.decode(ids)) ?? text))
            return [MetricSample(name: "perplexity", components: windows, higherIsBetter: false) { Foundation.exp($0[0] / max($0[1], 1)) },
                    MetricSample(name: "word_perplexity", value: r.wordPerplexity(words: words), higherIsBetter: false),
                    MetricSample(name: "byte_perplexity", value: r.bytePerplexity, higherIsBetter: false),
                    MetricSample(name: "bits_per_byte", value: r.bitsPerByte, higherIsBetter: false)]
        case "lambada":
            let r = try Lambada.evaluate(model: model, tokenizer: tokenizer, texts: try Lambada.load(url).prefix(t.maxExamples ?? .max).map { $0 },
                                         progress: progress)
            return [MetricSample.mean("accuracy", r.perExample.map { $0.correct ? 1 : 0 }),
                    MetricSample(name: "target_perplexity", components: r.perExample.map { [$0.nll, Double($0.tokens)] },
                                 higherIsBetter: false) { Foundation.exp($0[0] / max($0[1], 1)) },
                    MetricSample(name: "harness_perplexity", components: r.perExample.map { [$0.nll, 1] },
                                 higherIsBetter: false) { Foundation.exp($0[0] / max($0[1], 1)) }]
        case "cbt":
            let examples = Array(try ClozeTest.load(url).prefix(t.maxExamples ?? .max))
            let r = try ClozeTest.evaluate(model: model, tokenizer: tokenizer, examples: examples, progress: progress)
            return [MetricSample.mean("accuracy", r.perExample.map { $0 ? 1 : 0 })]
        default:
            guard let task = OneShot.Task(rawValue: t.task) else { throw EvalError("unknown task \(t.task)") }
            let examples = try OneShot.examples(task, data: url, shots: t.shots, maxExamples: t.maxExamples)
            let r = try OneShot.run(task, model: model, tokenizer: tokenizer, examples: examples, shots: t.shots, batch: batch, progress: progress)
            if task == .wmt {
                return [MetricSample(name: "bleu", components: r.bleuStatistics, higherIsBetter: true) { s in
                    BLEU.fromStatistics(correct: s[0..<4].map { Int($0) }, total: s[4..<8].map { Int($0) },
                                        hypothesisLength: Int(s[8]), referenceLength: Int(s[9])).score
                }]
            }
            return r.perExampleMetrics.keys.sorted().map { MetricSample.mean($0, r.perExampleMetrics[$0]!) }
        }
    }
}

/// The comparison table of `factorlab eval --suite`.
public struct SuiteTable: Sendable {
    public enum Cell: Sendable {
        case scored([MetricSample])
        /// The model cannot do the task (e.g. no GLUE head): said in its cell.
        case unavailable(String)
    }

    public struct Model: Sendable {
        public var label: String
        public var parameters: Int
        /// Median KV-cache generation latency per token at batch 1, ms.
        public var latencyMs: Double?
        /// Task name -> cell.
        public var cells: [String: Cell]
        public init(label: String, parameters: Int, latencyMs: Double?, cells: [String: Cell]) {
            self.label = label
            self.parameters = parameters
            self.latencyMs = latencyMs
            self.cells = cells
        }
    }

    public var suite: EvalSuite
    public var models: [Model]
    public var baseline: Int

    public init(suite: EvalSuite, models: [Model], baseline: Int) {
        self.suite = suite
        self.models = models
        self.baseline = baseline
    }

    /// (task, metric) rows in suite order.
    var rows: [(task: String, metric: String, higherIsBetter: Bool)] {
        var out: [(String, String, Bool)] = []
        for t in suite.tasks {
            var seen: [String] = []
            for m in models {
                guard case .scored(let samples)? = m.cells[t.name] else { continue }
                for s in samples where !seen.contains(s.name) { seen.append(s.name); out.append((t.name, s.name, s.higherIsBetter)) }
            }
            if seen.isEmpty { out.append((t.name, "-", true)) }
        }
        return out
    }

    func sample(_ m: Model, _ task: String, _ metric: String) -> MetricSample? {
        guard case .scored(let s)? = m.cells[task] else { return nil }
        return s.first { $0.name == metric }
    }

    func interval(_ m: Model, _ task: String, _ metric: String) -> PairedBootstrap.Interval? {
        guard let a = sample(m, task, metric), let b = sample(models[baseline], task, metric) else { return nil }
        return PairedBootstrap.interval(a, b, resamples: suite.resamples, seed: suite.seed)
    }

    func cellText(_ m: Model, _ task: String, _ metric: String, isBaseline: Bool) -> String {
        switch m.cells[task] {
        case .unavailable(let why)?: return why
        case nil: return "-"
        case .scored:
            guard let s = sample(m, task, metric) else { return "-" }
            var text = format(s.value)
            guard !isBaseline else { return text }
            if let ci = interval(m, task, metric) {
                text += " (\(signed(ci.difference)) [\(signed(ci.low)), \(signed(ci.high))])"
            } else if let b = sample(models[baseline], task, metric) {
                text += " (\(signed(s.value - b.value)), no CI)"
            }
            return text
        }
    }

    func format(_ x: Double) -> String { String(format: abs(x) >= 100 ? "%.1f" : "%.3f", x) }
    func signed(_ x: Double) -> String { (x >= 0 ? "+" : "") + format(x) }

    /// Markdown: one row per (task, metric), one column per model; beside each non-baseline
    /// value its difference from the baseline and the 95% paired-bootstrap interval.
    public var markdown: String {
        var lines = ["| task | metric | " + models.enumerated().map { $0.offset == baseline ? "\($0.element.label) (baseline)" : $0.element.label }
                        .joined(separator: " | ") + " |",
                     "|---|---|" + String(repeating: "---|", count: models.count)]
        for r in rows {
            let cells = models.enumerated().map { cellText($0.element, r.task, r.metric, isBaseline: $0.offset == baseline) }
            lines.append("| \(r.task) | \(r.metric)\(r.metric == "-" ? "" : (r.higherIsBetter ? " ↑" : " ↓")) | " + cells.joined(separator: " | ") + " |")
        }
        lines.append("| parameters | | " + models.map { "\($0.parameters)" }.joined(separator: " | ") + " |")
        lines.append("| latency ms/token (batch 1) | | " + models.map { $0.latencyMs.map { String(format: "%.2f", $0) } ?? "-" }.joined(separator: " | ") + " |")
        lines.append("")
        lines.append("Differences are model - baseline on the same examples, with a 95% paired-bootstrap interval over examples "
                     + "(\(suite.resamples) resamples, seed \(suite.seed)).")
        return lines.joined(separator: "\n")
    }

    /// Plain text for the terminal (the Markdown table without its pipes' alignment row).
    public var text: String { markdown }

    public var json: [String: Any] {
        var out: [String: Any] = ["suite": suite.name, "baseline": models[baseline].label, "resamples": suite.resamples, "seed": suite.seed]
        out["models"] = models.enumerated().map { i, m -> [String: Any] in
            var tasks: [String: Any] = [:]
            for t in suite.tasks {
                switch m.cells[t.name] {
                case .unavailable(let why)?: tasks[t.name] = ["unavailable": why]
                case .scored(let samples)?:
                    var metrics: [String: Any] = [:]
                    for s in samples {
                        var o: [String: Any] = ["value": s.value, "higher_is_better": s.higherIsBetter]
                        if let n = s.examples { o["examples"] = n }
                        if i != baseline, let ci = interval(m, t.name, s.name) {
                            o["difference"] = ci.difference
                            o["ci95"] = [ci.low, ci.high]
                        }
                        metrics[s.name] = o
                    }
                    tasks[t.name] = metrics
                case nil: break
                }
            }
            var o: [String: Any] = ["label": m.label, "parameters": m.parameters, "tasks": tasks]
            if let l = m.latencyMs { o["latency_ms_per_token"] = l }
            return o
        }
        return out
    }
}
