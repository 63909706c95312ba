import FactorlabCheckpoint
import Foundation
import XCTest

/// `factorlab sweep` end to end: runs, skips finished points, resumes a point whose sweep was
/// killed (SIGKILL) to bit-identical records, records a failed point and goes on, and refuses a
/// second sweep in the same folder.
final class SweepCLITests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws { dir = try CLI.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func write(_ text: String, _ name: String) throws -> String {
        try text.write(to: dir.appendingPathComponent(name), atomically: true, encoding: .utf8)
        return name
    }

    func sweepFile(_ name: String, grid: String) throws -> String {
        try write("name: \(name)\nbase: base.yaml\nout: sweeps/\(name)\ngrid:\n\(grid)\n", "\(name).yaml")
    }

    func json(_ r: CLI.Result) throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], r.stderr)
    }

    func testRunSkipFailAndLock() throws {
        _ = try write(CLI.tinyRecipe(name: "base", steps: 6, interval: 3), "base.yaml")
        // n_embd 33 is not divisible by the 2 heads: that point fails, the others run.
        let file = try sweepFile("grid", grid: "  model.n_embd: [32, 33]\n  seed: [1, 2]")
        let dry = try json(try CLI.run(["sweep", file, "--dry-run", "--json"], in: dir))
        XCTAssertNotNil(dry["points"])
        let first = try CLI.run(["sweep", file, "--json"], in: dir)
        XCTAssertNotEqual(first.status, 0, "a failed point makes the sweep fail at the end")
        let table = try json(first)["points"] as! [[String: Any]]
        XCTAssertEqual(table.map { $0["point"] as! String }, ["n_embd-32_seed-1", "n_embd-32_seed-2", "n_embd-33_seed-1", "n_embd-33_seed-2"])
        XCTAssertEqual(table.map { $0["state"] as! String }, ["done", "done", "failed", "failed"])
        XCTAssertTrue((table[2]["error"] as! String).contains("n_head 2 does not divide n_embd 33"), "\(table[2])")
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("sweeps/grid/n_embd-32_seed-2/run.json").path))
        // Run again: the finished points are skipped (their records untouched).
        let summary = dir.appendingPathComponent("sweeps/grid/n_embd-32_seed-1/summary.json")
        let before = try Data(contentsOf: summary)
        let again = try CLI.run(["sweep", file], in: dir)
        XCTAssertTrue(again.stderr.contains("2 done, 2 to run"), again.stderr)
        XCTAssertEqual(try Data(contentsOf: summary), before)
        let status = try json(try CLI.run(["sweep", "status", file, "--json"], in: dir))
        XCTAssertEqual((status["points"] as! [[String: Any]]).map { $0["state"] as! String }, ["done", "done", "failed", "failed"])
        // A live lock (this test process's pid) refuses a second sweep.
        try "\(getpid())\n".write(to: dir.appendingPathComponent("sweeps/grid/sweep.lock"), atomically: true, encoding: .utf8)
        let locked = try CLI.run(["sweep", file], in: dir)
        XCTAssertNotEqual(locked.status, 0)
        XCTAssertTrue(locked.stderr.contains("is in use by another sweep (pid \(getpid())"), locked.stderr)
    }

    /// A tuned sweep: tuning points first, then every grid point with its family's best value,
    /// recorded in tuning.json and in each point's recipe.
    func testTunedLearningRatePerFamily() throws {
        _ = try write(CLI.tinyRecipe(name: "base", steps: 6, interval: 3), "base.yaml")
        let file = try write("""
            name: tuned
            base: base.yaml
            out: sweeps/tuned
            grid:
              model.linear: [dense, "mlp=monarch:2"]
            tune: {key: optimizer.lr, values: [1.0e-3, 3.0e-3], per: model.linear, at: {model.linear: dense}}
            """, "tuned.yaml")
        // `at` fixes model.linear to dense, so only the dense family is tuned: the Monarch point fails, and says why.
        let r = try CLI.run(["sweep", file, "--json"], in: dir)
        let table = try json(r)["points"] as! [[String: Any]]
        XCTAssertEqual(table.map { $0["state"] as! String }, ["done", "done", "done", "failed"], "\(table)")
        XCTAssertTrue((table[3]["error"] as? String ?? "").contains("no finished tuning point for model.linear=mlp=monarch:2"), "\(table[3])")
        let tuning = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("sweeps/tuned/tuning.json"))) as! [String: Any]
        let dense = try XCTUnwrap((tuning["families"] as? [String: Any])?["dense"] as? [String: Any])
        let best = try XCTUnwrap(dense["best"] as? String)
        let losses = try XCTUnwrap(dense["mean_final_val_loss"] as? [String: Double])
        XCTAssertEqual(best, losses.min { $0.value < $1.value }!.key)
        let recipe = try XCTUnwrap(try Checkpoint.recipe(of: dir.appendingPathComponent("sweeps/tuned/linear-dense/ckpt-00000006.h5")))
        XCTAssertTrue(recipe.contains("optimizer.lr=\(best)"), recipe)
        // The dense grid point is exactly the tuning point at the best value: linked, not trained twice.
        let link = try FileManager.default.destinationOfSymbolicLink(atPath: dir.appendingPathComponent("sweeps/tuned/linear-dense").path)
        XCTAssertEqual(link, "tune/linear-dense_lr-\(best)")
        XCTAssertTrue(r.stderr.contains("linear-dense is tuning point tune/linear-dense_lr-\(best): linked"), r.stderr)
    }

    func testKilledSweepResumesItsPointToBitIdenticalRecords() throws {
        let steps = 40
        _ = try write(CLI.tinyRecipe(name: "base", steps: steps, interval: 10), "base.yaml")
        let ref = try sweepFile("ref", grid: "  seed: [3]")
        XCTAssertEqual(try CLI.run(["sweep", ref], in: dir).status, 0)
        let killed = try sweepFile("killed", grid: "  seed: [3]")
        let point = dir.appendingPathComponent("sweeps/killed/point")
        let p = try CLI.startAndWaitForCheckpoint(["sweep", killed], in: dir, run: point, step: 10)
        // Kill the sweep and its running point, as a power cut would.
        let status = try JSONSerialization.jsonObject(with: Data(contentsOf: point.appendingPathComponent("sweep-status.json"))) as! [String: Any]
        let child = Int32(status["pid"] as! Int)
        kill(p.processIdentifier, SIGKILL)
        kill(child, SIGKILL)
        p.waitUntilExit()
        while kill(child, 0) == 0 { usleep(10_000) }
        let saved = try CheckpointFiles.steps(in: point).map(\.step)
        XCTAssertFalse(saved.isEmpty)
        XCTAssertLessThan(saved.last!, steps, "killed before the end")
        let stateNow = try json(try CLI.run(["sweep", "status", killed, "--json"], in: dir))
        XCTAssertEqual((stateNow["points"] as! [[String: Any]])[0]["state"] as? String, "stopped")
        let resumed = try CLI.run(["sweep", killed], in: dir)
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        let a = try Checkpoint.read(point.appendingPathComponent(CheckpointFiles.name(step: steps)), includeOptimizer: true)
        let b = try Checkpoint.read(dir.appendingPathComponent("sweeps/ref/point/\(CheckpointFiles.name(step: steps))"), includeOptimizer: true)
        XCTAssertEqual(a.parameters.mapValues(\.scalars), b.parameters.mapValues(\.scalars), "bit-identical parameters")
        XCTAssertEqual(a.m.mapValues(\.scalars), b.m.mapValues(\.scalars), "bit-identical optimizer moments")
        func trainLosses(_ folder: URL) throws -> [String] {
            try String(contentsOf: folder.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n").compactMap { line in
                let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
                return o["train_loss"].map { "\(o["step"]!) \($0)" }
            }
        }
        XCTAssertEqual(try trainLosses(point), try trainLosses(dir.appendingPathComponent("sweeps/ref/point")), "the same loss curve")
    }
}
