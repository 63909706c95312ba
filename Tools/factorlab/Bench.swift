import ArgumentParser
import FactorlabBench
import FactorlabLayers
import FactorlabTensor
import Foundation

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure kernel, layer and model speed on this machine (median of repeated runs).",
        discussion: """
        Suites: gemm (framework matmul vs raw cblas_sgemm), mlp (GPT-2-small MLP forward+backward per \
        linear kind), attention (fused causal attention), model (training step, forward and KV-cache \
        generation tokens/s, GFLOP/s and peak memory of whole GPT-2 models; each model in its own \
        process so peak memory is its own; batch-1 generation also as bytes of weights read per token, \
        GB/s, and the fraction of this machine's read bandwidth), memory (read bandwidth, STREAM's read \
        kernel, on one thread and on all). Tools/bench/compare_torch.py and compare_models.py run \
        PyTorch on the same shapes side by side.
        """)

    @Option(help: "Which suites to run: gemm, mlp, attention, model, memory (comma-separated), or all.")
    var suite: String = "all"

    @Option(help: "Linear kinds for the MLP suite (comma-separated; dense is always included as the baseline).")
    var kinds: String = "monarch:4,lowrank:192,butterfly,btt:4"

    @Option(help: "Models for the model suite: tiny, mini, gpt2 (comma-separated).")
    var models: String = "tiny,mini,gpt2"

    @Option(parsing: .upToNextOption,
            help: "Linear specs for the model suite, each one argument: 'dense' 'monarch:4' 'mlp=monarch:4,attn=monarch:4,head=lowrank:256' (an argument of bare kinds separated by commas is a list, as before).")
    var modelKinds: [String] = ["dense", "monarch:4"]

    @Option(help: "Model suite: weight formats to measure each spec in (float32, bf16, int8; comma-separated). Quantized models skip the training step.")
    var weights: String = "float32"

    @Option(help: "Model suite: also train this many steps and report resident-memory growth (0: skip).")
    var growthSteps: Int = 0

    @Option(help: "Timed repetitions per measurement (after one warm-up run).")
    var repeats: Int = 5

    @Option(help: "Model suite: keep repeating each measurement until its runs add up to this many seconds (at most 20x --repeats runs).")
    var minSeconds: Double = 3

    @Flag(help: "Print one JSON object of results on stdout.")
    var json = false

    @Flag(help: "Run Monarch's block products one after another with multithreaded GEMMs (the serial form, for comparisons).")
    var monarchSerialBlocks = false

    @Option(help: "Attention suite: also time the kernels at these row blocks (comma-separated, e.g. 32,64,256), to choose the default on a machine.")
    var attentionRowBlocks: String = ""

    @Option(help: "Attention suite: the sequence lengths T to time (comma-separated; B x T = 2048 tokens, so T at most 2048).")
    var attentionSeqLens: String = "128,256,512,1024"

    @Flag(help: .hidden) var worker = false

    /// The model suite's specs: one per argument; an argument of bare kinds joined by commas
    /// (`dense,monarch:4`, the earlier form) is split.
    var modelSpecs: [String] {
        modelKinds.flatMap { $0.contains("=") ? [$0] : $0.split(separator: ",").map(String.init) }
    }

    func run() throws {
        let known = ["gemm", "mlp", "attention", "model", "memory"]
        /// A comma-separated list of whole numbers in `range`, for the flag `name`.
        func counts(_ text: String, flag name: String, range: ClosedRange<Int>, what: String) throws -> [Int] {
            try text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.map { item -> Int in
                guard let n = Int(item), range.contains(n) else {
                    throw ValidationError("--\(name): '\(item)' is not \(what) in \(range.lowerBound)...\(range.upperBound)")
                }
                return n
            }
        }
        let attentionBlocks = try counts(attentionRowBlocks, flag: "attention-row-blocks", range: 1...(1 << 16), what: "a row count")
        let attentionLengths = try counts(attentionSeqLens, flag: "attention-seq-lens", range: 1...2048, what: "a sequence length")
        guard !attentionLengths.isEmpty else { throw ValidationError("--attention-seq-lens: give at least one sequence length") }
        let suites = Set(suite == "all" ? known : suite.split(separator: ",").map(String.init))
        guard suites.isSubset(of: Set(known)) else {
            throw ValidationError("unknown suite(s) \(suites.subtracting(known).sorted()); expected \(known.joined(separator: ", ")) or all")
        }
        guard (1...10_000).contains(repeats) else { throw ValidationError("--repeats must be between 1 and 10000, got \(repeats)") }
        guard (0...1_000_000).contains(growthSteps) else { throw ValidationError("--growth-steps must be between 0 and 1000000, got \(growthSteps)") }
        guard minSeconds >= 0, minSeconds <= 3600 else { throw ValidationError("--min-seconds must be between 0 and 3600, got \(minSeconds)") }
        let setups = try models.split(separator: ",").map { try ModelBench.setup(named: String($0)) }
        let modelKindList = modelSpecs
        for spec in modelKindList { _ = try ModelBench.setups[0].config(linear: spec) }
        let progress: (String) -> Void = { Console.progress("bench: \($0)") }
        let formats = try weights.split(separator: ",").map { w -> WeightFormat in
            guard let f = WeightFormat(rawValue: String(w)) else { throw ValidationError("--weights: '\(w)' is not float32, bf16 or int8") }
            return f
        }

        if worker {
            // One model configuration, in this process; figures as [key, value, unit] for the parent.
            var rows: [[Any]] = []
            for s in setups {
                for spec in modelKindList {
                    for w in formats {
                        for f in try ModelBench.run(s, linear: spec, weights: w, repeats: repeats, minSeconds: minSeconds, growthSteps: growthSteps,
                                                    monarchSerialBlocks: monarchSerialBlocks, progress: progress) {
                            rows.append([f.key, f.value, f.unit])
                        }
                    }
                }
            }
            Console.endProgress()
            try Console.printJSON(["figures": rows])
            return
        }

        var figures: [BenchFigure] = []
        if suites.contains("gemm") { figures += KernelBench.gemm(repeats: repeats, progress: progress) }
        if suites.contains("mlp") {
            let chosen = try kinds.split(separator: ",").map { try LinearKind(spec: String($0)) }.filter { $0 != .dense }
            figures += try KernelBench.mlp(kinds: [.dense] + chosen, repeats: repeats, monarchSerialBlocks: monarchSerialBlocks,
                                           progress: progress)
        }
        if suites.contains("attention") {
            figures += try KernelBench.attention(seqLens: attentionLengths, rowBlocks: attentionBlocks, repeats: repeats,
                                                 progress: progress)
        }
        var kernelRates: [WeightFormat: Double] = [:]
        if suites.contains("memory") {
            figures += MemoryBench.run(repeats: repeats, progress: progress)
            kernelRates = try MemoryBench.kernelRates(repeats: repeats, progress: progress)
            figures += MemoryBench.figures(kernelRates: kernelRates)
            figures += MemoryBench.batchedFigures(try MemoryBench.batchedKernelRates(repeats: repeats, progress: progress))
        }
        if suites.contains("model") {
            figures += try modelSuite(setups: setups, kinds: modelKindList, formats: formats, sgemm: figures.first { $0.key == "gemm.2048.raw_gflops" }?.value,
                                      readGBps: figures.first { $0.key == "memory.read_gbps_all_threads" }?.value,
                                      kernelGBps: kernelRates, progress: progress)
        }
        Console.endProgress()
        let blasFallback = ProcessInfo.processInfo.environment["FACTORLAB_BLAS_CORE_FALLBACK"]
        if json {
            var obj: [String: Any] = [:]
            for f in figures { obj[f.key] = f.value }
            obj["machine.cores"] = ProcessInfo.processInfo.activeProcessorCount
            obj["machine.blas"] = BLAS.configuration
            if let fallback = blasFallback { obj["machine.blas_fallback_overridden"] = fallback }
            try Console.printJSON(obj)
        } else {
            let note = blasFallback.map { "; OpenBLAS chose \($0), overridden by OPENBLAS_CORETYPE" } ?? ""
            print("Factorlab bench (\(BLAS.configuration)\(note), \(ProcessInfo.processInfo.activeProcessorCount) cores, median of \(repeats))")
            for f in figures { print("  " + f.key.padding(toLength: 48, withPad: " ", startingAt: 0) + String(format: "%12.3f ", f.value) + f.unit) }
        }
    }

    /// Each (model, kind) runs in a child process (`bench --worker`), so that its peak resident
    /// memory is its own; then speed-ups over dense and the fraction of the sgemm ceiling.
    func modelSuite(setups: [ModelBench.Setup], kinds: [String], formats: [WeightFormat], sgemm: Double?, readGBps: Double?,
                    kernelGBps: [WeightFormat: Double], progress: (String) -> Void) throws -> [BenchFigure] {
        var out: [BenchFigure] = []
        for s in setups {
            for spec in kinds {
                for w in formats {
                    progress("\(s.name) \(spec) \(w)")
                    out += try runWorker(["bench", "--worker", "--models", s.name, "--model-kinds", spec, "--weights", w.rawValue,
                                          "--repeats", String(repeats), "--min-seconds", String(minSeconds),
                                          "--growth-steps", String(growthSteps)] + (monarchSerialBlocks ? ["--monarch-serial-blocks"] : []))
                }
            }
        }
        let ceiling = sgemm ?? KernelBench.gemm(sizes: [2048], repeats: 3, progress: progress).first { $0.key == "gemm.2048.raw_gflops" }!.value
        let bandwidth = readGBps ?? MemoryBench.run(megabytes: 256, repeats: 3, progress: progress)
            .first { $0.key == "memory.read_gbps_all_threads" }?.value
        if readGBps == nil, let bandwidth { out.append(BenchFigure("memory.read_gbps_all_threads", bandwidth, "GB/s")) }
        // The kernels' in-cache rates (measured here unless the memory suite ran), for the formats measured.
        var rates = kernelGBps
        if rates.isEmpty {
            rates = try MemoryBench.kernelRates(repeats: 3, progress: progress)
            out += MemoryBench.figures(kernelRates: rates)
        }
        return out + ModelBench.derivedFigures(out, setups: setups, specs: kinds, weights: formats, sgemmGFLOPs: ceiling, readGBps: bandwidth,
                                               kernelGBps: rates)
    }

    func runWorker(_ args: [String]) throws -> [BenchFigure] {
        let p = Console.childProcess(args)
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0,
              let obj = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let rows = obj["figures"] as? [[Any]] else {
            throw ValidationError("bench worker `factorlab \(args.joined(separator: " "))` failed (exit \(p.terminationStatus))")
        }
        return rows.compactMap { row in
            guard row.count == 3, let k = row[0] as? String, let v = row[1] as? Double, let u = row[2] as? String else { return nil }
            return BenchFigure(k, v, u)
        }
    }
}
