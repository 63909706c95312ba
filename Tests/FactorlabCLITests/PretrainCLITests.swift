import FactorlabCheckpoint
import FactorlabTensor
import Foundation
import XCTest

/// End-to-end runs of the `factorlab` executable: training, exact resume (clean stop and
/// kill -9), failures and their messages.
final class PretrainCLITests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws { dir = try CLI.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func write(_ recipe: String, _ name: String) throws -> String {
        try recipe.write(to: dir.appendingPathComponent(name), atomically: true, encoding: .utf8)
        return name
    }

    func parameters(_ checkpoint: URL) throws -> [String: [Float]] {
        try Checkpoint.read(checkpoint, includeOptimizer: true).parameters.mapValues(\.scalars)
    }

    func trainLosses(_ run: URL) throws -> [Int: Double] {
        let text = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        var out: [Int: Double] = [:]
        for line in text.split(separator: "\n") {
            let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            if let l = obj["train_loss"] as? Double { out[obj["step"] as! Int] = l }
        }
        return out
    }

    /// A run stopped after its last checkpoint but before its summary (killed while measuring
    /// inference) resumes with no step left to train and finishes: its JSON has no train loss
    /// of its own instead of failing on NaN (a sweep once recorded such points as failed).
    func testResumeAtTheLastStepFinishesTheRun() throws {
        _ = try write(CLI.tinyRecipe(name: "last", steps: 4), "last.yaml")
        XCTAssertEqual(try CLI.run(["pretrain", "last.yaml"], in: dir).status, 0)
        let run = dir.appendingPathComponent("runs/last")
        try FileManager.default.removeItem(at: run.appendingPathComponent("summary.json"))
        let r = try CLI.run(["resume", "runs/last", "--json"], in: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        let obj = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], r.stdout)
        XCTAssertEqual(obj["steps"] as? Int, 4)
        XCTAssertNil(obj["final_train_loss"])
        XCTAssertNotNil(obj["final_val_loss"])
        XCTAssertTrue(FileManager.default.fileExists(atPath: run.appendingPathComponent("summary.json").path))
    }

    /// 12 steps in one go, and 8 steps + stop + resume to 12, give bit-identical parameters,
    /// optimizer state and loss curves.
    func testStopAndResumeIsBitwiseIdentical() throws {
        try assertStopAndResumeIsBitwiseIdentical(overrides: [])
    }

    /// The same with every linear layer structured: each block site of a different kind, the
    /// normalized BTT's core scales among the parameters, and a factorized tied embedding.
    func testStopAndResumeWithEverySiteStructuredIsBitwiseIdentical() throws {
        let spec = "mlp.c_fc=monarch:4,mlp.c_proj=btt-norm:2,attn.c_attn=btt:2,attn.c_proj=lowrank:8,head=lowrank:16"
        try assertStopAndResumeIsBitwiseIdentical(overrides: ["--set", "model.linear=\(spec)"])
        let run = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("runs/split/run.json"))) as! [String: Any]
        XCTAssertEqual(run["family"] as? String, spec, "the family is the whole linear spec")
        let params = try Checkpoint.read(dir.appendingPathComponent("runs/split/ckpt-00000012.h5")).parameters
        XCTAssertNotNil(params["h.1.mlp.c_proj.btt.gamma1"])
        XCTAssertNotNil(params["wte.lowrank.a"])
        XCTAssertNil(params["wte.weight"])
    }

    /// checkpoint.keep_steps: those steps' checkpoints are written and survive pruning.
    func testKeepStepsSurvivePruning() throws {
        let r = try CLI.run(["pretrain", try write(CLI.tinyRecipe(name: "kept"), "kept.yaml"), "--set", "checkpoint.keep_steps=[2, 5]"], in: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        let steps = try CheckpointFiles.steps(in: dir.appendingPathComponent("runs/kept")).map(\.step)
        XCTAssertEqual(steps, [2, 5, 8, 12], "keep_last 2 of the interval-4 checkpoints, plus steps 2 and 5")
        let bad = try CLI.run(["pretrain", "kept.yaml", "--set", "checkpoint.keep_steps=[0]", "--set", "checkpoint.dir=runs/bad"], in: dir)
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("checkpoint.keep_steps must list step numbers"), bad.stderr)
    }

    func assertStopAndResumeIsBitwiseIdentical(overrides: [String]) throws {
        let full = try CLI.run(["pretrain", try write(CLI.tinyRecipe(name: "full"), "full.yaml"), "--json"] + overrides, in: dir)
        XCTAssertEqual(full.status, 0, full.stderr)
        let summary = try JSONSerialization.jsonObject(with: Data(full.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(summary["steps"] as? Int, 12)
        XCTAssertLessThan(summary["final_train_loss"] as! Double, summary["first_train_loss"] as! Double, "the loss falls")

        let recipe = try write(CLI.tinyRecipe(name: "split"), "split.yaml")
        let first = try CLI.run(["pretrain", recipe] + overrides, in: dir, environment: ["FACTORLAB_STOP_AFTER_STEPS": "8"])
        XCTAssertEqual(first.status, 0, first.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("runs/split/ckpt-00000008.h5").path))
        let second = try CLI.run(["resume", "runs/split"], in: dir)
        XCTAssertEqual(second.status, 0, second.stderr)
        XCTAssertTrue(second.stderr.contains("resuming from ckpt-00000008.h5 at step 8"), second.stderr)

        let a = dir.appendingPathComponent("runs/full/ckpt-00000012.h5"), b = dir.appendingPathComponent("runs/split/ckpt-00000012.h5")
        XCTAssertEqual(try parameters(a), try parameters(b), "parameters after resume are bit-identical")
        let ca = try Checkpoint.read(a), cb = try Checkpoint.read(b)
        XCTAssertEqual(ca.m.mapValues(\.scalars), cb.m.mapValues(\.scalars), "optimizer moments are bit-identical")
        XCTAssertEqual(ca.progress?.tokensSeen, cb.progress?.tokensSeen)
        XCTAssertEqual(ca.progress?.rngStates, cb.progress?.rngStates)
        XCTAssertEqual(try trainLosses(dir.appendingPathComponent("runs/full")), try trainLosses(dir.appendingPathComponent("runs/split")),
                       "the loss curve is the same, without duplicated steps")
    }

    /// A run killed with SIGKILL after a checkpoint resumes to the same parameters as a run that
    /// was never interrupted.
    func testKillNineAfterASaveResumesExactly() throws {
        let steps = 40
        let fullRecipe = try write(CLI.tinyRecipe(name: "ref", steps: steps, interval: 10), "ref.yaml")
        XCTAssertEqual(try CLI.run(["pretrain", fullRecipe], in: dir).status, 0)

        let recipe = try write(CLI.tinyRecipe(name: "killed", steps: steps, interval: 10), "killed.yaml")
        let run = dir.appendingPathComponent("runs/killed")
        let p = try CLI.startAndWaitForCheckpoint(["pretrain", recipe], in: dir, run: run, step: 10)
        guard p.isRunning else {
            // The run finished before it could be killed: nothing to test on this machine's speed.
            return XCTFail("the run finished before a checkpoint appeared; make the recipe longer")
        }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationReason, .uncaughtSignal)
        let saved = try CheckpointFiles.steps(in: run).map(\.step)
        XCTAssertFalse(saved.isEmpty)
        XCTAssertLessThan(saved.last!, steps, "killed before the end")
        let resumed = try CLI.run(["resume", "runs/killed"], in: dir)
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertEqual(try parameters(run.appendingPathComponent(CheckpointFiles.name(step: steps))),
                       try parameters(dir.appendingPathComponent("runs/ref/\(CheckpointFiles.name(step: steps))")))
    }

    func testDivergenceStopsWithTheStepAndKeepsTheLastGoodCheckpoint() throws {
        let recipe = try write(CLI.tinyRecipe(name: "nan", steps: 30, interval: 1,
                                              extra: "").replacingOccurrences(of: "lr: 3.0e-3", with: "lr: 1.0e+6")
                                              .replacingOccurrences(of: "grad_clip: 1.0", with: "grad_clip: 1.0e+30"), "nan.yaml")
        let r = try CLI.run(["pretrain", recipe], in: dir)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("training stopped: the loss became"), r.stderr)
        guard let stepText = r.stderr.range(of: #"at step (\d+)"#, options: .regularExpression).map({ r.stderr[$0] }) else {
            return XCTFail("no step in: \(r.stderr)")
        }
        let failedStep = Int(stepText.split(separator: " ").last!)!
        let kept = try CheckpointFiles.steps(in: dir.appendingPathComponent("runs/nan"))
        XCTAssertEqual(kept.last?.step, failedStep - 1, "the last checkpoint is the last good step")
        if let last = kept.last {
            let c = try Checkpoint.read(last.url)
            XCTAssertTrue(c.parameters.values.allSatisfy { $0.scalars.allSatisfy(\.isFinite) }, "the kept checkpoint is finite")
        }
    }

    func testRecipeErrorsNameTheKey() throws {
        let bad = try write(CLI.tinyRecipe(name: "bad").replacingOccurrences(of: "optimizer: {lr: 3.0e-3", with: "optimizer: {lrr: 3.0e-3"), "bad.yaml")
        let r = try CLI.run(["pretrain", bad], in: dir)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("bad.yaml:10: unknown key optimizer.lrr; keys of optimizer are: lr, beta1, beta2, eps, weight_decay, no_decay"), r.stderr)
        let r2 = try CLI.run(["pretrain", try write(CLI.tinyRecipe(name: "bad2"), "bad2.yaml"), "--set", "training.batch_size=many"], in: dir)
        XCTAssertNotEqual(r2.status, 0)
        XCTAssertTrue(r2.stderr.contains("training.batch_size must be an integer, got 'many'"), r2.stderr)
    }
}
