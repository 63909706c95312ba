import Foundation
import XCTest
#if canImport(FoundationXML)
import FoundationXML
#endif
@testable import FactorlabStudy

final class StudyReportTests: XCTestCase {
    static let plotFiles = ["loss_vs_flops.svg", "loss_vs_wall.svg", "loss_vs_latency.svg", "loss_vs_params.svg", "loss_vs_memory.svg"]

    func generate() throws -> (ReportSummary, URL) {
        let out = try temporaryDirectory(self).appendingPathComponent("report")
        let summary = try StudyReport.generate(runDirectories: [Fixtures.runsRoot], outputDirectory: out,
                                               budgets: StudyAnalysisTests.budgets)
        return (summary, out)
    }

    func testReportRendersFromTheFixtureRuns() throws {
        let (summary, out) = try generate()
        XCTAssertEqual(summary.plots, Self.plotFiles)
        XCTAssertEqual(summary.reportPath, out.appendingPathComponent("report.md").path)
        let md = try String(contentsOf: out.appendingPathComponent("report.md"), encoding: .utf8)
        let expectedLines = [
            "# Factorlab study: validation loss against compute",
            "18 runs read; 14 from-scratch runs in 7 sizes enter the curves and fits; 4 are left out (listed below).",
            "| run | family | size | arm | seed | params | tokens | FLOPs | wall | final val | best val | tokens/s |",
            "| dense-4L-128d-s0 | dense | 4L-128d |  | 0 | 7,254,400 | 6.7e7 | 3.0e15 | 41.2 h | 3.872 | 3.872 | 453 |",
            "| lowrank32-4L-192d-projected-s0 | lowrank:32 | 4L-192d | projected | 0 | 10,537,536 | 0 | 0 | 0 s | 4.238 | 4.238 | 250 |",
            "- `dense-4L-128d-noval`: no validation points (no val_loss in metrics.jsonl)",
            "![Validation loss vs training FLOPs](loss_vs_flops.svg)",
            "| dense | FLOPs | 4L-128d, 4L-192d, 4L-256d | 29.935 | 0.0576 | 0.0014 | 10 | 3.3e15–1.2e16 | 0.0015 | 0.0029 |  |",
            "| monarch:4 | FLOPs | 3.729 | 5.0e15 | 4.6e15 | 1.10× | 0.03 | fit/fit | no |",
            "| 1.0e16 | 4L-384d monarch:4: 3.524 ± 0.004 | dense 4L-256d: 3.588 ± 0.006 | dense 4L-256d: 3.588 ± 0.006 | 4L-384d monarch:4: 3.524 ± 0.004 | yes |",
            "- At 1.0e16 FLOPs, use 4L-384d with monarch:4 instead of dense 4L-256d: val loss 3.524 ± 0.004 vs 3.588 ± 0.006 (margin 0.064 nats = 9.0 × the combined seed spread).",
            "| 4L-128d | dense | 7,254,400 | 788,736 | 1.635 | 75.4 MiB | 562.8 MiB | 3.871 |",  // 5e7 + 4 N and 3e8 + 40 N bytes
            "| 4L-192d | lowrank:32 | 10,537,536 | 839,040 | not measured | not measured | 688.1 MiB | 3.895 |",
            "![Validation loss vs latency per token](loss_vs_latency.svg)",
            "## Local-minimum experiment",
            "| scratch | lowrank:32 | 4L-192d | 2 | 6.5e15 | 3.895 | 0.009 | 0.213 |",
            "| projected | lowrank:32 | 4L-192d | 1 | 0 | 4.238 | single seed | 0.556 |",
            "## How this was computed",
        ]
        let lines = Set(md.split(separator: "\n").map(String.init))
        for line in expectedLines {
            let prefix = line.split(separator: "|").first.map { "| " + $0.trimmingCharacters(in: .whitespaces) + " |" } ?? line
            XCTAssertTrue(lines.contains(line), "missing line: \(line)\nfound: \(lines.filter { $0.hasPrefix(prefix) }.sorted())")
        }
        XCTAssertTrue(md.contains("**Verdict.** Factorized from scratch (4L-192d lowrank:32) does not reach the dense loss"))
        XCTAssertTrue(md.contains("At 2.0e15 FLOPs no accelerator beats the dense baseline (best dense: 4L-192d"))
        XCTAssertFalse(md.contains(out.path), "the report holds no absolute paths")
        for file in Self.plotFiles { XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent(file).path)) }
    }

    /// Parses an SVG with Foundation's XMLParser, counting elements by name.
    final class SVGCounter: NSObject, XMLParserDelegate {
        var counts: [String: Int] = [:]
        var root: String?
        var rootAttributes: [String: String] = [:]
        var text = ""

        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                    attributes: [String: String] = [:]) {
            if root == nil {
                root = name
                rootAttributes = attributes
            }
            counts[name, default: 0] += 1
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }
    }

    func testSVGsAreWellFormedXMLWithAxesLegendAndData() throws {
        let (_, out) = try generate()
        for file in Self.plotFiles {
            let data = try Data(contentsOf: out.appendingPathComponent(file))
            let parser = XMLParser(data: data)
            let counter = SVGCounter()
            parser.delegate = counter
            XCTAssertTrue(parser.parse(), "\(file): \(parser.parserError.map { "\($0)" } ?? "")")
            XCTAssertEqual(counter.root, "svg", file)
            XCTAssertEqual(counter.rootAttributes["version"], "1.1", file)
            XCTAssertEqual(counter.rootAttributes["xmlns"] ?? "http://www.w3.org/2000/svg", "http://www.w3.org/2000/svg", file)
            XCTAssertGreaterThan(counter.counts["text", default: 0], 8, file)
            XCTAssertTrue(counter.text.contains("best validation loss") || counter.text.contains("validation loss (nats/token)"), file)
        }
        let flops = try String(contentsOf: out.appendingPathComponent("loss_vs_flops.svg"), encoding: .utf8)
        XCTAssertTrue(flops.contains("10<tspan dy=\"-6\" font-size=\"9\">15</tspan>"), "decade tick label 10^15")
        XCTAssertTrue(flops.contains("10<tspan dy=\"-6\" font-size=\"9\">16</tspan>"), "decade tick label 10^16")
        XCTAssertEqual(flops.components(separatedBy: "stroke-dasharray=\"7,4\"").count - 1, 3,
                       "dashed: the dense and Monarch fits and the legend sample (low-rank has one size, no fit)")
        XCTAssertEqual(flops.components(separatedBy: "<polyline").count - 1, 3 + 7 + 2, "3 frontiers, 7 size curves, 2 fits")
    }

    func testOutputIsByteIdenticalAcrossRuns() throws {
        let (_, first) = try generate()
        let (_, second) = try generate()
        for file in Self.plotFiles + ["report.md"] {
            let a = try Data(contentsOf: first.appendingPathComponent(file))
            let b = try Data(contentsOf: second.appendingPathComponent(file))
            XCTAssertEqual(a, b, file)
        }
    }

    func testJSONSummaryRoundTripsAndCarriesRecommendationsAndMultipliers() throws {
        let (summary, _) = try generate()
        let text = try StudyReport.json(summary)
        let decoded = try JSONDecoder().decode(ReportSummary.self, from: Data(text.utf8))
        XCTAssertEqual(decoded, summary)
        XCTAssertEqual(summary.recommendations.count, 4)
        XCTAssertEqual(summary.multipliers.count, 20, "2 families x 2 axes x 5 levels")
        XCTAssertEqual(summary.fits.count, 6)
        XCTAssertEqual(summary.includedRuns.count, 14)
        XCTAssertEqual(summary.excludedRuns.count, 4)
        XCTAssertEqual(summary.replicates, 128)
        XCTAssertEqual(summary.localMinimum?.scratchReachesDense, false)
        XCTAssertTrue(text.contains("\"acceleratorWins\" : true"))
    }

    func testPlotTicksOnAShortRangeAndEscaping() throws {
        let plot = SVGPlot(title: "A & B <test>", xLabel: "x", yLabel: "y",
                           series: [SVGPlot.Series(points: [CurvePoint(x: 1.5, loss: 3), CurvePoint(x: 2.8, loss: 2)], color: "#000000",
                                                   marker: .circle)],
                           legend: [SVGPlot.LegendEntry(text: "only", color: "#000000", marker: .circle)])
        let svg = plot.render()
        XCTAssertTrue(svg.contains(">A &amp; B &lt;test&gt;</text>"))
        // No decade inside [1.5, 2.8]: every integer multiple is labelled.
        XCTAssertTrue(svg.contains(">2</text>"))
        XCTAssertFalse(svg.contains("<tspan dy=\"-6\""))
        XCTAssertEqual(svg.components(separatedBy: "<circle").count - 1, 3, "two points and the legend marker")
        XCTAssertTrue(XMLParser(data: Data(svg.utf8)).parse())
        XCTAssertEqual(SVGPlot.minorLabel(5, 15), "5·10<tspan dy=\"-5\" font-size=\"8\">15</tspan>")
        XCTAssertEqual(SVGPlot.minorLabel(2, -2), "0.02")
        XCTAssertEqual(SVGPlot.minorLabel(3, 2), "300")
    }
}
