import Foundation

/// Timing of repeated runs: warm-up runs are discarded, then the median and spread are kept.
public struct Measurement: Sendable {
    /// Seconds per run, in the order measured.
    public let samples: [Double]
    public var median: Double {
        let s = samples.sorted()
        return s.isEmpty ? .nan : (s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2)
    }
    public var min: Double { samples.min() ?? .nan }
    public var max: Double { samples.max() ?? .nan }
    /// (max - min) / median: the relative spread of the runs.
    public var spread: Double { (max - min) / median }

    /// Runs `body` `warmup` times untimed, then timed: `repeats` times, and more (up to 20
    /// times `repeats`) until the timed runs add up to `minSeconds`, so that a short step is
    /// measured over long enough for a passing disturbance on a shared machine to stay a minority.
    public static func of(warmup: Int = 1, repeats: Int = 5, minSeconds: Double = 0,
                          _ body: () throws -> Void) rethrows -> Measurement {
        for _ in 0..<warmup { try body() }
        var samples: [Double] = []
        var total = 0.0
        while samples.count < repeats || (total < minSeconds && samples.count < 20 * Swift.max(1, repeats)) {
            let t0 = DispatchTime.now().uptimeNanoseconds
            try body()
            let t = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            samples.append(t)
            total += t
        }
        return Measurement(samples: samples)
    }
}


/// One benchmark figure: a key like `mlp.monarch.speedup`, its value and unit.
public struct BenchFigure: Sendable {
    public let key: String
    public let value: Double
    public let unit: String
    public init(_ key: String, _ value: Double, _ unit: String) {
        self.key = key
        self.value = value
        self.unit = unit
    }
}
