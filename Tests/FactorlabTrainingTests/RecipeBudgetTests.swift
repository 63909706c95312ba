import FactorlabTraining
import XCTest

/// How a recipe's length is decided: steps, a token budget, or a FLOP budget that depends on the model.
final class RecipeBudgetTests: XCTestCase {
    func recipe(_ training: String) throws -> Recipe {
        try Recipe.parse("""
        name: t
        model: {n_layer: 1, n_head: 1, n_embd: 8}
        data: {paths: [x]}
        training: {batch_size: 2, seq_len: 4, \(training)}
        """, file: "t.yaml", overrides: [], defaultName: "t")
    }

    func testFLOPBudgetBuysStepsAtTheModelsCostAndCountsWhatWasAlreadySpent() throws {
        let r = try recipe("flop_budget: 1.0e9")
        XCTAssertTrue(r.usesFLOPBudget)
        // 8 tokens per step at 1e6 FLOPs per token: 8e6 per step, 125 steps.
        XCTAssertEqual(r.totalSteps(flopsPerStep: 8e6, stepsDone: 0, flopsSoFar: 0), 125)
        // A cheaper model gets more steps for the same compute.
        XCTAssertEqual(r.totalSteps(flopsPerStep: 4e6, stepsDone: 0, flopsSoFar: 0), 250)
        // Started from a checkpoint that cost 6e8: only the remaining 4e8 is spent (50 steps).
        XCTAssertEqual(r.totalSteps(flopsPerStep: 8e6, stepsDone: 0, flopsSoFar: 6e8), 50)
        // Resumed 20 steps into that run: the same total.
        XCTAssertEqual(r.totalSteps(flopsPerStep: 8e6, stepsDone: 20, flopsSoFar: 6e8 + 20 * 8e6), 50)
        // Already over budget: nothing more to do.
        XCTAssertEqual(r.totalSteps(flopsPerStep: 8e6, stepsDone: 0, flopsSoFar: 2e9), 0)
    }

    func testMaxStepsTakesPrecedenceAndBadBudgetsNameTheKey() throws {
        let both = try recipe("max_steps: 7, flop_budget: 1.0e9")
        XCTAssertFalse(both.usesFLOPBudget)
        XCTAssertEqual(both.totalSteps(flopsPerStep: 8e6, stepsDone: 0, flopsSoFar: 0), 7)
        XCTAssertThrowsError(try recipe("flop_budget: -1")) { XCTAssertTrue("\($0)".contains("training.flop_budget must be positive"), "\($0)") }
        XCTAssertThrowsError(try recipe("grad_clip: 1.0")) { XCTAssertTrue("\($0)".contains("training.flop_budget"), "\($0)") }
    }
}

/// `d/K` in a linear spec: the width divided by K, resolved when the model is configured.
final class RecipeWidthRankTests: XCTestCase {
    func testWidthRanksFollowTheWidthAndBadDivisorsNameTheSpec() throws {
        XCTAssertEqual(try Recipe.resolvingWidthRanks("mlp=lowrank:d/4,attn=btt:d/32", nEmbd: 192), "mlp=lowrank:48,attn=btt:6")
        XCTAssertEqual(try Recipe.resolvingWidthRanks("lowrank:d/4@0-1;dense", nEmbd: 64), "lowrank:16@0-1;dense")
        XCTAssertEqual(try Recipe.resolvingWidthRanks("mlp=monarch:4", nEmbd: 64), "mlp=monarch:4")
        XCTAssertThrowsError(try Recipe.resolvingWidthRanks("mlp=lowrank:d/5", nEmbd: 64)) {
            XCTAssertTrue("\($0)".contains("d/5 needs a divisor of the width 64"), "\($0)")
        }
        for width in [64, 128] {
            let r = try Recipe.parse("""
            name: t
            model: {n_layer: 1, n_head: 1, n_embd: \(width), linear: "mlp=lowrank:d/4"}
            data: {paths: [x]}
            training: {batch_size: 2, seq_len: 4, max_steps: 1}
            """, file: "t.yaml", overrides: [], defaultName: "t")
            XCTAssertEqual(try r.modelConfig(vocabSize: 16).linearSpec, "lowrank:\(width / 4)")
            // One family across widths in the run records.
            XCTAssertEqual(r.familyLabel(resolved: "lowrank:\(width / 4)"), "mlp=lowrank:d/4")
        }
    }
}

