// swift-tools-version:6.0
// Factorlab: a CPU training framework for dense and factorized GPT-2 models.
import Foundation
import PackageDescription

/// The CPU to generate code for, read from /proc/cpuinfo at build time. Kernels are plain loops
/// and explicit SIMD that LLVM vectorizes: on an AMD host with AVX-512 (Zen 4 and later) the
/// build targets `znver4` (16-wide vectors for the exp-heavy kernels: softmax, cross-entropy,
/// GELU); any other x86-64 host with AVX2 and FMA gets `haswell` (8-wide vectors). Set FACTORLAB_TARGET_CPU to override (an LLVM CPU name,
/// or `generic` to disable).
let targetCPU: String? = {
    if let forced = ProcessInfo.processInfo.environment["FACTORLAB_TARGET_CPU"] {
        return forced == "generic" || forced.isEmpty ? nil : forced
    }
    #if arch(x86_64)
    if let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) {
        let lines = info.split(separator: "\n")
        let flags = Set((lines.first(where: { $0.hasPrefix("flags") }) ?? "").split(separator: " ").map(String.init))
        let amd = lines.contains { $0.hasPrefix("vendor_id") && $0.contains("AuthenticAMD") }
        if amd, flags.isSuperset(of: ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_bf16"]) { return "znver4" }
        if flags.isSuperset(of: ["avx2", "fma"]) { return "haswell" }
    }
    #endif
    return nil
}()

/// Release builds of the audited numeric modules (tensor kernels, autodiff, layers, the optimizer,
/// seeded hashing): `-Ounchecked` removes bounds and overflow checks from their inner loops, whose
/// sizes are validated where values enter. Their unsafe code stays in small kernels.
let fast: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-wmo"] + (targetCPU.map { ["-target-cpu", $0] } ?? []),
                                         .when(configuration: .release))]

/// Everything else (parsers, loaders, configuration, training loops, the CLI) keeps Swift's
/// checks: a value from a file that slips past validation traps with a message instead of
/// corrupting memory. Measured cost: none beyond noise (see Tools/bench/README.md).
let checked: [SwiftSetting] = [.unsafeFlags(["-wmo"] + (targetCPU.map { ["-target-cpu", $0] } ?? []),
                                            .when(configuration: .release))]

