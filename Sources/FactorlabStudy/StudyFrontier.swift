import Foundation

/// A family's compute-efficient frontier: the lowest seed-mean validation loss any of its sizes
/// reaches at each compute, i.e. the lower envelope of the size curves (Kaplan et al. 2020, §6).
///
/// The envelope is sampled on a log grid of ``gridPointsPerDecade`` points per decade across the
/// family's compute range (curves are interpolated linearly in log compute and never extrapolated),
/// then made non-increasing with a running minimum: with more compute one can always stop earlier.
public struct StudyFrontier: Codable, Equatable, Sendable {
    public struct Point: Codable, Equatable, Sendable {
        public var x: Double
        public var loss: Double
        /// The size (group label) whose curve is lowest here.
        public var group: String
    }

    public static let gridPointsPerDecade = 16

    public var family: String
    public var axis: ComputeAxis
    public var points: [Point]
    /// Where the earliest-finishing size ends; the frontier below it is one size's learning curve.
    public var earliestCurveEnd: Double

    /// Builds the frontier from labelled curves (each sorted by compute); nil when no curve has points.
    public init?(family: String, axis: ComputeAxis, curves: [(label: String, points: [CurvePoint])]) {
        let usable = curves.filter { !$0.points.isEmpty }
        guard let xmin = usable.map({ $0.points.first!.x }).min(),
              let xmax = usable.map({ $0.points.last!.x }).max() else { return nil }
        let n = xmax > xmin ? max(2, Int((Double(Self.gridPointsPerDecade) * log10(xmax / xmin)).rounded(.up)) + 1) : 1
        var points: [Point] = []
        for x in Stats.logSpaced(xmin, xmax, count: n) {
            var best: (loss: Double, label: String)?
            for curve in usable {
                if let loss = Stats.interpolateLogX(curve.points, at: x), best == nil || loss < best!.loss {
                    best = (loss, curve.label)
                }
            }
            if let best {
                if let previous = points.last, previous.loss <= best.loss {
                    points.append(Point(x: x, loss: previous.loss, group: previous.group))
                } else {
                    points.append(Point(x: x, loss: best.loss, group: best.label))
                }
            }
        }
        self.family = family
        self.axis = axis
        self.points = points
        self.earliestCurveEnd = usable.map { $0.points.last!.x }.min()!
    }

    public var computeRange: ClosedRange<Double> { points.first!.x...points.last!.x }
    public var lossRange: ClosedRange<Double> { points.last!.loss...points.first!.loss }

    /// The frontier's loss at compute `x` (log-linear interpolation); nil outside its range.
    public func loss(atCompute x: Double) -> Double? {
        Stats.interpolateLogX(points.map { CurvePoint(x: $0.x, loss: $0.loss) }, at: x)
    }

    /// The least compute at which the frontier reaches `loss` (interpolated in log compute); nil if it never does
    /// or if `loss` is above the frontier's first point.
    public func compute(atLoss loss: Double) -> Double? {
        guard let first = points.first, loss <= first.loss else { return nil }
        if loss == first.loss { return first.x }
        for i in 1..<points.count where points[i].loss <= loss {
            let a = points[i - 1]
            let b = points[i]
            let t = (a.loss - loss) / (a.loss - b.loss)
            return exp(log(a.x) + t * (log(b.x) - log(a.x)))
        }
        return nil
    }

    /// The points a power law is fitted to: those at or beyond ``earliestCurveEnd`` (before it the
    /// frontier is just the smallest size still learning); all points if fewer than 4 remain.
    public var fitPoints: [CurvePoint] {
        let all = points.map { CurvePoint(x: $0.x, loss: $0.loss) }
        let tail = all.filter { $0.x >= earliestCurveEnd }
        return tail.count >= 4 ? tail : all
    }
}
