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
}