/// Recipe text limits and the recorded overrides (review and fuzzing findings).
final class RecipeTextTests: XCTestCase {
    func refused(_ text: String) -> String? {
        do { try RecipeTextLimits.check(text, file: "r.yaml"); return nil } catch { return "\(error)" }
    }

    /// The repository's Recipes folder.
    let recipesDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Recipes")

    func testEveryBundledRecipePassesTheLimits() throws {
        let dir = recipesDirectory
        var files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".yaml") }.map { dir.appendingPathComponent($0) }
        files += try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("local-minimum").path)
            .filter { $0.hasSuffix(".yaml") }.map { dir.appendingPathComponent("local-minimum/\($0)") }
        XCTAssertGreaterThan(files.count, 10)
        for f in files { XCTAssertNil(refused(try String(contentsOf: f, encoding: .utf8)), f.path) }
    }

    /// Every bundled training recipe loads and validates (the local-minimum arm labels once broke
    /// the run-name rule after the recipe validation was tightened, and only a run found it).
    func testEveryBundledTrainingRecipeValidates() throws {
        let dir = recipesDirectory
        var files = ["shakespeare-tiny.yaml", "shakespeare-10m-dense.yaml", "shakespeare-10m-monarch.yaml"].map { dir.appendingPathComponent($0) }
        for sub in ["local-minimum", "projection-damage"] {
            files += try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent(sub).path)
                .filter { $0.hasSuffix(".yaml") }.map { dir.appendingPathComponent("\(sub)/\($0)") }
        }
        XCTAssertGreaterThanOrEqual(files.count, 8)
        for f in files {
            XCTAssertNoThrow(try Recipe.load(f), f.path)
        }
        XCTAssertEqual(try Recipe.load(dir.appendingPathComponent("local-minimum/projected-trained.yaml")).arm, "projected-trained")
    }

    func testValidYAMLThatLooksLikeAnAliasIsAccepted() {
        for text in ["eval:\n  prompt: ROMEO, *aside*\n", "note: x - &y\n", "prompt: \"a *b\"\n", "prompt: |-  \n  *not an alias\nname: x\n",
                     "prompt: >+2 # folded\n   - &z\nname: y\n", "a: 1\r\nb: |\r\n  *x\r\nc: 2\r\n", "s: 'it''s *'\n"] {
            XCTAssertNil(refused(text), text)
        }
    }

    func testAliasesAndDeepNestingAcrossLinesAreRefused() {
        XCTAssertNotNil(refused("x: [\t&a [1, 1], [\t*a, *a]]\n"), "a tab separates like a space")
        XCTAssertNotNil(refused("x: {? *a : 1}\n"))
        XCTAssertNotNil(refused("- *a\n"))
        XCTAssertTrue(refused("a: " + String(repeating: "[\n", count: 100)) ?? "" != "", "flow depth is carried across lines")
        XCTAssertTrue((refused("a: " + String(repeating: "[\n", count: 100)) ?? "").contains("nesting depth"))
    }

    func testOverridesWithSpacesSurviveTheRecipeRecord() {
        let plain = RecipeText.recording("name: r\n", overrides: ["optimizer.lr=1e-3", "seed=3"])
        XCTAssertTrue(plain.hasSuffix("# overrides: optimizer.lr=1e-3 seed=3\n"))
        XCTAssertEqual(RecipeText.split(plain).overrides, ["optimizer.lr=1e-3", "seed=3"])
        let spaced = RecipeText.recording("name: r\n", overrides: ["eval.prompt=KING HENRY:", "checkpoint.dir=/a b/c"])
        XCTAssertEqual(RecipeText.split(spaced).overrides, ["eval.prompt=KING HENRY:", "checkpoint.dir=/a b/c"])
        XCTAssertEqual(RecipeText.split(spaced).text, "name: r\n")
    }
}
