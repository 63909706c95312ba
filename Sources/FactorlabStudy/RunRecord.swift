@_exported import FactorlabRecords

// The run records are FactorlabRecords' types, shared with the trainer that writes them; the
// study's names for them:

/// A run's `run.json`: what was trained.
public typealias RunConfig = RunDescription
/// Inference cost measured for a run (`run.json` → `inference`).
public typealias InferenceCost = InferenceRecord
/// One line of `metrics.jsonl`.
public typealias MetricPoint = MetricsRow

extension MetricsRow {
    /// The point's position on `axis`.
    public func compute(_ axis: ComputeAxis) -> Double {
        switch axis {
        case .flops: return flops
        case .wallSeconds: return wallSeconds
        }
    }
}

/// The training-cost axis a curve is drawn against.
public enum ComputeAxis: String, Codable, Sendable, CaseIterable {
    case flops
    case wallSeconds = "wall_s"

    /// Axis title for tables and plots.
    public var title: String {
        switch self {
        case .flops: return "training compute (FLOPs)"
        case .wallSeconds: return "training wall-clock (s)"
        }
    }

    /// Unit word used in sentences.
    public var unit: String {
        switch self {
        case .flops: return "FLOPs"
        case .wallSeconds: return "s"
        }
    }
}
