import FactorlabLayers
import FactorlabTensor
import Foundation

/// What a projection did: stored as a checkpoint's `projection` attribute and printed by
/// `factorlab factorize --json`.
public struct ProjectionReport: Codable, Equatable, Sendable {
    public struct Layer: Codable, Equatable, Sendable {
        /// `h.3.mlp.c_fc`.
        public var name: String
        /// ||W - W'||_F / ||W||_F.
        public var relativeError: Double
        /// Optimizer iterations (butterfly fitting; 0 for closed forms).
        public var iterations: Int
        /// Data-aware projections: ||(W - W') L||_F / ||W L||_F on the calibration inputs (X^T X = L L^T).
        public var outputError: Double? = nil
        /// Data-aware projections: the weight and output errors of the data-free projection they started from.
        public var dataFreeRelativeError: Double? = nil
        public var dataFreeOutputError: Double? = nil

        enum CodingKeys: String, CodingKey {
            case name, iterations
            case relativeError = "relative_error"
            case outputError = "calibration_output_error"
            case dataFreeRelativeError = "data_free_relative_error"
            case dataFreeOutputError = "data_free_calibration_output_error"
        }
    }

    /// The target kind, e.g. `monarch:4`.
    public var projection: String
    public var layers: [Layer]
    public var meanRelativeError: Double
    /// How the calibration went, for data-aware projections.
    public var calibration: CalibrationRecord? = nil

    enum CodingKeys: String, CodingKey {
        case projection, layers, calibration
        case meanRelativeError = "mean_relative_error"
    }

    /// Compact JSON with sorted keys.
    public var jsonString: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: (try? encoder.encode(self)) ?? Data("{}".utf8), as: UTF8.self)
    }
}

/// Applies an accelerator to a trained model: each chosen site's weights in the chosen layers are
/// projected onto the structured class (optimal SVD, Monarch and BTT projections; butterfly
/// fitting) and swapped in place; everything else is untouched.
public enum ModelProjection {
    /// Projects `sites` of `layers` of `model` in place to `kind` and reports each layer's
    /// relative Frobenius error (default: both MLP projections, as the source study did).
    public static func project(_ model: GPT2Model, to kind: LinearKind, sites: [LinearSite] = [.mlpFc, .mlpProj], layers: [Int],
                               iterations: Int = 300, progress: (String) -> Void = { _ in }) throws -> ProjectionReport {
        var entries: [ProjectionReport.Layer] = []
        for l in layers {
            guard model.blocks.indices.contains(l) else {
                throw GPT2Error.config("layer \(l) is outside 0-\(model.blocks.count - 1)")
            }
            for site in sites {
                let src = model.blocks[l][site]
                let name = "h.\(l).\(site.rawValue)"
                progress("\(name) -> \(kind)")
                let result = try Projection.project(weight: try src.denseMatrix(), bias: src.bias?.value, to: kind, name: name,
                                                    butterflyIterations: iterations)
                try model.replace(site, layer: l, with: result.layer)
                entries.append(.init(name: name, relativeError: result.relativeError, iterations: result.iterations))
            }
        }
        return ProjectionReport(projection: kind.description, layers: entries)
    }

    /// Projects the token embedding / head to `head`: a tied dense embedding to a factorized one
    /// (`lowrank:R`, the truncated SVD of E, optimal in Frobenius norm) or to an untied head of a
    /// structured kind projected from E (the embedding stays E).
    public static func project(_ model: GPT2Model, head: HeadKind, iterations: Int = 300,
                               progress: (String) -> Void = { _ in }) throws -> ProjectionReport {
        let e = try model.tokens.denseTable()
        progress("head -> \(head)")
        let result: Projection.Result
        switch head {
        case .tied:
            throw GPT2Error.config("head: projecting to a tied dense head is densifying; use export-hf --densify")
        case .tiedLowRank(let r):
            result = try Projection.lowRank(weight: e, bias: nil, rank: r, name: "wte")
            let low = result.layer as! LowRankLinear
            try model.setTokens(try TokenEmbedding(factorA: low.u.value, factorB: low.v.value))
        case .untied(let k):
            result = try Projection.project(weight: e, bias: nil, to: k, name: "lm_head", butterflyIterations: iterations)
            try model.setTokens(try TokenEmbedding(table: e, head: result.layer))
        }
        return ProjectionReport(projection: "head=\(head)", layers: [.init(name: "head", relativeError: result.relativeError,
                                                                          iterations: result.iterations)])
    }
}

extension ProjectionReport {
    /// A report over `layers`, their mean error computed.
    public init(projection: String, layers: [Layer]) {
        self.init(projection: projection, layers: layers,
                  meanRelativeError: layers.map(\.relativeError).reduce(0, +) / Double(max(layers.count, 1)))
    }

    /// Two reports as one (e.g. block sites and the head).
    public func merged(with other: ProjectionReport) -> ProjectionReport {
        ProjectionReport(projection: "\(projection),\(other.projection)", layers: layers + other.layers)
    }
}
