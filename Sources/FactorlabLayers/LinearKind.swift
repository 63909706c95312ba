/// Which linear map a layer uses: the dense baseline or one of the structured "accelerators".
///
/// Written in recipes and on the command line as `dense`, `lowrank:R`, `butterfly` (or
/// `butterfly:NBLOCKS`), `monarch:NBLOCKS` and `btt:RANK` (or `btt:2:RANK`, `btt-norm:RANK`).
public enum LinearKind: Equatable, Hashable, Sendable, CustomStringConvertible {
    case dense
    /// W = U V with U [out, rank] and V [rank, in].
    case lowRank(rank: Int)
    /// A product of log2(n) butterfly factors (per chained block), n the input size padded to a power of two.
    case butterfly(nblocks: Int)
    /// M = P L P^T R with block-diagonal R and L of `nblocks` blocks each.
    case monarch(nblocks: Int)
    /// Block tensor-train with two cores of rank `rank` (Qiu et al. 2024); rank 1 is a Monarch
    /// matrix. `normalized` caps each core's RMS in the forward (their `btt_norm`).
    case btt(rank: Int, normalized: Bool)

    /// Parses `dense`, `lowrank:64`, `butterfly`, `butterfly:2`, `monarch:4`, `btt:4`, `btt:2:4`,
    /// `btt-norm:4`.
    public init(spec: String) throws {
        var parts = spec.lowercased().split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        if ["btt", "btt-norm", "btt_norm"].contains(parts[0]), parts.count == 3 {
            // btt:CORES:RANK: the two-core layer is the one implemented.
            guard parts[1] == "2" else {
                throw LayerError("linear kind '\(spec.prefix(40))'", "block tensor-train is implemented with 2 cores (btt:2:RANK or btt:RANK), got \(parts[1].prefix(20)) cores")
            }
            parts.remove(at: 1)
        }
        func number(_ what: String) throws -> Int {
            guard parts.count == 2, let n = Int(parts[1]), n > 0, n <= 1 << 20 else {
                throw LayerError("linear kind '\(spec.prefix(40))'", "expected \(parts[0].prefix(20)):\(what) with an integer \(what) from 1 to \(1 << 20)")
            }
            return n
        }
        switch parts[0] {
        case "dense" where parts.count == 1: self = .dense
        case "lowrank", "low-rank", "svd": self = .lowRank(rank: try number("RANK"))
        case "butterfly": self = .butterfly(nblocks: parts.count == 1 ? 1 : try number("NBLOCKS"))
        case "monarch": self = .monarch(nblocks: try number("NBLOCKS"))
        case "btt": self = .btt(rank: try number("RANK"), normalized: false)
        case "btt-norm", "btt_norm": self = .btt(rank: try number("RANK"), normalized: true)
        default:
            throw LayerError("linear kind '\(spec.prefix(40))'", "unknown kind; expected dense, lowrank:RANK, butterfly[:NBLOCKS], monarch:NBLOCKS or btt:RANK")
        }
    }

    public var description: String {
        switch self {
        case .dense: return "dense"
        case .lowRank(let r): return "lowrank:\(r)"
        case .butterfly(let b): return b == 1 ? "butterfly" : "butterfly:\(b)"
        case .monarch(let b): return "monarch:\(b)"
        case .btt(let r, let normalized): return "\(normalized ? "btt-norm" : "btt"):\(r)"
        }
    }
}

extension LinearKind {
    /// Number of parameters of a layer of this kind, bias included, computed from the shapes
    /// alone (nothing is allocated); throws when the kind does not fit the sizes or the count
    /// overflows.
    public func parameterCount(inFeatures n: Int, outFeatures m: Int, bias: Bool = true) throws -> Int {
        func product(_ dims: [Int]) throws -> Int {
            try dims.reduce(1) { a, b in
                let (r, o) = a.multipliedReportingOverflow(by: b)
                guard !o, b >= 0 else { throw LayerError("\(self) \(n)->\(m)", "parameter count overflows") }
                return r
            }
        }
        let weights: Int
        switch self {
        case .dense: weights = try product([n, m])
        case .lowRank(let r):
            try LowRankLinear.validate(inFeatures: n, outFeatures: m, rank: r)
            weights = try product([r, n]) + product([r, m])
        case .monarch(let k):
            let (s1, s2) = try MonarchLinear.factorShapes(inFeatures: n, outFeatures: m, nblocks: k)
            weights = try product(s1) + product(s2)
        case .butterfly(let k): weights = try product(try ButterflyLinear.twiddleShape(inFeatures: n, outFeatures: m, nblocks: k))
        case .btt(let r, _):
            let (c1, c2) = try BTTLinear.coreShapes(inFeatures: n, outFeatures: m, rank: r)
            weights = try product(c1) + product(c2)
        }
        return weights + (bias ? m : 0)
    }
}

/// An invalid layer configuration or input: names the layer, the constraint and the values.
public struct LayerError: Error, CustomStringConvertible {
    public let layer: String
    public let message: String
    public init(_ layer: String, _ message: String) {
        self.layer = layer
        self.message = message
    }
    public var description: String { "\(layer): \(message)" }
}
