import ArgumentParser
import FactorlabBench
import FactorlabLayers
import FactorlabTensor
import Foundation

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure kernel, layer and model speed on this machine (median of repeated runs).")

    @Option(help: "Which suites to run: gemm, mlp, attention (comma-separated), or all.")
    var suite: String = "all"

    @Option(help: "Linear kinds for the MLP suite (comma-separated; dense is always included as the baseline).")
    var kinds: String = "monarch:4,lowrank:192,butterfly"

    @Option(help: "Timed repetitions per measurement (after one warm-up run).")
    var repeats: Int = 5

    @Flag(help: "Print one JSON object of results on stdout.")
    var json = false

    func run() throws {
        let suites = Set(suite == "all" ? ["gemm", "mlp", "attention"] : suite.split(separator: ",").map(String.init))
        let known: Set<String> = ["gemm", "mlp", "attention"]
        guard suites.isSubset(of: known) else {
            throw ValidationError("unknown suite(s) \(suites.subtracting(known).sorted()); expected gemm, mlp, attention or all")
        }
        guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1") }
        var figures: [BenchFigure] = []
        let progress: (String) -> Void = { Console.progress("bench: \($0)") }
        if suites.contains("gemm") { figures += KernelBench.gemm(repeats: repeats, progress: progress) }
        if suites.contains("mlp") {
            let chosen = try kinds.split(separator: ",").map { try LinearKind(spec: String($0)) }.filter { $0 != .dense }
            figures += try KernelBench.mlp(kinds: [.dense] + chosen, repeats: repeats, progress: progress)
        }
        if suites.contains("attention") { figures += try KernelBench.attention(repeats: repeats, progress: progress) }
        Console.endProgress()
        if json {
            var obj: [String: Any] = [:]
            for f in figures { obj[f.key] = f.value }
            obj["machine.cores"] = ProcessInfo.processInfo.activeProcessorCount
            obj["machine.blas"] = BLAS.configuration
            Console.printJSON(obj)
        } else {
            print("Factorlab bench (\(BLAS.configuration), \(ProcessInfo.processInfo.activeProcessorCount) cores, median of \(repeats))")
            for f in figures { print("  " + f.key.padding(toLength: 34, withPad: " ", startingAt: 0) + String(format: "%12.3f ", f.value) + f.unit) }
        }
    }
}
