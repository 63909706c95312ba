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
