import Foundation

/// The compute multiplier of an accelerator family at one loss level (Kaplan-style):
/// `C_dense(L) / C_X(L)`, the factor of compute the dense family would need to reach the loss that
/// family X reaches with `C_X`. Above 1, X is the more compute-efficient family at that loss.
public struct MultiplierEstimate: Codable, Equatable, Sendable {
    public var family: String
    public var axis: ComputeAxis
    public var loss: Double
    /// Dense compute to reach `loss` (nil if the dense trend cannot say without extrapolating a frontier).
    public var denseCompute: Double?
    public var familyCompute: Double?
    public var multiplier: Double?
    /// Standard deviation of the multiplier over the seed replicates; nil with single seeds.
    public var spread: Double?
    /// Number of seed replicates behind `spread`: those whose trends reach this loss (0 with single seeds).
    public var replicates: Int
    /// True when `loss` lies outside the range where either trend was measured (a fitted law was extrapolated).
    public var extrapolated: Bool
    /// `fit/fit`, `fit/frontier`, ... (dense side / family side).
    public var method: String
}

enum ComputeMultiplier {
    /// Number of loss levels reported per family and axis.
    static let levelCount = 5

    /// Loss levels: evenly spaced over the overlap of both usable loss ranges, highest loss first;
    /// if they do not overlap, over the family's own range (and then marked extrapolated).
    static func levels(dense: FamilyTrend, other: FamilyTrend) -> [Double] {
        let d = dense.usableLossRange
        let o = other.usableLossRange
        var lo = max(d.lowerBound, o.lowerBound)
        var hi = min(d.upperBound, o.upperBound)
        if !(hi > lo) {
            lo = o.lowerBound
            hi = o.upperBound
        }
        guard hi > lo else { return [lo] }
        return (0..<levelCount).map { hi - (hi - lo) * Double($0) / Double(levelCount - 1) }
    }

    /// Point estimate at `loss` (no spread yet).
    static func estimate(dense: FamilyTrend, other: FamilyTrend, loss: Double) -> MultiplierEstimate {
        let cd = dense.compute(atLoss: loss)
        let cx = other.compute(atLoss: loss)
        let slack = 1e-12
        let inside = { (range: ClosedRange<Double>) in loss >= range.lowerBound - slack && loss <= range.upperBound + slack }
        return MultiplierEstimate(
            family: other.family, axis: other.axis, loss: loss, denseCompute: cd, familyCompute: cx,
            multiplier: cd.flatMap { d in cx.map { d / $0 } }, spread: nil, replicates: 0,
            extrapolated: !inside(dense.usableLossRange) || !inside(other.usableLossRange),
            method: dense.method + "/" + other.method)
    }
}
