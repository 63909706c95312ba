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

        enum CodingKeys: String, CodingKey {
            case name, iterations
            case relativeError = "relative_error"
        }
    }

    /// The target kind, e.g. `monarch:4`.
    public var projection: String
    public var layers: [Layer]
    public var meanRelativeError: Double

    enum CodingKeys: String, CodingKey {
        case projection, layers
        case meanRelativeError = "mean_relative_error"
    }

    /// Compact JSON with sorted keys.
    public var jsonString: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: (try? encoder.encode(self)) ?? Data("{}".utf8), as: UTF8.self)
    }
}

/// Applies an accelerator to a trained model: each chosen layer's MLP weights (c_fc and c_proj)
/// are projected onto the structured class (optimal SVD / Monarch projections; butterfly fitting)
/// and swapped in place; everything else is untouched.
public enum ModelProjection {
    /// Projects `layers` of `model` in place to `kind` and reports each layer's relative
    /// Frobenius error.
    public static func project(_ model: GPT2Model, to kind: LinearKind, layers: [Int], iterations: Int = 300,
                               progress: (String) -> Void = { _ in }) throws -> ProjectionReport {
        var entries: [ProjectionReport.Layer] = []
        for l in layers {
            guard model.blocks.indices.contains(l) else {
                throw GPT2Error.config("layer \(l) is outside 0-\(model.blocks.count - 1)")
            }
            let block = model.blocks[l]
            var projected: [LinearLayer] = []
            for (which, src) in [("c_fc", block.cFc), ("c_proj", block.mlpProj)] {
                let name = "h.\(l).mlp.\(which)"
                progress("\(name) -> \(kind)")
                let result = try Projection.project(weight: try src.denseMatrix(), bias: src.bias?.value, to: kind, name: name,
                                                    butterflyIterations: iterations)
                projected.append(result.layer)
                entries.append(.init(name: name, relativeError: result.relativeError, iterations: result.iterations))
            }
            try model.replaceMLP(layer: l, fc: projected[0], proj: projected[1])
        }
        let mean = entries.map(\.relativeError).reduce(0, +) / Double(max(entries.count, 1))
        return ProjectionReport(projection: kind.description, layers: entries, meanRelativeError: mean)
    }
}
