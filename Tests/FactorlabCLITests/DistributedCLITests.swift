import FactorlabCheckpoint
import FactorlabTensor
import Foundation
import XCTest

/// Data-parallel training under `mpirun` (Open MPI): 2 ranks with batch B against one process with
/// batch 2B, checkpoints moving between rank counts, and a killed rank ending the job.
final class DistributedCLITests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws { dir = try CLI.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// The tiny recipe without dropout (masks differ between ranks by design) and with a
    /// validation set big enough for two ranks.
    func recipe(_ name: String, batch: Int, steps: Int = 6) throws -> String {
        let text = CLI.tinyRecipe(name: name, steps: steps, interval: 3)
            .replacingOccurrences(of: "dropout: 0.1", with: "dropout: 0.0")
            .replacingOccurrences(of: "batch_size: 4", with: "batch_size: \(batch)")
        try text.write(to: dir.appendingPathComponent("\(name).yaml"), atomically: true, encoding: .utf8)
        return "\(name).yaml"
    }

    func parameters(_ run: String, step: Int) throws -> [String: [Float]] {
        try Checkpoint.read(dir.appendingPathComponent("runs/\(run)/\(CheckpointFiles.name(step: step))")).parameters.mapValues(\.scalars)
    }

    func metrics(_ run: String, _ key: String) throws -> [Int: Double] {
        let text = try String(contentsOf: dir.appendingPathComponent("runs/\(run)/metrics.jsonl"), encoding: .utf8)
        var out: [Int: Double] = [:]
        for line in text.split(separator: "\n") {
            let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            if let v = obj[key] as? Double { out[obj["step"] as! Int] = v }
        }
        return out
    }

    /// Largest |a - b| over all parameters, and the names must match.
    func maxDifference(_ a: [String: [Float]], _ b: [String: [Float]]) -> Float {
        XCTAssertEqual(Set(a.keys), Set(b.keys))
        var worst: Float = 0
        for (name, x) in a {
            guard let y = b[name], x.count == y.count else { XCTFail("\(name) differs in size"); continue }
            for i in x.indices { worst = max(worst, abs(x[i] - y[i])) }
        }
        return worst
    }

    /// Two ranks reduce the same gradient as one process in a different float summation order
    /// (the loss is a mean over 4 rows per rank, then averaged), so results agree to float
    /// rounding, amplified a little by six AdamW steps at lr 3e-3 (an update's size is about lr
    /// whatever the gradient's scale).
    let parameterTolerance: Float = 2e-5

    func testTwoRanksWithBatchBMatchOneProcessWithBatch2B() throws {
        let two = try CLI.run(["pretrain", try recipe("two", batch: 4), "--json"], in: dir, launcher: try CLI.mpirun(ranks: 2))
        XCTAssertEqual(two.status, 0, two.stderr)
        let one = try CLI.run(["pretrain", try recipe("one", batch: 8), "--json"], in: dir)
        XCTAssertEqual(one.status, 0, one.stderr)
        XCTAssertTrue(two.stderr.contains("on 2 ranks"), two.stderr)
        // Rank 0 alone prints the results: exactly one JSON object.
        let result = try JSONSerialization.jsonObject(with: Data(two.stdout.utf8)) as? [String: Any]
        XCTAssertEqual(result?["tokens"] as? Int, 6 * 8 * 16, "tokens count both ranks")

        let lossesTwo = try metrics("two", "train_loss"), lossesOne = try metrics("one", "train_loss")
        XCTAssertEqual(lossesTwo.keys.sorted(), Array(1...6))
        for step in 1...6 { XCTAssertEqual(lossesTwo[step]!, lossesOne[step]!, accuracy: 1e-5, "train loss at step \(step)") }
        let valTwo = try metrics("two", "val_loss"), valOne = try metrics("one", "val_loss")
        XCTAssertEqual(valTwo.keys.sorted(), valOne.keys.sorted())
        for (step, v) in valOne { XCTAssertEqual(valTwo[step]!, v, accuracy: 1e-5, "val loss at step \(step)") }
        XCTAssertNotNil(try metrics("two", "allreduce_s")[1], "the allreduce time is recorded")

        let difference = maxDifference(try parameters("two", step: 6), try parameters("one", step: 6))
        print("max parameter difference, 2 ranks x 4 vs 1 x 8 after 6 steps: \(difference)")
        XCTAssertLessThan(difference, parameterTolerance)
        // And the parameters did move: the comparison is not between two untouched models.
        let start = try parameters("one", step: 3)
        XCTAssertGreaterThan(maxDifference(start, try parameters("one", step: 6)), 1e-3)
    }

