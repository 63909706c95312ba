import ArgumentParser
import FactorlabCheckpoint
import FactorlabData
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
        abstract: "Project linear layers of a trained model onto a structured class and record each layer's error.",
        discussion: """
        Examples: factorize --model run/best.h5 --kind monarch:4 --out proj.h5 (both MLP projections of every layer);
        --kind btt:2 --site attn --layers 6-11; --site head --kind lowrank:64 (a factorized, tied embedding);
        --site head --kind untied:monarch:4.
        """)
    @Option(help: "A .h5 checkpoint, run folder or Hugging Face folder.")
    var model: String
    @Option(help: "Target kind: lowrank:R, monarch:NBLOCKS, butterfly[:NBLOCKS], btt:RANK or btt-norm:RANK; for --site head: lowrank:R or untied[:KIND].")
    var kind: String?
    @Option(help: "The target kind of the MLP projections (the older spelling of --kind K --site mlp).")
    var mlp: String?
    @Option(help: "Sites to project, comma-separated: mlp, attn, mlp.c_fc, mlp.c_proj, attn.c_attn, attn.c_proj, or head.")
    var site: String = "mlp"
    @Option(help: "Layers to project, e.g. 6-11 or 0,2,4 (default: all).")
    var layers: String?
    @Option(help: "Adam iterations for butterfly fitting (and for data-aware Monarch, butterfly and BTT).")
    var iterations: Int = 300
    @Option(help: "Calibration text: minimise each layer's output error on its inputs from this text instead of the weight error (data-aware projection).")
    var calibrate: String?
    @Option(help: "Calibration tokens to use (from the start of --calibrate).")
    var calibTokens: Int = 16384
    @Flag(help: "Calibrate each site on the outputs of the sites already projected before it (GPTQ-style), not on the original model's.")
    var sequential = false
    @Option(help: "Tokenizer folder for --calibrate; default: found beside the model.")
    var tokenizer: String?
    @Option(help: "Output checkpoint (.h5).")
    var out: String
    @Flag(help: "Print one JSON object (per-layer errors) on stdout.")
    var json = false

    func validate() throws {
        guard (0...1_000_000).contains(iterations) else { throw ValidationError("--iterations must be between 0 and 1000000, got \(iterations)") }
        guard (kind == nil) != (mlp == nil) else { throw ValidationError("give the target kind once: --kind KIND (or --mlp KIND for the MLP)") }
        if mlp != nil, site != "mlp" { throw ValidationError("--mlp projects the MLP; for --site \(site) use --kind") }
        let names = site.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        if names.contains("head") {
            guard names == ["head"] else { throw ValidationError("--site head takes a head kind; project it in a command of its own") }
            guard layers == nil else { throw ValidationError("--layers does not apply to --site head") }
            guard calibrate == nil else { throw ValidationError("--calibrate projects block sites; the head's projection is data-free") }
        }
        guard (1...(1 << 24)).contains(calibTokens) else { throw ValidationError("--calib-tokens must be between 1 and \(1 << 24), got \(calibTokens)") }
        if calibrate == nil && sequential { throw ValidationError("--sequential needs --calibrate") }
    }

    /// The calibration windows: the text tokenized by the model's tokenizer (or --tokenizer, which
    /// must be the one the model was trained with), cut to the model's context.
    func calibrationData(_ path: String, loaded: ModelFiles.Loaded) throws -> CalibrationData {
        let tok = try ModelFiles.tokenizer(tokenizer, for: loaded)
        guard let bytes = FileManager.default.contents(atPath: path) else { throw ValidationError("cannot read --calibrate \(path)") }
        let ids = tok.encode(String(decoding: try TextNormalizer.decodeFile(bytes, path: path), as: UTF8.self))
        return try CalibrationData(ids: ids, seqLen: loaded.model.config.nPositions, maxTokens: calibTokens, source: path)
    }

    /// The block sites `--site` names (nil for the head).
    func blockSites() throws -> [LinearSite]? {
        var out: [LinearSite] = []
        for name in site.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            if name == "head" { return nil }
            guard let group = LinearSite.group(name) else {
                throw ValidationError("--site: unknown site '\(name.prefix(40))'; sites are mlp, attn, \(LinearSite.allCases.map(\.rawValue).joined(separator: ", ")), head")
            }
            out += group.filter { !out.contains($0) }
        }
        return out
    }

    func run() throws {
        let loaded = try ModelFiles.load(model)
        try loaded.requireFloatWeights(for: "projection")
        let target = kind ?? mlp ?? ""
        let report: ProjectionReport
        if let sites = try blockSites() {
            let kind = try LinearKind(spec: target)
            let n = loaded.model.config.nLayer
            let chosen = try layers.map { try GPT2Config.parseLayers($0, layers: n, spec: "--layers \($0)") } ?? Array(0..<n)
            if let calibrate {
                let data = try calibrationData(calibrate, loaded: loaded)
                var r = try ModelProjection.project(loaded.model, to: kind, sites: sites, layers: chosen, calibration: data,
                                                    sequential: sequential, iterations: iterations) { Console.progress("factorize: \($0)") }
                r.calibration?.source = calibrate
                report = r
            } else {
                report = try ModelProjection.project(loaded.model, to: kind, sites: sites, layers: chosen, iterations: iterations) {
                    Console.progress("factorize: \($0)")
                }
            }
        } else {
            report = try ModelProjection.project(loaded.model, head: try HeadKind(spec: target), iterations: iterations) {
                Console.progress("factorize: \($0)")
            }
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
            for l in report.layers {
                if let out = l.outputError, let free = l.dataFreeOutputError, let freeW = l.dataFreeRelativeError {
                    print(String(format: "  %@  output error %.4f (data-free %.4f)  weight error %.4f (data-free %.4f)",
                                 l.name as NSString, out, free, l.relativeError, freeW))
                } else {
                    print(String(format: "  %@  relative error %.4f", l.name as NSString, l.relativeError))
                }
            }
        }
    }
}
