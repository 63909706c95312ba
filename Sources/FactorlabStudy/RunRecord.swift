/// The model shape recorded in `run.json` under `model`.
public struct ModelShape: Codable, Hashable, Sendable {
    public var nLayer: Int
    public var nEmbd: Int
    public var nHead: Int
    public var nPositions: Int
    public var vocabSize: Int
    /// The MLP layer spec string (`dense`, `monarch:4`, ...).
    public var mlp: String

    public init(nLayer: Int, nEmbd: Int, nHead: Int, nPositions: Int, vocabSize: Int, mlp: String) {
        self.nLayer = nLayer
        self.nEmbd = nEmbd
        self.nHead = nHead
        self.nPositions = nPositions
        self.vocabSize = vocabSize
        self.mlp = mlp
    }

    /// Short size name used in tables and sentences: `4L-256d` (layers, embedding width).
    public var sizeLabel: String { "\(nLayer)L-\(nEmbd)d" }
}

/// Inference cost measured for a run (`run.json` → `inference`).
public struct InferenceCost: Codable, Equatable, Sendable {
    public var latencyMsPerToken: Double
    public var peakMemoryBytes: Int

    public init(latencyMsPerToken: Double, peakMemoryBytes: Int) {
        self.latencyMsPerToken = latencyMsPerToken
        self.peakMemoryBytes = peakMemoryBytes
    }
}

/// A run's `run.json`: what was trained.
public struct RunConfig: Sendable, Equatable {
    public var name: String
    /// The accelerator family: `dense`, `monarch:4`, `lowrank:64`, `butterfly`, ...
    public var family: String
    public var model: ModelShape
    public var parameters: Int
    public var nonEmbeddingParameters: Int
    /// Training FLOPs per token (forward + backward).
    public var flopsPerToken: Double
    public var seed: Int
    /// Experiment arm (`scratch`, `projected`, `projected+trained`); nil for ordinary runs.
    public var arm: String?
    public var inference: InferenceCost?

    /// Whether the family is the dense baseline.
    public var isDense: Bool { family == "dense" }
}

/// One line of `metrics.jsonl`. The trainer's first line (step 0, before any update) has a
/// validation loss but no training loss, gradient norm or throughput yet, so those are optional.
public struct MetricPoint: Sendable, Equatable {
    public var step: Int
    public var tokens: Int
    public var trainLoss: Double?
    public var valLoss: Double?
    public var lr: Double
    public var gradNorm: Double?
    public var tokensPerSecond: Double?
    /// Elapsed wall-clock seconds since the run started.
    public var wallSeconds: Double
    /// Training FLOPs so far.
    public var flops: Double

    /// The point's position on `axis`.
    public func compute(_ axis: ComputeAxis) -> Double {
        switch axis {
        case .flops: return flops
        case .wallSeconds: return wallSeconds
        }
    }
}

/// A run's optional `summary.json`, written when training ends.
public struct RunSummary: Sendable, Equatable {
    public var finalValLoss: Double?
    public var bestValLoss: Double?
    public var steps: Int
    public var tokens: Int
    public var wallSeconds: Double
    public var flops: Double
    public var peakMemoryBytes: Int?
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
