import FactorlabLayers
import Foundation

/// The shape of a GPT-2 model and the linear kind of each of its linear layers.
///
/// ```swift
/// var config = try GPT2Config.preset("gpt2")             // 124M, dense
/// config.mlp = try GPT2Config.mlpKinds("monarch:4@6-11", layers: 12)  // upper half's MLPs factorized
/// config.linear = try LinearPlan.parse("mlp=monarch:4,attn=monarch:4,head=lowrank:256", layers: 12)
/// ```
public struct GPT2Config: Equatable, Sendable {
    public var nLayer: Int
    public var nHead: Int
    public var nEmbd: Int
    /// Context length (number of learned positions).
    public var nPositions: Int
    public var vocabSize: Int
    /// MLP hidden size (4 * nEmbd in GPT-2).
    public var nInner: Int
    public var layerNormEpsilon: Float = 1e-5
    public var embdDropout: Float = 0
    public var attnDropout: Float = 0
    public var residDropout: Float = 0
    /// The linear kind of every site of every layer, and the head.
    public var linear: LinearPlan
    /// The linear kind of each layer's MLP up projection; setting it sets both MLP projections.
    public var mlp: [LinearKind] {
        get { linear[.mlpFc] }
        set { linear[.mlpFc] = newValue; linear[.mlpProj] = newValue }
    }
    /// Number of labels of the sequence-classification head (0: no head; 1: regression).
    public var numLabels: Int = 0
    /// Token id that marks padding, used to find each sequence's last token for classification.
    public var padTokenID: Int32? = nil

    public init(nLayer: Int, nHead: Int, nEmbd: Int, nPositions: Int = 1024, vocabSize: Int = 50257,
                nInner: Int? = nil, mlp: LinearKind = .dense) {
        self.nLayer = nLayer
        self.nHead = nHead
        self.nEmbd = nEmbd
        self.nPositions = nPositions
        self.vocabSize = vocabSize
        // Sizes are checked by validate(); until then, keep what is built from them in range.
        self.nInner = nInner ?? { let (r, o) = nEmbd.multipliedReportingOverflow(by: 4); return o ? Int.max : r }()
        self.linear = LinearPlan(layers: min(max(nLayer, 0), GPT2Config.limits[0].max), mlp: mlp)
    }

    /// Presets: the four GPT-2 sizes and small models for CPU experiments.
    public static let presets: [(name: String, summary: String, make: @Sendable () -> GPT2Config)] = [
        ("gpt2", "12 layers, d 768, 12 heads (124M)", { GPT2Config(nLayer: 12, nHead: 12, nEmbd: 768) }),
        ("gpt2-medium", "24 layers, d 1024, 16 heads (355M)", { GPT2Config(nLayer: 24, nHead: 16, nEmbd: 1024) }),
        ("gpt2-large", "36 layers, d 1280, 20 heads (774M)", { GPT2Config(nLayer: 36, nHead: 20, nEmbd: 1280) }),
        ("gpt2-xl", "48 layers, d 1600, 25 heads (1.5B)", { GPT2Config(nLayer: 48, nHead: 25, nEmbd: 1600) }),
        ("nano", "2 layers, d 64, 2 heads, context 128, vocabulary 4096 (~0.4M)",
         { GPT2Config(nLayer: 2, nHead: 2, nEmbd: 64, nPositions: 128, vocabSize: 4096) }),
        ("micro", "4 layers, d 128, 4 heads, context 256, vocabulary 4096 (~1.3M)",
         { GPT2Config(nLayer: 4, nHead: 4, nEmbd: 128, nPositions: 256, vocabSize: 4096) }),
        ("tiny", "4 layers, d 256, 4 heads, context 256, vocabulary 8192 (~5.3M)",
         { GPT2Config(nLayer: 4, nHead: 4, nEmbd: 256, nPositions: 256, vocabSize: 8192) }),
        ("mini", "6 layers, d 384, 6 heads, context 256, vocabulary 8192 (~13.9M)",
         { GPT2Config(nLayer: 6, nHead: 6, nEmbd: 384, nPositions: 256, vocabSize: 8192) }),
        ("small", "8 layers, d 512, 8 heads, context 512, vocabulary 8192 (~29.7M)",
         { GPT2Config(nLayer: 8, nHead: 8, nEmbd: 512, nPositions: 512, vocabSize: 8192) }),
    ]

