import FactorlabRandom
import Foundation
import Yams

/// A grid of pretraining runs over one base recipe, read from a YAML sweep file:
///
/// ```yaml
/// name: mini-study
/// base: Recipes/shakespeare-tiny.yaml        # relative to the current directory
/// out: Checkpoints/sweeps/mini-study         # default: Checkpoints/sweeps/<name>
/// set: [training.max_steps=null]             # overrides of every point
/// grid:                                      # every combination of these --set values
///   model.n_embd: [128, 192]
///   model.linear: [dense, "mlp=monarch:4"]
///   seed: [1, 2]
///   training.flop_budget: [1.0e13]
/// ```
/// Each point is one run folder under `out`, named from the values of the axes with more than one
/// value (`n_embd-128_linear-mlp-monarch4_seed-1`), with its overrides recorded in its recipe.
///
/// A `tune` section tunes one key per family before the grid runs: its tuning points (under
/// `out/tune/`) are the grid's points at the `at` values, once per tuned value; every grid point then
/// gets the value with the lowest mean final validation loss among the tuning points of its family
/// (its value of the `per` axis):
/// ```yaml
/// tune: {key: optimizer.lr, values: [1.0e-3, 2.0e-3, 4.0e-3], per: model.linear, at: {model.n_embd: 128}}
/// ```
public struct Sweep: Sendable {
    public struct Tune: Sendable {
        public var key: String
        public var values: [String]
        /// The axis whose values are the families tuned separately.
        public var per: String
        /// Axis values the tuning points use (typically the smallest size).
        public var at: [(key: String, value: String)]
    }
    public struct Point: Sendable, Equatable {
        public let name: String
        /// The point's own `--set` overrides (the sweep's `set`, then one per axis).
        public let overrides: [String]
        /// (key, value) of every axis, in the sweep file's order.
        public let values: [(key: String, value: String)]
        public static func == (a: Point, b: Point) -> Bool { a.name == b.name && a.overrides == b.overrides }
    }

    public var name: String
    public var base: URL
    public var out: URL
    public var fixed: [String]
    public var axes: [(key: String, values: [String])]
    public var tune: Tune?
    public let file: String

    /// The largest grid a sweep may expand to.
    public static let maxPoints = 10_000

    public static func load(_ url: URL) throws -> Sweep {
        let text = try RecipeText.read(url)
        return try parse(text, file: url.path)
    }

    public static func parse(_ text: String, file: String) throws -> Sweep {
        let root = try RecipeReader.parse(text, file: file)
        guard let name = try root.string("name") else { throw TrainingError.recipe("\(file): a sweep needs a name") }
        guard RunName.isValid(name) else {
            throw TrainingError.recipe("\(file): sweep name '\(name.prefix(40))' must be 1-100 letters, digits, '.', '_' or '-'")
        }
        guard let base = try root.string("base") else { throw TrainingError.recipe("\(file): a sweep needs base: RECIPE.yaml") }
        let out = try root.string("out") ?? "Checkpoints/sweeps/\(name)"
        let fixed = try root.strings("set") ?? []
        let axes = try root.axes("grid")
        var tune: Tune?
        if let t = try root.section("tune") {
            guard let key = try t.string("key"), let values = try t.strings("values"), !values.isEmpty, let per = try t.string("per") else {
                throw TrainingError.recipe("\(file): tune needs key, values (a list) and per")
            }
            let at = try t.axes("at").map { a -> (key: String, value: String) in
                guard a.values.count == 1 else { throw TrainingError.recipe("\(file): tune.at.\(a.key) must be one value") }
                return (a.key, a.values[0])
            }
            try t.finish(allowed: ["key", "values", "per", "at"])
            guard axes.contains(where: { $0.key == per }) else { throw TrainingError.recipe("\(file): tune.per \(per) is not a grid axis") }
            for a in at where !(axes.first { $0.key == a.key }?.values.contains(a.value) ?? false) {
                throw TrainingError.recipe("\(file): tune.at \(a.key)=\(a.value) is not a value of that grid axis")
            }
            guard !axes.contains(where: { $0.key == key }) else { throw TrainingError.recipe("\(file): tune.key \(key) is also a grid axis") }
            tune = Tune(key: key, values: values, per: per, at: at)
        }
        try root.finish(allowed: ["name", "base", "out", "set", "grid", "tune"])
        guard !axes.isEmpty else { throw TrainingError.recipe("\(file): grid must name at least one key with a list of values") }
        var count = 1
        for a in axes {
            guard !a.values.isEmpty else { throw TrainingError.recipe("\(file): grid.\(a.key) has no values") }
            guard Set(a.values).count == a.values.count else { throw TrainingError.recipe("\(file): grid.\(a.key) repeats a value") }
            count *= a.values.count
            guard count <= maxPoints else { throw TrainingError.recipe("\(file): the grid expands to more than \(maxPoints) points") }
        }
        return Sweep(name: name, base: URL(fileURLWithPath: base), out: URL(fileURLWithPath: out), fixed: fixed, axes: axes, tune: tune,
                     file: file)
    }

