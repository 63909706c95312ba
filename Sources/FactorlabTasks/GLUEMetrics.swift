import Foundation

/// GLUE's official metrics, with the formulas of scikit-learn and SciPy that GLUE's scorer uses
/// (checked against them by Tools/reference/make_task_metric_fixtures.py).
///
/// Result keys are HF `evaluate`'s: "matthews_correlation" (CoLA), "accuracy", "f1" (MRPC and
/// QQP, with "accuracy"), "pearson" and "spearmanr" (STS-B). Values are fractions in [-1, 1],
/// not percentages.
public enum GLUEMetrics {
    /// The metrics of a classification task for predicted and gold class indices.
    ///
    /// - Throws: ``GLUETaskError/invalidPredictions(_:)`` when the lists differ in length or are
    ///   empty, a label is outside the task's classes, or `task` is STS-B.
    public static func compute(task: GLUETask, predictions: [Int], references: [Int]) throws -> [String: Double] {
        guard !task.isRegression else {
            throw GLUETaskError.invalidPredictions("\(task.name) is a regression task; pass scores as [Double]")
        }
        try checkLengths(predictions.count, references.count, task)
        for (name, labels) in [("prediction", predictions), ("reference", references)] {
            if let bad = labels.first(where: { !(0..<task.outputCount).contains($0) }) {
                throw GLUETaskError.invalidPredictions(
                    "\(task.name): \(name) label \(bad) is outside 0..<\(task.outputCount)")
            }
        }
        var result: [String: Double] = [:]
        for metric in task.metrics {
            switch metric {
            case .matthewsCorrelation: result[metric.rawValue] = matthewsCorrelation(predictions, references)
            case .accuracy: result[metric.rawValue] = accuracy(predictions, references)
            case .f1: result[metric.rawValue] = f1(predictions, references, positive: 1)
            case .pearson, .spearmanr: break
            }
        }
        return result
    }

    /// STS-B's metrics, "pearson" and "spearmanr", for predicted and gold scores.
    ///
    /// - Throws: ``GLUETaskError/invalidPredictions(_:)`` for a classification task, lists of
    ///   different lengths, or empty lists.
    public static func compute(task: GLUETask, predictions: [Double], references: [Double]) throws -> [String: Double] {
        guard task.isRegression else {
            throw GLUETaskError.invalidPredictions("\(task.name) is a classification task; pass class indices as [Int]")
        }
        try checkLengths(predictions.count, references.count, task)
        return [GLUEMetric.pearson.rawValue: pearson(predictions, references),
                GLUEMetric.spearmanr.rawValue: spearman(predictions, references)]
    }

    /// MNLI's two reported numbers: "accuracy_matched" (dev_matched) and "accuracy_mismatched" (dev_mismatched).
    public static func computeMNLI(matched: (predictions: [Int], references: [Int]),
                                   mismatched: (predictions: [Int], references: [Int])) throws -> [String: Double] {
        let m = try compute(task: .mnli, predictions: matched.predictions, references: matched.references)
        let mm = try compute(task: .mnli, predictions: mismatched.predictions, references: mismatched.references)
        return ["accuracy_matched": m["accuracy"]!, "accuracy_mismatched": mm["accuracy"]!]
    }

    private static func checkLengths(_ p: Int, _ r: Int, _ task: GLUETask) throws {
        guard p == r else {
            throw GLUETaskError.invalidPredictions("\(task.name): \(p) predictions for \(r) references")
        }
        guard p > 0 else { throw GLUETaskError.invalidPredictions("\(task.name): no predictions") }
    }

    // MARK: - Formulas

    /// Fraction of positions where the labels agree.
    public static func accuracy(_ predictions: [Int], _ references: [Int]) -> Double {
        precondition(predictions.count == references.count && !predictions.isEmpty)
        let correct = zip(predictions, references).reduce(0) { $0 + ($1.0 == $1.1 ? 1 : 0) }
        return Double(correct) / Double(predictions.count)
    }

