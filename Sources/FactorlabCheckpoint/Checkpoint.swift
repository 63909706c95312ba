import FactorlabAutograd
import FactorlabGPT2
import FactorlabHDF5
import FactorlabOptim
import FactorlabRecords
import FactorlabTensor
import Foundation

/// Where a run stands: everything besides tensors that an exact resume needs.
public struct TrainingProgress: Codable, Equatable, Sendable {
    /// Optimizer steps completed.
    public var step: Int
    /// Training tokens consumed.
    public var tokensSeen: Int
    /// The data loader's position, as its own JSON.
    public var loaderState: String
    /// Named random-generator states (e.g. `dropout`).
    public var rngStates: [String: UInt64]
    public var bestValLoss: Double?
    public var lastValLoss: Double?
    /// Training FLOPs so far and elapsed wall-clock seconds, for the run records.
    public var flops: Double
    public var wallSeconds: Double
    /// Sequences per optimizer step over all ranks (ranks x batch_size); the loader position
    /// counts steps of this size, so a resumed run must keep it. Nil in older checkpoints.
    public var globalBatchRows: Int?

    /// What is out of range in a progress read from a file, or nil.
    public var problem: String? {
        if !(0...(1 << 53)).contains(step) { return "step \(step) is outside 0 to 2^53" }
        if !(0...(1 << 62)).contains(tokensSeen) { return "tokens_seen \(tokensSeen) is negative or too large" }
        if !(flops.isFinite && flops >= 0) { return "flops \(flops) must be finite and non-negative" }
        if !(wallSeconds.isFinite && wallSeconds >= 0) { return "wall seconds \(wallSeconds) must be finite and non-negative" }
        if let g = globalBatchRows, !(1...(1 << 40)).contains(g) { return "globalBatchRows \(g) must be positive" }
        for (name, v) in [("bestValLoss", bestValLoss), ("lastValLoss", lastValLoss)] where v.map({ !$0.isFinite }) ?? false {
            return "\(name) \(v!) is not finite"
        }
        return nil
    }

    public init(step: Int = 0, tokensSeen: Int = 0, loaderState: String = "{}", rngStates: [String: UInt64] = [:],
                bestValLoss: Double? = nil, lastValLoss: Double? = nil, flops: Double = 0, wallSeconds: Double = 0) {
        self.step = step
        self.tokensSeen = tokensSeen
        self.loaderState = loaderState
        self.rngStates = rngStates
        self.bestValLoss = bestValLoss
        self.lastValLoss = lastValLoss
        self.flops = flops
        self.wallSeconds = wallSeconds
    }
}

/// The contents of a checkpoint file, read once.
public struct CheckpointContents {
    public var config: GPT2Config
    /// The model with the file's weights.
    public let model: GPT2Model
    /// Parameters by dotted name, [out, in] orientation for linear weights (the model's tensors).
    public var parameters: [String: Tensor] { Dictionary(model.namedParameters.map { ($0.0, $0.1.value) }, uniquingKeysWith: { a, _ in a }) }
    public var optimizerStep: Int?
    public var optimizerHyper: AdamW.Hyperparameters?
    public var m: [String: Tensor]
    public var v: [String: Tensor]
    public var progress: TrainingProgress?
    /// The recipe that produced the run (YAML text).
    public var recipe: String?
    /// For projected models: which projection and each layer's relative error (JSON text).
    public var projection: String?
    /// ``BPETokenizer/fingerprint`` of the tokenizer the model was trained with (nil in older files).
    public var tokenizerFingerprint: String?
    /// For quantized models: the ``QuantizationRecord`` (JSON text).
    public var quantization: String?
    /// The format the weights are stored in (float32, bf16, int8).
    public var weightFormat: WeightFormat { model.weightFormat }
}