    /// A preset by name; an unknown name lists the valid ones.
    public static func preset(_ name: String) throws -> GPT2Config {
        guard let p = presets.first(where: { $0.name == name.lowercased() }) else {
            throw GPT2Error.config("unknown preset '\(name)'; valid presets: \(presets.map(\.name).joined(separator: ", "))")
        }
        return p.make()
    }

    /// Per-layer MLP kinds from a spec: `KIND` for every layer, or `KIND@LAYERS` for some layers
    /// (others dense), several parts joined by `;`. LAYERS is `6-11`, `3`, or `0,2,4`.
    /// Examples: `monarch:4`, `monarch:4@6-11`, `lowrank:64@0-5;monarch:4@6-11`.
    public static func mlpKinds(_ spec: String, layers: Int) throws -> [LinearKind] {
        guard layers >= 1 && layers <= limits[0].max else {
            throw GPT2Error.config("n_layer must be between 1 and \(limits[0].max), got \(layers)")
        }
        var kinds = [LinearKind](repeating: .dense, count: layers)
        for part in spec.split(separator: ";").map({ $0.trimmingCharacters(in: .whitespaces) }) where !part.isEmpty {
            // Empty pieces are kept (and refused below): "@6-11" or "monarch:4@" name no kind or no layers.
            let pieces = part.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard !pieces[0].isEmpty, pieces.count == 1 || !pieces[1].isEmpty else {
                throw GPT2Error.config("'\(part.prefix(40))' in '\(spec.prefix(60))': expected KIND or KIND@LAYERS, e.g. monarch:4@6-11")
            }
            let kind = try LinearKind(spec: pieces[0])
            let chosen: [Int]
            if pieces.count == 1 {
                chosen = Array(0..<layers)
            } else {
                chosen = try parseLayers(pieces[1], layers: layers, spec: spec)
            }
            for l in chosen { kinds[l] = kind }
        }
        return kinds
    }

    /// `6-11`, `3`, `0,2,4` -> layer indices, each checked against the model depth.
    public static func parseLayers(_ text: String, layers: Int, spec: String) throws -> [Int] {
        var out: [Int] = []
        for item in text.split(separator: ",") {
            // Empty parts are kept, so "-1" is an error rather than layer 1.
            let ends = item.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard let lo = ends.first ?? nil, let hi = ends.count == 2 ? ends[1] : lo, lo <= hi else {
                throw GPT2Error.config("layers '\(text.prefix(40))' in '\(spec.prefix(60))': expected N, N-M or a comma-separated list of non-negative layer numbers")
            }
            guard lo >= 0, hi < layers else {
                throw GPT2Error.config("layers '\(text)' in '\(spec)' are outside 0-\(layers - 1) (the model has \(layers) layers)")
            }
            out += Array(lo...hi)
        }
        return out
    }

    /// The largest sizes a config may have: far above any GPT-2, small enough that products of
    /// sizes cannot overflow before the parameter count is checked.
    public static let limits: [(key: String, max: Int)] = [
        ("n_layer", 1024), ("n_head", 1024), ("n_embd", 1 << 16), ("n_positions", 1 << 20),
        ("vocab_size", Int(Int32.max)), ("n_inner", 1 << 18),
    ]

    /// Checks the configuration and names the first problem: every size within its range, the
    /// head count dividing the width, probabilities and epsilon in range, the parameter count
    /// representable (overflow-checked).
    public func validate() throws {
        for ((key, limit), value) in zip(GPT2Config.limits, [nLayer, nHead, nEmbd, nPositions, vocabSize, nInner]) {
            guard value >= 1 && value <= limit else {
                throw GPT2Error.config("\(key) must be between 1 and \(limit), got \(value)")
            }
        }
        guard nEmbd % nHead == 0 else {
            throw GPT2Error.config("n_head \(nHead) does not divide n_embd \(nEmbd)")
        }
        for site in LinearSite.allCases where linear[site].count != nLayer {
            throw GPT2Error.config("\(linear[site].count) \(site.rawValue) kinds given for \(nLayer) layers")
        }
        for (key, p) in [("embd_pdrop", embdDropout), ("attn_pdrop", attnDropout), ("resid_pdrop", residDropout)] where !(p >= 0 && p < 1) {
            throw GPT2Error.config("\(key) \(p) is outside [0, 1)")
        }
        guard layerNormEpsilon > 0 && layerNormEpsilon <= 0.1 else {
            throw GPT2Error.config("layer_norm_epsilon must be in (0, 0.1], got \(layerNormEpsilon)")
        }
        guard numLabels >= 0 && numLabels <= 1 << 16 else { throw GPT2Error.config("num_labels must be between 0 and 65536, got \(numLabels)") }
        if let pad = padTokenID, pad < 0 || Int(pad) >= vocabSize {
            throw GPT2Error.config("pad_token_id \(pad) is outside the vocabulary 0..<\(vocabSize)")
        }
        _ = try parameterCount()
    }

