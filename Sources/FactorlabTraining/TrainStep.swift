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
    /// Mean loss over the step's micro-batches (over all ranks, data parallel).
    public let loss: Float
    /// Global gradient norm before clipping.
    public let gradNorm: Double
    public let lr: Float
    /// Tokens of the step (over all ranks).
    public let tokens: Int
    /// Where the time went: forward and backward of every micro-batch (with the gradient
    /// averaging that overlaps them), the gradient norm, and the AdamW update.
    public let forwardBackwardSeconds: Double
    public let normSeconds: Double
    public let updateSeconds: Double
}

/// The optimizer step of every training loop in Factorlab (pretraining, both finetuners, the
/// profiler, the benchmarks, data-parallel ranks):
///
/// 1. forward and backward over each micro-batch on a fresh tape (gradients accumulate);
/// 2. a non-finite loss stops the step before any update;
/// 3. gradients averaged over micro-batches (and, data parallel, over ranks);
/// 4. the global gradient norm, which must be finite;
/// 5. AdamW at the scheduled learning rate, with clipping by global norm folded into the
///    update (the gradients are multiplied by the clip coefficient as AdamW reads them, the
///    same float operations as clipping them in place first);
/// 6. the gradients are dropped.
public final class OptimizerStep {
    public let optimizer: AdamW
    public var schedule: LRSchedule
    /// Clip the global gradient norm to this value (nil: no clipping).
    public var clipNorm: Double?
    /// Data parallel: averages gradients over the ranks (nil: a single process).
    public let averager: GradientAverager?
    /// When set, each tape adds its per-operation times to it (the profiler).
    public var profile: OperationProfile?

    public init(optimizer: AdamW, schedule: LRSchedule, clipNorm: Double? = 1.0, averager: GradientAverager? = nil) {
        self.optimizer = optimizer
        self.schedule = schedule
        self.clipNorm = clipNorm
        self.averager = averager
    }

    /// Runs step number `step` (0-based, for the schedule) over `microBatches` micro-batches whose
    /// losses `loss(i)` records, `tokens` tokens in all on this rank.
    ///
    /// Data parallel (with an ``averager``): each rank runs its own micro-batches; the last
    /// backward hands finished gradients to the averager as they appear, and after it every rank
    /// holds the mean gradient over all ranks' micro-batches, so all apply the same update. A
    /// non-finite loss on any rank stops every rank at the same step (the loss is reduced before
    /// it is checked).
    public func run(step: Int, microBatches: Int, tokens: Int, loss: (Int) throws -> Variable) throws -> StepResult {
        precondition(microBatches >= 1)
        let start = Self.now()
        var total: Double = 0
        for i in 0..<microBatches {
            let tape = Tape(profile: profile)
            let value = try tape.record { try loss(i) }
            let item = value.value.item
            if !item.isFinite && averager == nil { throw stop(.nonFiniteLoss(step: step + 1, value: item)) }
            if let averager, i == microBatches - 1 {
                averager.begin()
                try tape.backward(value, parameterReady: averager.parameterReady)
            } else {
                try tape.backward(value)
            }
            total += Double(item)
        }
        let params = optimizer.parameters.map(\.parameter)
        var meanLoss = total / Double(microBatches)
        var allTokens = tokens
        if let averager {
            let ranks = averager.communicator.size
            try averager.finish(scale: 1 / Float(ranks * microBatches))
            let sums = try averager.communicator.allreduceSum([total, Double(tokens)])
            meanLoss = sums[0] / Double(ranks * microBatches)
            allTokens = Int(sums[1])
            guard meanLoss.isFinite else { throw stop(.nonFiniteLoss(step: step + 1, value: Float(meanLoss))) }
        } else if microBatches > 1 {
            Gradients.scale(params, by: 1 / Float(microBatches))
        }
        let normStart = Self.now()
        let norm = Gradients.globalNorm(params)
        guard norm.isFinite else { throw stop(.nonFiniteGradient(step: step + 1)) }
        let updateStart = Self.now()
        let lr = schedule.lr(at: step)
        optimizer.step(lr: lr, gradScale: clipNorm.map { Gradients.clipCoefficient(norm: norm, maxNorm: $0) } ?? 1)
        optimizer.zeroGrad()
        let end = Self.now()
        return StepResult(loss: Float(meanLoss), gradNorm: norm, lr: lr, tokens: allTokens,
                          forwardBackwardSeconds: normStart - start, normSeconds: updateStart - normStart, updateSeconds: end - updateStart)
    }

    /// A language-model step: `model.loss` on each micro-batch. `dropoutKey` seeds dropout masks
    /// (nil: no dropout); micro-batch i of rank r gets its own key (rank 0 has the single-process
    /// keys).
    public func run(step: Int, model: GPT2Model, microBatches: [TokenBatch], dropoutKey: UInt64?) throws -> StepResult {
        let rank = averager?.communicator.rank ?? 0
        let tokens = microBatches.reduce(0) { $0 + $1.batch * $1.seqLen }
        return try run(step: step, microBatches: microBatches.count, tokens: tokens) { i in
            let mb = microBatches[i]
            let key = dropoutKey.map { SeededHash.derive($0, adding: UInt64(rank * microBatches.count + i)) }
            return try model.loss(mb.inputs, targets: mb.targets, batch: mb.batch, seqLen: mb.seqLen, dropoutKey: key)
        }
    }

    /// Drops the gradients of a failed step and returns its error.
    func stop(_ error: TrainingError) -> TrainingError {
        optimizer.zeroGrad()
        return error
    }

    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
}

/// Training failures that stop a run.
/// Step numbers in messages count from 1, like the `step` column of the run records: step N is the
/// N-th optimizer step, and the checkpoint `ckpt-<N-1>` holds the state before it.
public enum TrainingError: Error, CustomStringConvertible, Equatable {
    case nonFiniteLoss(step: Int, value: Float)
    case nonFiniteGradient(step: Int)
    case nonFiniteValidation(step: Int, value: Double)
    /// The recipe asks for something this run cannot do (names the key).
    case recipe(String)
    /// The training data cannot serve the run.
    case data(String)
    /// A checkpoint or run folder does not fit the run (batch geometry, vocabulary).
    case resume(String)
    /// Data-parallel ranks disagree (weights, steps).
    case distributed(String)

    public var description: String {
        switch self {
        case .nonFiniteLoss(let s, let v): return "training stopped: the loss became \(v) at step \(s); the last good checkpoint is kept"
        case .nonFiniteGradient(let s): return "training stopped: the gradient norm became non-finite at step \(s); the last good checkpoint is kept"
        case .nonFiniteValidation(let s, let v): return "training stopped: the validation loss became \(v) after step \(s); the last good checkpoint is kept"
        case .recipe(let m), .data(let m), .resume(let m), .distributed(let m): return m
        }
    }
}