/// Factorlab's HDF5 checkpoint format (version 1).
///
/// Layout, readable with h5py or `h5dump` without this project:
/// - `/params/<name>`: one float32 dataset per parameter, Hugging Face-style dotted names
///   (`h.3.attn.c_attn.weight`; factorized layers name their factors below the layer:
///   `h.3.mlp.c_fc.monarch.blkdiag1`). Attribute `orientation` on every linear weight:
///   `[out, in]` (torch.nn.Linear; Hugging Face's Conv1D files hold the transpose).
/// - `/optimizer/m/<name>`, `/optimizer/v/<name>`: AdamW moments mirroring `/params`; attributes
///   `step` and `hyperparameters` (JSON) on `/optimizer`.
/// - Root attributes: `format` = "factorlab-checkpoint", `format_version` = 1, `model_config`
///   (JSON), `step`, `tokens_seen`, `progress` (JSON: data-loader position, RNG states, losses),
///   `recipe` (YAML text), `projection` (JSON, projected models), `hdf5_version`, `created`.
/// - Quantized models (`factorlab quantize`, inference only): root attributes `weights` ("bf16" or
///   "int8") and `quantization` (JSON record); each packed parameter is absent from `/params` and
///   stored as `/packed/<name>` (int8 values, or bf16 bit patterns as uint16, in the parameter's
///   shape, attributes `format` and `row_length`) with, for int8, `/scales/<name>` (float32
///   [rows, groups]: one scale per group of 32 along each row of `row_length` elements). The
///   rounding rule is in `PackedWeights.swift` and the README.
/// Every dataset carries a Fletcher32 checksum (see FactorlabHDF5); saves are atomic.
public enum Checkpoint {
    /// The `orientation` attribute of a parameter dataset: linear weights `[out, in]`, embedding
    /// tables `[rows, n_embd]`, the factorized embedding's `[vocab, rank]` and `[rank, n_embd]`;
    /// nil for vectors and block factors (whose layout their layer documents).
    static func orientation(of name: String, rank: Int) -> String? {
        switch name {
        case "wte.lowrank.a": return "[vocab, rank]"
        case "wte.lowrank.b": return "[rank, n_embd]"
        case _ where name.hasPrefix("wte") || name.hasPrefix("wpe"): return "[rows, n_embd]"
        case _ where rank == 2: return "[out, in]"
        default: return nil
        }
    }

    public static let formatName = "factorlab-checkpoint"
    public static let formatVersion: Int64 = 1

