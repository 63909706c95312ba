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

    // MARK: eval --suite: every task for every model, one table against the baseline.

    func testSuiteTableComparesEveryModelWithTheBaselineOnTheSameExamples() throws {
        for (name, seed) in [("base", 1), ("other", 2)] {
            let recipe = CLI.tinyRecipe(name: name, steps: 2).replacingOccurrences(of: "n_positions: 32", with: "n_positions: 128")
                + "\nseed: \(seed)\n"
            try recipe.write(to: dir.appendingPathComponent("\(name).yaml"), atomically: true, encoding: .utf8)
            XCTAssertEqual(try CLI.run(["pretrain", "\(name).yaml"], in: dir).status, 0)
        }
        let glue = fixtures.appendingPathComponent("glue").path
        try """
        name: sst2
        task: sst2
        model: {init_from: runs/base, dropout: false}
        data: {root: \(glue), max_length: 32}
        training: {epochs: 1, batch_size: 2, eval_batch_size: 2}
        output: {dir: ft}
        """.write(to: dir.appendingPathComponent("sst2.yaml"), atomically: true, encoding: .utf8)
        let head = try XCTUnwrap(try json(try CLI.run(["finetune", "sst2.yaml", "--json"], in: dir))["best_checkpoint"] as? String)

        let text = (0..<40).map { "the cat sat on the mat and the dog sat on the log number \($0) of many" }.joined(separator: "\n")
        try text.write(to: dir.appendingPathComponent("heldout.txt"), atomically: true, encoding: .utf8)
        try (0..<12).map { #"{"text": "the dog sat on the \#($0 % 2 == 0 ? "log" : "mat")"}"# }.joined(separator: "\n")
            .write(to: dir.appendingPathComponent("lambada.jsonl"), atomically: true, encoding: .utf8)
        try (0..<6).map { #"{"context": "the cat sat on the mat.", "query": "the XXXXX sat", "candidates": ["cat", "dog", "log"], "answer": "\#(["cat", "dog"][$0 % 2])"}"# }
            .joined(separator: "\n").write(to: dir.appendingPathComponent("cbt.jsonl"), atomically: true, encoding: .utf8)
        try """
        name: mini
        bootstrap: {resamples: 200, seed: 3}
        tasks:
          - {task: perplexity, data: heldout.txt, stride: 64}
          - {task: lambada, data: lambada.jsonl}
          - {task: cbt, data: cbt.jsonl}
          - {name: nq-1shot, task: nq, data: \(fixtures.appendingPathComponent("oneshot/nq-open.jsonl").path), shots: 1}
          - {task: glue-sst2, data: \(glue)}
        """.write(to: dir.appendingPathComponent("suite.yaml"), atomically: true, encoding: .utf8)

        let r = try json(try CLI.run(["eval", "--suite", "suite.yaml", "--models", "base=runs/base", "same=runs/base", "other=runs/other",
                                      "head=\(head)", "--baseline", "base", "--json"], in: dir))
        XCTAssertEqual(r["baseline"] as? String, "base")
        let models = try XCTUnwrap(r["models"] as? [[String: Any]])
        XCTAssertEqual(models.map { $0["label"] as? String }, ["base", "same", "other", "head"])
        func metric(_ m: Int, _ task: String, _ name: String) throws -> [String: Any] {
            let tasks = try XCTUnwrap(models[m]["tasks"] as? [String: Any])
            return try XCTUnwrap((tasks[task] as? [String: Any])?[name] as? [String: Any], "\(task) \(name): \(tasks[task] ?? "none")")
        }
        // The baseline compared with itself: no difference, and an interval of exactly zero.
        for (task, name) in [("perplexity", "perplexity"), ("lambada", "accuracy"), ("cbt", "accuracy"), ("nq-1shot", "em")] {
            XCTAssertNil(try metric(0, task, name)["difference"], "the baseline has no difference column")
            let same = try metric(1, task, name)
            XCTAssertEqual(same["difference"] as? Double, 0, task)
            XCTAssertEqual(same["ci95"] as? [Double], [0, 0], task)
            let other = try metric(2, task, name)
            let d = try XCTUnwrap(other["difference"] as? Double), ci = try XCTUnwrap(other["ci95"] as? [Double])
            XCTAssertTrue(ci[0] <= ci[1], "\(task): \(ci)")
            XCTAssertEqual(d, try XCTUnwrap(other["value"] as? Double) - XCTUnwrap(try metric(0, task, name)["value"] as? Double), accuracy: 1e-12)
        }
        // The suite's values are the single-task evaluations' values.
        let single = try json(try CLI.run(["eval", "--model", "runs/other", "--task", "perplexity", "--data", "heldout.txt",
                                           "--stride", "64", "--json"], in: dir))
        XCTAssertEqual(try metric(2, "perplexity", "perplexity")["value"] as? Double, single["perplexity"] as? Double)
        for key in ["word_perplexity", "byte_perplexity", "bits_per_byte"] {
            XCTAssertEqual(try metric(2, "perplexity", key)["value"] as? Double, single[key] as? Double, key)
        }
        let lambada = try json(try CLI.run(["eval", "--model", "runs/other", "--task", "lambada", "--data", "lambada.jsonl", "--json"], in: dir))
        XCTAssertEqual(try metric(2, "lambada", "accuracy")["value"] as? Double, lambada["accuracy"] as? Double)
        XCTAssertEqual(try metric(2, "lambada", "target_perplexity")["value"] as? Double ?? 0,
                       lambada["target_perplexity"] as? Double ?? 1, accuracy: 1e-9)
        // GLUE: a model without the head says so; the finetuned one is scored like eval --task glue-sst2.
        let tasks0 = try XCTUnwrap(models[0]["tasks"] as? [String: Any])
        XCTAssertEqual((tasks0["glue-sst2"] as? [String: Any])?["unavailable"] as? String, "no SST-2 head")
        let glueEval = try json(try CLI.run(["eval", "--model", head, "--task", "glue-sst2", "--data", glue, "--json"], in: dir))
        XCTAssertEqual(try metric(3, "glue-sst2", "accuracy")["value"] as? Double, (glueEval["dev"] as? [String: Double])?["accuracy"])
        XCTAssertGreaterThan(try XCTUnwrap(models[2]["latency_ms_per_token"] as? Double), 0)
        XCTAssertGreaterThan(try XCTUnwrap(models[2]["parameters"] as? Int), 0)

        let md = try CLI.run(["eval", "--suite", "suite.yaml", "--models", "runs/base", "runs/other", "--markdown"], in: dir)
        XCTAssertEqual(md.status, 0, md.stderr)
        XCTAssertTrue(md.stdout.contains("| task | metric | base (baseline) | other |"), md.stdout)
        XCTAssertTrue(md.stdout.contains("no SST-2 head"), md.stdout)
        XCTAssertTrue(md.stdout.contains("95% paired-bootstrap interval"), md.stdout)

        // Bad suites and options name what is wrong.
        try "tasks:\n  - {task: perplexity}\n".write(to: dir.appendingPathComponent("bad.yaml"), atomically: true, encoding: .utf8)
        for (args, message) in [(["--suite", "bad.yaml", "--models", "runs/base"], "bad.yaml:2: task perplexity needs data"),
                                (["--suite", "suite.yaml"], "--suite needs --models"),
                                (["--suite", "suite.yaml", "--models", "runs/base", "--baseline", "x"], "--baseline x is none of --models")] {
            let bad = try CLI.run(["eval"] + args, in: dir)
            XCTAssertNotEqual(bad.status, 0)
            XCTAssertTrue(bad.stderr.contains(message), "\(args): \(bad.stderr)")
        }
    }
}
