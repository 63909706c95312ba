import Foundation

/// One accelerator family's frontier and fitted law on one compute axis.
public struct FamilyTrend: Codable, Equatable, Sendable {
    /// Fewest sizes (distinct models) a family needs before a power law is fitted to its frontier.
    public static let minimumSizesForFit = 3

    public var family: String
    public var axis: ComputeAxis
    /// Group labels of the sizes on this frontier.
    public var sizes: [String]
    public var frontier: StudyFrontier
    /// nil when the family has fewer than ``minimumSizesForFit`` sizes; the frontier is then interpolated.
    public var fit: PowerLawFit?
    /// Standard deviation of the fitted exponent `b` over the seed replicates; nil with single seeds.
    public var exponentSpread: Double?
    /// Why there is no fit, or other caveats.
    public var note: String?

    /// Builds the trend from labelled seed-mean (or single-seed) curves of one family.
    static func make(family: String, axis: ComputeAxis, curves: [(label: String, points: [CurvePoint])]) -> FamilyTrend? {
        guard let frontier = StudyFrontier(family: family, axis: axis, curves: curves) else { return nil }
        let sizes = curves.filter { !$0.points.isEmpty }.map(\.label)
        var fit: PowerLawFit?
        var note: String?
        if sizes.count >= minimumSizesForFit {
            fit = PowerLawFit.fit(frontier.fitPoints)
            if fit == nil || fit!.b <= 0 {
                note = "the frontier does not decrease with compute; no power law, interpolating the frontier"
                fit = nil
            }
        } else {
            note = "\(sizes.count) size\(sizes.count == 1 ? "" : "s") (a fit needs \(minimumSizesForFit)): "
                + "no power law, the frontier is interpolated and nothing is extrapolated"
        }
        return FamilyTrend(family: family, axis: axis, sizes: sizes, frontier: frontier, fit: fit, exponentSpread: nil, note: note)
    }

    /// Loss range where this trend is trusted: the fitted points' range, else the whole frontier.
    public var usableLossRange: ClosedRange<Double> { fit?.lossRange ?? frontier.lossRange }

    /// Compute needed to reach `loss`: from the fit when there is one, else by interpolating the frontier.
    public func compute(atLoss loss: Double) -> Double? {
        if let fit { return fit.compute(atLoss: loss) }
        return frontier.compute(atLoss: loss)
    }

    /// How ``compute(atLoss:)`` gets its answer.
    public var method: String { fit == nil ? "frontier" : "fit" }
}
