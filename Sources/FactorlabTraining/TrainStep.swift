import FactorlabAutograd
import FactorlabData
import FactorlabDistributed
import FactorlabGPT2
import FactorlabOptim
import FactorlabTensor
import Foundation

/// One micro-batch of next-token prediction: the data loaders' `Batch` (`batch` rows of `seqLen`
/// input ids and their targets).
public typealias TokenBatch = Batch

/// What one optimizer step did.
public struct StepResult: Sendable {
    /// Mean loss over the step's micro-batches.
    public let loss: Float
    /// Global gradient norm before clipping.
    public let gradNorm: Double
    public let lr: Float
    public let tokens: Int
}

/// An optimizer step on a language model: forward and backward over each micro-batch (gradients
/// accumulate), averaging, clipping by global norm, then AdamW with the scheduled learning rate.
public final class LanguageModelStep {
    public let model: GPT2Model
    public let optimizer: AdamW
    public var schedule: LRSchedule
    /// Clip the global gradient norm to this value (nil: no clipping).
    public var clipNorm: Double?
    /// Data parallel: averages gradients over the ranks (nil: a single process).
    public let averager: GradientAverager?

    public init(model: GPT2Model, optimizer: AdamW, schedule: LRSchedule, clipNorm: Double? = 1.0,
                averager: GradientAverager? = nil) {
        self.model = model
        self.optimizer = optimizer
        self.schedule = schedule
        self.clipNorm = clipNorm
        self.averager = averager
    }

    /// Runs step number `step` (0-based, for the schedule) over `microBatches`. `dropoutKey`
    /// seeds dropout masks (nil: no dropout). Throws on a non-finite loss without updating.
    ///
    /// Data parallel (with an ``averager``): each rank runs its own micro-batches; the last
    /// backward hands finished gradients to the averager as they appear, and after it every rank
    /// holds the mean gradient over all ranks' micro-batches, so all apply the same update. The
    /// returned loss and token count are over all ranks. A non-finite loss on any rank stops
    /// every rank at the same step (the loss is reduced before it is checked).
    public func run(step: Int, microBatches: [TokenBatch], dropoutKey: UInt64?) throws -> StepResult {
        precondition(!microBatches.isEmpty)
        var total: Double = 0
        var tokens = 0
        let rank = averager?.communicator.rank ?? 0
        for (i, mb) in microBatches.enumerated() {
            let tape = Tape()
            // Rank 0 uses the single-process keys; other ranks get their own masks.
            let key = dropoutKey.map { RandomGenerator.mix($0 &+ UInt64(rank * microBatches.count + i)) }
            let loss = try tape.record {
                try model.loss(mb.inputs, targets: mb.targets, batch: mb.batch, seqLen: mb.seqLen, dropoutKey: key)
            }
            let value = loss.value.item
            if !value.isFinite && averager == nil {
                optimizer.zeroGrad()
                throw TrainingError.nonFiniteLoss(step: step + 1, value: value)
            }
            if let averager, i == microBatches.count - 1 {
                averager.begin()
                try tape.backward(loss, parameterReady: averager.parameterReady)
            } else {
                try tape.backward(loss)
            }
            total += Double(value)
            tokens += mb.batch * mb.seqLen
        }
        let params = optimizer.parameters.map(\.parameter)
        var meanLoss = total / Double(microBatches.count)
        if let averager {
            let ranks = averager.communicator.size
            try averager.finish(scale: 1 / Float(ranks * microBatches.count))
            let sums = try averager.communicator.allreduceSum([total, Double(tokens)])
            meanLoss = sums[0] / Double(ranks * microBatches.count)
            tokens = Int(sums[1])
            guard meanLoss.isFinite else {
                optimizer.zeroGrad()
                throw TrainingError.nonFiniteLoss(step: step + 1, value: Float(meanLoss))
            }
        } else if microBatches.count > 1 {
            Gradients.scale(params, by: 1 / Float(microBatches.count))
        }
        let norm = Gradients.globalNorm(params)
        guard norm.isFinite else {
            optimizer.zeroGrad()
            throw TrainingError.nonFiniteGradient(step: step + 1)
        }
        let lr = schedule.lr(at: step)
        // Clipping (as Gradients.clip) folded into the AdamW pass: one read of the gradients fewer.
        optimizer.step(lr: lr, gradScale: clipNorm.map { Gradients.clipCoefficient(norm: norm, maxNorm: $0) } ?? 1)
        optimizer.zeroGrad()
        return StepResult(loss: Float(meanLoss), gradNorm: norm, lr: lr, tokens: tokens)
    }
}

/// Training failures that stop a run.
/// Step numbers in messages count from 1, like the `step` column of the run records: step N is the
/// N-th optimizer step, and the checkpoint `ckpt-<N-1>` holds the state before it.
public enum TrainingError: Error, CustomStringConvertible, Equatable {
    case nonFiniteLoss(step: Int, value: Float)
    case nonFiniteGradient(step: Int)
    case recipe(String)
    case data(String)

    public var description: String {
        switch self {
        case .nonFiniteLoss(let s, let v): return "training stopped: the loss became \(v) at step \(s); the last good checkpoint is kept"
        case .nonFiniteGradient(let s): return "training stopped: the gradient norm became non-finite at step \(s); the last good checkpoint is kept"
        case .recipe(let m): return m
        case .data(let m): return m
        }
    }
}

/// The update shared by pretraining and finetuning: record a loss, check it is finite, backward,
/// clip by global norm, AdamW at the scheduled learning rate, drop the gradients.
public enum OptimizerStep {
    public struct Outcome: Sendable {
        public let loss: Double
        public let gradNorm: Double
        public let lr: Float
    }

    /// Runs step number `step` (0-based) with the loss `body` computes on a fresh tape.
    public static func apply(optimizer: AdamW, schedule: LRSchedule, clipNorm: Double?, step: Int,
                             loss body: () throws -> Variable) throws -> Outcome {
        let tape = Tape()
        let loss = try tape.record { try body() }
        let value = Double(loss.value.item)
        guard value.isFinite else {
            optimizer.zeroGrad()
            throw TrainingError.nonFiniteLoss(step: step + 1, value: Float(value))
        }
        try tape.backward(loss)
        let params = optimizer.parameters.map(\.parameter)
        let norm = clipNorm.map { Gradients.clip(params, maxNorm: $0) } ?? Gradients.globalNorm(params)
        guard norm.isFinite else {
            optimizer.zeroGrad()
            throw TrainingError.nonFiniteGradient(step: step + 1)
        }
        let lr = schedule.lr(at: step)
        optimizer.step(lr: lr)
        optimizer.zeroGrad()
        return Outcome(loss: value, gradNorm: norm, lr: lr)
    }
}
