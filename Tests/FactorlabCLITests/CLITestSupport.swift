import FactorlabCheckpoint
import Foundation
import FactorlabTestSupport
import XCTest

/// Runs the built `factorlab` executable (a sibling of the test bundle in .build/<config>/).
struct CLI {
    static var executable: URL {
        let bundleDir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        return bundleDir.appendingPathComponent("factorlab")
    }

    static var repository: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    /// Runs `factorlab args...` in `directory` and waits (at most `timeout` seconds). With a
    /// `launcher` (e.g. ``mpirun(ranks:)``) runs `launcher... factorlab args...` instead.
    @discardableResult
    static func run(_ args: [String], in directory: URL, environment: [String: String] = [:], timeout: TimeInterval = 300,
                    launcher: [String]? = nil) throws -> Result {
        let p = Process()
        if let launcher {
            p.executableURL = URL(fileURLWithPath: launcher[0])
            p.arguments = Array(launcher.dropFirst()) + [executable.path] + args
        } else {
            p.executableURL = executable
            p.arguments = args
        }
        p.currentDirectoryURL = directory
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        p.environment = env
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        // Drain both pipes while the process runs so a chatty child never blocks.
        var outData = Data(), errData = Data()
        let group = DispatchGroup()
        let outBox = Box(), errBox = Box()
        group.enter()
        DispatchQueue.global().async { outBox.data = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        group.enter()
        DispatchQueue.global().async { errBox.data = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(20_000) }
        if p.isRunning { p.terminate() }
        p.waitUntilExit()
        group.wait()
        outData = outBox.data
        errData = errBox.data
        return Result(status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errData, as: UTF8.self))
    }

    final class Box: @unchecked Sendable { var data = Data() }

    struct MissingTool: Error, CustomStringConvertible {
        let description: String
    }

    /// `mpirun -np N` for an N-rank job on this machine: `--oversubscribe` in case it has fewer
    /// cores than ranks, `--allow-run-as-root` for containers. Throws if Open MPI is not installed
    /// (`.ci/install` installs it).
    static func mpirun(ranks: Int) throws -> [String] {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
            .map { "\($0)/mpirun" }.first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let path else { throw MissingTool(description: "mpirun not found on PATH: install openmpi-bin (.ci/install does)") }
        return [path, "--oversubscribe", "--allow-run-as-root", "-np", String(ranks)]
    }

    /// A fresh temporary folder.
    static func temporaryDirectory() throws -> URL { try temporaryFolder("cli") }

    /// A very small pretraining recipe on one Milton file, with dropout on so that resume must
    /// restore the random-generator state as well.
    static func tinyRecipe(name: String, steps: Int = 12, interval: Int = 4, extra: String = "") -> String {
        """
        name: \(name)
        seed: 7
        model: {n_layer: 2, n_head: 2, n_embd: 32, n_positions: 32, mlp: "monarch:2@1", dropout: 0.1}
        data:
          paths: [\(repository.appendingPathComponent("Recipes/corpora/milton/paradise_regained_gut.txt").path)]
          split: tail
          val_fraction: 0.1
          loader: shuffled
        tokenizer: {path: tok, vocab_size: 320}
        optimizer: {lr: 3.0e-3, weight_decay: 0.1}
        schedule: {kind: cosine, warmup_steps: 3, min_lr: 3.0e-4}
        training: {batch_size: 4, seq_len: 16, max_steps: \(steps), grad_clip: 1.0}
        eval: {interval: 4, batches: 2, sample_tokens: 8, prompt: "The"}
        checkpoint: {dir: runs/\(name), interval: \(interval), keep_last: 2, keep_best: true}
        \(extra)
        """
    }
}

extension CLI {
    /// Tiny trained runs, one per name, made once per test process for the test classes that
    /// need a model (a folder with `<name>.yaml` and its run under `runs/<name>`).
    nonisolated(unsafe) static var trainedRuns: [String: URL] = [:]

    static func trainedRun(_ name: String, steps: Int) throws -> URL {
        if let dir = trainedRuns["\(name)-\(steps)"] { return dir }
        let dir = try temporaryDirectory()
        try tinyRecipe(name: name, steps: steps).write(to: dir.appendingPathComponent("\(name).yaml"), atomically: true, encoding: .utf8)
        let r = try run(["pretrain", "\(name).yaml"], in: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        trainedRuns["\(name)-\(steps)"] = dir
        return dir
    }

    /// Removes the trained run `name` of `steps` steps (a test class's tearDown).
    static func removeTrainedRun(_ name: String, steps: Int) {
        if let d = trainedRuns.removeValue(forKey: "\(name)-\(steps)") { try? FileManager.default.removeItem(at: d) }
    }
}

extension CLI {
    /// Starts `factorlab args` in `directory` (output discarded) and waits until `run` holds a
    /// checkpoint of step `step` or later, or the process ends, or two minutes pass.
    static func startAndWaitForCheckpoint(_ args: [String], in directory: URL, run: URL, step: Int) throws -> Process {
        let p = Process()
        p.executableURL = executable
        p.arguments = args
        p.currentDirectoryURL = directory
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(120)
        while p.isRunning && Date() < deadline {
            if (try CheckpointFiles.steps(in: run)).contains(where: { $0.step >= step }) { break }
            usleep(5_000)
        }
        return p
    }
}
