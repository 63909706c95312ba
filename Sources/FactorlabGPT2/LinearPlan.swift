import FactorlabLayers
import Foundation

/// Where a linear layer sits in a GPT-2 block; the raw value is its parameter-name infix.
public enum LinearSite: String, CaseIterable, Sendable {
    /// The fused query/key/value projection, C -> 3C.
    case qkv = "attn.c_attn"
    /// The attention output projection, C -> C (a residual projection).
    case attnProj = "attn.c_proj"
    /// The MLP up projection, C -> n_inner.
    case mlpFc = "mlp.c_fc"
    /// The MLP down projection, n_inner -> C (a residual projection).
    case mlpProj = "mlp.c_proj"

    /// (in, out) features of the site in a model of width `c` and MLP size `inner`.
    public func sizes(width c: Int, inner: Int) -> (inFeatures: Int, outFeatures: Int) {
        switch self {
        case .qkv: return (c, 3 * c)
        case .attnProj: return (c, c)
        case .mlpFc: return (c, inner)
        case .mlpProj: return (inner, c)
        }
    }

    /// The sites a spec key names: a site, `mlp` (both MLP projections) or `attn` (both attention
    /// projections).
    public static func group(_ key: String) -> [LinearSite]? {
        switch key {
        case "mlp": return [.mlpFc, .mlpProj]
        case "attn": return [.qkv, .attnProj]
        default: return LinearSite(rawValue: key).map { [$0] }
        }
    }
}

/// The token embedding and the language-model head.
///
/// | kind | embedding | head per token | parameters | Hugging Face export |
/// |---|---|---|---|---|
/// | `tied` (GPT-2) | E [V, C] | V C | V C | as is |
/// | `lowrank:R` (ALBERT's factorized embedding, tied both ways) | E = A B, A [V, R], B [R, C] | R (V + C) | R (V + C) | `--densify` writes E = A B, tied |
/// | `untied[:KIND]` | E [V, C] | the head's kind, C -> V, no bias | V C + the head's | `tie_word_embeddings: false` and `lm_head.weight` (densified) |
public enum HeadKind: Equatable, Hashable, Sendable, CustomStringConvertible {
    case tied
    case tiedLowRank(rank: Int)
    case untied(LinearKind)

    /// Parses `tied`, `dense` (tied), `lowrank:R`, `untied`, `untied:KIND`.
    public init(spec: String) throws {
        let s = spec.lowercased()
        if s == "tied" || s == "dense" { self = .tied; return }
        if s == "untied" { self = .untied(.dense); return }
        if s.hasPrefix("untied:") {
            do { self = .untied(try LinearKind(spec: String(s.dropFirst("untied:".count)))) } catch {
                throw GPT2Error.config("head '\(spec.prefix(40))': \(error)")
            }
            return
        }
        let kind: LinearKind
        do { kind = try LinearKind(spec: s) } catch {
            throw GPT2Error.config("head '\(spec.prefix(40))': expected tied, lowrank:R, untied or untied:KIND")
        }
        guard case .lowRank(let r) = kind else {
            throw GPT2Error.config("head '\(spec.prefix(40))': a tied head is the token embedding itself, which can be dense (tied) or factorized as E = A B (lowrank:R); for a \(kind) head, untie it: untied:\(kind)")
        }
        self = .tiedLowRank(rank: r)
    }

    public var description: String {
        switch self {
        case .tied: return "tied"
        case .tiedLowRank(let r): return "lowrank:\(r)"
        case .untied(.dense): return "untied"
        case .untied(let k): return "untied:\(k)"
        }
    }

    /// Parameters of the embedding and head together (the tied head counted once).
    public func parameterCount(vocabSize v: Int, width c: Int) throws -> Int {
        func product(_ a: Int, _ b: Int) throws -> Int {
            let (r, o) = a.multipliedReportingOverflow(by: b)
            guard !o else { throw GPT2Error.config("head \(self): the parameter count overflows") }
            return r
        }
        switch self {
        case .tied: return try product(v, c)
        case .tiedLowRank(let r):
            guard r >= 1, r <= min(v, c) else {
                throw GPT2Error.config("head lowrank:\(r): rank must be between 1 and min(vocab_size, n_embd) = \(min(v, c))")
            }
            return try product(r, v + c)
        case .untied(let k):
            do {
                let (sum, o) = try product(v, c).addingReportingOverflow(try k.parameterCount(inFeatures: c, outFeatures: v, bias: false))
                guard !o else { throw GPT2Error.config("head \(self): the parameter count overflows") }
                return sum
            } catch let e as LayerError {
                throw GPT2Error.config("head \(self) (\(c) -> vocabulary \(v)): \(e.message)")
            }
        }
    }
}

/// The linear kind of every linear layer of a GPT-2 model: one per site and layer, and the head.
///
/// Written as a spec: either the MLP-only form of earlier versions (`monarch:4`,
/// `lowrank:64@0-5;monarch:4@6-11`: both MLP projections of those layers), or `SITE=VALUE` entries
/// separated by commas, where SITE is `mlp`, `attn`, one of `mlp.c_fc`, `mlp.c_proj`,
/// `attn.c_attn`, `attn.c_proj`, or `head`, and VALUE is `KIND` or `KIND@LAYERS` parts joined by `;`
/// (or a head kind): `mlp=monarch:4,attn=monarch:4@6-11,head=lowrank:256`. Later entries override
/// earlier ones; unnamed sites stay dense and the head tied.
public struct LinearPlan: Equatable, Sendable {
    var kinds: [LinearSite: [LinearKind]]
    public var head: HeadKind

