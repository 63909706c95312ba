import Foundation

/// A learning-rate schedule: constant, or linear warm-up followed by cosine or linear decay to a
/// floor (as nanoGPT's `get_lr`).
public struct LRSchedule: Equatable, Sendable {
    public enum Decay: String, Sendable, CaseIterable { case constant, cosine, linear }
    public var peak: Float
    public var warmupSteps: Int
    public var totalSteps: Int
    public var decay: Decay
    /// The floor reached at `totalSteps` (min_lr).
    public var floor: Float

    public init(peak: Float, warmupSteps: Int = 0, totalSteps: Int, decay: Decay = .cosine, floor: Float = 0) {
        self.peak = peak
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
        self.decay = decay
        self.floor = floor
    }

    /// Learning rate for 0-based `step`: (step + 1) / warmup * peak during warm-up, then the decay
    /// from peak (right after warm-up) to floor (at totalSteps), and the floor afterwards.
    public func lr(at step: Int) -> Float {
        if step < warmupSteps { return peak * Float(step + 1) / Float(warmupSteps) }
        if decay == .constant { return peak }
        if step >= totalSteps { return floor }
        let span = max(1, totalSteps - warmupSteps)
        let ratio = Double(step - warmupSteps) / Double(span)
        let coef: Double = decay == .cosine ? 0.5 * (1 + cos(Double.pi * ratio)) : 1 - ratio
        return floor + Float(coef) * (peak - floor)
    }
}
