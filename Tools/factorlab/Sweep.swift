import ArgumentParser
import FactorlabAutograd
import FactorlabGPT2
import FactorlabOptim
import FactorlabStudy
import FactorlabTensor
import FactorlabTraining
import Foundation

struct SweepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep",
        abstract: "Run a grid of pretraining runs (a sweep file): missing points start, stopped ones resume, finished ones are skipped.",
        discussion: """
        factorlab sweep SWEEP.yaml [--jobs N] [--dry-run]; factorlab sweep status SWEEP.yaml. The sweep can be stopped at any \
        moment and run again: every point resumes exactly from its newest checkpoint. A failed point is recorded \
        (sweep-status.json in its folder) and the others go on. A lock (sweep.lock) refuses a second sweep in the same folder.
        """,
        subcommands: [SweepRun.self, SweepStatusCommand.self], defaultSubcommand: SweepRun.self)
}

struct SweepRun: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Run the missing and stopped points of a sweep.")

    @Argument(help: "Sweep file (YAML).")
    var sweep: String
    @Option(help: "Points to run at a time; the cores are split between them.")
    var jobs: Int = 1
    @Flag(help: "List the points and their estimated cost (FLOPs, and time from a short measured step) without running anything.")
    var dryRun = false
    @Option(help: "When every point has finished, write the study report of the sweep's runs to this folder, print its recommendations and the best run's sample.")
    var report: String?
    @Flag(help: "Print one JSON object of results on stdout.")
    var json = false

    func validate() throws {
        guard (1...64).contains(jobs) else { throw ValidationError("--jobs must be between 1 and 64, got \(jobs)") }
    }

    func run() throws {
        let s = try Sweep.load(URL(fileURLWithPath: sweep))
        let grid = try s.points(), tuning = try s.tuningPoints()
        if dryRun { return try estimate(s, tuning + grid) }
        let lock = try SweepLock.acquire(s.out)
        defer { lock.release() }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let threads = max(1, cores / jobs)
        if jobs > cores { Console.note("sweep: \(jobs) jobs on \(cores) cores share them (1 thread each)") }
        var failed = 0, finished = 0
        if !tuning.isEmpty {
            let (f, x) = try runPhase(s, "tuning", tuning, threads: threads)
            finished += f
            failed += x
        }
        let tuned = try s.tunedValues { p in SweepStatusCommand.finalLoss(s.folder(p)) }
        if let tune = s.tune { try writeTuning(s, tune, tuned) }
        var points: [Sweep.Point] = []
        for p in grid {
            do {
                let point = try s.withTuned(p, tuned)
                try linkTuningTwin(s, point)
                points.append(point)
            } catch {
                try SweepPointStatus(state: .failed, error: "\(error)").write(to: s.folder(p))
                Console.note("sweep: \(p.name) failed: \(error)")
                failed += 1
            }
        }
        let (f, x) = try runPhase(s, "grid", points, threads: threads)
        finished += f
        failed += x
        Console.endProgress()
        let table = SweepStatusCommand.rows(s, tuning + grid)
        if json {
            try Console.printJSON(["sweep": s.name, "folder": s.out.path, "points": table.map(\.json), "finished": finished, "failed": failed])
        } else {
            SweepStatusCommand.printTable(table)
        }
        if failed > 0 { throw ValidationError("\(failed) point(s) failed; their errors are in the table above and in sweep-status.json") }
        if let report, !json { try writeReport(s, to: URL(fileURLWithPath: report)) }
    }

    /// A grid point that is exactly a finished tuning point becomes a link to that run's folder
    /// (a relative symbolic link to `tune/NAME`) instead of a second identical run.
    func linkTuningTwin(_ s: Sweep, _ p: Sweep.Point) throws {
        let folder = s.folder(p), fm = FileManager.default
        guard !fm.fileExists(atPath: folder.path), let twin = try s.tuningTwin(of: p),
              SweepPointStatus.read(s.folder(twin)).0 == .done else { return }
        try fm.createSymbolicLink(atPath: folder.path, withDestinationPath: twin.name)
        Console.note("sweep: \(p.name) is tuning point \(twin.name): linked, not trained again")
    }

    /// The study report of the sweep's finished runs, its recommendation sentences, and the sample
    /// generation of the run with the lowest final validation loss.
    func writeReport(_ s: Sweep, to folder: URL) throws {
        let dirs = try StudyRun.discover([s.out])
        // The sweep folder itself, so its tuning.json (learning-rate curves) enters the report.
        let summary = try StudyReport.generate(runDirectories: [s.out], outputDirectory: folder, budgets: nil)
        print("wrote \(summary.reportPath) (\(dirs.count) runs)")
        for r in summary.recommendations { print("- " + r.sentence) }
        let finished = dirs.compactMap { dir -> (String, Double, String)? in
            guard let data = try? Data(contentsOf: dir.appendingPathComponent("summary.json")),
                  let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let loss = obj["final_val_loss"] as? Double, let sample = obj["sample"] as? String else { return nil }
            return (dir.lastPathComponent, loss, sample)
        }
        if let best = finished.min(by: { $0.1 < $1.1 }) {
            print(String(format: "sample from %@ (val loss %.4f):", best.0 as NSString, best.1))
            print(best.2)
        }
    }

    /// Runs `points` (the tuning points, or the grid) `jobs` at a time; returns (finished, failed).
    func runPhase(_ s: Sweep, _ phase: String, _ points: [Sweep.Point], threads: Int) throws -> (Int, Int) {
        var queue = points.filter { SweepPointStatus.read(s.folder($0)).0 != .done }
        Console.note("sweep \(s.name) (\(phase)): \(points.count) points, \(points.count - queue.count) done, \(queue.count) to run, \(jobs) at a time (\(threads) thread(s) each) -> \(s.out.path)")
        var running: [(point: Sweep.Point, process: Process, log: URL)] = []
        var failed = 0, finished = 0
        while !queue.isEmpty || !running.isEmpty {
            while running.count < jobs, !queue.isEmpty {
                let p = queue.removeFirst()
                let (state, status) = SweepPointStatus.read(s.folder(p))
                if state == .running {
                    Console.note("sweep: \(p.name) is running in another process (pid \(status?.pid ?? 0)); skipped")
                    continue
                }
                do { running.append(try start(s, p, threads: threads)) } catch {
                    // A point whose recipe is invalid fails alone; the others go on.
                    try SweepPointStatus(state: .failed, error: "\(error)").write(to: s.folder(p))
                    Console.endProgress()
                    Console.note("sweep: \(p.name) failed: \(error)")
                    failed += 1
                }
            }
            Console.progress("sweep \(s.name) (\(phase)): \(finished) finished, \(failed) failed, \(running.count) running (\(running.map(\.point.name).joined(separator: ", "))), \(queue.count) waiting")
            Thread.sleep(forTimeInterval: 0.5)
            for (i, r) in running.enumerated().reversed() where !r.process.isRunning {
                running.remove(at: i)
                let folder = s.folder(r.point)
                let summary = FileManager.default.fileExists(atPath: folder.appendingPathComponent("summary.json").path)
                if r.process.terminationStatus == 0, summary {
                    try SweepPointStatus(state: .done).write(to: folder)
                    finished += 1
                } else if r.process.terminationStatus == 0 {
                    // Stopped on request (FACTORLAB_STOP_AFTER_STEPS): resumable, not failed.
                    try SweepPointStatus(state: .stopped).write(to: folder)
                } else {
                    let tail = Sweep.lastLines(of: r.log, count: 3)
                    try SweepPointStatus(state: .failed, error: "exit \(r.process.terminationStatus): \(tail)").write(to: folder)
                    Console.endProgress()
                    Console.note("sweep: \(r.point.name) failed (exit \(r.process.terminationStatus)): \(tail)")
                    failed += 1
                }
            }
        }
        Console.endProgress()
        return (finished, failed)
    }

    /// `tuning.json` in the sweep folder, and a table on stderr: each family's mean final
    /// validation loss per tuned value and the value chosen.
    func writeTuning(_ s: Sweep, _ tune: Sweep.Tune, _ tuned: [String: (value: String, losses: [String: Double])]) throws {
        var obj: [String: Any] = ["key": tune.key, "per": tune.per, "values": tune.values]
        var families: [String: Any] = [:]
        for (family, t) in tuned.sorted(by: { $0.key < $1.key }) {
            families[family] = ["best": t.value, "mean_final_val_loss": t.losses]
            let row = tune.values.map { v in t.losses[v].map { String(format: "%@ %.4f", v, $0) } ?? "\(v) -" }.joined(separator: ", ")
            Console.note("sweep tuning \(tune.per)=\(family): \(row) -> \(tune.key)=\(t.value)")
        }
        obj["families"] = families
        let data = try JSONSerialization.data(withJSONObject: obj, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: s.out.appendingPathComponent("tuning.json"), options: .atomic)
    }

    /// Starts one point as a child `factorlab` process: `resume` when it has a checkpoint,
    /// `pretrain` with its overrides otherwise; its stderr goes to sweep.log in its folder.
    func start(_ s: Sweep, _ p: Sweep.Point, threads: Int) throws -> (point: Sweep.Point, process: Process, log: URL) {
        let folder = s.folder(p)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let hasCheckpoint = ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).contains { $0.hasPrefix("ckpt-") }
        var args: [String]
        if hasCheckpoint {
            args = ["resume", folder.path]
        } else {
            _ = try s.recipe(p) // a bad point fails here, with the recipe's message, before a process starts
            Sweep.seedDataCache(folder, from: s)
            args = ["pretrain", s.base.path]
            for o in p.overrides + ["name=\(s.runName(p))", "checkpoint.dir=\(folder.path)"] { args += ["--set", o] }
        }
        let process = Console.childProcess(args + ["--json"])
        var env = ProcessInfo.processInfo.environment
        env["FACTORLAB_THREADS"] = String(threads)
        env["OPENBLAS_NUM_THREADS"] = String(threads)
        process.environment = env
        let log = folder.appendingPathComponent("sweep.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        handle.seekToEndOfFile()
        process.standardError = handle
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        try SweepPointStatus(state: .running, pid: process.processIdentifier).write(to: folder)
        return (p, process, log)
    }

    /// The dry run: each point's FLOPs and an estimate of its time from two measured training steps
    /// of its model (once per distinct model).
    func estimate(_ s: Sweep, _ points: [Sweep.Point]) throws {
        var stepSeconds: [String: Double] = [:]
        var rows: [[String: Any]] = []
        var totalFLOPs = 0.0, totalSeconds = 0.0
        for p in points {
            let r: Recipe, config: GPT2Config
            do {
                r = try s.recipe(p)
                config = try r.modelConfig(vocabSize: r.tokenizer.vocabSize)
            } catch {
                rows.append(["point": p.name, "state": "invalid", "error": "\(error)"])
                continue
            }
            let model = try GPT2Model(config, seed: 1)
            let flopsPerStep = model.costs(seqLen: r.training.seqLen).trainingFLOPs * Double(r.tokensPerStep)
            let steps = r.totalSteps(flopsPerStep: flopsPerStep, stepsDone: 0, flopsSoFar: 0)
            let key = "\(config.jsonString) \(r.training.batchSize) \(r.training.seqLen) \(r.training.gradAccum)"
            if stepSeconds[key] == nil {
                Console.progress("sweep dry run: timing a step of \(p.name)")
                stepSeconds[key] = try Sweep.measureStep(model: model, recipe: r)
            }
            let seconds = stepSeconds[key]! * Double(steps)
            totalFLOPs += flopsPerStep * Double(steps)
            totalSeconds += seconds
            rows.append(["point": p.name, "parameters": model.parameterCount, "steps": steps, "flops": flopsPerStep * Double(steps),
                         "estimated_s": seconds, "state": SweepPointStatus.read(s.folder(p)).0.rawValue])
        }
        Console.endProgress()
        if json {
            try Console.printJSON(["sweep": s.name, "points": rows, "flops": totalFLOPs, "estimated_s": totalSeconds])
            return
        }
        print("sweep \(s.name): \(points.count) points -> \(s.out.path)")
        for r in rows {
            if let e = r["error"] as? String {
                print("  \((r["point"] as! String).padding(toLength: 44, withPad: " ", startingAt: 0))  invalid   \(e)")
                continue
            }
            print(String(format: "  %@  %@  %9d params  %6d steps  %.3g FLOPs  ~%.0f s", (r["point"] as! String).padding(toLength: 44, withPad: " ", startingAt: 0),
                         (r["state"] as! String).padding(toLength: 8, withPad: " ", startingAt: 0), r["parameters"] as! Int, r["steps"] as! Int,
                         r["flops"] as! Double, r["estimated_s"] as! Double))
        }
        print(String(format: "total %.3g FLOPs, ~%.0f s on this machine at 1 job (evaluation and checkpoints not counted)", totalFLOPs, totalSeconds))
    }
}