    /// Every point of the grid, first axis slowest; names unique (an error otherwise).
    public func points() throws -> [Point] {
        var combos: [[(String, String)]] = [[]]
        for a in axes { combos = combos.flatMap { c in a.values.map { c + [(a.key, $0)] } } }
        let varying = Set(axes.filter { $0.values.count > 1 }.map(\.key))
        var seen: [String: String] = [:]
        return try combos.map { combo in
            let parts = combo.filter { varying.contains($0.0) }.map { "\(Sweep.label(key: $0.0))-\(Sweep.label($0.1))" }
            var name = parts.isEmpty ? "point" : parts.joined(separator: "_")
            if name.count > 90 { name = String(name.prefix(80)) + "-" + { var h = FNV1a64(); h.update(name.utf8); return String(format: "%08x", UInt32(truncatingIfNeeded: h.value)) }() }
            let overrides = fixed + combo.map { "\($0.0)=\($0.1)" }
            if let other = seen[name] {
                throw TrainingError.recipe("\(file): points \(other) and \(overrides.joined(separator: " ")) get the same folder name \(name)")
            }
            seen[name] = overrides.joined(separator: " ")
            return Point(name: name, overrides: overrides, values: combo.map { (key: $0.0, value: $0.1) })
        }
    }

    /// The tuning points: the grid's points at the `at` values, once per tuned value, named
    /// `tune/<point>_<key>-<value>` (every axis in the name, so families never share a folder).
    public func tuningPoints() throws -> [Point] {
        guard let tune else { return [] }
        let restricted = Sweep(name: name, base: base, out: out, fixed: fixed, axes: axes.map { a in
            if let v = tune.at.first(where: { $0.key == a.key }) { return (a.key, [v.value]) }
            return a
        }, tune: nil, file: file)
        let base = try restricted.points()
        return base.flatMap { p in
            tune.values.map { v in
                let label = p.values.map { "\(Sweep.label(key: $0.key))-\(Sweep.label($0.value))" }.joined(separator: "_")
                return Point(name: "tune/\(label)_\(Sweep.label(key: tune.key))-\(Sweep.label(v))", overrides: p.overrides + ["\(tune.key)=\(v)"],
                             values: p.values + [(key: tune.key, value: v)])
            }
        }
    }

    /// The tuned value per family from finished tuning points (`loss(point)` their final
    /// validation loss, nil when not finished): the lowest mean over the points of each value.
    /// A family with no finished tuning point is missing from the result.
    public func tunedValues(loss: (Point) -> Double?) throws -> [String: (value: String, losses: [String: Double])] {
        guard let tune else { return [:] }
        var sums: [String: [String: (Double, Int)]] = [:]
        for p in try tuningPoints() {
            guard let l = loss(p), let family = p.values.first(where: { $0.key == tune.per })?.value,
                  let v = p.values.last?.value else { continue }
            let (s, n) = sums[family, default: [:]][v] ?? (0, 0)
            sums[family, default: [:]][v] = (s + l, n + 1)
        }
        return sums.mapValues { byValue in
            let means = byValue.mapValues { $0.0 / Double($0.1) }
            let best = tune.values.filter { means[$0] != nil }.min { means[$0]! < means[$1]! }!
            return (best, means)
        }
    }

    /// A grid point with its family's tuned value added.
    public func withTuned(_ p: Point, _ tuned: [String: (value: String, losses: [String: Double])]) throws -> Point {
        guard let tune else { return p }
        guard let family = p.values.first(where: { $0.key == tune.per })?.value, let t = tuned[family] else {
            throw TrainingError.recipe("\(p.name): no finished tuning point for \(tune.per)=\(p.values.first { $0.key == tune.per }?.value ?? "?")")
        }
        return Point(name: p.name, overrides: p.overrides + ["\(tune.key)=\(t.value)"], values: p.values)
    }

    /// A key as folder-name text: its last component (`model.n_embd` -> `n_embd`).
    static func label(key: String) -> String { label(String(key.split(separator: ".").last ?? Substring(key))) }