    /// Writes a checkpoint atomically (temporary file, fsync, rename): a crash during the save
    /// leaves any previous file at `url` intact.
    public static func save(model: GPT2Model, optimizer: AdamW? = nil, progress: TrainingProgress? = nil,
                            recipe: String? = nil, projection: String? = nil, tokenizer: String? = nil, quantization: String? = nil,
                            to url: URL) throws {
        if let problem = progress?.problem { throw CheckpointError(file: url.path, message: "not saved: training progress \(problem)") }
        do { try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true) } catch {
            throw CheckpointError(file: url.path, message: "cannot create its folder: \(FileSystemReason.of(error, path: url.deletingLastPathComponent().path))")
        }
        try HDF5File.writeAtomically(to: url) { file in
            try file.setAttribute("format", .string(formatName))
            try file.setAttribute("format_version", .int64(formatVersion))
            try file.setAttribute("model_config", .string(model.config.jsonString))
            try file.setAttribute("hdf5_version", .string(HDF5File.libraryVersion))
            try file.setAttribute("created", .string(ISO8601DateFormatter().string(from: Date())))
            if let progress {
                try file.setAttribute("step", .int64(Int64(progress.step)))
                try file.setAttribute("tokens_seen", .int64(Int64(progress.tokensSeen)))
                let json = try JSONEncoder().encode(progress)
                try file.setAttribute("progress", .string(String(decoding: json, as: UTF8.self)))
            }
            if let recipe { try file.setAttribute("recipe", .string(recipe)) }
            if let projection { try file.setAttribute("projection", .string(projection)) }
            if let tokenizer { try file.setAttribute("tokenizer_fingerprint", .string(tokenizer)) }
            try file.createGroup("/params")
            let format = model.weightFormat
            if format != .float32 {
                try file.setAttribute("weights", .string(format.rawValue))
                if let quantization { try file.setAttribute("quantization", .string(quantization)) }
                try file.createGroup("/packed")
                if format == .int8 { try file.createGroup("/scales") }
            }
            for (name, p) in model.namedParameters {
                if let packed = p.packed {
                    let ds = "/packed/\(name)"
                    switch packed.format {
                    case .int8:
                        try file.write(packed.int8Values, shape: packed.shape, to: ds)
                        try file.write(packed.scales, shape: [packed.rows, packed.groupsPerRow], to: "/scales/\(name)")
                    case .bf16:
                        try file.write(packed.bf16Bits, shape: packed.shape, to: ds)
                    case .float32:
                        break
                    }
                    try file.setAttribute("format", .string(packed.format.rawValue), on: ds)
                    try file.setAttribute("row_length", .int64(Int64(packed.rowLength)), on: ds)
                    continue
                }
                try file.write(p.value, to: "/params/\(name)")
                if let orientation = Checkpoint.orientation(of: name, rank: p.value.rank) {
                    try file.setAttribute("orientation", .string(orientation), on: "/params/\(name)")
                }
            }
            if let optimizer {
                try file.createGroup("/optimizer/m")
                try file.createGroup("/optimizer/v")
                try file.setAttribute("step", .int64(Int64(optimizer.step)), on: "/optimizer")
                let hyper = try JSONEncoder().encode(optimizer.hyper)
                try file.setAttribute("hyperparameters", .string(String(decoding: hyper, as: UTF8.self)), on: "/optimizer")
                for (i, e) in optimizer.parameters.enumerated() {
                    try file.write(optimizer.m[i], to: "/optimizer/m/\(e.name)")
                    try file.write(optimizer.v[i], to: "/optimizer/v/\(e.name)")
                }
            }
        }
    }

    /// Reads and validates a checkpoint: format name and version, config, and every tensor
    /// against the shapes the config implies. Errors name the file and the dataset.
    public static func read(_ url: URL, includeOptimizer: Bool = true) throws -> CheckpointContents {
        let path = url.path
        func fail(_ message: String) -> CheckpointError { CheckpointError(file: path, message: message) }
        let file: HDF5File
        do { file = try HDF5File(readingFrom: url) } catch {
            throw fail("cannot open as HDF5: \(error)")
        }
        defer { try? file.close() }
        guard try file.hasAttribute("format"), try file.stringAttribute("format") == formatName else {
            throw fail("not a Factorlab checkpoint (no root attribute format = \"\(formatName)\")")
        }
        let version = try file.int64Attribute("format_version")
        guard version >= 1 else { throw fail("format_version \(version) is not a version (versions start at 1)") }
        guard version <= formatVersion else {
            throw fail("format version \(version) is newer than this Factorlab reads (\(formatVersion)); update Factorlab")
        }
        let config = try GPT2Config(json: try file.stringAttribute("model_config"), source: path)
        // Names and shapes from the config alone (no random numbers drawn); each dataset is read
        // straight into its parameter.
        let model = try GPT2Model.shapeOnly(config)
        let weights = try file.hasAttribute("weights") ? try file.stringAttribute("weights") : "float32"
        guard let format = WeightFormat(rawValue: weights) else {
            throw fail("root attribute weights is '\(weights.prefix(40))', expected float32, bf16 or int8")
        }
        var packedByName: [String: PackedWeights] = [:]
        try model.assignParameters(missing: nil, mismatch: { name, t, p in
            fail("dataset /params/\(name) has shape \(describe(t.shape)), the model config needs \(describe(p.shape))")
        }) { name, p in
            if format != .float32, try file.isDataset("/packed/\(name)") {
                // The packed form is the parameter's storage: no float32 copy is made.
                let packed = try readPacked(file, name: name, shape: p.shape, format: format, fail: fail)
                packedByName[name] = packed
                p.pack(packed)
                return nil
            }
            let ds = "/params/\(name)"
            guard try file.isDataset(ds) else { throw fail("dataset \(ds) is missing (the model config needs it)") }
            let stored = try file.shape(of: ds)
            guard stored == p.shape else {
                throw fail("dataset \(ds) has shape \(describe(stored)), the model config needs \(describe(p.shape))")
            }
            let t = try file.readTensor(ds, expectedShape: p.shape)
            if let bad = t.firstNonFinite() { throw fail("dataset \(ds) holds a non-finite value (\(t.scalar(at: bad))) at element \(bad)") }
            return t
        }
        let params = Dictionary(model.namedParameters, uniquingKeysWith: { a, _ in a })
        if format != .float32 {
            for group in ["/packed", "/scales"] where try file.isGroup(group) {
                if let extra = try file.datasetPaths(under: group).first(where: { packedByName[String($0.dropFirst(group.count + 1))] == nil }) {
                    throw fail("dataset \(extra) is not a packed parameter of the model its model_config describes")
                }
            }
        }
        // The config must describe the file: a dataset it does not name (another layer count or
        // head, a renamed parameter) means the two disagree.
        if let extra = try file.datasetPaths(under: "/params").first(where: { params[String($0.dropFirst("/params/".count))] == nil }) {
            throw fail("dataset \(extra) is not a parameter of the model its model_config describes (\(config.nLayer) layers, linear \(config.linearSpec)); the config and the weights disagree")
        }
        var contents = CheckpointContents(config: config, model: model, optimizerStep: nil, optimizerHyper: nil,
                                          m: [:], v: [:], progress: nil, recipe: nil, projection: nil, tokenizerFingerprint: nil,
                                          quantization: nil)
        if try file.hasAttribute("progress") {
            let text = try file.stringAttribute("progress")
            do { contents.progress = try JSONDecoder().decode(TrainingProgress.self, from: Data(text.utf8)) } catch {
                throw fail("attribute progress is not valid: \(RecordDecoder.describe(error))")
            }
            if let problem = contents.progress?.problem { throw fail("attribute progress: \(problem)") }
        }
        if try file.hasAttribute("recipe") { contents.recipe = try file.stringAttribute("recipe") }
        if try file.hasAttribute("quantization") { contents.quantization = try file.stringAttribute("quantization") }
        if try file.hasAttribute("projection") { contents.projection = try file.stringAttribute("projection") }
        if try file.hasAttribute("tokenizer_fingerprint") { contents.tokenizerFingerprint = try file.stringAttribute("tokenizer_fingerprint") }
        if includeOptimizer, try file.isGroup("/optimizer") {
            let step = try file.int64Attribute("step", of: "/optimizer")
            guard step >= 0 && step <= 1 << 53 else { throw fail("attribute step of /optimizer is \(step), expected 0 to 2^53") }
            contents.optimizerStep = Int(step)
            let hyper = try file.stringAttribute("hyperparameters", of: "/optimizer")
            contents.optimizerHyper = try? JSONDecoder().decode(AdamW.Hyperparameters.self, from: Data(hyper.utf8))
            for ds in try file.datasetPaths(under: "/optimizer/m") {
                let name = String(ds.dropFirst("/optimizer/m/".count))
                guard let p = params[name] else { throw fail("dataset \(ds) has no parameter \(name) in /params") }
                for (key, group) in [("m", "/optimizer/m/"), ("v", "/optimizer/v/")] {
                    let t = try file.readTensor(group + name, expectedShape: p.shape)
                    if let bad = t.firstNonFinite() { throw fail("dataset \(group + name) holds a non-finite value at element \(bad)") }
                    if key == "m" { contents.m[name] = t } else { contents.v[name] = t }
                }
            }
        }
        return contents
    }

    /// One packed parameter: `/packed/<name>` (and `/scales/<name>` for int8), validated against
    /// the parameter's shape and the file's format.
    static func readPacked(_ file: HDF5File, name: String, shape: [Int], format: WeightFormat,
                           fail: (String) -> CheckpointError) throws -> PackedWeights {
        let ds = "/packed/\(name)"
        let stored = try file.shape(of: ds)
        guard stored == shape else { throw fail("dataset \(ds) has shape \(describe(stored)), the model config needs \(describe(shape))") }
        let own = try file.hasAttribute("format", of: ds) ? try file.stringAttribute("format", of: ds) : ""
        guard own == format.rawValue else { throw fail("dataset \(ds) has format '\(own.prefix(20))', the file's weights are \(format)") }
        let rowLength = try file.int64Attribute("row_length", of: ds)
        let expected = GPT2Model.packedRowLength(name, shape: shape)
        guard rowLength == Int64(expected) else { throw fail("dataset \(ds) has row_length \(rowLength), expected \(expected) for its shape") }
        do {
            switch format {
            case .int8:
                let groups = (expected + PackedWeights.groupSize - 1) / PackedWeights.groupSize
                let rows = shape.reduce(1, *) / expected
                return try PackedWeights(format: .int8, shape: shape, rowLength: expected, int8Values: try file.read(ds, as: Int8.self),
                                         scales: try file.read("/scales/\(name)", as: Float.self, expectedShape: [rows, groups]), what: ds)
            case .bf16:
                return try PackedWeights(format: .bf16, shape: shape, rowLength: expected, bf16Bits: try file.read(ds, as: UInt16.self), what: ds)
            case .float32:
                throw fail("dataset \(ds) is packed but the file's weights are float32")
            }
        } catch let e as TensorError {
            throw fail(e.description)
        }
    }

    /// The recipe text a checkpoint records (nil if none), without reading its tensors.
    public static func recipe(of url: URL) throws -> String? {
        let file: HDF5File
        do { file = try HDF5File(readingFrom: url) } catch {
            throw CheckpointError(file: url.path, message: "cannot open as HDF5: \(error)")
        }
        defer { try? file.close() }
        return try file.hasAttribute("recipe") ? try file.stringAttribute("recipe") : nil
    }

    /// A model with the checkpoint's configuration and weights.
    public static func loadModel(_ url: URL) throws -> (GPT2Model, CheckpointContents) {
        let contents = try read(url, includeOptimizer: false)
        return (contents.model, contents)
    }

    /// Copies a checkpoint's parameters into a model of the same configuration (its own storage).
    public static func assign(_ contents: CheckpointContents, to model: GPT2Model, file: String) throws {
        let source = contents.parameters
        try model.assignParameters(copy: true, missing: { CheckpointError(file: file, message: "no tensor for parameter \($0)") },
                                   mismatch: { name, t, p in
            CheckpointError(file: file, message: "tensor \(name) has shape \(describe(t.shape)), the model needs \(describe(p.shape))")
        }) { name, _ in source[name] }
    }

    /// Restores an optimizer's moments and step from checkpoint contents.
    public static func restore(_ optimizer: AdamW, from contents: CheckpointContents, file: String) throws {
        guard let step = contents.optimizerStep else { throw CheckpointError(file: file, message: "has no optimizer state (/optimizer)") }
        var m: [Tensor] = [], v: [Tensor] = []
        for e in optimizer.parameters {
            guard let mi = contents.m[e.name], let vi = contents.v[e.name] else {
                throw CheckpointError(file: file, message: "optimizer state for \(e.name) is missing (/optimizer/m/\(e.name))")
            }
            m.append(mi)
            v.append(vi)
        }
        do { try optimizer.restore(step: step, m: m, v: v) } catch { throw CheckpointError(file: file, message: "\(error)") }
    }
}

/// A problem with a checkpoint file: names the file and what is wrong.
public struct CheckpointError: Error, CustomStringConvertible {
    public let file: String
    public let message: String
    public var description: String { "checkpoint \(file): \(message)" }
}
