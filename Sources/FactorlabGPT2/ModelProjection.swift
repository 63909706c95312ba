import FactorlabLayers
import FactorlabTensor
import Foundation

/// Applies an accelerator to a trained model: each chosen layer's MLP weights (c_fc and c_proj)
/// are projected onto the structured class (optimal SVD / Monarch projections; butterfly fitting),
/// everything else is copied.
public enum ModelProjection {
    /// Returns the projected model and a report (JSON-ready) with every projected layer's
    /// relative Frobenius error.
    public static func project(_ model: GPT2Model, to kind: LinearKind, layers: [Int], iterations: Int = 300,
                               progress: (String) -> Void = { _ in }) throws -> (GPT2Model, [String: Any]) {
        var config = model.config
        for l in layers { config.mlp[l] = kind }
        let out = try GPT2Model(config)
        let source = Dictionary(uniqueKeysWithValues: model.namedParameters)
        // Shared parameters (embeddings, attention, norms, unprojected MLPs) are copied by name.
        for (name, p) in out.namedParameters {
            if let s = source[name], s.shape == p.shape { p.value = s.value }
        }
        var entries: [[String: Any]] = []
        for l in layers {
            for (which, src, dst) in [("c_fc", model.blocks[l].cFc, out.blocks[l].cFc), ("c_proj", model.blocks[l].mlpProj, out.blocks[l].mlpProj)] {
                let name = "h.\(l).mlp.\(which)"
                progress("\(name) -> \(kind)")
                let w = try src.denseMatrix()
                let result = try Projection.project(weight: w, bias: src.bias?.value, to: kind, name: name,
                                                    butterflyIterations: iterations)
                for (a, b) in zip(dst.parameters, result.layer.parameters) {
                    guard a.shape == b.shape else {
                        throw GPT2Error.config("\(name): projected factor \(describe(b.shape)) does not match the model's \(describe(a.shape))")
                    }
                    a.value = b.value
                }
                entries.append(["name": name, "relative_error": result.relativeError, "iterations": result.iterations])
            }
        }
        let report: [String: Any] = ["projection": kind.description, "layers": entries,
                                     "mean_relative_error": entries.map { $0["relative_error"] as! Double }.reduce(0, +) / Double(max(entries.count, 1))]
        return (out, report)
    }
}