    func testCheckpointsMoveBetweenTwoRanksAndOne() throws {
        let reference = try CLI.run(["pretrain", try recipe("ref", batch: 8)], in: dir)
        XCTAssertEqual(reference.status, 0, reference.stderr)
        let expected = try parameters("ref", step: 6)

        // 2 ranks for 3 steps, then 1 process to the end.
        let stop = ["FACTORLAB_STOP_AFTER_STEPS": "3"]
        let first = try CLI.run(["pretrain", try recipe("a", batch: 4)], in: dir, environment: stop, launcher: try CLI.mpirun(ranks: 2))
        XCTAssertEqual(first.status, 0, first.stderr)
        XCTAssertEqual(try CheckpointFiles.steps(in: dir.appendingPathComponent("runs/a")).last?.step, 3)
        // The global batch must stay the same; the error says how.
        let mismatch = try CLI.run(["resume", "runs/a"], in: dir)
        XCTAssertNotEqual(mismatch.status, 0)
        XCTAssertTrue(mismatch.stderr.contains("8 sequences per step") && mismatch.stderr.contains("training.batch_size=8"), mismatch.stderr)
        let second = try CLI.run(["resume", "runs/a", "--set", "training.batch_size=8"], in: dir)
        XCTAssertEqual(second.status, 0, second.stderr)
        XCTAssertLessThan(maxDifference(try parameters("a", step: 6), expected), parameterTolerance)

        // 1 process for 3 steps, then 2 ranks to the end.
        let third = try CLI.run(["pretrain", try recipe("b", batch: 8)], in: dir, environment: stop)
        XCTAssertEqual(third.status, 0, third.stderr)
        let fourth = try CLI.run(["resume", "runs/b", "--set", "training.batch_size=4"], in: dir, launcher: try CLI.mpirun(ranks: 2))
        XCTAssertEqual(fourth.status, 0, fourth.stderr)
        XCTAssertLessThan(maxDifference(try parameters("b", step: 6), expected), parameterTolerance)
    }

    /// kill -9 of one rank in the middle of training: mpirun stops the other rank and exits
    /// non-zero within seconds, and the surviving rank says why.
    func testAKilledRankStopsTheJobInsteadOfHanging() throws {
        let launcher = try CLI.mpirun(ranks: 2)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: launcher[0])
        p.arguments = Array(launcher.dropFirst()) + [CLI.executable.path, "pretrain", try recipe("long", batch: 4, steps: 100_000)]
        p.currentDirectoryURL = dir
        let err = Pipe()
        p.standardOutput = FileHandle.nullDevice
        p.standardError = err
        let box = CLI.Box()
        let drained = DispatchSemaphore(value: 0)
        DispatchQueue.global().async { box.data = err.fileHandleForReading.readDataToEndOfFile(); drained.signal() }
        try p.run()
        defer { if p.isRunning { p.terminate() } }

        // Wait until both ranks are training (a few steps recorded).
        let metrics = dir.appendingPathComponent("runs/long/metrics.jsonl")
        let started = Date()
        while Date().timeIntervalSince(started) < 120 {
            if let text = try? String(contentsOf: metrics, encoding: .utf8), text.split(separator: "\n").count >= 5 { break }
            usleep(20_000)
        }
        XCTAssertTrue(p.isRunning, "the job is still training")
        let ranks = try childProcesses(of: p.processIdentifier)
        XCTAssertEqual(ranks.count, 2, "mpirun started two ranks")
        guard let victim = ranks.last else { return }
        kill(victim, SIGKILL)
        let killed = Date()
        while p.isRunning && Date().timeIntervalSince(killed) < 60 { usleep(20_000) }
        let seconds = Date().timeIntervalSince(killed)
        XCTAssertFalse(p.isRunning, "mpirun still running 60 s after a rank was killed")
        p.waitUntilExit()
        XCTAssertNotEqual(p.terminationStatus, 0)
        XCTAssertLessThan(seconds, 30)
        drained.wait()
        let stderr = String(decoding: box.data, as: UTF8.self)
        XCTAssertTrue(stderr.contains("exited on signal 9") || stderr.contains("stopped by mpirun"), stderr)
        for pid in ranks { XCTAssertFalse(isRunning(pid), "rank \(pid) is gone") }
    }

    /// Whether `pid` exists and is not a zombie (a container's init may never reap the ranks).
    func isRunning(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.range(of: ")", options: .backwards) else { return false }
        return stat[close.upperBound...].split(separator: " ").first != "Z"
    }

    /// An error on one rank only (rank 0 cannot write its checkpoint: a folder is in the way)
    /// ends the whole job at once through MPI_Abort, with the error and the rank named, instead
    /// of leaving rank 1 waiting in the next allreduce. (mpirun's own banner about the abort is
    /// not asserted: whether it gets printed depends on timing.)
    func testAnErrorOnOneRankAbortsTheJob() throws {
        let blocker = dir.appendingPathComponent("runs/blocked/\(CheckpointFiles.name(step: 3))/x")
        try FileManager.default.createDirectory(at: blocker, withIntermediateDirectories: true)
        let started = Date()
        let r = try CLI.run(["pretrain", try recipe("blocked", batch: 4)], in: dir, timeout: 120, launcher: try CLI.mpirun(ranks: 2))
        XCTAssertNotEqual(r.status, 0)
        XCTAssertLessThan(Date().timeIntervalSince(started), 60)
        XCTAssertTrue(r.stderr.contains("factorlab rank 0: error:") && r.stderr.contains(CheckpointFiles.name(step: 3)), r.stderr)
    }

    /// Direct children of `pid` (the ranks mpirun forked on this machine), from /proc.
    func childProcesses(of pid: Int32) throws -> [Int32] {
        var children: [Int32] = []
        for entry in try FileManager.default.contentsOfDirectory(atPath: "/proc") {
            guard let child = Int32(entry),
                  let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let close = stat.range(of: ")", options: .backwards) else { continue }
            let fields = stat[close.upperBound...].split(separator: " ")
            if fields.count > 1, Int32(fields[1]) == pid { children.append(child) }
        }
        return children.sorted()
    }
}
