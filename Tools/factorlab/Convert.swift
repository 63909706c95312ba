import ArgumentParser
import FactorlabCheckpoint
import FactorlabEval
import FactorlabGPT2
import FactorlabLayers
import FactorlabTokenizer
import Foundation

struct ImportHF: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "import-hf",
                                                    abstract: "Convert a Hugging Face GPT-2 folder to a Factorlab checkpoint.")
    @Argument(help: "Folder with config.json and model.safetensors.")
    var folder: String
    @Option(help: "Output checkpoint (.h5).")
    var out: String

    func run() throws {
        let model = try GPT2Model.loadHuggingFace(URL(fileURLWithPath: folder))
        let url = URL(fileURLWithPath: out)
        // The tokenizer is read (and checked) before anything is written; the checkpoint is
        // written atomically, then the tokenizer files, each through a temporary file.
        let tokenizer = try ModelFiles.tokenizerBeside(URL(fileURLWithPath: folder)).map { ($0, try BPETokenizer(directory: $0)) }
        try Checkpoint.save(model: model, tokenizer: tokenizer?.1.fingerprint, to: url)
        if let (dir, _) = tokenizer {
            try ModelFiles.copyTokenizer(from: dir, to: url.deletingLastPathComponent().appendingPathComponent("tokenizer"))
        }
        print("wrote \(out) (\(model.parameterCount) parameters)")
    }
}

struct ExportHF: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "export-hf",
                                                    abstract: "Write a checkpoint as a Hugging Face GPT-2 folder (dense MLPs).")
    @Argument(help: "A .h5 checkpoint or run folder.")
    var model: String
    @Option(help: "Output folder.")
    var out: String
    @Flag(help: "Export a factorized model as the dense equivalent of its structured layers.")
    var densify = false

    func run() throws {
        let loaded = try ModelFiles.load(model)
        let m = densify ? try loaded.model.denseEquivalent() : loaded.model
        let dir = URL(fileURLWithPath: out)
        try m.saveHuggingFace(dir)
        if let tok = loaded.tokenizerDirectory { try ModelFiles.copyTokenizer(from: tok, to: dir) }
        print("wrote \(out)/config.json and model.safetensors")
    }
}

struct Factorize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Project the MLP layers of a trained model onto a structured class and record each layer's error.")
    @Option(help: "A .h5 checkpoint, run folder or Hugging Face folder.")
    var model: String
    @Option(help: "Target kind: lowrank:R, monarch:NBLOCKS or butterfly[:NBLOCKS].")
    var mlp: String
    @Option(help: "Layers to project, e.g. 6-11 or 0,2,4 (default: all).")
    var layers: String?
    @Option(help: "Adam iterations for butterfly fitting.")
    var iterations: Int = 300
    @Option(help: "Output checkpoint (.h5).")
    var out: String
    @Flag(help: "Print one JSON object (per-layer errors) on stdout.")
    var json = false

    func validate() throws {
        guard (0...1_000_000).contains(iterations) else { throw ValidationError("--iterations must be between 0 and 1000000, got \(iterations)") }
    }

    func run() throws {
        let loaded = try ModelFiles.load(model)
        let kind = try LinearKind(spec: mlp)
        let n = loaded.model.config.nLayer
        let chosen = try layers.map { try GPT2Config.parseLayers($0, layers: n, spec: "--layers \($0)") } ?? Array(0..<n)
        let report = try ModelProjection.project(loaded.model, to: kind, layers: chosen, iterations: iterations) {
            Console.progress("factorize: \($0)")
        }
        Console.endProgress()
        // The source's training progress goes along (its compute counts for runs started from the result).
        try Checkpoint.save(model: loaded.model, progress: loaded.checkpoint?.progress, projection: report.jsonString,
                            tokenizer: loaded.checkpoint?.tokenizerFingerprint,
                            to: URL(fileURLWithPath: out))
        if let tok = loaded.tokenizerDirectory {
            try ModelFiles.copyTokenizer(from: tok, to: URL(fileURLWithPath: out).deletingLastPathComponent().appendingPathComponent("tokenizer"))
        }
        if json { try Console.printRecord(report) } else {
            print("wrote \(out)")
            for l in report.layers { print(String(format: "  %@  relative error %.4f", l.name as NSString, l.relativeError)) }
        }
    }
}
