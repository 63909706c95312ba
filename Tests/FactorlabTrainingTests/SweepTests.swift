import FactorlabTraining
import Foundation
import XCTest

/// Sweep files: the grid expands exactly (names, values, overrides), and bad sweeps name the key.
final class SweepTests: XCTestCase {
    func message(_ body: () throws -> Any) -> String {
        do { _ = try body(); return "" } catch { return "\(error)" }
    }

    func testGridExpandsToNamedPointsWithTheirOverrides() throws {
        let s = try Sweep.parse("""
            name: mini
            base: Recipes/shakespeare-tiny.yaml
            set: [training.max_steps=null]
            grid:
              model.n_embd: [128, 192]
              model.linear: [dense, "mlp=monarch:4,attn=btt:2@0-1"]
              seed: [1]
            """, file: "mini.yaml")
        XCTAssertEqual(s.out.path, URL(fileURLWithPath: "Checkpoints/sweeps/mini").path)
        let points = try s.points()
        XCTAssertEqual(points.map(\.name), ["n_embd-128_linear-dense", "n_embd-128_linear-mlp-monarch4.attn-btt2at0-1",
                                            "n_embd-192_linear-dense", "n_embd-192_linear-mlp-monarch4.attn-btt2at0-1"])
        XCTAssertEqual(points[1].overrides, ["training.max_steps=null", "model.n_embd=128", "model.linear=mlp=monarch:4,attn=btt:2@0-1", "seed=1"])
        XCTAssertEqual(points[3].values.map(\.value), ["192", "mlp=monarch:4,attn=btt:2@0-1", "1"])
        XCTAssertEqual(s.folder(points[0]).lastPathComponent, "n_embd-128_linear-dense")
    }

    func testBadSweepsNameTheProblem() {
        let base = "name: s\nbase: b.yaml\n"
        XCTAssertTrue(message { try Sweep.parse(base, file: "s.yaml") }.contains("grid must name at least one key"))
        XCTAssertTrue(message { try Sweep.parse(base + "grid: {seed: []}", file: "s.yaml") }.contains("grid.seed has no values"))
        XCTAssertTrue(message { try Sweep.parse(base + "grid: {seed: [1, 1]}", file: "s.yaml") }.contains("grid.seed repeats a value"))
        XCTAssertTrue(message { try Sweep.parse(base + "grid: {seed: [1]}\nextra: 1", file: "s.yaml") }.contains("unknown key extra"))
        XCTAssertTrue(message { try Sweep.parse("name: ../x\nbase: b.yaml\ngrid: {seed: [1]}", file: "s.yaml") }.contains("sweep name"))
        // Two values that make the same folder name are refused, not merged.
        let same = try! Sweep.parse(base + "grid: {model.linear: [\"monarch:4\", \"monarch4\"]}", file: "s.yaml")
        XCTAssertTrue(message { try same.points() }.contains("get the same folder name"))
    }

    /// Tuning points are the grid at the `at` values times the tuned values; each family gets the
    /// value with the lowest mean loss over its tuning points (seeds averaged).
    func testTuningPointsAndTheChoicePerFamily() throws {
        let s = try Sweep.parse("""
            name: t
            base: b.yaml
            grid:
              model.n_embd: [32, 64]
              model.linear: [dense, monarch:4]
              seed: [1, 2]
            tune: {key: optimizer.lr, values: [1.0e-3, 3.0e-3], per: model.linear, at: {model.n_embd: 32}}
            """, file: "t.yaml")
        let tuning = try s.tuningPoints()
        XCTAssertEqual(tuning.count, 2 * 2 * 2, "families x seeds x values at n_embd 32")
        XCTAssertEqual(tuning[0].name, "tune/n_embd-32_linear-dense_seed-1_lr-1.0e-3")
        XCTAssertEqual(tuning[0].overrides, ["model.n_embd=32", "model.linear=dense", "seed=1", "optimizer.lr=1.0e-3"])
        XCTAssertEqual(s.runName(tuning[0]), "tune.n_embd-32_linear-dense_seed-1_lr-1.0e-3")
        // dense: 3e-3 is better on average over the seeds; monarch: 1e-3; a missing loss is skipped.
        let losses: [String: Double] = ["linear-dense_seed-1_lr-1.0e-3": 5.0, "linear-dense_seed-2_lr-1.0e-3": 5.2,
                                        "linear-dense_seed-1_lr-3.0e-3": 4.9, "linear-dense_seed-2_lr-3.0e-3": 5.1,
                                        "linear-monarch4_seed-1_lr-1.0e-3": 4.7, "linear-monarch4_seed-1_lr-3.0e-3": 4.8,
                                        "linear-monarch4_seed-2_lr-3.0e-3": 4.9]
        let tuned = try s.tunedValues { p in losses.first { p.name.hasSuffix($0.key) }?.value }
        XCTAssertEqual(tuned["dense"]?.value, "3.0e-3")
        XCTAssertEqual(tuned["monarch:4"]?.value, "1.0e-3", "means: 1e-3 -> 4.7 (its one finished seed), 3e-3 -> 4.85")
        XCTAssertEqual(tuned["monarch:4"]?.losses["3.0e-3"] ?? 0, 4.85, accuracy: 1e-12)
        let grid = try s.points()
        let point = try s.withTuned(grid.first { $0.name == "n_embd-64_linear-dense_seed-2" }!, tuned)
        XCTAssertEqual(point.overrides.last, "optimizer.lr=3.0e-3")
        XCTAssertThrowsError(try s.withTuned(grid[0], [:])) { e in XCTAssertTrue("\(e)".contains("no finished tuning point for model.linear=dense"), "\(e)") }
        XCTAssertTrue(message { try Sweep.parse("name: t\nbase: b.yaml\ngrid: {seed: [1]}\ntune: {key: optimizer.lr, values: [1], per: model.linear}", file: "t.yaml") }
            .contains("tune.per model.linear is not a grid axis"))
    }
}