struct SweepStatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Print the state of every point of a sweep.")

    @Argument(help: "Sweep file (YAML).")
    var sweep: String
    @Flag(help: "Print one JSON object on stdout.")
    var json = false

    struct Row {
        let name: String, state: SweepState, steps: Int?, valLoss: Double?, error: String?
        var json: [String: Any] {
            var o: [String: Any] = ["point": name, "state": state.rawValue]
            if let steps { o["steps"] = steps }
            if let valLoss { o["val_loss"] = valLoss }
            if let error { o["error"] = error }
            return o
        }
    }

    /// A finished point's final validation loss (summary.json), nil otherwise.
    static func finalLoss(_ folder: URL) -> Double? {
        guard let data = try? Data(contentsOf: folder.appendingPathComponent("summary.json")),
              let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        return obj["final_val_loss"] as? Double
    }

    static func rows(_ s: Sweep, _ points: [Sweep.Point]) -> [Row] {
        points.map { p in
            let folder = s.folder(p)
            let (state, status) = SweepPointStatus.read(folder)
            var steps: Int?, loss: Double?
            if let data = try? Data(contentsOf: folder.appendingPathComponent("summary.json")),
               let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
                steps = obj["steps"] as? Int
                loss = obj["final_val_loss"] as? Double
            } else if let text = try? String(contentsOf: folder.appendingPathComponent("metrics.jsonl"), encoding: .utf8),
                      let last = text.split(separator: "\n").last,
                      let obj = try? JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any] {
                steps = obj["step"] as? Int
            }
            return Row(name: p.name, state: state, steps: steps, valLoss: loss, error: state == .failed ? status?.error : nil)
        }
    }

    static func printTable(_ rows: [Row]) {
        for r in rows {
            let steps = r.steps.map { String($0) } ?? "-", loss = r.valLoss.map { String(format: "%.4f", $0) } ?? "-"
            print("  " + r.name.padding(toLength: 44, withPad: " ", startingAt: 0) + " " + r.state.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)
                  + " steps " + steps.padding(toLength: 7, withPad: " ", startingAt: 0) + " val " + loss + (r.error.map { "  \($0)" } ?? ""))
        }
        let counts = Dictionary(grouping: rows, by: \.state).mapValues(\.count)
        print("total \(rows.count): " + [SweepState.done, .running, .stopped, .failed, .missing].map { "\(counts[$0] ?? 0) \($0.rawValue)" }.joined(separator: ", "))
    }

    func run() throws {
        let s = try Sweep.load(URL(fileURLWithPath: sweep))
        let table = SweepStatusCommand.rows(s, try s.tuningPoints() + s.points())
        if json { try Console.printJSON(["sweep": s.name, "folder": s.out.path, "points": table.map(\.json)]) } else {
            print("sweep \(s.name) -> \(s.out.path)")
            SweepStatusCommand.printTable(table)
        }
    }
}

