@testable import FactorlabFinetune
import FactorlabTasks
import XCTest

final class FinetuneRecipeTests: XCTestCase {
    let minimal = """
        task: sst2
        model:
          init_from: m.h5
        data:
          root: glue
        """

    func message(_ text: String, overrides: [String] = []) -> String {
        do {
            _ = try FinetuneRecipe.parse(text, file: "r.yaml", overrides: overrides)
            return "no error"
        } catch { return "\(error)" }
    }

    func testDefaultsAreGLUEs() throws {
        let r = try FinetuneRecipe.parse(minimal, file: "r.yaml", defaultName: "x")
        XCTAssertEqual(r.task, .glue(.sst2))
        XCTAssertEqual(r.lr, 2e-5)
        XCTAssertEqual(r.epochs, 3)
        XCTAssertEqual(r.batchSize, 32)
        XCTAssertEqual(r.maxLength, 128)
        XCTAssertEqual(try r.glueFile(.sst2, .dev)?.path, URL(fileURLWithPath: "glue/SST-2/dev.tsv").path)
        XCTAssertEqual(r.runDirectory.path, URL(fileURLWithPath: "Checkpoints/finetune/x").path)
    }

    func testUnknownKeyIsRejectedWithItsPathAndLine() {
        let m = message(minimal + "\ntraining:\n  epoch: 3\n")
        XCTAssertTrue(m.contains("r.yaml:7: unknown key training.epoch; keys of training are: epochs"), m)
    }

    func testWrongTypeNamesTheKey() {
        XCTAssertTrue(message(minimal, overrides: ["optimizer.lr=fast"]).contains("optimizer.lr must be a number, got 'fast'"))
    }

    func testUnknownTaskListsTheValidNames() {
        let m = message(minimal.replacingOccurrences(of: "sst2", with: "sst3"))
        XCTAssertTrue(m.contains("unknown GLUE task \"sst3\"; valid names: cola, sst2"), m)
        XCTAssertTrue(m.hasSuffix("or coqa"), m)
    }

    func testInitFromIsRequired() {
        let m = message("task: rte\ndata:\n  root: glue\n")
        XCTAssertEqual(m, "r.yaml: model.init_from is required (a checkpoint .h5, a run folder or a Hugging Face folder; or pass --init-from)")
    }

    func testOverridesApplyAndAreRecorded() throws {
        let r = try FinetuneRecipe.parse(minimal, file: "r.yaml", overrides: ["training.epochs=5", "task=mnli"])
        XCTAssertEqual(r.epochs, 5)
        XCTAssertEqual(r.task, .glue(.mnli))
        XCTAssertTrue(r.text.hasSuffix("# overrides: training.epochs=5 task=mnli\n"))
        XCTAssertEqual(try r.glueFile(.mnli, .devMismatched)?.lastPathComponent, "dev_mismatched.tsv")
    }

    /// The shipped recipes parse, and each names its task.
    func testShippedRecipesParse() throws {
        let recipes = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Recipes")
        for task in GLUETask.allCases {
            let r = try FinetuneRecipe.load(recipes.appendingPathComponent("glue-\(task.rawValue).yaml"))
            XCTAssertEqual(r.task, .glue(task))
            XCTAssertEqual(r.lr, 2e-5)
            XCTAssertEqual(r.maxLength, 128)
        }
        XCTAssertEqual(try FinetuneRecipe.load(recipes.appendingPathComponent("coqa.yaml")).task, .coqa)
        let a = try FinetuneRecipe.load(recipes.appendingPathComponent("attribution-sst2.yaml"))
        XCTAssertEqual(a.task, .glue(.sst2))
        XCTAssertEqual(a.maxTrainExamples, 4000)
    }
}
