import Foundation

/// The best a size (group of seeds) does within a compute budget.
public struct BudgetEntry: Codable, Equatable, Sendable {
    public var family: String
    /// `4L-256d`.
    public var size: String
    /// Lowest seed-mean validation loss at compute ≤ the budget.
    public var loss: Double
    /// Where on the curve that loss was reached.
    public var compute: Double
    /// Standard deviation over seeds of each seed's best loss within the budget; nil with one seed.
    public var spread: Double?
    public var seeds: Int

    public var isDense: Bool { family == "dense" }
    public var label: String { isDense ? "dense \(size)" : "\(size) \(family)" }
}

/// What to train at one FLOP budget, with the evidence.
public struct BudgetRecommendation: Codable, Equatable, Sendable {
    public var budget: Double
    /// Lowest loss of any size within the budget, and the next one.
    public var best: BudgetEntry?
    public var runnerUp: BudgetEntry?
    public var bestDense: BudgetEntry?
    public var bestAccelerated: BudgetEntry?
    /// True when an accelerated size reaches a lower mean loss than every dense size.
    public var acceleratorWins: Bool
    /// True when the winner's margin over the other side exceeds twice the combined seed spread.
    public var conclusive: Bool
    /// The recommendation in words.
    public var sentence: String

    /// Ranks every group's curve at `budget` (FLOPs) and states the recommendation.
    static func make(budget: Double, groups: [RunGroup]) -> BudgetRecommendation {
        var entries: [BudgetEntry] = []
        for group in groups {
            guard let best = RunGroup.best(on: group.meanCurve(.flops), within: budget) else { continue }
            let perSeed = group.runs.compactMap { RunGroup.best(on: RunGroup.curve(of: $0, .flops), within: budget)?.loss }
            entries.append(BudgetEntry(family: group.key.family, size: group.key.model.sizeLabel, loss: best.loss,
                                       compute: best.x, spread: Stats.sampleStd(perSeed), seeds: perSeed.count))
        }
        entries.sort { ($0.loss, $0.label) < ($1.loss, $1.label) }
        let dense = entries.first { $0.isDense }
        let accelerated = entries.first { !$0.isDense }
        let wins = accelerated != nil && dense != nil && accelerated!.loss < dense!.loss
        var conclusive = false
        let at = "At \(Fmt.sci(budget)) FLOPs"
        let sentence: String
        switch (dense, accelerated) {
        case let (d?, x?):
            let margin = abs(d.loss - x.loss)
            let combined = (d.spread ?? 0) * (d.spread ?? 0) + (x.spread ?? 0) * (x.spread ?? 0)
            let evidence: String
            if d.spread == nil || x.spread == nil {
                evidence = "margin \(Fmt.loss(margin)) nats; single seed on at least one side, so there is no seed spread to judge it by"
            } else if margin > 2 * combined.squareRoot() {
                conclusive = true
                evidence = "margin \(Fmt.loss(margin)) nats = \(Fmt.fixed(margin / combined.squareRoot(), 1)) × the combined seed spread"
            } else {
                evidence = "margin \(Fmt.loss(margin)) nats is within twice the combined seed spread (\(Fmt.loss(combined.squareRoot()))), so this is not conclusive"
            }
            if wins {
                sentence = "\(at), use \(x.size) with \(x.family) instead of dense \(d.size): val loss "
                    + "\(Fmt.lossWithSpread(x.loss, x.spread)) vs \(Fmt.lossWithSpread(d.loss, d.spread)) (\(evidence))."
            } else {
                sentence = "\(at) no accelerator beats the dense baseline (best dense: \(d.size), val loss "
                    + "\(Fmt.lossWithSpread(d.loss, d.spread)); best accelerated: \(x.size) \(x.family), val loss "
                    + "\(Fmt.lossWithSpread(x.loss, x.spread)); \(evidence))."
            }
        case let (d?, nil):
            sentence = "\(at) no accelerator beats the dense baseline (best dense: \(d.size), val loss "
                + "\(Fmt.lossWithSpread(d.loss, d.spread)); no accelerated run has a validation point within this budget)."
        case let (nil, x?):
            sentence = "\(at) no dense run has a validation point within the budget, so there is no baseline to beat "
                + "(best accelerated: \(x.size) \(x.family), val loss \(Fmt.lossWithSpread(x.loss, x.spread)))."
        case (nil, nil):
            sentence = "\(at) no run has a validation point within the budget."
        }
        return BudgetRecommendation(budget: budget, best: entries.first, runnerUp: entries.count > 1 ? entries[1] : nil,
                                    bestDense: dense, bestAccelerated: accelerated, acceleratorWins: wins,
                                    conclusive: conclusive, sentence: sentence)
    }

    /// Default budgets: 5 log-spaced values between the earliest and the latest end of any size's
    /// FLOP curve, rounded to two significant digits.
    static func defaultBudgets(groups: [RunGroup]) -> [Double] {
        defaultBudgets(ends: groups.compactMap { $0.meanCurve(.flops).last?.x })
    }

    /// Five log-spaced budgets from the smallest to the largest compute a curve ends at, rounded
    /// to two significant digits, without repeats. When every run ends at about the same
    /// compute (a sweep at one budget), they span the last factor of 8 below it instead, where
    /// every curve has points, so the report still compares sizes along training.
    public static func defaultBudgets(ends: [Double]) -> [Double] {
        guard var lo = ends.min(), let hi = ends.max() else { return [] }
        if hi < 2 * lo { lo = hi / 8 }
        var out: [Double] = []
        for x in Stats.logSpaced(lo, hi, count: 5) {
            let scale = pow(10, floor(log10(x)) - 1)
            let rounded = (x / scale).rounded() * scale
            if out.last != rounded { out.append(rounded) }
        }
        return out
    }
}
