import FactorlabRandom
/// Batches of windows in a seeded random order, a new order every epoch.
///
/// The stream is cut into W = ⌊(count − 1) / T⌋ windows of T+1 tokens at stride T (window w is
/// tokens w*T ..< w*T+T+1: inputs its first T, targets its last T), so every token is a target at
/// most once per epoch. Each epoch takes a permutation of 0..<W that depends only on (seed, epoch)
/// (SplitMix64 and Fisher–Yates, identical on every platform), and global batch g is windows
/// perm[g*N*B ..< (g+1)*N*B], where N is the world size.
///
/// Data parallel: rank r takes entries r*B ..< (r+1)*B of the global batch, so N ranks with batch B
/// see exactly what one process with batch N*B sees, step by step. An epoch has ⌊W / (N*B)⌋
/// steps; when W is not a multiple of N*B the last W mod N*B windows of the permutation are not
/// used that epoch (different ones each epoch).
public struct ShuffledLoader: BatchLoader {
    public let tokens: TokenStream
    /// Rows per batch on this rank (B).
    public let batch: Int
    /// Tokens per row (T).
    public let seqLen: Int
    public let rank: Int
    public let worldSize: Int
    public private(set) var state: LoaderState
    /// This epoch's window order.
    private var order: [UInt32]

    /// Starts at epoch 0 with `seed`.
    public init(tokens: TokenStream, batch: Int, seqLen: Int, seed: UInt64, rank: Int = 0, worldSize: Int = 1) throws {
        try self.init(tokens: tokens, batch: batch, seqLen: seqLen, rank: rank, worldSize: worldSize,
                      state: LoaderState(epoch: 0, position: 0, seed: seed))
    }

    /// Resumes from a saved `state` (its seed included).
    ///
    /// - Throws: ``DataError`` `.splitTooSmall` if `tokens` has fewer than worldSize*B*T+1 tokens,
    ///   `.invalidArgument` for non-positive sizes, a rank outside 0..<worldSize, more than 2³² windows,
    ///   or a `state` whose position is not inside an epoch.
    public init(tokens: TokenStream, batch: Int, seqLen: Int, rank: Int = 0, worldSize: Int = 1, state: LoaderState) throws {
        try checkLoaderArguments(tokens: tokens, batch: batch, seqLen: seqLen, rank: rank, worldSize: worldSize)
        let windows = (tokens.count - 1) / seqLen
        guard windows <= Int(UInt32.max) else {
            throw DataError(.invalidArgument, "\(tokens.name) has \(windows) windows, more than 2^32; use a longer seqLen")
        }
        self.tokens = tokens
        self.batch = batch
        self.seqLen = seqLen
        self.rank = rank
        self.worldSize = worldSize
        self.state = state
        self.order = []
        try checkState(state, batchesPerEpoch: batchesPerEpoch)
        order = SplitMix64.permutation(count: windowCount, seed: state.seed, epoch: state.epoch)
    }

    /// The number of windows of T+1 tokens (stride T).
    public var windowCount: Int { (tokens.count - 1) / seqLen }

    public var tokensPerBatch: Int { batch * seqLen }

    public var batchesPerEpoch: Int { windowCount / (worldSize * batch) }

    /// The window order of `epoch` (a permutation of 0..<windowCount).
    public func windowOrder(epoch: Int) -> [Int] {
        SplitMix64.permutation(count: windowCount, seed: state.seed, epoch: epoch).map { Int($0) }
    }

    /// The windows (indices) of this rank's next batch.
    public var nextWindows: [Int] {
        let first = (state.position * worldSize + rank) * batch
        return order[first..<first + batch].map { Int($0) }
    }

    public mutating func next() -> Batch {
        let result = makeBatch(from: tokens, rowStarts: nextWindows.map { $0 * seqLen }, seqLen: seqLen)
        state.position += 1
        if state.position == batchesPerEpoch {
            state.epoch += 1
            state.position = 0
            order = SplitMix64.permutation(count: windowCount, seed: state.seed, epoch: state.epoch)
        }
        return result
    }
}
