import FactorlabRandom
/// How a corpus is divided into a training and a validation split.
///
/// Every document is preceded by `<|endoftext|>` (see ``TokenCorpus``), so a split by document
/// gives each split a stream of whole documents each starting with the separator. The tail split
/// cuts the single token stream wherever the fraction falls, possibly inside a document (as
/// nanoGPT's `shakespeare_char/prepare.py` does with its 90/10 cut).
public enum CorpusSplit: Codable, Equatable, Sendable {
    /// The last `fraction` of the token stream (rounded to the nearest token) goes to validation.
    /// `fraction` is in [0, 1); 0 leaves the validation split empty.
    case tail(fraction: Double)
    /// Documents 0-based `k-1`, `2k-1`, … (every k-th document, k ≥ 2) go to validation.
    case everyKthDocument(k: Int)
    /// Each document goes to validation with probability `fraction`, decided by hashing
    /// (seed, document index): deterministic, and a document keeps its side when others are added after it.
    case documentFraction(fraction: Double, seed: UInt64)

    /// The default: the last 10% of the tokens for validation.
    public static let `default` = CorpusSplit.tail(fraction: 0.1)

    /// Whether document `index` (0-based, counting documents that have any text) goes to validation;
    /// `nil` for the tail split, which does not split by document.
    func isValidation(document index: Int) -> Bool? {
        switch self {
        case .tail:
            return nil
        case let .everyKthDocument(k):
            return (index + 1) % k == 0
        case let .documentFraction(fraction, seed):
            var generator = SplitMix64(seed: seed, epoch: index)
            return generator.nextUnit() < fraction
        }
    }

    func validate() throws {
        switch self {
        case let .tail(fraction), let .documentFraction(fraction, _):
            guard fraction >= 0, fraction < 1 else {
                throw DataError(.invalidArgument, "the validation fraction must be in [0, 1), got \(fraction)")
            }
        case let .everyKthDocument(k):
            guard k >= 2 else {
                throw DataError(.invalidArgument, "everyKthDocument needs k ≥ 2 (k = 1 would leave no training data), got \(k)")
            }
        }
    }
}