    /// Number of parameters (the tied head counted once), from the config alone: nothing is
    /// allocated, and an impossible size is an error rather than an overflow.
    public func parameterCount() throws -> Int {
        let c = nEmbd
        var total = 0
        func add(_ n: Int) throws {
            let (sum, o) = total.addingReportingOverflow(n)
            guard !o else { throw GPT2Error.config("the parameter count overflows") }
            total = sum
        }
        func product(_ a: Int, _ b: Int) throws -> Int {
            let (r, o) = a.multipliedReportingOverflow(by: b)
            guard !o else { throw GPT2Error.config("the parameter count overflows (\(a) x \(b))") }
            return r
        }
        try add(try linear.head.parameterCount(vocabSize: vocabSize, width: c))
        try add(try product(nPositions, c))
        for l in 0..<nLayer {
            try add(4 * c)  // layer norms
            for site in LinearSite.allCases {
                let (n, m) = site.sizes(width: c, inner: nInner)
                do { try add(try linear[site][l].parameterCount(inFeatures: n, outFeatures: m)) } catch let e as LayerError {
                    throw GPT2Error.config("layer \(l) \(site.rawValue) (\(n) -> \(m)): \(e.message)")
                }
            }
        }
        try add(2 * c + (try product(numLabels, c)))
        return total
    }

    /// Refuses a model whose tensors would not fit in this machine's memory, before anything is
    /// allocated: 4 bytes per parameter for inference, 16 for training (weights, gradients and
    /// AdamW's two moments; activations come on top), against 85% of the physical memory (the rest
    /// is the system's, the data's and the temporary buffers').
    public func checkFitsInMemory(training: Bool, physicalMemory: UInt64 = ProcessInfo.processInfo.physicalMemory) throws {
        let count = try parameterCount()
        let perParameter = training ? 16 : 4
        let needed = Double(count) * Double(perParameter)
        guard needed < 0.85 * Double(physicalMemory) else {
            func gb(_ x: Double) -> String { String(format: "%.1f GB", x / 1e9) }
            throw GPT2Error.config("a model of \(count) parameters needs about \(gb(needed)) for \(training ? "training (weights, gradients and AdamW moments, before activations)" : "its weights"); this machine has \(gb(Double(physicalMemory)))")
        }
    }

    /// A compact description of the MLP up projections' kinds: `dense`, `monarch:4`, or per-layer ranges.
    public var mlpSpec: String { GPT2Config.describe(mlp) }

    /// The spec of every linear layer (``LinearPlan/spec``): `monarch:4` when only the MLPs are
    /// structured, `mlp=monarch:4,attn=monarch:4,head=lowrank:256` in general.
    public var linearSpec: String { linear.spec }

    /// Per-layer kinds as `KIND` or `KIND@LAYERS` parts joined by `;` (ranges, never commas).
    static func describe(_ kinds: [LinearKind]) -> String {
        guard !kinds.isEmpty else { return "dense" }
        if Set(kinds).count == 1 { return kinds[0].description }
        var parts: [String] = []
        var start = 0
        for i in 1...kinds.count where i == kinds.count || kinds[i] != kinds[start] {
            if kinds[start] != .dense { parts.append("\(kinds[start])@\(start == i - 1 ? "\(start)" : "\(start)-\(i - 1)")") }
            start = i
        }
        return parts.isEmpty ? "dense" : parts.joined(separator: ";")
    }
}

/// Errors of the GPT-2 module: configuration, model files, generation.
public enum GPT2Error: Error, CustomStringConvertible, Equatable {
    case config(String)
    case modelFile(file: String, message: String)
    case input(String)

    public var description: String {
        switch self {
        case .config(let m): return "GPT-2 config: \(m)"
        case .modelFile(let f, let m): return "\(f): \(m)"
        case .input(let m): return m
        }
    }
}