    /// Every site `kind` (MLP only when `mlpOnly`), the head tied.
    public init(layers: Int, mlp: LinearKind = .dense) {
        let n = max(layers, 0)
        kinds = Dictionary(uniqueKeysWithValues: LinearSite.allCases.map { ($0, [LinearKind](repeating: .dense, count: n)) })
        kinds[.mlpFc] = Array(repeating: mlp, count: n)
        kinds[.mlpProj] = Array(repeating: mlp, count: n)
        head = .tied
    }

    /// Each layer's kind at `site`.
    public subscript(site: LinearSite) -> [LinearKind] {
        get { kinds[site] ?? [] }
        set { kinds[site] = newValue }
    }

    /// True when every block site is dense and the head is tied dense.
    public var isDense: Bool { head == .tied && kinds.values.allSatisfy { $0.allSatisfy { $0 == .dense } } }

    /// Parses a spec (see the type's documentation) for a model of `layers` layers.
    public static func parse(_ spec: String, layers: Int) throws -> LinearPlan {
        var plan = LinearPlan(layers: layers)
        try plan.apply(spec, layers: layers)
        return plan
    }

    /// Applies a spec's entries on top of this plan (a bare MLP spec sets both MLP projections).
    public mutating func apply(_ spec: String, layers: Int) throws {
        let text = spec.trimmingCharacters(in: .whitespaces)
        guard text.contains("=") else {
            try set("mlp", text, layers: layers)
            return
        }
        // Layer lists may hold commas (`@0,2,4`): a piece without '=' continues the entry before it.
        var entries: [String] = []
        for piece in text.split(separator: ",", omittingEmptySubsequences: false).map({ String($0) }) {
            if piece.contains("=") || entries.isEmpty { entries.append(piece) } else { entries[entries.count - 1] += "," + piece }
        }
        for entry in entries {
            let kv = entry.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard kv.count == 2 else {
                throw GPT2Error.config("'\(entry.prefix(40))' in linear spec '\(spec.prefix(80))': expected SITE=KIND (sites: mlp, attn, \(LinearSite.allCases.map(\.rawValue).joined(separator: ", ")), head)")
            }
            try set(String(kv[0]).trimmingCharacters(in: .whitespaces), String(kv[1]).trimmingCharacters(in: .whitespaces), layers: layers)
        }
    }

    /// Sets one entry: `key` a site group or `head`, `value` its kinds.
    public mutating func set(_ key: String, _ value: String, layers: Int) throws {
        if key == "head" {
            head = try HeadKind(spec: value)
            return
        }
        guard !value.isEmpty else { throw GPT2Error.config("\(key): expected KIND or KIND@LAYERS after '\(key)=', got nothing") }
        guard let sites = LinearSite.group(key) else {
            throw GPT2Error.config("unknown linear site '\(key.prefix(40))'; sites are mlp, attn, \(LinearSite.allCases.map(\.rawValue).joined(separator: ", ")) and head")
        }
        let chosen: [LinearKind]
        do { chosen = try GPT2Config.mlpKinds(value, layers: layers) } catch let e as GPT2Error {
            if case .config(let m) = e { throw GPT2Error.config("\(key): \(m)") }
            throw e
        } catch {
            throw GPT2Error.config("\(key): \(error)")
        }
        for s in sites { self[s] = chosen }
    }

    /// The plan as a spec: the bare MLP form when only the MLP is structured (both projections
    /// alike) and the head is tied (so earlier records' family names stay the same), otherwise
    /// `SITE=VALUE` entries for the sites that are not dense.
    public var spec: String {
        let fc = self[.mlpFc], proj = self[.mlpProj], qkv = self[.qkv], ap = self[.attnProj]
        let attnDense = qkv.allSatisfy { $0 == .dense } && ap.allSatisfy { $0 == .dense }
        if head == .tied, attnDense, fc == proj { return GPT2Config.describe(fc) }
        var parts: [String] = []
        if fc == proj {
            if fc.contains(where: { $0 != .dense }) { parts.append("mlp=\(GPT2Config.describe(fc))") }
        } else {
            for (s, k) in [(LinearSite.mlpFc, fc), (.mlpProj, proj)] where k.contains(where: { $0 != .dense }) {
                parts.append("\(s.rawValue)=\(GPT2Config.describe(k))")
            }
        }
        if qkv == ap {
            if qkv.contains(where: { $0 != .dense }) { parts.append("attn=\(GPT2Config.describe(qkv))") }
        } else {
            for (s, k) in [(LinearSite.qkv, qkv), (.attnProj, ap)] where k.contains(where: { $0 != .dense }) {
                parts.append("\(s.rawValue)=\(GPT2Config.describe(k))")
            }
        }
        if head != .tied { parts.append("head=\(head)") }
        return parts.isEmpty ? "dense" : parts.joined(separator: ",")
    }
}
