import FactorlabCheckpoint
import FactorlabTensor
import Foundation
import XCTest

/// Hostile input through the real executable, one test per class of the hostile-input issue:
/// each bad input exits non-zero with a message naming the input and what was expected, quickly,
/// and writes nothing (or leaves what was there untouched).
final class HostileInputTests: XCTestCase {
    func trainedRun() throws -> URL { try CLI.trainedRun("m", steps: 4) }

    override class func tearDown() { CLI.removeTrainedRun("m", steps: 4) }

    /// Runs `args` in `dir` and asserts a quick failure whose stderr holds every fragment.
    @discardableResult
    func refuses(_ args: [String], in dir: URL, mentioning fragments: [String], file: StaticString = #filePath,
                 line: UInt = #line) throws -> String {
        let started = Date()
        let r = try CLI.run(args, in: dir, timeout: 60)
        XCTAssertEqual(r.status, 1, "exit status of \(args): \(r.stderr)", file: file, line: line)
        XCTAssertLessThan(Date().timeIntervalSince(started), 30, "\(args) took too long", file: file, line: line)
        for f in fragments { XCTAssertTrue(r.stderr.contains(f), "\(args): stderr lacks '\(f)':\n\(r.stderr)", file: file, line: line) }
        XCTAssertTrue(r.stdout.isEmpty || !r.stdout.contains("{}"), "no empty result object", file: file, line: line)
        return r.stderr
    }

    /// Every file under `dir`, with its contents' hash: what a refused command must leave as it was.
    func snapshot(_ dir: URL) throws -> [String: Int] {
        var out: [String: Int] = [:]
        let e = FileManager.default.enumerator(at: dir, includingPropertiesForKeys: [.isRegularFileKey])
        while let url = e?.nextObject() as? URL {
            if (try url.resourceValues(forKeys: [.isRegularFileKey])).isRegularFile == true {
                out[url.path] = try Data(contentsOf: url).hashValue
            }
        }
        return out
    }

