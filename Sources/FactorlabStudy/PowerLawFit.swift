import Foundation

/// A Kaplan-style compute law `L(C) = a · C^(-b)` fitted to a family's frontier.
///
/// Fitted by ordinary least squares of `ln L` on `ln C` over the frontier's ``StudyFrontier/fitPoints``
/// (which are log-uniform in compute, so each part of the range weighs the same). No irreducible-loss
/// term: with 3–6 sizes spanning about a decade of compute, `a`, `b` and an offset `c` trade off
/// against each other and the three-parameter fit is not identifiable; the two-parameter law is
/// stable, describes the frontier within its range to a few thousandths of a nat, and is never used
/// outside that range without saying so.
public struct PowerLawFit: Codable, Equatable, Sendable {
    public var a: Double
    public var b: Double
    public var pointCount: Int
    /// Root-mean-square of `L − L_fit` over the fitted points (nats).
    public var rmsResidual: Double
    /// Largest |`L − L_fit`| over the fitted points (nats).
    public var maxResidual: Double
    /// Compute range of the fitted points.
    public var computeStart: Double
    public var computeEnd: Double

    public init(a: Double, b: Double, pointCount: Int, rmsResidual: Double, maxResidual: Double,
                computeStart: Double, computeEnd: Double) {
        self.a = a
        self.b = b
        self.pointCount = pointCount
        self.rmsResidual = rmsResidual
        self.maxResidual = maxResidual
        self.computeStart = computeStart
        self.computeEnd = computeEnd
    }

    /// Least-squares fit in log-log; nil for fewer than 2 distinct compute values.
    public static func fit(_ points: [CurvePoint]) -> PowerLawFit? {
        let lx = points.map { log($0.x) }
        let ly = points.map { log($0.loss) }
        guard points.count >= 2 else { return nil }
        let mx = Stats.mean(lx)
        let my = Stats.mean(ly)
        var sxx = 0.0
        var sxy = 0.0
        for (x, y) in zip(lx, ly) {
            sxx += (x - mx) * (x - mx)
            sxy += (x - mx) * (y - my)
        }
        guard sxx > 0 else { return nil }
        let slope = sxy / sxx
        let a = exp(my - slope * mx)
        let b = -slope
        let residuals = points.map { $0.loss - a * pow($0.x, -b) }
        let rms = (residuals.reduce(0) { $0 + $1 * $1 } / Double(points.count)).squareRoot()
        return PowerLawFit(a: a, b: b, pointCount: points.count, rmsResidual: rms,
                           maxResidual: residuals.map(abs).max()!, computeStart: points.map(\.x).min()!,
                           computeEnd: points.map(\.x).max()!)
    }

    public func loss(atCompute c: Double) -> Double { a * pow(c, -b) }

    /// Compute at which the law reaches `loss`: `(a / L)^(1/b)`; nil if the law does not decrease.
    public func compute(atLoss loss: Double) -> Double? {
        b > 0 ? pow(a / loss, 1 / b) : nil
    }

    /// Loss range covered by the fitted points.
    public var lossRange: ClosedRange<Double> { loss(atCompute: computeEnd)...loss(atCompute: computeStart) }
}
