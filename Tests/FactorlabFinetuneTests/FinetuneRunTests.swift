import FactorlabCheckpoint
@testable import FactorlabFinetune
import FactorlabGPT2
import FactorlabTensor
import FactorlabTokenizer
import XCTest

/// The whole run as `factorlab finetune` does it: model and tokenizer from disk, a GLUE folder,
/// records, best checkpoint, submission file, and --eval-only.
final class FinetuneRunTests: XCTestCase {
    /// A folder with `base.h5` (a tiny GPT-2), its BPE tokenizer beside it, and `glue/SST-2/*.tsv`.
    func fixture(trainText: String? = nil) throws -> URL {
        let dir = try temporaryDirectory()
        let words = ["apple", "pear", "plum", "fig", "kiwi", "lime", "date", "zebra"]
        let tok = try BPETokenizer.train(texts: [words.joined(separator: " ")], vocabularySize: 280)
        try tok.write(to: dir)
        let model = try tinyModel(vocab: tok.vocabularySize, positions: 32, seed: 3)
        try Checkpoint.save(model: model, to: dir.appendingPathComponent("base.h5"))
        var rng = RandomGenerator(state: 5)
        func rows(_ n: Int) -> String {
            (0..<n).map { i -> String in
                var s = (0..<4).map { _ in words[Int(rng.next() % 7)] }
                if i % 2 == 1 { s[Int(rng.next() % 4)] = "zebra" }
                return s.joined(separator: " ") + "\t\(i % 2)"
            }.joined(separator: "\n") + "\n"
        }
        let glue = dir.appendingPathComponent("glue/SST-2")
        try FileManager.default.createDirectory(at: glue, withIntermediateDirectories: true)
        try Data((trainText ?? "sentence\tlabel\n" + rows(192)).utf8).write(to: glue.appendingPathComponent("train.tsv"))
        try Data(("sentence\tlabel\n" + rows(64)).utf8).write(to: glue.appendingPathComponent("dev.tsv"))
        try Data("index\tsentence\n0\tapple zebra fig\n1\tpear plum\n".utf8).write(to: glue.appendingPathComponent("test.tsv"))
        return dir
    }

    func recipe(_ dir: URL, _ extra: [String] = []) throws -> FinetuneRecipe {
        try FinetuneRecipe.parse("""
            name: t
            task: sst2
            model: {init_from: \(dir.appendingPathComponent("base.h5").path), dropout: false}
            data: {root: \(dir.appendingPathComponent("glue").path), max_length: 24}
            optimizer: {lr: 3.0e-3}
            training: {epochs: 3, batch_size: 16}
            output: {dir: \(dir.appendingPathComponent("run").path)}
            """, file: "t.yaml", overrides: extra)
    }

    func testRunTrainsScoresAndWritesTheSubmission() throws {
        let dir = try fixture()
        let r = try FinetuneRun.run(try recipe(dir))
        XCTAssertEqual(r.steps, 36)
        XCTAssertEqual(r.head, "fresh (untrained)")
        let best = try XCTUnwrap(r.bestDev)
        XCTAssertGreaterThan(best["accuracy"]!, 0.8, "\(r)")
        let submission = try String(contentsOf: dir.appendingPathComponent("run/SST-2.tsv"), encoding: .utf8)
        let lines = submission.split(separator: "\n")
        XCTAssertEqual(lines.count, 3)
        XCTAssertEqual(lines[0], "index\tprediction")
        XCTAssertTrue(lines[1].hasPrefix("0\t") && lines[2].hasPrefix("1\t"))
        // --eval-only on the best checkpoint keeps its trained head and reproduces the best dev score.
        let again = try FinetuneRun.run(try recipe(dir, ["model.init_from=\(dir.appendingPathComponent("run/best.h5").path)"]), evalOnly: true)
        XCTAssertEqual(again.head, "from the model")
        XCTAssertEqual(try XCTUnwrap(again.dev?["accuracy"]), best["accuracy"]!, accuracy: 1e-12)
    }

    func testALabelOutsideTheTaskNamesFileAndLine() throws {
        let dir = try fixture(trainText: "sentence\tlabel\napple pear\t0\nfig zebra\t7\n")
        XCTAssertThrowsError(try FinetuneRun.run(try recipe(dir))) { error in
            let m = "\(error)"
            XCTAssertTrue(m.contains("glue/SST-2/train.tsv line 3"), m)
            XCTAssertTrue(m.contains("7"), m)
        }
    }

    func testAMaxLengthBeyondTheContextIsRejected() throws {
        let dir = try fixture()
        XCTAssertThrowsError(try FinetuneRun.run(try recipe(dir, ["data.max_length=64"]))) {
            XCTAssertEqual("\($0)", "data.max_length 64 exceeds the model's context of 32")
        }
    }
}