extension Sweep {
    /// The last `count` non-empty lines of a log file, joined (a failed point's error).
    static func lastLines(of url: URL, count: Int) -> String {
        let text = (try? String(contentsOf: url, encoding: .utf8)) ?? ""
        let lines = text.replacingOccurrences(of: "\r", with: "\n").split(separator: "\n").map(String.init).filter { !$0.isEmpty }
        return lines.suffix(count).joined(separator: " | ")
    }

    /// Copies the tokenized-corpus cache (`data/`) of a point that has one into a new point's
    /// folder: the trainer reuses it only when its meta.json matches the point's own data, files
    /// and tokenizer (and tokenizes afresh otherwise), so this only saves the tokenization.
    static func seedDataCache(_ folder: URL, from s: Sweep) {
        let fm = FileManager.default
        let target = folder.appendingPathComponent("data")
        guard !fm.fileExists(atPath: target.path),
              let siblings = try? fm.contentsOfDirectory(at: s.out, includingPropertiesForKeys: nil) else { return }
        for sibling in siblings where sibling.lastPathComponent != folder.lastPathComponent {
            let data = sibling.appendingPathComponent("data")
            if fm.fileExists(atPath: data.appendingPathComponent("meta.json").path) {
                try? fm.copyItem(at: data, to: target)
                return
            }
        }
    }

    /// Seconds of one training step of `model` at the recipe's batch (the second of two).
    static func measureStep(model: GPT2Model, recipe: Recipe) throws -> Double {
        let (b, t) = (recipe.training.batchSize, recipe.training.seqLen)
        var rng = RandomGenerator(seed: 3)
        let v = UInt64(model.config.vocabSize)
        let batches = (0..<recipe.training.gradAccum).map { _ in
            TokenBatch(inputs: (0..<(b * t)).map { _ in Int32(rng.next() % v) }, targets: (0..<(b * t)).map { _ in Int32(rng.next() % v) },
                       batch: b, seqLen: t)
        }
        let optimizer = AdamW(model.namedParameters, hyper: recipe.optimizer)
        let step = OptimizerStep(optimizer: optimizer, schedule: LRSchedule(peak: 1e-4, totalSteps: 10, decay: .constant), clipNorm: 1)
        _ = try step.run(step: 0, model: model, microBatches: batches, dropoutKey: nil)
        let start = DispatchTime.now().uptimeNanoseconds
        _ = try step.run(step: 1, model: model, microBatches: batches, dropoutKey: nil)
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }
}
