import FactorlabBench
import FactorlabCheckpoint
import FactorlabTensor
import Foundation
import XCTest

/// The model commands on a tiny trained run: eval, generate, tokenize, export/import, factorize.
final class ModelCLITests: XCTestCase {
    func trainedRun() throws -> URL { try CLI.trainedRun("m", steps: 8) }

    override class func tearDown() { CLI.removeTrainedRun("m", steps: 8) }

    func json(_ r: CLI.Result) throws -> [String: Any] {
        XCTAssertEqual(r.status, 0, r.stderr)
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], r.stdout)
    }

    func testEvalPerplexityJSONMatchesWindowArithmetic() throws {
        let dir = try trainedRun()
        let text = "Of Man's first disobedience, and the fruit\nOf that forbidden tree, whose mortal taste\n"
        try text.write(to: dir.appendingPathComponent("eval.txt"), atomically: true, encoding: .utf8)
        let full = try json(try CLI.run(["eval", "--model", "runs/m", "--data", "eval.txt", "--json"], in: dir))
        let strided = try json(try CLI.run(["eval", "--model", "runs/m", "--data", "eval.txt", "--stride", "8", "--json"], in: dir))
        let tokens = full["tokens"] as! Int
        XCTAssertEqual(strided["tokens"] as? Int, tokens, "every token after the first is scored exactly once")
        XCTAssertEqual(full["bytes"] as? Int, text.utf8.count)
        let nll = full["nll_per_token"] as! Double
        XCTAssertEqual(full["perplexity"] as! Double, Foundation.exp(nll), accuracy: 1e-9 * Foundation.exp(nll))
        XCTAssertEqual(full["bits_per_byte"] as! Double, nll * Double(tokens) / Double(text.utf8.count) / Foundation.log(2.0), accuracy: 1e-9)
        XCTAssertGreaterThan(strided["windows"] as! Int, full["windows"] as! Int)
        // The harness's word count: re.split(r"\s+") of the text, whose trailing newline leaves an empty last piece.
        XCTAssertEqual(full["words"] as? Int, 14 + 1)
        XCTAssertEqual(full["word_perplexity"] as! Double, Foundation.exp(nll * Double(tokens) / 15), accuracy: 1e-9 * Foundation.exp(nll * Double(tokens) / 15))
        let bad = try CLI.run(["eval", "--model", "runs/m", "--data", "eval.txt", "--task", "squad"], in: dir)
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("unknown task 'squad'"), bad.stderr)
    }

    /// A finished run records its inference cost in run.json, where the study report reads it.
    func testAFinishedRunRecordsItsInferenceCost() throws {
        let dir = try trainedRun()
        let run = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("runs/m/run.json"))) as? [String: Any])
        let inference = try XCTUnwrap(run["inference"] as? [String: Any], "\(run)")
        XCTAssertGreaterThan(try XCTUnwrap(inference["latency_ms_per_token"] as? Double), 0)
        XCTAssertEqual(inference["prefix_tokens"] as? Int, 16, "half the 32-position context")
        XCTAssertEqual(inference["parameters"] as? Int, run["parameters"] as? Int)
        XCTAssertGreaterThan(try XCTUnwrap(inference["forward_tokens_per_s"] as? Double), 0)
        XCTAssertEqual(inference["weight_precision"] as? String, "float32")
        XCTAssertEqual(inference["weight_bytes"] as? Int, 4 * (run["parameters"] as? Int ?? 0))
        let loss = try XCTUnwrap(inference["val_loss"] as? Double)
        // The same model with bf16 and int8 weights, each with its own cost and validation loss.
        let variants = try XCTUnwrap(inference["quantized"] as? [[String: Any]])
        XCTAssertEqual(variants.map { $0["weight_precision"] as? String }, ["bf16", "int8"])
        for v in variants {
            XCTAssertGreaterThan(try XCTUnwrap(v["latency_ms_per_token"] as? Double), 0)
            XCTAssertLessThan(try XCTUnwrap(v["weight_bytes"] as? Int), try XCTUnwrap(inference["weight_bytes"] as? Int))
            XCTAssertEqual(try XCTUnwrap(v["val_loss"] as? Double), loss, accuracy: 0.01 * loss, "\(v)")
        }
        let report = try CLI.run(["report", "runs/m", "--out", "report"], in: dir)
        XCTAssertEqual(report.status, 0, report.stderr)
        let md = try String(contentsOf: dir.appendingPathComponent("report/report.md"), encoding: .utf8)
        XCTAssertTrue(md.contains("Inference budgets: every way to serve each size"), md)
    }

    func testGenerateIsReproducibleWithASeed() throws {
        let dir = try trainedRun()
        let args = ["generate", "--model", "runs/m", "--prompt", "The", "--max-tokens", "12", "--seed", "5", "--json"]
        let a = try json(try CLI.run(args, in: dir)), b = try json(try CLI.run(args, in: dir))
        XCTAssertEqual(a["completion"] as? String, b["completion"] as? String)
        XCTAssertGreaterThan(a["tokens"] as! Int, 0)
        let missing = try CLI.run(["generate", "--model", "runs/none", "--prompt", "x"], in: dir)
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.stderr.contains("no such file or folder"), missing.stderr)
    }

    func testTokenizeJSONRoundTripsThroughTheVocabulary() throws {
        let dir = try trainedRun()
        try "And chiefly Thou O Spirit".write(to: dir.appendingPathComponent("t.txt"), atomically: true, encoding: .utf8)
        let r = try CLI.run(["tokenize", "--tokenizer", "tok", "--input", "t.txt", "--json"], in: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        let ids = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [Int])
        XCTAssertFalse(ids.isEmpty)
        XCTAssertTrue(ids.allSatisfy { $0 >= 0 && $0 < 320 })
    }

    func testTrainingAVocabularyAndStartingFromACheckpoint() throws {
        let dir = try trainedRun()
        let corpus = CLI.repository.appendingPathComponent("Recipes/corpora/milton/paradise_regained_gut.txt").path
        let t = try json(try CLI.run(["tokenize", "--train", corpus, "--vocab-size", "300", "--out", "vocab300", "--json"], in: dir))
        XCTAssertEqual(t["vocab_size"] as? Int, 300)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("vocab300/merges.txt").path))
        // Pretraining from the trained run's checkpoint instead of random weights.
        try CLI.tinyRecipe(name: "warm", steps: 2).write(to: dir.appendingPathComponent("warm.yaml"), atomically: true, encoding: .utf8)
        let r = try CLI.run(["pretrain", "warm.yaml", "--init-from", "runs/m"], in: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("initialised from"), r.stderr)
        let start = try String(contentsOf: dir.appendingPathComponent("runs/warm/metrics.jsonl"), encoding: .utf8).split(separator: "\n")[0]
        let first = try JSONSerialization.jsonObject(with: Data(start.utf8)) as! [String: Any]
        let scratch = try String(contentsOf: dir.appendingPathComponent("runs/m/metrics.jsonl"), encoding: .utf8).split(separator: "\n")[0]
        let fromScratch = try JSONSerialization.jsonObject(with: Data(scratch.utf8)) as! [String: Any]
        XCTAssertLessThan(first["val_loss"] as! Double, fromScratch["val_loss"] as! Double,
                          "a warm start begins below a random initialisation")
    }

    func testExportImportAndFactorize() throws {
        let dir = try trainedRun()
        // The run has a Monarch layer: plain export is refused, --densify exports its dense equivalent.
        let refused = try CLI.run(["export-hf", "runs/m", "--out", "hf"], in: dir)
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.stderr.contains("dense layers only"), refused.stderr)
        XCTAssertEqual(try CLI.run(["export-hf", "runs/m", "--out", "hf", "--densify"], in: dir).status, 0)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("hf/vocab.json").path))
        XCTAssertEqual(try CLI.run(["import-hf", "hf", "--out", "imported/model.h5"], in: dir).status, 0)
        // The imported dense model computes what the Monarch model computes.
        try "Of Man's first disobedience".write(to: dir.appendingPathComponent("e.txt"), atomically: true, encoding: .utf8)
        let a = try json(try CLI.run(["eval", "--model", "runs/m", "--data", "e.txt", "--json"], in: dir))
        let b = try json(try CLI.run(["eval", "--model", "imported/model.h5", "--data", "e.txt", "--tokenizer", "tok", "--json"], in: dir))
        XCTAssertEqual(a["nll_per_token"] as! Double, b["nll_per_token"] as! Double, accuracy: 1e-4)
        // Factorize the dense layer 0 to low rank; errors are recorded per layer in the checkpoint.
        let f = try json(try CLI.run(["factorize", "--model", "imported/model.h5", "--mlp", "lowrank:8", "--layers", "0",
                                      "--out", "proj/model.h5", "--json"], in: dir))
        let layers = try XCTUnwrap(f["layers"] as? [[String: Any]])
        XCTAssertEqual(layers.map { $0["name"] as? String }, ["h.0.mlp.c_fc", "h.0.mlp.c_proj"])
        for l in layers { XCTAssertTrue((0..<1).contains(l["relative_error"] as! Double), "\(l)") }
        let c = try Checkpoint.read(dir.appendingPathComponent("proj/model.h5"))
        XCTAssertEqual(c.config.mlpSpec, "lowrank:8@0", "the imported model is dense; only layer 0 was projected")
        XCTAssertTrue(c.projection?.contains("\"relative_error\"") ?? false)
        let bad = try CLI.run(["factorize", "--model", "imported/model.h5", "--mlp", "monarch:5", "--out", "x.h5"], in: dir)
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("nblocks 5 must divide"), bad.stderr)

        // Attention sites and the head: BTT on both attention projections, then a factorized
        // embedding; every layer's error recorded; densified, the export computes the same.
        let att = try json(try CLI.run(["factorize", "--model", "imported/model.h5", "--kind", "btt:2", "--site", "attn",
                                        "--out", "att/model.h5", "--json"], in: dir))
        XCTAssertEqual((att["layers"] as? [[String: Any]])?.map { $0["name"] as? String },
                       ["h.0.attn.c_attn", "h.0.attn.c_proj", "h.1.attn.c_attn", "h.1.attn.c_proj"])
        let head = try json(try CLI.run(["factorize", "--model", "att/model.h5", "--kind", "lowrank:8", "--site", "head",
                                         "--out", "head/model.h5", "--json"], in: dir))
        XCTAssertEqual((head["layers"] as? [[String: Any]])?.map { $0["name"] as? String }, ["head"])
        let h = try Checkpoint.read(dir.appendingPathComponent("head/model.h5"))
        XCTAssertEqual(h.config.linearSpec, "attn=btt:2,head=lowrank:8")
        XCTAssertTrue(h.projection?.contains("head=lowrank:8") ?? false, h.projection ?? "")
        XCTAssertEqual(try CLI.run(["export-hf", "head/model.h5", "--out", "hf2", "--densify"], in: dir).status, 0)
        XCTAssertEqual(try CLI.run(["import-hf", "hf2", "--out", "imported2/model.h5"], in: dir).status, 0)
        let p = try json(try CLI.run(["eval", "--model", "head/model.h5", "--data", "e.txt", "--tokenizer", "tok", "--json"], in: dir))
        let q = try json(try CLI.run(["eval", "--model", "imported2/model.h5", "--data", "e.txt", "--tokenizer", "tok", "--json"], in: dir))
        XCTAssertEqual(p["nll_per_token"] as! Double, q["nll_per_token"] as! Double, accuracy: 1e-4)
        for (args, expected) in [(["--kind", "monarch:4", "--site", "head"], "untie it: untied:monarch:4"),
                                 (["--kind", "btt:2", "--site", "attn.c_atn"], "unknown site 'attn.c_atn'"),
                                 (["--kind", "btt:2", "--mlp", "btt:2"], "give the target kind once")] {
            let r = try CLI.run(["factorize", "--model", "imported/model.h5", "--out", "y.h5"] + args, in: dir)
            XCTAssertNotEqual(r.status, 0)
            XCTAssertTrue(r.stderr.contains(expected), "\(args): \(r.stderr)")
        }
    }

    /// factorize --calibrate end to end: both errors of every layer in the checkpoint's projection
    /// record and in --json; empty calibration text and --sequential alone are errors.
    func testDataAwareFactorizeThroughTheCLI() throws {
        let dir = try trainedRun()
        try String(repeating: "Of Man's first disobedience, and the fruit of that forbidden tree. ", count: 40)
            .write(to: dir.appendingPathComponent("calib.txt"), atomically: true, encoding: .utf8)
        let r = try json(try CLI.run(["factorize", "--model", "runs/m", "--kind", "lowrank:4", "--site", "mlp", "--layers", "0",
                                      "--calibrate", "calib.txt", "--calib-tokens", "512", "--sequential", "--out", "cal/model.h5",
                                      "--json"], in: dir))
        let layers = try XCTUnwrap(r["layers"] as? [[String: Any]])
        XCTAssertEqual(layers.map { $0["name"] as? String }, ["h.0.mlp.c_fc", "h.0.mlp.c_proj"])
        for l in layers {
            let out = try XCTUnwrap(l["calibration_output_error"] as? Double), free = try XCTUnwrap(l["data_free_calibration_output_error"] as? Double)
            XCTAssertLessThanOrEqual(out, free + 1e-6, "\(l)")
            XCTAssertNotNil(l["data_free_relative_error"] as? Double)
        }
        let calibration = try XCTUnwrap(r["calibration"] as? [String: Any])
        XCTAssertEqual(calibration["sequential"] as? Bool, true)
        XCTAssertEqual(calibration["source"] as? String, "calib.txt")
        let c = try Checkpoint.read(dir.appendingPathComponent("cal/model.h5"))
        XCTAssertTrue(c.projection?.contains("calibration_output_error") ?? false)
        XCTAssertEqual(c.config.linearSpec, "lowrank:4@0;monarch:2@1", "layer 0 projected; layer 1 was Monarch already")
        try "".write(to: dir.appendingPathComponent("empty.txt"), atomically: true, encoding: .utf8)
        for (args, expected) in [(["--calibrate", "empty.txt"], "the calibration text holds no tokens"),
                                 (["--sequential"], "--sequential needs --calibrate")] {
            let bad = try CLI.run(["factorize", "--model", "runs/m", "--kind", "lowrank:4", "--out", "z.h5"] + args, in: dir)
            XCTAssertNotEqual(bad.status, 0)
            XCTAssertTrue(bad.stderr.contains(expected), "\(args): \(bad.stderr)")
        }
    }

    /// quantize end to end: the record on stdout, a checkpoint that eval and generate read (eval's
    /// NLL close to the float model's), and training, factorize and overwriting the source refused.
    func testQuantizeThroughTheCLI() throws {
        let dir = try trainedRun()
        try String(repeating: "Of Man's first disobedience, and the fruit of that forbidden tree. ", count: 20)
            .write(to: dir.appendingPathComponent("q-eval.txt"), atomically: true, encoding: .utf8)
        let evalArgs = ["--data", "q-eval.txt", "--json"]
        let base = try json(try CLI.run(["eval", "--model", "runs/m"] + evalArgs, in: dir))
        let baseNLL = try XCTUnwrap(base["nll_per_token"] as? Double)
        for format in ["int8", "bf16"] {
            let r = try json(try CLI.run(["quantize", "--model", "runs/m", "--weights", format, "--out", "q/\(format).h5", "--json"], in: dir))
            XCTAssertEqual(r["format"] as? String, format)
            let tensors = try XCTUnwrap(r["tensors"] as? [[String: Any]])
            XCTAssertTrue(tensors.contains { $0["name"] as? String == "wte.weight" })
            XCTAssertLessThan(try XCTUnwrap(r["weight_bytes"] as? Int), try XCTUnwrap(r["float32_bytes"] as? Int) / (format == "int8" ? 3 : 1))
            let e = try json(try CLI.run(["eval", "--model", "q/\(format).h5"] + evalArgs, in: dir))
            XCTAssertEqual(try XCTUnwrap(e["nll_per_token"] as? Double), baseNLL, accuracy: 0.01 * baseNLL, format)
            let g = try CLI.run(["generate", "--model", "q/\(format).h5", "--prompt", "ROMEO:", "--max-tokens", "8", "--seed", "1"], in: dir)
            XCTAssertEqual(g.status, 0, g.stderr)
        }
        for (args, expected) in [(["pretrain", "m.yaml", "--init-from", "q/int8.h5", "--set", "checkpoint.dir=runs/q"], "quantized models are for inference only"),
                                 (["factorize", "--model", "q/int8.h5", "--kind", "lowrank:4", "--out", "z.h5"], "projection needs the float32 checkpoint"),
                                 (["quantize", "--model", "q/bf16.h5", "--weights", "int8", "--out", "q/bf16.h5"], "is the source model itself"),
                                 (["quantize", "--model", "runs/m", "--weights", "int4", "--out", "z.h5"], "--weights must be bf16 or int8")] {
            let bad = try CLI.run(args, in: dir)
            XCTAssertNotEqual(bad.status, 0)
            XCTAssertTrue(bad.stderr.contains(expected), "\(args): \(bad.stderr)")
        }
    }

    /// The model suite of `factorlab bench` reports every measure under its documented key, each a
    /// positive finite number, and the speed-up is the ratio of the two kinds' tokens/s. (Timings
    /// themselves are not asserted: they belong to the benchmark, not to tests.)
    func testBenchModelSuiteReportsEveryMeasure() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try CLI.run(["bench", "--suite", "model", "--models", "tiny", "--model-kinds", "dense,monarch:4",
                             "--repeats", "1", "--min-seconds", "0", "--growth-steps", "3", "--json"], in: dir)
        let obj = try json(r)
        for kind in ["dense", "monarch"] {
            for measure in ["train_tokens_per_s", "forward_tokens_per_s", "generate_tokens_per_s", "peak_memory_mb", "train_gflops",
                            "generate_ms_per_token_early", "generate_ms_per_token_late", "rss_growth_mb"] {
                let value = try XCTUnwrap(obj["tiny.\(kind).\(measure)"] as? Double, "tiny.\(kind).\(measure) in \(obj.keys.sorted())")
                XCTAssertTrue(value.isFinite, "tiny.\(kind).\(measure) = \(value)")
                if measure != "rss_growth_mb" { XCTAssertGreaterThan(value, 0, "tiny.\(kind).\(measure)") }
            }
        }
        XCTAssertEqual(obj["tiny.dense.parameters"] as? Double, 5_322_240, "4 layers, d 256, vocabulary 8192, context 256")
        let speedup = try XCTUnwrap(obj["tiny.monarch.train_speedup"] as? Double)
        XCTAssertEqual(speedup, (obj["tiny.monarch.train_tokens_per_s"] as! Double) / (obj["tiny.dense.train_tokens_per_s"] as! Double),
                       accuracy: 1e-9)
        XCTAssertNotNil(obj["tiny.dense.train_fraction_of_sgemm"] as? Double)
        let denseFLOPs = try XCTUnwrap(obj["tiny.dense.train_flops_per_token"] as? Double)
        let monarchFLOPs = try XCTUnwrap(obj["tiny.monarch.train_flops_per_token"] as? Double)
        XCTAssertLessThan(monarchFLOPs, denseFLOPs)
        XCTAssertEqual(obj["tiny.monarch.train_flop_ratio"] as? Double ?? 0, denseFLOPs / monarchFLOPs, accuracy: 1e-9)
    }

    /// A timing takes at least --repeats runs, and more while the runs add up to less than
    /// minSeconds, at most 20 x repeats (loop logic only: nothing here asserts a speed).
    func testMeasurementRepeatsUntilTheMinimumTime() {
        XCTAssertEqual(Measurement.of(warmup: 0, repeats: 3) {}.samples.count, 3)
        var calls = 0
        let m = Measurement.of(warmup: 1, repeats: 2, minSeconds: 0.05) { calls += 1; usleep(10_000) }
        XCTAssertGreaterThanOrEqual(m.samples.count, 2)
        XCTAssertEqual(calls, m.samples.count + 1, "one warm-up run, not timed")
        XCTAssertTrue(m.samples.reduce(0, +) >= 0.05 || m.samples.count == 40, "\(m.samples)")
        XCTAssertEqual(Measurement.of(warmup: 0, repeats: 1, minSeconds: 1e9) {}.samples.count, 20, "capped at 20 x repeats")
    }
}
