import Foundation

/// Small numeric helpers shared by the analysis.
enum Stats {
    static func mean(_ values: [Double]) -> Double {
        values.isEmpty ? .nan : values.reduce(0, +) / Double(values.count)
    }

    /// Sample standard deviation (n - 1); nil for fewer than two values.
    static func sampleStd(_ values: [Double]) -> Double? {
        guard values.count > 1 else { return nil }
        let m = mean(values)
        return (values.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(values.count - 1)).squareRoot()
    }

    /// Linear interpolation of `y` in `log x` over points sorted by `x`; nil outside [first x, last x].
    static func interpolateLogX(_ points: [CurvePoint], at x: Double) -> Double? {
        guard let first = points.first, let last = points.last, x >= first.x, x <= last.x else { return nil }
        if x == last.x { return last.loss }
        var hi = 1
        while hi < points.count && points[hi].x < x { hi += 1 }
        if hi >= points.count { return last.loss }
        if points[hi].x == x { return points[hi].loss }
        let lo = points[hi - 1]
        let h = points[hi]
        let t = (log(x) - log(lo.x)) / (log(h.x) - log(lo.x))
        return lo.loss + t * (h.loss - lo.loss)
    }

    /// `n` log-spaced values from `lo` to `hi` inclusive (endpoints exact).
    static func logSpaced(_ lo: Double, _ hi: Double, count n: Int) -> [Double] {
        guard n > 1 else { return [lo] }
        var values = (0..<n).map { exp(log(lo) + (log(hi) - log(lo)) * Double($0) / Double(n - 1)) }
        values[0] = lo
        values[n - 1] = hi
        return values
    }
}

