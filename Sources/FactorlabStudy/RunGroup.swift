import Foundation

/// A point of a loss curve: compute (FLOPs or seconds) and validation loss.
public struct CurvePoint: Codable, Equatable, Sendable {
    public var x: Double
    public var loss: Double

    public init(x: Double, loss: Double) {
        self.x = x
        self.loss = loss
    }
}

/// What makes runs replicates of each other: same family, model shape and arm (seeds differ).
public struct GroupKey: Hashable, Comparable, Sendable {
    public var family: String
    public var model: ModelShape
    public var arm: String?

    /// `4L-256d` for the dense family, `4L-256d monarch:4` otherwise (plus the arm if any).
    public var label: String {
        var text = model.sizeLabel + " " + family
        if let arm { text += " [\(arm)]" }
        return text
    }

    /// Dense first, then families by name; within a family by width, depth, heads, then arm.
    public static func < (lhs: GroupKey, rhs: GroupKey) -> Bool {
        let l = (lhs.family == "dense" ? 0 : 1, lhs.family, lhs.model.nEmbd, lhs.model.nLayer, lhs.model.nHead, lhs.model.mlp, lhs.arm ?? "")
        let r = (rhs.family == "dense" ? 0 : 1, rhs.family, rhs.model.nEmbd, rhs.model.nLayer, rhs.model.nHead, rhs.model.mlp, rhs.arm ?? "")
        if l.0 != r.0 { return l.0 < r.0 }
        if l.1 != r.1 { return l.1 < r.1 }
        if l.2 != r.2 { return l.2 < r.2 }
        if l.3 != r.3 { return l.3 < r.3 }
        if l.4 != r.4 { return l.4 < r.4 }
        if l.5 != r.5 { return l.5 < r.5 }
        return l.6 < r.6
    }
}

/// Runs that differ only in seed, with their seed-mean validation curve.
public struct RunGroup: Sendable {
    public var key: GroupKey
    /// Sorted by seed, then name.
    public var runs: [StudyRun]

    public init(key: GroupKey, runs: [StudyRun]) {
        self.key = key
        self.runs = runs.sorted { ($0.config.seed, $0.name) < ($1.config.seed, $1.name) }
    }

    public var seedCount: Int { runs.count }

    /// Groups runs by ``GroupKey``, sorted.
    public static func make(_ runs: [StudyRun]) -> [RunGroup] {
        var byKey: [GroupKey: [StudyRun]] = [:]
        for run in runs {
            byKey[GroupKey(family: run.config.family, model: run.config.model, arm: run.config.arm), default: []].append(run)
        }
        return byKey.keys.sorted().map { RunGroup(key: $0, runs: byKey[$0]!) }
    }

    /// One run's validation curve on `axis` (points with positive compute only, as the axes are logarithmic).
    public static func curve(of run: StudyRun, _ axis: ComputeAxis) -> [CurvePoint] {
        run.validationPoints.compactMap { point in
            let x = point.compute(axis)
            return x > 0 ? CurvePoint(x: x, loss: point.valLoss!) : nil
        }
    }

    /// The seed-mean curve on `axis`. Seeds with the same step schedule are averaged point by point
    /// (compute and loss); otherwise every seed is interpolated (linear in log compute) at the
    /// points of the seed with the fewest points, inside the range all seeds cover.
    public func meanCurve(_ axis: ComputeAxis, runs subset: [StudyRun]? = nil) -> [CurvePoint] {
        let members = subset ?? runs
        let curves = members.map { Self.curve(of: $0, axis) }
        guard let first = curves.first else { return [] }
        if curves.count == 1 { return first }
        let steps = members.map { $0.validationPoints.filter { $0.compute(axis) > 0 }.map(\.step) }
        if steps.allSatisfy({ $0 == steps[0] }) {
            return (0..<first.count).map { i in
                CurvePoint(x: Stats.mean(curves.map { $0[i].x }), loss: Stats.mean(curves.map { $0[i].loss }))
            }
        }
        let lo = curves.compactMap(\.first?.x).max() ?? 0
        let hi = curves.compactMap(\.last?.x).min() ?? 0
        let reference = curves.min { $0.count < $1.count }!
        return reference.filter { $0.x >= lo && $0.x <= hi }.compactMap { point in
            let values = curves.compactMap { Stats.interpolateLogX($0, at: point.x) }
            return values.count == curves.count ? CurvePoint(x: point.x, loss: Stats.mean(values)) : nil
        }
    }

    /// Lowest loss on `curve` at compute ≤ `budget` and where it was reached; nil if the curve starts later.
    public static func best(on curve: [CurvePoint], within budget: Double) -> CurvePoint? {
        curve.filter { $0.x <= budget }.min { ($0.loss, $0.x) < ($1.loss, $1.x) }
    }
}
