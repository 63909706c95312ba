import Foundation

/// One arm of the local-minimum experiment at the common compute.
public struct ArmResult: Codable, Equatable, Sendable {
    /// `scratch`, `projected`, `projected-trained`, or `dense` for the dense reference.
    public var arm: String
    public var family: String
    public var size: String
    public var runs: [String]
    /// Mean over seeds of each seed's lowest validation loss at compute ≤ ``LocalMinimumResult/compute``.
    public var loss: Double
    /// Sample standard deviation over seeds; nil with one seed.
    public var spread: Double?
    /// Training FLOPs of this arm's own runs at the points used (mean over seeds); 0 for projection only.
    public var compute: Double
    /// `loss` minus the dense reference's loss (nil for the reference itself or without one).
    public var gapToDense: Double?
    /// False when no run of the arm trained (a zero-shot arm: one validation point).
    public var trained = true
}

/// The local-minimum experiment: do factorized models trained from scratch reach the dense loss,
/// or only when started from a projected dense model? Arms are compared at equal training compute.
public struct LocalMinimumResult: Codable, Equatable, Sendable {
    /// Fixed tolerance (nats) used when an arm or the reference has a single seed.
    public static let singleSeedTolerance = 0.01
    /// Points within this fraction above the common compute count as at it: FLOP budgets are
    /// spent in whole steps, so arms given the same budget end a fraction of a step apart.
    public static let computeTolerance = 0.005

    /// The common compute: the smallest final FLOPs among trained arms and the dense reference.
    public var compute: Double
    public var denseReference: ArmResult?
    public var arms: [ArmResult]
    /// Whether the factorized from-scratch arm reaches the dense loss within tolerance (nil if either is missing).
    public var scratchReachesDense: Bool?
    public var verdict: String

    /// Builds the comparison from arm-labelled groups; dense reference is an arm-labelled dense group, else
    /// the from-scratch dense group with the scratch arm's depth and width. Nil when no run has an arm.
    static func make(armGroups: [RunGroup], scratchGroups: [RunGroup]) -> LocalMinimumResult? {
        let factorized = armGroups.filter { $0.key.family != "dense" }
        guard !factorized.isEmpty else { return nil }
        let scratch = factorized.first { $0.key.arm == "scratch" }
        let shape = (scratch ?? factorized[0]).key.model
        let reference = armGroups.first { $0.key.family == "dense" }
            ?? scratchGroups.first { $0.key.family == "dense" && $0.key.arm == nil
                && $0.key.model.nLayer == shape.nLayer && $0.key.model.nEmbd == shape.nEmbd }
        // Runs that trained: compute grew from their first validation point to their last.
        func trained(_ run: StudyRun) -> Bool {
            guard let first = run.validationPoints.first?.flops, let last = run.validationPoints.last?.flops else { return false }
            return last > first
        }
        let finals = (factorized + (reference.map { [$0] } ?? [])).compactMap { group -> Double? in
            let last = group.runs.filter(trained).compactMap { $0.validationPoints.last?.flops }.min()
            return last.flatMap { $0 > 0 ? $0 : nil }
        }
        guard let compute = finals.min() else { return nil }

        func result(_ group: RunGroup, arm: String) -> ArmResult? {
            var losses: [Double] = []
            var computes: [Double] = []
            var names: [String] = []
            for run in group.runs {
                let within = run.validationPoints.filter { $0.flops <= compute * (1 + Self.computeTolerance) }
                guard let best = within.min(by: { ($0.valLoss!, $0.flops) < ($1.valLoss!, $1.flops) }) else { continue }
                losses.append(best.valLoss!)
                computes.append(best.flops)
                names.append(run.name)
            }
            guard !losses.isEmpty else { return nil }
            return ArmResult(arm: arm, family: group.key.family, size: group.key.model.sizeLabel, runs: names,
                             loss: Stats.mean(losses), spread: Stats.sampleStd(losses), compute: Stats.mean(computes),
                             gapToDense: nil, trained: group.runs.contains(where: trained))
        }

        let dense = reference.flatMap { result($0, arm: "dense") }
        var arms = factorized.compactMap { group in result(group, arm: group.key.arm ?? "none") }
        if let dense {
            for i in arms.indices { arms[i].gapToDense = arms[i].loss - dense.loss }
        }
        var reaches: Bool?
        var verdict: String
        let at = "at \(Fmt.sci(compute)) training FLOPs"
        let scratches = arms.filter { $0.arm == "scratch" }
        if let dense, !scratches.isEmpty {
            // One sentence per factorized family trained from scratch; the hypothesis holds only
            // if every one of them reaches the dense loss.
            var sentences: [String] = []
            for s in scratches {
                let (tolerance, how) = Self.tolerance(s, dense)
                let gap = s.loss - dense.loss
                let reached = gap <= tolerance
                reaches = (reaches ?? true) && reached
                sentences.append("Factorized from scratch (\(s.size) \(s.family)) \(reached ? "reaches" : "does not reach") the dense loss \(at): "
                    + "\(Fmt.lossWithSpread(s.loss, s.spread)) vs dense \(dense.size) \(Fmt.lossWithSpread(dense.loss, dense.spread)) "
                    + "(gap \(Fmt.fixed(gap, 3)) nats; tolerance \(Fmt.loss(tolerance)) = \(how)).")
            }
            verdict = sentences.joined(separator: " ")
            let families = Set(arms.map(\.family))
            for other in arms where other.arm != "scratch" {
                let (t, _) = Self.tolerance(other, dense)
                let g = other.loss - dense.loss
                verdict += " Arm \(other.arm)\(families.count > 1 ? " (\(other.family))" : ""): \(Fmt.lossWithSpread(other.loss, other.spread))"
                    + (other.trained ? "" : " with no training of its own")
                    + ", \(g <= t ? "reaches" : "does not reach") the dense loss (gap \(Fmt.fixed(g, 3)))."
            }
        } else if dense == nil {
            verdict = "No dense reference run with the factorized arms' shape (\(shape.sizeLabel)), so no verdict."
        } else {
            verdict = "No factorized arm named \"scratch\", so no verdict on training from scratch."
        }
        return LocalMinimumResult(compute: compute, denseReference: dense, arms: arms, scratchReachesDense: reaches, verdict: verdict)
    }

    /// Twice the combined seed spread when both sides have seeds, else the fixed single-seed tolerance.
    static func tolerance(_ a: ArmResult, _ b: ArmResult) -> (Double, String) {
        if let sa = a.spread, let sb = b.spread {
            return (2 * (sa * sa + sb * sb).squareRoot(), "2 × combined seed spread")
        }
        return (singleSeedTolerance, "fixed, single seed on one side")
    }
}
