import FactorlabAutograd
import FactorlabTensor
import FactorlabTraining

/// The training loop both finetuners run: epochs over the examples in a fresh seeded order each
/// (an unbiased Fisher-Yates shuffle), batches of `batchSize`, the one ``OptimizerStep`` per
/// batch, and a limit on the total number of steps.
struct EpochLoop {
    let examples: Int
    let batchSize: Int
    let epochs: Int
    let maxSteps: Int?

    var stepsPerEpoch: Int { (examples + batchSize - 1) / batchSize }
    var totalSteps: Int { min(maxSteps ?? Int.max, stepsPerEpoch * epochs) }

    /// Runs the loop; returns the number of steps taken. One generator seeded with `seed` draws
    /// each epoch's order and, with `dropout`, one dropout key per step.
    /// - `loss(indices, key)`: the loss of a batch of example indices.
    /// - `onStep(epoch, step, result)`: after each step (1-based step count).
    /// - `onEpochEnd(epoch, steps)`: after each epoch's batches, including one cut short by the limit.
    func run(seed: UInt64, dropout: Bool, step: OptimizerStep, loss: ([Int], UInt64?) throws -> Variable,
             onStep: (Int, Int, StepResult) throws -> Void, onEpochEnd: (Int, Int) throws -> Void = { _, _ in }) throws -> Int {
        var rng = SplitMix64(state: seed)
        let total = totalSteps
        var done = 0
        for epoch in 1...max(1, epochs) {
            var order = Array(0..<examples)
            rng.shuffle(&order)
            for b in 0..<stepsPerEpoch {
                if done >= total { break }
                let batch = Array(order[(b * batchSize)..<min((b + 1) * batchSize, order.count)])
                let key: UInt64? = dropout ? rng.next() : nil
                let result = try step.run(step: done, microBatches: 1, tokens: 0) { _ in try loss(batch, key) }
                done += 1
                try onStep(epoch, done, result)
            }
            try onEpochEnd(epoch, done)
            if done >= total { break }
        }
        return done
    }
}