    func write(_ text: String, _ name: String, in dir: URL) throws {
        let url = dir.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: url, atomically: true, encoding: .utf8)
    }

    /// A Hugging Face folder whose config.json says `config` (and no weights are needed to refuse it).
    func hfFolder(_ config: String, in dir: URL, name: String) throws -> String {
        try write(config, "\(name)/config.json", in: dir)
        try Data().write(to: dir.appendingPathComponent("\(name)/model.safetensors"))
        return name
    }

    // MARK: sizes from files and flags

    func testUnvalidatedSizesAreRefusedWhereTheyEnter() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let base = #""model_type": "gpt2", "n_head": 2, "n_embd": 16, "n_positions": 8, "vocab_size": 32"#
        for (name, config, fragments) in [
            ("neg", "{\(base), \"n_layer\": -1}", ["config.json", "n_layer must be between 1 and 1024, got -1"]),
            ("huge", "{\(base), \"n_layer\": 1e30}", ["config.json", "key 'n_layer' must be an integer"]),
            ("bool", "{\(base), \"n_layer\": true}", ["config.json", "key 'n_layer' must be an integer, got a boolean"]),
            ("inner", #"{"model_type": "gpt2", "n_layer": 1, "n_head": 1, "n_embd": 16, "n_positions": 8, "vocab_size": 32, "n_inner": 1000000000000}"#,
             ["config.json", "n_inner must be between 1 and"]),
            ("vocab", #"{"model_type": "gpt2", "n_layer": 48, "n_head": 25, "n_embd": 1600, "n_positions": 1024, "vocab_size": 1000000000}"#,
             ["needs about", "this machine has"]),
            ("eps", "{\(base), \"n_layer\": 1, \"layer_norm_epsilon\": -1}", ["layer_norm_epsilon must be in (0, 0.1]"]),
            ("pad", "{\(base), \"n_layer\": 1, \"pad_token_id\": 5000000000}", ["pad_token_id", "token id"]),
        ] {
            let folder = try hfFolder(config, in: dir, name: name)
            try refuses(["import-hf", folder, "--out", "\(name).h5"], in: dir, mentioning: fragments)
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("\(name).h5").path), "nothing written")
        }
        // Flags.
        try refuses(["profile", "--model", "nano", "--batch=-1"], in: dir, mentioning: ["--batch must be between 1 and 4096, got -1"])
        try refuses(["profile", "--model", "nano", "--seq", "0"], in: dir, mentioning: ["--seq must list lengths"])
        try refuses(["profile", "--model", "nano", "--repeats=-3"], in: dir, mentioning: ["--repeats must be between 1"])
        try refuses(["bench", "--suite", "gemm", "--repeats", "0"], in: dir, mentioning: ["--repeats must be between 1"])
        try refuses(["tokenize", "--train", "x", "--vocab-size", "4611686018427387903", "--out", "t"], in: dir,
                    mentioning: ["--vocab-size must be between 257"])
        // A recipe whose model does not fit this machine's memory is refused in a second, with the estimate.
        try write(CLI.tinyRecipe(name: "xl").replacingOccurrences(of: #"{n_layer: 2, n_head: 2, n_embd: 32, n_positions: 32, mlp: "monarch:2@1", dropout: 0.1}"#,
                                                                   with: "{preset: gpt2-xl}"), "xl.yaml", in: dir)
        try refuses(["pretrain", "xl.yaml", "--set", "training.seq_len=16"], in: dir,
                    mentioning: ["model: ", "needs about", "for training", "this machine has"])
        // Products that overflow.
        try write(CLI.tinyRecipe(name: "big"), "big.yaml", in: dir)
        try refuses(["pretrain", "big.yaml", "--set", "training.batch_size=4611686018427387904"], in: dir,
                    mentioning: ["training.batch_size must be between 1 and 65536"])
        try refuses(["pretrain", "big.yaml", "--set", "training.grad_accum=99999999"], in: dir, mentioning: ["training.grad_accum"])
    }

    // MARK: unbounded parsing

    func testDeepYAMLAndAliasBombsAreRefusedBeforeParsing() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try write("name: deep\nmodel: " + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "\n", "deep.yaml", in: dir)
        try refuses(["pretrain", "deep.yaml"], in: dir, mentioning: ["deep.yaml:2", "nesting depth", "exceeds the limit of 32"])
        var bomb = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        for i in 1..<12 { bomb += "a\(i): &a\(i) [" + Array(repeating: "*a\(i - 1)", count: 9).joined(separator: ", ") + "]\n" }
        bomb += "name: *a11\n"
        try write(bomb, "bomb.yaml", in: dir)
        try refuses(["pretrain", "bomb.yaml"], in: dir, mentioning: ["bomb.yaml:1", "anchors and aliases", "not allowed in recipes"])
        let indented = (0..<40).map { String(repeating: "  ", count: $0) + "k\($0):" }.joined(separator: "\n") + " 1\n"
        try write(indented, "indent.yaml", in: dir)
        try refuses(["pretrain", "indent.yaml"], in: dir, mentioning: ["indent.yaml:", "nesting depth"])
        // A whole section in the wrong place is described, not printed.
        try write(CLI.tinyRecipe(name: "w", extra: "arm: {a: [1, 2, 3], b: {c: d}}"), "w.yaml", in: dir)
        let text = try refuses(["pretrain", "w.yaml"], in: dir, mentioning: ["arm must be a string, got a section"])
        XCTAssertFalse(text.contains("[1, 2, 3]"), text)
        try refuses(["pretrain", "w.yaml", "--set", "..=1"], in: dir, mentioning: ["--set ..=1", "empty part"])
    }

    // MARK: non-finite and out-of-range values

    func testOutOfRangeRecipeAndFlagValuesNameTheKey() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try write(CLI.tinyRecipe(name: "r"), "r.yaml", in: dir)
        for (set, fragment) in [
            ("training.grad_clip=-1", "training.grad_clip must be a positive finite norm, got -1.0"),
            ("schedule.warmup_steps=-5", "schedule.warmup_steps must be between 0"),
            ("training.token_budget=-1", "training.token_budget must be at least 1"),
            ("optimizer.eps=.nan", "optimizer.eps must be a finite number"),
            ("optimizer.beta1=1.0", "optimizer.beta1 must be in [0, 1)"),
            ("optimizer.beta2=.nan", "optimizer.beta2 must be a finite number"),
            ("schedule.min_lr=-1", "schedule.min_lr must be between 0 and optimizer.lr"),
            ("training.flop_budget=.inf", "training.flop_budget must be a finite number"),
            ("optimizer.weight_decay=5", "optimizer.weight_decay must be in [0, 1]"),
            ("name=../../escape", "name must be 1-100 characters"),
            ("tokenizer.vocab_size=100", "tokenizer.vocab_size must be between 257"),
            ("eval.batches=0", "eval.batches must be between 1"),
        ] {
            try refuses(["pretrain", "r.yaml", "--set", set], in: dir, mentioning: ["r.yaml", fragment])
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("runs").path), "nothing written")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.deletingLastPathComponent().appendingPathComponent("escape").path))
        let run = try trainedRun()
        try refuses(["generate", "--model", "runs/m", "--prompt", "x", "--temperature", "nan"], in: run, mentioning: ["--temperature must be between 0"])
        try refuses(["generate", "--model", "runs/m", "--prompt", "x", "--temperature=-1"], in: run, mentioning: ["--temperature"])
        try refuses(["generate", "--model", "runs/m", "--prompt", "x", "--top-p", "0"], in: run, mentioning: ["--top-p must be in (0, 1]"])
        try refuses(["generate", "--model", "runs/m", "--prompt", "x", "--top-k=-2"], in: run, mentioning: ["--top-k must be 0"])
        try refuses(["factorize", "--model", "runs/m", "--mlp", "lowrank:4", "--layers=-1", "--out", "f.h5"], in: run,
                    mentioning: ["layers '-1'", "non-negative layer numbers"])
        try refuses(["factorize", "--model", "runs/m", "--mlp", "butterfly:99999999999", "--out", "f.h5"], in: run,
                    mentioning: ["linear kind", "from 1 to"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: run.appendingPathComponent("f.h5").path))
        try refuses(["eval", "--model", "runs/m", "--task", "glue-sst2", "--data", "m.yaml", "--max-examples=-1"], in: run,
                    mentioning: ["--max-examples must be at least 1"])
    }

    /// A checkpoint whose weights hold NaN, or whose config disagrees with its datasets, is refused by name.
    func testCheckpointsThatDisagreeWithThemselvesAreRefused() throws {
        let run = try trainedRun()
        let good = try XCTUnwrap(try CheckpointFiles.latest(in: run.appendingPathComponent("runs/m")))
        let (model, _) = try Checkpoint.loadModel(good)
        model.wte!.weight.value.withUnsafeMutablePointer { $0[7] = .nan }
        let nan = run.appendingPathComponent("nan.h5")
        try Checkpoint.save(model: model, to: nan)
        try refuses(["eval", "--model", "nan.h5", "--data", "m.yaml", "--tokenizer", "runs/m/tokenizer"], in: run,
                    mentioning: [nan.path, "/params/wte.weight", "non-finite value", "element 7"])
    }

    // MARK: results from nothing

    func testEmptyEvaluationSetsAndCorporaAreRefused() throws {
        let run = try trainedRun()
        try write("\n\n", "empty.jsonl", in: run)
        try refuses(["eval", "--model", "runs/m", "--task", "lambada", "--data", "empty.jsonl"], in: run, mentioning: ["empty.jsonl", "holds no examples"])
        try refuses(["eval", "--model", "runs/m", "--task", "cbt", "--data", "empty.jsonl"], in: run, mentioning: ["empty.jsonl", "holds no examples"])
        try write(#"{"version": "1.0", "data": []}"#, "coqa.json", in: run)
        try refuses(["eval", "--model", "runs/m", "--task", "coqa", "--data", "coqa.json"], in: run, mentioning: ["coqa.json", "holds no stories"])
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try write("", "corpus/empty.txt", in: dir)
        let recipe = CLI.tinyRecipe(name: "e").replacingOccurrences(
            of: CLI.repository.appendingPathComponent("Recipes/corpora/milton/paradise_regained_gut.txt").path, with: "corpus")
        try write(recipe, "e.yaml", in: dir)
        try refuses(["pretrain", "e.yaml"], in: dir, mentioning: ["has no text to train one on"])
        var utf16 = Data([0x00, 0x4F, 0x00, 0x66])  // "Of" as UTF-16 without a byte-order mark
        for _ in 0..<100 { utf16.append(contentsOf: [0x00, 0x20, 0x00, 0x61]) }
        try utf16.write(to: dir.appendingPathComponent("corpus/empty.txt"))
        try refuses(["pretrain", "e.yaml"], in: dir, mentioning: ["empty.txt", "NUL byte", "UTF-16 needs a byte-order mark"])
    }

    // MARK: lost files

    func testARunFolderBelongsToOneRun() throws {
        let run = try trainedRun()
        let before = try snapshot(run.appendingPathComponent("runs/m"))
        // The same recipe again, or another one pointed at the same folder: refused, nothing touched.
        try refuses(["pretrain", "m.yaml"], in: run, mentioning: ["runs/m already holds a run", "factorlab resume", "nothing was changed"])
        try refuses(["pretrain", "m.yaml", "--set", "optimizer.lr=1e-2", "--set", "tokenizer.vocab_size=300"], in: run,
                    mentioning: ["already holds a run"])
        XCTAssertEqual(try snapshot(run.appendingPathComponent("runs/m")), before, "the run folder is unchanged")
        // A checkpoint loaded with another tokenizer is an error, not a silent mismatch.
        let other = run.appendingPathComponent("other-tok")
        try FileManager.default.createDirectory(at: other, withIntermediateDirectories: true)
        let r = try CLI.run(["tokenize", "--train", CLI.repository.appendingPathComponent("Recipes/corpora/milton").path,
                             "--vocab-size", "300", "--out", other.path], in: run)
        XCTAssertEqual(r.status, 0, r.stderr)
        try refuses(["generate", "--model", "runs/m", "--prompt", "x", "--tokenizer", other.path], in: run,
                    mentioning: ["was trained with another tokenizer", other.path])
    }

    /// import-hf never leaves the destination without its tokenizer, and says why a folder cannot be written.
    func testImportDoesNotDestroyTheDestination() throws {
        let run = try trainedRun()
        let hf = run.appendingPathComponent("hf")
        let export = try CLI.run(["export-hf", "runs/m", "--out", hf.path, "--densify"], in: run)
        XCTAssertEqual(export.status, 0, export.stderr)
        let dest = run.appendingPathComponent("dest")
        try FileManager.default.createDirectory(at: dest.appendingPathComponent("tokenizer"), withIntermediateDirectories: true)
        try "{}".write(to: dest.appendingPathComponent("tokenizer/vocab.json"), atomically: true, encoding: .utf8)
        try "#version: 0.2\n".write(to: dest.appendingPathComponent("tokenizer/merges.txt"), atomically: true, encoding: .utf8)
        // A broken tokenizer beside the source: refused before anything is written.
        try "not json".write(to: hf.appendingPathComponent("vocab.json"), atomically: true, encoding: .utf8)
        let before = try snapshot(dest)
        try refuses(["import-hf", hf.path, "--out", dest.appendingPathComponent("model.h5").path], in: run, mentioning: ["vocab.json"])
        XCTAssertEqual(try snapshot(dest), before)
        // An output under a file (not a folder) names the path.
        for f in ["vocab.json", "merges.txt"] { try FileManager.default.removeItem(at: hf.appendingPathComponent(f)) }
        try refuses(["import-hf", hf.path, "--out", run.appendingPathComponent("m.yaml/x.h5").path], in: run, mentioning: ["m.yaml", "a part of the path is a file"])
    }
}
