import Foundation
import XCTest

/// `factorlab eval --task glue-TASK|coqa` on tiny models and the committed GLUE/CoQA fixtures: the
/// scores equal those of the finetuning code's own evaluation of the same checkpoint.
final class TaskEvalCLITests: XCTestCase {
    var dir: URL!
    let fixtures = CLI.repository.appendingPathComponent("Tests/FactorlabTasksTests/Fixtures")

    override func setUpWithError() throws { dir = try CLI.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func json(_ r: CLI.Result) throws -> [String: Any] {
        XCTAssertEqual(r.status, 0, r.stderr)
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], r.stdout)
    }

    /// A 2-step pretraining run with the given context.
    func pretrained(context: Int) throws -> String {
        let recipe = CLI.tinyRecipe(name: "base", steps: 2).replacingOccurrences(of: "n_positions: 32", with: "n_positions: \(context)")
        try recipe.write(to: dir.appendingPathComponent("base.yaml"), atomically: true, encoding: .utf8)
        XCTAssertEqual(try CLI.run(["pretrain", "base.yaml"], in: dir).status, 0)
        return "runs/base"
    }

    func testGlueEvalScoresTheFinetunedHeadLikeTheFinetuner() throws {
        let base = try pretrained(context: 32)
        let recipe = """
        name: sst2
        task: sst2
        model: {init_from: \(base), dropout: false}
        data: {root: \(fixtures.appendingPathComponent("glue").path), max_length: 32}
        training: {epochs: 2, batch_size: 2, eval_batch_size: 2}
        output: {dir: ft}
        """
        try recipe.write(to: dir.appendingPathComponent("sst2.yaml"), atomically: true, encoding: .utf8)
        let finetuned = try json(try CLI.run(["finetune", "sst2.yaml", "--json"], in: dir))
        let best = try XCTUnwrap(finetuned["best_checkpoint"] as? String)
        let bestDev = try XCTUnwrap(finetuned["best_dev"] as? [String: Double])

        let r = try CLI.run(["eval", "--model", best, "--task", "glue-sst2", "--data", fixtures.appendingPathComponent("glue").path, "--json"], in: dir)
        let scored = try json(r)
        XCTAssertEqual(scored["head"] as? String, "from the model")
        XCTAssertFalse(r.stderr.contains("untrained head"), r.stderr)
        let dev = try XCTUnwrap(scored["dev"] as? [String: Double])
        XCTAssertEqual(dev["accuracy"], bestDev["accuracy"], "eval agrees with the finetuner's dev score of its best checkpoint")
        XCTAssertEqual(dev["loss"]!, bestDev["loss"]!, accuracy: 1e-6)

        // The task folder and the dev file itself work as --data too, with the same numbers.
        for data in [fixtures.appendingPathComponent("glue/SST-2").path, fixtures.appendingPathComponent("glue/SST-2/dev.tsv").path] {
            let again = try json(try CLI.run(["eval", "--model", best, "--task", "glue-sst2", "--data", data, "--json"], in: dir))
            XCTAssertEqual(again["dev"] as? [String: Double], dev, data)
        }

        // A model without the head: chance-level scores, and a warning that says so.
        let plain = try CLI.run(["eval", "--model", base, "--task", "glue-sst2", "--data", fixtures.appendingPathComponent("glue").path], in: dir)
        XCTAssertEqual(plain.status, 0, plain.stderr)
        XCTAssertTrue(plain.stderr.contains("untrained head (chance level)"), plain.stderr)
        XCTAssertTrue(plain.stdout.hasPrefix("glue-sst2 dev: accuracy"), plain.stdout)

        let unknown = try CLI.run(["eval", "--model", best, "--task", "glue-foo", "--data", "x"], in: dir)
        XCTAssertNotEqual(unknown.status, 0)
        XCTAssertTrue(unknown.stderr.contains("unknown GLUE task \"foo\""), unknown.stderr)
    }

    func testCoQAEvalMatchesFinetuneEvalOnly() throws {
        let base = try pretrained(context: 128)
        let data = fixtures.appendingPathComponent("coqa_dev.json").path
        let scored = try json(try CLI.run(["eval", "--model", base, "--task", "coqa", "--data", data, "--out", "pred", "--json"], in: dir))
        XCTAssertEqual(scored["dev_stories"] as? Int, 3)
        let f1 = try XCTUnwrap(scored["dev_f1"] as? Double), em = try XCTUnwrap(scored["dev_em"] as? Double)
        XCTAssertTrue((0...100).contains(f1) && (0...100).contains(em) && em <= f1, "EM \(em) F1 \(f1)")
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("pred/predictions-eval-only.json").path))

        let recipe = """
        name: coqa
        task: coqa
        model: {init_from: \(base)}
        data: {dev: \(data), train: \(data), max_length: 128}
        output: {dir: ft}
        """
        try recipe.write(to: dir.appendingPathComponent("coqa.yaml"), atomically: true, encoding: .utf8)
        let reference = try json(try CLI.run(["finetune", "coqa.yaml", "--eval-only", "--json"], in: dir))
        XCTAssertEqual(reference["dev_f1"] as? Double, f1)
        XCTAssertEqual(reference["dev_em"] as? Double, em)
    }

    /// The one-shot generation tasks through the CLI on the fixture files: every example predicted,
    /// the metric equal to `factorlab score` on the predictions and references, sequences/s reported,
    /// and bad options refused.
    func testOneShotGenerationTasksScoreTheirPredictions() throws {
        let model = try pretrained(context: 256)
        let oneshot = fixtures.appendingPathComponent("oneshot")
        for (task, data, shots, metric, examples) in [("nq", "nq-open.jsonl", 1, "em", 2), ("wmt14-en-fr", "wmt", 1, "bleu", 2),
                                                       ("cnndm", "cnndm", 0, "rougeL", 2)] {
            let r = try json(try CLI.run(["eval", "--model", model, "--task", task, "--data", oneshot.appendingPathComponent(data).path,
                                          "--shots", String(shots), "--batch", "2", "--json"], in: dir))
            XCTAssertEqual(r["examples"] as? Int, examples, task)
            XCTAssertEqual(r["shots"] as? Int, shots, task)
            let predictions = try XCTUnwrap(r["predictions"] as? [String], task)
            XCTAssertEqual(predictions.count, examples, task)
            XCTAssertFalse(predictions.contains { $0.contains("\n") }, "\(task): predictions end at a newline")
            XCTAssertGreaterThan(try XCTUnwrap(r["sequences_per_s"] as? Double), 0)
            let value = try XCTUnwrap(r[metric] as? Double, "\(task): \(r.keys.sorted())")
            XCTAssertTrue((0...100).contains(value), "\(task) \(metric) \(value)")
        }
        // The NQ score is the exact match of its predictions: rescore them with `factorlab score`.
        let r = try json(try CLI.run(["eval", "--model", model, "--task", "nq", "--data", oneshot.appendingPathComponent("nq-open.jsonl").path,
                                      "--shots", "1", "--json"], in: dir))
        let predictions = try XCTUnwrap(r["predictions"] as? [String])
        try (predictions.joined(separator: "\n") + "\n").write(to: dir.appendingPathComponent("hyp.txt"), atomically: true, encoding: .utf8)
        try "Paris\nsix\n".write(to: dir.appendingPathComponent("r1.txt"), atomically: true, encoding: .utf8)
        try "Paris\n6\n".write(to: dir.appendingPathComponent("r2.txt"), atomically: true, encoding: .utf8)
        let s = try json(try CLI.run(["score", "--metric", "em", "--hyp", "hyp.txt", "--ref", "r1.txt", "--ref", "r2.txt", "--json"], in: dir))
        XCTAssertEqual(try XCTUnwrap(s["score"] as? Double), try XCTUnwrap(r["em"] as? Double), accuracy: 1e-12)
        for (args, expected) in [(["--task", "coqa-zeroshot", "--data", "x.json", "--shots", "2"], "--shots does not apply"),
                                 (["--task", "nq", "--data", oneshot.appendingPathComponent("nq-open.jsonl").path, "--shots", "3"],
                                  "3 shots leave none to score")] {
            let bad = try CLI.run(["eval", "--model", model] + args, in: dir)
            XCTAssertNotEqual(bad.status, 0)
            XCTAssertTrue(bad.stderr.contains(expected), "\(args): \(bad.stderr)")
        }
    }
}
