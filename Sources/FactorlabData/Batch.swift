/// One batch of next-token prediction: `batch` rows of `seqLen` input ids and, for each, the id that follows it.
public struct Batch: Equatable, Sendable {
    /// Input ids, (batch, seqLen) row-major.
    public let inputs: [Int32]
    /// Target ids, (batch, seqLen) row-major: `targets[r*T + t]` is the token after `inputs[r*T + t]`.
    public let targets: [Int32]
    /// Rows (B).
    public let batch: Int
    /// Tokens per row (T).
    public let seqLen: Int

    public init(inputs: [Int32], targets: [Int32], batch: Int, seqLen: Int) {
        self.inputs = inputs
        self.targets = targets
        self.batch = batch
        self.seqLen = seqLen
    }
}

/// Where a loader is in its data, saved with a checkpoint so a resumed run sees exactly the
/// batches it would have seen without stopping.
public struct LoaderState: Codable, Equatable, Sendable {
    /// Completed passes over the data.
    public var epoch: Int
    /// Global batches already taken in this epoch (the same number on every rank).
    public var position: Int
    /// The shuffle seed (0 and unused for the sequential loader).
    public var seed: UInt64

    public init(epoch: Int = 0, position: Int = 0, seed: UInt64 = 0) {
        self.epoch = epoch
        self.position = position
        self.seed = seed
    }
}

/// A source of training batches that can be saved and resumed (``SequentialLoader``, ``ShuffledLoader``).
public protocol BatchLoader: Sendable {
    /// The next batch; after the last batch of an epoch the next epoch begins.
    mutating func next() -> Batch
    /// Where the loader is; pass it to the loader's `init(…, state:)` to continue from here.
    var state: LoaderState { get }
    /// Tokens per batch on this rank (B × T).
    var tokensPerBatch: Int { get }
    /// Batches per epoch (the same on every rank).
    var batchesPerEpoch: Int { get }
}

/// Checks the shape arguments shared by the loaders and that `tokens` holds one global batch.
func checkLoaderArguments(tokens: TokenStream, batch: Int, seqLen: Int, rank: Int, worldSize: Int) throws {
    guard batch >= 1, seqLen >= 1 else {
        throw DataError(.invalidArgument, "batch (\(batch)) and seqLen (\(seqLen)) must be at least 1")
    }
    guard worldSize >= 1, rank >= 0, rank < worldSize else {
        throw DataError(.invalidArgument, "rank \(rank) is not in 0..<worldSize (\(worldSize))")
    }
    let needed = worldSize * batch * seqLen + 1
    guard tokens.count >= needed else {
        let world = worldSize > 1 ? " × world size \(worldSize)" : ""
        throw DataError(.splitTooSmall,
                        "the \(tokens.name) split has \(tokens.count) tokens, fewer than the B*T+1 = \(needed) that one "
                            + "batch needs (B = \(batch)\(world), T = \(seqLen)); use a smaller batch or sequence length, "
                            + "more data, or a split that gives this side more tokens")
    }
}

/// Rows `rows` of `seqLen + 1` tokens starting at `starts`, as inputs (first T) and targets (last T).
func makeBatch(from tokens: TokenStream, rowStarts: [Int], seqLen: Int) -> Batch {
    var inputs: [Int32] = []
    var targets: [Int32] = []
    inputs.reserveCapacity(rowStarts.count * seqLen)
    targets.reserveCapacity(rowStarts.count * seqLen)
    for start in rowStarts {
        tokens.appendIDs(start..<start + seqLen, to: &inputs)
        tokens.appendIDs(start + 1..<start + seqLen + 1, to: &targets)
    }
    return Batch(inputs: inputs, targets: targets, batch: rowStarts.count, seqLen: seqLen)
}

/// Checks that a saved state fits a loader with `batchesPerEpoch` batches.
func checkState(_ state: LoaderState, batchesPerEpoch: Int) throws {
    guard state.epoch >= 0, state.position >= 0, state.position < batchesPerEpoch else {
        throw DataError(.invalidArgument,
                        "saved loader state (epoch \(state.epoch), position \(state.position)) does not fit this data: "
                            + "an epoch has \(batchesPerEpoch) batches; resume with the same data, batch size, "
                            + "sequence length and world size")
    }
}