let package = Package(
    name: "Factorlab",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "factorlab", targets: ["factorlab"]),
        .library(name: "Factorlab", targets: ["FactorlabTensor", "FactorlabAutograd", "FactorlabLayers", "FactorlabSafetensors",
                                                      "FactorlabTokenizer", "FactorlabHDF5", "FactorlabGPT2",
                                                      "FactorlabTasks", "FactorlabData", "FactorlabOptim",
                                                      "FactorlabCheckpoint", "FactorlabTraining", "FactorlabEval",
                                                      "FactorlabStudy", "FactorlabFinetune", "FactorlabDistributed",
                                                      "FactorlabRandom", "FactorlabRecords"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
    ],
    targets: [
        // C shims over Debian's system libraries, found with pkg-config.
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev", "liblapacke-dev"])]),
        .systemLibrary(name: "CHDF5", path: "Sources/CHDF5", pkgConfig: "hdf5",
                       providers: [.apt(["libhdf5-dev"]), .brew(["hdf5"])]),

        // Open MPI, loaded at run time (dlopen) so that single-process use needs no MPI installed.
        .target(name: "CMPI", path: "Sources/CMPI", linkerSettings: [.linkedLibrary("dl", .when(platforms: [.linux]))]),

        // Seeded randomness and hashing (SplitMix64, the unbiased shuffle, per-element hash streams,
        // FNV-1a): every seeded draw of every module goes through it. No dependencies.
        .target(name: "FactorlabRandom", swiftSettings: fast),

        // Tensor core: storage, shapes, views, BLAS and the raw kernels (no autodiff).
        .target(name: "FactorlabTensor", dependencies: ["COpenBLAS", "FactorlabRandom"], swiftSettings: fast),
        // Tape-based reverse-mode autodiff over the kernels.
        .target(name: "FactorlabAutograd", dependencies: ["FactorlabTensor"], swiftSettings: fast),
        // Dense, low-rank, butterfly and Monarch linear layers; layer norm, embedding; projections.
        .target(name: "FactorlabLayers", dependencies: ["FactorlabTensor", "FactorlabAutograd", "COpenBLAS"],
                swiftSettings: fast),

        // safetensors read (mmap; F32/F16/BF16/F64, integers) and atomic F32 write, validated as the reference does.
        .target(name: "FactorlabSafetensors", dependencies: ["FactorlabTensor"], swiftSettings: checked),

        // HDF5 file layer: checksummed datasets, attributes, atomic saves, one lock around libhdf5.
        .target(name: "FactorlabHDF5", dependencies: ["CHDF5", "FactorlabTensor"], swiftSettings: checked),

        // GPT-2 byte-level BPE tokenizer: encode/decode, vocab.json + merges.txt, training.
        .target(name: "FactorlabTokenizer", dependencies: ["FactorlabRandom"], swiftSettings: checked),

        // GPT-2: config and presets, the model with per-layer MLP kinds and its one forward path (training,
        // evaluation, KV-cache generation), the generation loop, projections of trained models, Hugging Face interop.
        .target(name: "FactorlabGPT2", dependencies: ["FactorlabTensor", "FactorlabAutograd", "FactorlabLayers",
                                                      "FactorlabSafetensors", "FactorlabRecords"],
                swiftSettings: checked),

        // GLUE and CoQA: loaders, official metrics, submission files, prompt building (Foundation only).
        .target(name: "FactorlabTasks", dependencies: ["FactorlabRecords"], swiftSettings: checked),

        // AdamW (torch semantics), learning-rate schedules, gradient norm and clipping coefficient.
        .target(name: "FactorlabOptim", dependencies: ["FactorlabTensor", "FactorlabAutograd"], swiftSettings: fast),

        // HDF5 checkpoints (parameters, optimizer state, training progress; atomic saves), run-folder
        // checkpoint files, and opening a model from a checkpoint, run folder or Hugging Face folder.
        .target(name: "FactorlabCheckpoint", dependencies: ["FactorlabTensor", "FactorlabAutograd", "FactorlabGPT2",
                                                            "FactorlabHDF5", "FactorlabOptim", "FactorlabTokenizer", "FactorlabRecords"],
                swiftSettings: checked),

        // Training data: text/JSONL/.bin sources, cached tokenization, splits, resumable loaders.
        .target(name: "FactorlabData", dependencies: ["FactorlabRandom", "FactorlabTokenizer"], swiftSettings: checked),

        // Data-parallel training: the MPI communicator and bucketed gradient averaging overlapped with backward.
        .target(name: "FactorlabDistributed", dependencies: ["CMPI", "FactorlabTensor", "FactorlabAutograd"], swiftSettings: checked),

        // Training: the one optimizer step, the trainer, recipes and the run-record files.
        .target(name: "FactorlabTraining", dependencies: ["FactorlabTensor", "FactorlabAutograd", "FactorlabLayers", "FactorlabGPT2",
                                                          "FactorlabOptim", "FactorlabCheckpoint", "FactorlabData",
                                                          "FactorlabTokenizer", "FactorlabDistributed", "FactorlabRecords",
                                                          .product(name: "Yams", package: "Yams")], swiftSettings: checked),

        // Evaluation: perplexity, LAMBADA and CBT scoring of language models.
        .target(name: "FactorlabEval", dependencies: ["FactorlabTensor", "FactorlabAutograd", "FactorlabGPT2", "FactorlabData", "FactorlabRandom",
                                                      .product(name: "Yams", package: "Yams"),
                                                      "FactorlabTokenizer", "FactorlabRecords", "FactorlabTasks"], swiftSettings: checked),

        // Finetuning: GLUE sequence classification and generative CoQA, recipes and runs.
        .target(name: "FactorlabFinetune", dependencies: ["FactorlabTensor", "FactorlabAutograd", "FactorlabGPT2", "FactorlabOptim",
                                                          "FactorlabCheckpoint", "FactorlabTasks", "FactorlabTokenizer",
                                                          "FactorlabTraining", "FactorlabRecords"], swiftSettings: checked),

        // The run records (run.json, metrics.jsonl, summary.json, the inference record) as typed,
        // versioned Codable values shared by their writers and readers (Foundation only).
        .target(name: "FactorlabRecords", swiftSettings: checked),

        // Budget curves, Kaplan-style fits, compute multipliers and the Markdown/SVG report (Foundation only).
        .target(name: "FactorlabStudy", dependencies: ["FactorlabRandom", "FactorlabRecords"], swiftSettings: checked),

        // Benchmarks behind `factorlab bench` (timings, GFLOP/s, memory) and the profiler behind `factorlab profile`.
        .target(name: "FactorlabBench", dependencies: ["FactorlabTensor", "FactorlabAutograd", "FactorlabLayers", "COpenBLAS",
                                                      "FactorlabGPT2", "FactorlabOptim", "FactorlabTraining"],
                swiftSettings: checked),

        // `factorlab serve`: OpenAI-compatible completions over HTTP (Hummingbird), requests batched
        // on one model worker thread, with limits on every input.
        .target(name: "FactorlabServe", dependencies: ["FactorlabGPT2", "FactorlabTokenizer", "FactorlabCheckpoint", "FactorlabRandom",
                                                       "FactorlabTensor", "FactorlabAutograd",
                                                       .product(name: "Hummingbird", package: "hummingbird")],
                swiftSettings: checked),

        .executableTarget(name: "factorlab",
                          dependencies: ["FactorlabTensor", "FactorlabLayers", "FactorlabBench", "FactorlabServe",
                                         "FactorlabGPT2", "FactorlabTokenizer", "FactorlabCheckpoint", "FactorlabTraining",
                                         "FactorlabEval", "FactorlabStudy", "FactorlabTasks", "FactorlabData",
                                         "FactorlabFinetune", "FactorlabDistributed", "FactorlabRecords",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          path: "Tools/factorlab", swiftSettings: checked),

        // Test targets mirror the modules; shared helpers (fixtures, tolerances, temporary folders)
        // live in FactorlabTestSupport.
        .target(name: "FactorlabTestSupport", dependencies: ["FactorlabTensor"], path: "Tests/FactorlabTestSupport"),
        .testTarget(name: "FactorlabCoreTests", dependencies: ["FactorlabTensor", "FactorlabAutograd", "FactorlabRandom", "FactorlabTestSupport"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "FactorlabSafetensorsTests", dependencies: ["FactorlabSafetensors", "FactorlabTensor", "FactorlabTestSupport"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "FactorlabTokenizerTests", dependencies: ["FactorlabTokenizer", "FactorlabRandom", "FactorlabTestSupport"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "FactorlabHDF5Tests", dependencies: ["FactorlabHDF5", "FactorlabTensor", "CHDF5", "FactorlabTestSupport"]),
        .testTarget(name: "FactorlabLayersTests",
                    dependencies: ["FactorlabTensor", "FactorlabAutograd", "FactorlabLayers", "FactorlabTestSupport"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "FactorlabGPT2Tests",
                    dependencies: ["FactorlabGPT2", "FactorlabTensor", "FactorlabAutograd", "FactorlabLayers",
                                   "FactorlabSafetensors", "FactorlabTestSupport"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "FactorlabTasksTests", dependencies: ["FactorlabTasks", "FactorlabTestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "FactorlabOptimTests",
                    dependencies: ["FactorlabOptim", "FactorlabTraining", "FactorlabGPT2", "FactorlabTensor", "FactorlabAutograd",
                                   "FactorlabSafetensors", "FactorlabTestSupport"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "FactorlabCheckpointTests",
                    dependencies: ["FactorlabCheckpoint", "FactorlabTraining", "FactorlabOptim", "FactorlabGPT2", "FactorlabTensor",
                                   "FactorlabAutograd", "FactorlabHDF5", "FactorlabTestSupport"]),
        .testTarget(name: "FactorlabDistributedTests",
                    dependencies: ["FactorlabDistributed", "FactorlabTensor", "FactorlabAutograd", "FactorlabTestSupport"]),
        .testTarget(name: "FactorlabDataTests", dependencies: ["FactorlabData", "FactorlabTokenizer", "FactorlabTestSupport"]),
        .testTarget(name: "FactorlabRecordsTests", dependencies: ["FactorlabRecords", "FactorlabTestSupport"]),
        .testTarget(name: "FactorlabTrainingTests",
                    dependencies: ["FactorlabTraining", "FactorlabOptim", "FactorlabCheckpoint", "FactorlabGPT2", "FactorlabTensor",
                                   "FactorlabAutograd", "FactorlabData", "FactorlabRecords", "FactorlabTestSupport"]),
        .testTarget(name: "FactorlabFinetuneTests",
                    dependencies: ["FactorlabFinetune", "FactorlabTasks", "FactorlabGPT2", "FactorlabAutograd", "FactorlabTensor",
                                   "FactorlabCheckpoint", "FactorlabTokenizer", "FactorlabTestSupport"]),
        .testTarget(name: "FactorlabStudyTests", dependencies: ["FactorlabStudy", "FactorlabTestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "FactorlabEvalTests",
                    dependencies: ["FactorlabEval", "FactorlabGPT2", "FactorlabTensor", "FactorlabAutograd", "FactorlabTokenizer",
                                   "FactorlabTasks", "FactorlabTestSupport"]),
        .testTarget(name: "FactorlabBenchTests",
                    dependencies: ["FactorlabBench", "FactorlabGPT2", "FactorlabLayers", "FactorlabTensor", "FactorlabTestSupport"]),
        .testTarget(name: "FactorlabServeTests",
                    dependencies: ["FactorlabServe", "FactorlabGPT2", "FactorlabTokenizer", "FactorlabTensor", "FactorlabAutograd", "FactorlabTestSupport",
                                   .product(name: "HummingbirdTesting", package: "hummingbird")]),
        // End-to-end tests of the `factorlab` executable.
        .testTarget(name: "FactorlabCLITests", dependencies: ["factorlab", "FactorlabBench", "FactorlabCheckpoint", "FactorlabTensor",
                                                              "FactorlabTestSupport"]),
    ]
)
