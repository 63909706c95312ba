/// Batches in stream order, as llm.c's `DataLoader`: batch i is the chunk of B*T+1 consecutive
/// tokens starting at token i*B*T; its inputs are the first B*T tokens and its targets the same
/// tokens shifted by one, viewed as B rows of T.
///
/// Wrap: an epoch has ⌊(count − 1) / (B*T)⌋ batches, the last one whose chunk fits entirely; the
/// batch after it is batch 0 again (epoch + 1). The up to B*T trailing tokens that do not fill a
/// chunk are never used, every epoch (llm.c does the same, moving on to the next shard).
///
/// Data parallel: with `worldSize` N, global batch g is the chunk of N*B*T+1 tokens at g*N*B*T,
/// and rank r takes its rows r*B..<(r+1)*B, i.e. tokens from (g*N + r)*B*T: batch g*N + r of a
/// single process with batch B. The N ranks together see exactly what one process with batch N*B
/// sees, step by step and in the same order; an epoch has ⌊(count − 1) / (N*B*T)⌋ steps.
///
/// ```swift
/// var loader = try SequentialLoader(tokens: corpus.train, batch: 4, seqLen: 64)
/// let batch = loader.next()          // inputs tokens 0..<256, targets 1...256
/// let saved = loader.state           // store with the checkpoint
/// var resumed = try SequentialLoader(tokens: corpus.train, batch: 4, seqLen: 64, state: saved)
/// ```
public struct SequentialLoader: BatchLoader {
    public let tokens: TokenStream
    /// Rows per batch on this rank (B).
    public let batch: Int
    /// Tokens per row (T).
    public let seqLen: Int
    public let rank: Int
    public let worldSize: Int
    public private(set) var state: LoaderState

    /// - Throws: ``DataError`` `.splitTooSmall` if `tokens` has fewer than worldSize*B*T+1 tokens,
    ///   `.invalidArgument` for non-positive sizes, a rank outside 0..<worldSize, or a `state`
    ///   whose position is not inside an epoch.
    public init(tokens: TokenStream, batch: Int, seqLen: Int, rank: Int = 0, worldSize: Int = 1,
                state: LoaderState = LoaderState()) throws {
        try checkLoaderArguments(tokens: tokens, batch: batch, seqLen: seqLen, rank: rank, worldSize: worldSize)
        self.tokens = tokens
        self.batch = batch
        self.seqLen = seqLen
        self.rank = rank
        self.worldSize = worldSize
        self.state = state
        try checkState(state, batchesPerEpoch: batchesPerEpoch)
    }

    public var tokensPerBatch: Int { batch * seqLen }

    public var batchesPerEpoch: Int { (tokens.count - 1) / (worldSize * batch * seqLen) }

    /// This rank's part of global batch `position` of an epoch (every epoch is the same).
    public func batch(at position: Int) -> Batch {
        let start = (position * worldSize + rank) * batch * seqLen
        // One chunk of B*T+1 tokens = B rows of T+1 overlapping by one token.
        return makeBatch(from: tokens, rowStarts: (0..<batch).map { start + $0 * seqLen }, seqLen: seqLen)
    }

    public mutating func next() -> Batch {
        let result = batch(at: state.position)
        state.position += 1
        if state.position == batchesPerEpoch {
            state.epoch += 1
            state.position = 0
        }
        return result
    }
}
