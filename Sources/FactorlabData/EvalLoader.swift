/// The batches for a validation loss: the split read once in order, in the sequential loader's
/// layout (batch i = the B*T+1 tokens from i*B*T, inputs and targets shifted by one), so every
/// target token used is predicted exactly once, each with up to T tokens of context inside its row.
///
/// Tokens after the last whole batch are not used (up to N*B*T of them). With `maxBatches` only
/// the first batches are taken (a cheap estimate during training, as llm.c's `val_max_steps`).
/// Data parallel: rank r gets its rows of each global batch, as in ``SequentialLoader``; average
/// the loss over ranks.
///
/// ```swift
/// for batch in try EvalLoader(tokens: corpus.validation, batch: 8, seqLen: 256, maxBatches: 20) { … }
/// ```
public struct EvalLoader: Sequence, Sendable {
    private let loader: SequentialLoader
    /// Batches this rank yields.
    public let count: Int

    /// - Throws: ``DataError`` `.splitTooSmall` if `tokens` cannot fill one batch.
    public init(tokens: TokenStream, batch: Int, seqLen: Int, maxBatches: Int? = nil, rank: Int = 0, worldSize: Int = 1) throws {
        loader = try SequentialLoader(tokens: tokens, batch: batch, seqLen: seqLen, rank: rank, worldSize: worldSize)
        count = Swift.min(loader.batchesPerEpoch, Swift.max(0, maxBatches ?? Int.max))
    }

    public struct Iterator: IteratorProtocol {
        fileprivate let loader: SequentialLoader
        fileprivate let count: Int
        fileprivate var position = 0

        public mutating func next() -> Batch? {
            guard position < count else { return nil }
            defer { position += 1 }
            return loader.batch(at: position)
        }
    }

    public func makeIterator() -> Iterator { Iterator(loader: loader, count: count) }

    public var underestimatedCount: Int { count }
}