    /// F1 of class `positive`: 2·tp / (2·tp + fp + fn), 0 when there is no true positive
    /// (scikit-learn's `f1_score` with its default `zero_division` outcome).
    public static func f1(_ predictions: [Int], _ references: [Int], positive: Int = 1) -> Double {
        precondition(predictions.count == references.count)
        var tp = 0, fp = 0, fn = 0
        for (p, r) in zip(predictions, references) {
            if p == positive && r == positive { tp += 1 }
            else if p == positive { fp += 1 }
            else if r == positive { fn += 1 }
        }
        guard tp > 0 else { return 0 }
        return Double(2 * tp) / Double(2 * tp + fp + fn)
    }

    /// Matthews correlation coefficient in scikit-learn's multiclass form (for two classes it is
    /// (tp·tn − fp·fn) / √((tp+fp)(tp+fn)(tn+fp)(tn+fn))); 0 when either side is constant.
    public static func matthewsCorrelation(_ predictions: [Int], _ references: [Int]) -> Double {
        precondition(predictions.count == references.count && !predictions.isEmpty)
        var trueCount: [Int: Int] = [:], predCount: [Int: Int] = [:]
        var correct = 0
        for (p, r) in zip(predictions, references) {
            trueCount[r, default: 0] += 1
            predCount[p, default: 0] += 1
            if p == r { correct += 1 }
        }
        let n = Double(predictions.count)
        var dotTP = 0.0, dotPP = 0.0, dotTT = 0.0
        for (label, t) in trueCount { dotTP += Double(t) * Double(predCount[label] ?? 0); dotTT += Double(t) * Double(t) }
        for (_, p) in predCount { dotPP += Double(p) * Double(p) }
        let covTP = Double(correct) * n - dotTP
        let covPP = n * n - dotPP
        let covTT = n * n - dotTT
        guard covPP * covTT != 0 else { return 0 }
        return covTP / (covTT * covPP).squareRoot()
    }

    /// Pearson's r (as `scipy.stats.pearsonr`), clipped to [-1, 1]; NaN when either list is constant.
    public static func pearson(_ x: [Double], _ y: [Double]) -> Double {
        precondition(x.count == y.count && x.count >= 2)
        let n = Double(x.count)
        let mx = x.reduce(0, +) / n, my = y.reduce(0, +) / n
        var sxy = 0.0, sxx = 0.0, syy = 0.0
        for (a, b) in zip(x, y) {
            let dx = a - mx, dy = b - my
            sxy += dx * dy
            sxx += dx * dx
            syy += dy * dy
        }
        guard sxx > 0, syy > 0 else { return .nan }
        return min(1, max(-1, sxy / (sxx.squareRoot() * syy.squareRoot())))
    }

    /// Spearman's rho: Pearson's r of the ranks, tied values sharing their average rank
    /// (`scipy.stats.spearmanr`).
    public static func spearman(_ x: [Double], _ y: [Double]) -> Double {
        pearson(averageRanks(x), averageRanks(y))
    }

    /// 1-based ranks with ties given the mean of the ranks they span (`scipy.stats.rankdata`'s
    /// "average" method): [10, 20, 20, 5] → [2, 3.5, 3.5, 1].
    public static func averageRanks(_ values: [Double]) -> [Double] {
        let order = values.indices.sorted { values[$0] < values[$1] }
        var ranks = [Double](repeating: 0, count: values.count)
        var start = 0
        while start < order.count {
            var end = start + 1
            while end < order.count && values[order[end]] == values[order[start]] { end += 1 }
            // Positions start..<end (0-based) hold ranks start+1...end; their mean is (start+1+end)/2.
            let rank = Double(start + 1 + end) / 2
            for k in start..<end { ranks[order[k]] = rank }
            start = end
        }
        return ranks
    }
}