    /// A value as folder-name text: `=` as `-`, `,` and `;` as `.`, `@` as `at`, no `:`, anything
    /// else outside [A-Za-z0-9._-] dropped.
    static func label(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "=": out.append("-")
            case ",", ";": out.append(".")
            case "@": out += "at"
            case _ where c.isASCII && (c.isLetter || c.isNumber || c == "." || c == "_" || c == "-"): out.append(c)
            default: continue
            }
        }
        return out.isEmpty ? "x" : out
    }

    /// The recipe of a point, writing into its folder.
    public func recipe(_ p: Point) throws -> Recipe {
        try Recipe.load(base, overrides: p.overrides + ["name=\(runName(p))", "checkpoint.dir=\(folder(p).path)"])
    }

    /// The run name of a point (a tuning point's `tune/` becomes `tune.`).
    public func runName(_ p: Point) -> String {
        let name = p.name.replacingOccurrences(of: "/", with: ".")
        guard name.count > 100 else { return name }
        var h = FNV1a64()
        h.update(name.utf8)
        return String(name.prefix(88)) + "-" + String(format: "%08x", UInt32(truncatingIfNeeded: h.value))
    }

    public func folder(_ p: Point) -> URL { out.appendingPathComponent(p.name) }

    /// For a grid point (with its tuned value) that is exactly a tuning point (same overrides: the
    /// tuning size and seed at the chosen value), that tuning point: its run is the grid point's
    /// too, so it need not be trained twice.
    public func tuningTwin(of point: Point) throws -> Point? {
        try tuningPoints().first { $0.overrides == point.overrides }
    }
}

extension RecipeReader {
    /// `grid`: a section of key: [values] (a single value is a one-value axis), in file order.
    func axes(_ key: String) throws -> [(key: String, values: [String])] {
        guard let n = node(key) else { return [] }
        guard case .mapping(let m) = n else { throw mismatch(key, n, "a section of key: [values]") }
        return try m.map { k, v in
            guard let name = k.string else { throw mismatch(key, k, "a section of key: [values]") }
            switch v {
            case .scalar(let s): return (name, [s.string])
            case .sequence(let seq):
                return (name, try seq.map { item in
                    guard case .scalar(let s) = item else { throw mismatch("\(key).\(name)", item, "a list of values") }
                    return s.string
                })
            case .mapping: throw mismatch("\(key).\(name)", v, "a list of values")
            }
        }
    }
}

/// The state of a sweep point, read from its folder and its status file.
public enum SweepState: String, Codable, Sendable {
    case missing, running, stopped, failed, done
}

/// `sweep-status.json` in a point's folder: what the sweep runner last knew of it.
public struct SweepPointStatus: Codable, Sendable {
    public var state: SweepState
    public var error: String?
    public var pid: Int32?
    public var updated: String

    public init(state: SweepState, error: String? = nil, pid: Int32? = nil) {
        self.state = state
        self.error = error
        self.pid = pid
        updated = ISO8601DateFormatter().string(from: Date())
    }

    public static let fileName = "sweep-status.json"

    /// The point's state: done when its run finished (summary.json); running only while the
    /// process recorded in the status is alive; stopped when a checkpoint exists otherwise;
    /// failed when the last attempt failed and left nothing to resume; missing when never started.
    public static func read(_ folder: URL) -> (SweepState, SweepPointStatus?) {
        let fm = FileManager.default
        let status = (try? Data(contentsOf: folder.appendingPathComponent(fileName))).flatMap { try? JSONDecoder().decode(SweepPointStatus.self, from: $0) }
        if fm.fileExists(atPath: folder.appendingPathComponent("summary.json").path) { return (.done, status) }
        if let s = status, s.state == .running, let pid = s.pid, kill(pid, 0) == 0 { return (.running, status) }
        let hasCheckpoint = ((try? fm.contentsOfDirectory(atPath: folder.path)) ?? []).contains { $0.hasPrefix("ckpt-") && $0.hasSuffix(".h5") }
        if status?.state == .failed && !hasCheckpoint { return (.failed, status) }
        if hasCheckpoint { return (status?.state == .failed ? .failed : .stopped, status) }
        return (status == nil ? .missing : (status!.state == .failed ? .failed : .missing), status)
    }

    public func write(to folder: URL) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        try encoder.encode(self).write(to: folder.appendingPathComponent(SweepPointStatus.fileName), options: .atomic)
    }
}

/// The lock that keeps two sweep runners out of one folder: `sweep.lock` holds the owner's pid.
/// A lock whose process is gone is stale and taken over.
public struct SweepLock {
    public let url: URL

    public static func acquire(_ folder: URL) throws -> SweepLock {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let url = folder.appendingPathComponent("sweep.lock")
        for _ in 0..<2 {
            let fd = open(url.path, O_WRONLY | O_CREAT | O_EXCL, 0o644)
            if fd >= 0 {
                let text = "\(getpid())\n"
                _ = text.withCString { write(fd, $0, strlen($0)) }
                close(fd)
                return SweepLock(url: url)
            }
            guard errno == EEXIST else { throw TrainingError.recipe("\(url.path): cannot create the sweep lock (errno \(errno))") }
            let owner = (try? String(contentsOf: url, encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            if let owner, owner != getpid(), kill(owner, 0) == 0 {
                throw TrainingError.recipe("\(folder.path) is in use by another sweep (pid \(owner), \(url.path)); wait for it or stop it")
            }
            try? FileManager.default.removeItem(at: url) // stale: its process is gone
        }
        throw TrainingError.recipe("\(url.path): could not take the sweep lock")
    }

    public func release() { try? FileManager.default.removeItem(at: url) }
}
