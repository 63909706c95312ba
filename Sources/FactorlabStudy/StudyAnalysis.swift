import FactorlabRandom
import Foundation

/// A run left out of the curves and fits, and why.
public struct ExcludedRun: Codable, Equatable, Sendable {
    public var name: String
    public var reason: String
}

/// The whole analysis of a set of runs: groups, frontiers and fits per family, compute multipliers,
/// budget recommendations and the local-minimum experiment. Pure values; rendering is separate.
///
/// Which runs enter the curves: those without an `arm` or with arm `scratch` (trained from scratch)
/// that have validation points at positive compute. Runs of other arms (`projected`, ...) started
/// from another model's weights, so their compute is not comparable; they appear in
/// ``localMinimum`` only.
///
/// Uncertainty comes from seeds: a *replicate* picks one seed of every size; every replicate is
/// analysed like the seed means (frontier, fit, multiplier), and the spread is the standard deviation
/// over replicates. All combinations are used when there are at most ``maximumReplicates`` of them,
/// otherwise that many are drawn with a fixed-seed generator, so results are deterministic.
public struct StudyAnalysis: Sendable {
    public static let maximumReplicates = 256
    static let replicateSeed: UInt64 = 0x5EED_FAC7_0B1A_B5

    public var runs: [StudyRun]
    public var excluded: [ExcludedRun]
    /// Groups whose curves enter frontiers, fits and budgets.
    public var groups: [RunGroup]
    /// Groups of runs that carry an arm.
    public var armGroups: [RunGroup]
    /// Family trends per axis, dense first.
    public var trends: [ComputeAxis: [FamilyTrend]]
    public var multipliers: [MultiplierEstimate]
    public var budgets: [Double]
    public var recommendations: [BudgetRecommendation]
    /// Every measured way to serve a size (family x size x weight precision) and the
    /// recommendations for latency and weight-memory budgets.
    public var inferenceArms: [InferenceArm]
    public var inferenceRecommendations: [InferenceRecommendation]
    public var localMinimum: LocalMinimumResult?
    /// Number of seed replicates (0 when every size has one seed).
    public var replicateCount: Int
    public var notes: [String]

    public init(runs: [StudyRun], budgets: [Double]? = nil) {
        self.runs = runs
        var excluded: [ExcludedRun] = []
        var curveRuns: [StudyRun] = []
        var armRuns: [StudyRun] = []
        for run in runs {
            let valid = run.validationPoints
            if valid.isEmpty {
                excluded.append(ExcludedRun(name: run.name, reason: "no validation points (no val_loss in metrics.jsonl)"))
                continue
            }
            if run.config.arm != nil { armRuns.append(run) }
            if let arm = run.config.arm, arm != "scratch" {
                excluded.append(ExcludedRun(name: run.name, reason: "arm \"\(arm)\" starts from another model; local-minimum section only"))
            } else if !valid.contains(where: { $0.flops > 0 }) {
                excluded.append(ExcludedRun(name: run.name, reason: "validation points only at 0 training FLOPs"))
            } else {
                curveRuns.append(run)
            }
        }
        self.excluded = excluded
        let groups = RunGroup.make(curveRuns)
        self.groups = groups
        armGroups = RunGroup.make(armRuns)
        notes = runs.flatMap { run in run.notes.map { "\(run.name): \($0)" } }

        let replicates = Self.replicates(groups)
        replicateCount = replicates.count
        var trends: [ComputeAxis: [FamilyTrend]] = [:]
        var multipliers: [MultiplierEstimate] = []
        for axis in ComputeAxis.allCases {
            var pointTrends = Self.trends(groups, axis: axis, pick: nil)
            let replicateTrends = replicates.map { Self.trends(groups, axis: axis, pick: $0) }
            for i in pointTrends.indices where pointTrends[i].fit != nil {
                let family = pointTrends[i].family
                let exponents = replicateTrends.compactMap { set in set.first { $0.family == family }?.fit?.b }
                pointTrends[i].exponentSpread = exponents.count == replicates.count ? Stats.sampleStd(exponents) : nil
            }
            trends[axis] = pointTrends
            guard let dense = pointTrends.first(where: { $0.family == "dense" }) else { continue }
            for other in pointTrends where other.family != "dense" {
                for level in ComputeMultiplier.levels(dense: dense, other: other) {
                    var estimate = ComputeMultiplier.estimate(dense: dense, other: other, loss: level)
                    let values = replicateTrends.compactMap { set -> Double? in
                        guard let d = set.first(where: { $0.family == "dense" }),
                              let o = set.first(where: { $0.family == other.family }) else { return nil }
                        return ComputeMultiplier.estimate(dense: d, other: o, loss: level).multiplier
                    }
                    // Replicates whose frontier does not reach this level give no value and are left out.
                    estimate.spread = Stats.sampleStd(values)
                    estimate.replicates = values.count
                    multipliers.append(estimate)
                }
            }
        }
        self.trends = trends
        self.multipliers = multipliers
        if groups.filter({ $0.key.family == "dense" }).isEmpty {
            notes.append("no dense runs: no compute multipliers and no baseline for the recommendations")
        }
        let chosenBudgets = budgets ?? BudgetRecommendation.defaultBudgets(groups: groups)
        self.budgets = chosenBudgets
        recommendations = chosenBudgets.map { BudgetRecommendation.make(budget: $0, groups: groups) }
        (inferenceArms, inferenceRecommendations) = InferenceRecommendation.all(groups)
        localMinimum = LocalMinimumResult.make(armGroups: armGroups, scratchGroups: groups)
    }

    /// Family trends on `axis` from seed means (`pick == nil`) or from one seed per group (`pick[i]`
    /// is the run index in `groups[i]`).
    static func trends(_ groups: [RunGroup], axis: ComputeAxis, pick: [Int]?) -> [FamilyTrend] {
        var families: [String] = []
        for group in groups where !families.contains(group.key.family) { families.append(group.key.family) }
        return families.compactMap { family in
            let curves = groups.indices.filter { groups[$0].key.family == family }.map { i in
                let group = groups[i]
                let points = pick.map { RunGroup.curve(of: group.runs[$0[i]], axis) } ?? group.meanCurve(axis)
                return (label: group.key.model.sizeLabel + (group.key.arm.map { " [\($0)]" } ?? ""), points: points)
            }
            return FamilyTrend.make(family: family, axis: axis, curves: curves)
        }
    }

    /// Seed replicates: one run index per group; all combinations (first group varying fastest) if
    /// there are at most ``maximumReplicates``, else that many seeded random draws. Empty when no
    /// group has more than one seed.
    static func replicates(_ groups: [RunGroup]) -> [[Int]] {
        let counts = groups.map(\.seedCount)
        guard counts.contains(where: { $0 > 1 }) else { return [] }
        var total = 1
        for count in counts {
            total = total.multipliedReportingOverflow(by: count).overflow ? Int.max : total * count
            if total > maximumReplicates { break }
        }
        if total <= maximumReplicates {
            return (0..<total).map { index in
                var rest = index
                return counts.map { count in
                    defer { rest /= count }
                    return rest % count
                }
            }
        }
        var generator = SplitMix64(state: replicateSeed)
        return (0..<maximumReplicates).map { _ in counts.map { generator.nextModulo($0) } }
    }

    /// The trend of `family` on `axis`.
    public func trend(_ family: String, _ axis: ComputeAxis = .flops) -> FamilyTrend? {
        trends[axis]?.first { $0.family == family }
    }
}
