import FactorlabAutograd
import FactorlabLayers
import FactorlabTensor
import Foundation

/// A linear layer that passes its input through unchanged to the layer it wraps and adds the
/// input's rows to ``InputStatistics``: installed at a site for a calibration pass.
final class StatisticsProbe: LinearLayer {
    let inner: LinearLayer
    let statistics: InputStatistics
    init(_ inner: LinearLayer) {
        self.inner = inner
        statistics = InputStatistics(features: inner.inFeatures)
    }
    var kind: LinearKind { inner.kind }
    var inFeatures: Int { inner.inFeatures }
    var outFeatures: Int { inner.outFeatures }
    var parameters: [Parameter] { inner.parameters }
    var parameterNames: [String] { inner.parameterNames }
    var bias: Parameter? { inner.bias }
    var macsPerToken: Int { inner.macsPerToken }
    var factorFanIns: [Int?] { inner.factorFanIns }
    func callAsFunction(_ x: Variable) throws -> Variable {
        statistics.add(x.value)
        return try inner(x)
    }
    func denseMatrix() throws -> Tensor { try inner.denseMatrix() }
}

/// Calibration text for data-aware projection: token windows run through the real forward.
public struct CalibrationData: Sendable {
    public let windows: [[Int32]]
    public var tokens: Int { windows.reduce(0) { $0 + $1.count } }

    /// Cuts `ids` into windows of the model's context (at most `seqLen`), up to `maxTokens`.
    public init(ids: [Int32], seqLen: Int, maxTokens: Int, source: String) throws {
        guard !ids.isEmpty else { throw GPT2Error.input("\(source): the calibration text holds no tokens") }
        guard seqLen >= 1, maxTokens >= 1 else { throw GPT2Error.input("calibration: window and token count must be positive") }
        var out: [[Int32]] = []
        var start = 0, taken = 0
        while start < ids.count && taken < maxTokens {
            let n = min(seqLen, ids.count - start, maxTokens - taken)
            out.append(Array(ids[start..<(start + n)]))
            start += n
            taken += n
        }
        windows = out
    }

    /// Runs every window through `model` (no tape), one at a time.
    func run(_ model: GPT2Model) throws {
        try Tape.withoutRecording {
            for w in windows { _ = try model.forward(w, batch: 1, seqLen: w.count) }
        }
    }
}

/// How a data-aware projection went: stored with the report.
public struct CalibrationRecord: Codable, Equatable, Sendable {
    public var tokens: Int
    /// Each site calibrated on the outputs of the already-projected sites before it (GPTQ-style),
    /// or all sites on the original model's activations.
    public var sequential: Bool
    /// lambda / mean(diag X^T X) added to the input covariance before its Cholesky factorization.
    public var relativeDamping: Double
    public var source: String?

    enum CodingKeys: String, CodingKey {
        case tokens, sequential, source
        case relativeDamping = "relative_damping"
    }
}

extension ModelProjection {
    /// Projects `sites` of `layers` in place to `kind`, minimising each layer's output error on
    /// the calibration inputs (``DataAwareProjection``). Sequential: sites are calibrated one at a
    /// time in forward order, each on the activations of the model with every earlier site already
    /// projected; otherwise every site on the original model's activations, in one pass.
    public static func project(_ model: GPT2Model, to kind: LinearKind, sites: [LinearSite] = [.mlpFc, .mlpProj], layers: [Int],
                               calibration: CalibrationData, sequential: Bool, iterations: Int = 300,
                               progress: (String) -> Void = { _ in }) throws -> ProjectionReport {
        for l in layers where !model.blocks.indices.contains(l) {
            throw GPT2Error.config("layer \(l) is outside 0-\(model.blocks.count - 1)")
        }
        let order = layers.sorted().flatMap { l in LinearSite.allCases.filter(sites.contains).map { (l, $0) } }
        var statistics: [String: InputStatistics] = [:]
        func collect(_ targets: [(Int, LinearSite)]) throws {
            var probes: [(Int, LinearSite, StatisticsProbe)] = []
            for (l, s) in targets {
                let probe = StatisticsProbe(model.blocks[l][s])
                try model.replace(s, layer: l, with: probe)
                probes.append((l, s, probe))
            }
            defer { for (l, s, p) in probes { try? model.replace(s, layer: l, with: p.inner) } }
            progress("calibration pass (\(calibration.tokens) tokens) for \(targets.map { "h.\($0.0).\($0.1.rawValue)" }.joined(separator: ", "))")
            try calibration.run(model)
            for (l, s, p) in probes { statistics["\(l).\(s.rawValue)"] = p.statistics }
        }
        if !sequential { try collect(order) }
        var entries: [ProjectionReport.Layer] = []
        for (l, site) in order {
            if sequential { try collect([(l, site)]) }
            let src = model.blocks[l][site]
            let name = "h.\(l).\(site.rawValue)"
            progress("\(name) -> \(kind) (data-aware)")
            let r = try DataAwareProjection.project(weight: try src.denseMatrix(), bias: src.bias?.value, to: kind,
                                                    statistics: statistics["\(l).\(site.rawValue)"]!, iterations: iterations, name: name)
            try model.replace(site, layer: l, with: r.layer)
            var entry = ProjectionReport.Layer(name: name, relativeError: r.weightError, iterations: r.iterations)
            entry.outputError = r.outputError
            entry.dataFreeRelativeError = r.dataFreeWeightError
            entry.dataFreeOutputError = r.dataFreeOutputError
            entries.append(entry)
        }
        var report = ProjectionReport(projection: kind.description, layers: entries)
        report.calibration = CalibrationRecord(tokens: calibration.tokens, sequential: sequential,
                                               relativeDamping: DataAwareProjection.relativeDamping, source: nil)
        return report
    }
}

extension GPT2Model {
    /// Zeroes every block's MLP output (its c_proj weights and bias become dense zeros): the
    /// reference point of normalized projection damage, (NLL_projected - NLL_dense) /
    /// (NLL_ablated - NLL_dense).
    public func ablateMLP() throws {
        for l in blocks.indices {
            let proj = blocks[l].mlpProj
            try replace(.mlpProj, layer: l, with: try DenseLinear(weight: Tensor(zeros: [proj.outFeatures, proj.inFeatures]),
                                                                  bias: Tensor(zeros: [proj.outFeatures])))
        }
    }
}
