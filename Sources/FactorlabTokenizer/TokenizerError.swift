/// An error raised while loading, decoding or training a tokenizer: names the file (and line) and the problem.
///
/// The description reads like a compiler diagnostic, e.g.
/// `merges.txt:12: expected two tokens separated by one space, found 3 ("a b c")`.
public struct TokenizerError: Error, CustomStringConvertible, Equatable, Sendable {
    /// What kind of problem this is, for callers that want to branch on it.
    public enum Kind: String, Sendable {
        /// A file could not be read (missing, unreadable, or a folder without the expected files).
        case fileUnreadable
        /// vocab.json is not a JSON object mapping token strings to integer ids.
        case malformedVocabulary
        /// A line of merges.txt is not two tokens separated by one space.
        case malformedMerge
        /// A merge names a token (or forms a merged token) that the vocabulary does not have.
        case unknownToken
        /// A token id passed to `decode` is negative, too large, or has no token.
        case idOutOfRange
        /// A training or writing argument is unusable (e.g. a vocabulary size below 256).
        case invalidArgument
        /// Writing vocab.json or merges.txt failed.
        case writeFailed
    }

    /// What kind of problem this is.
    public let kind: Kind
    /// The file involved (its last path component is enough to find it), if any.
    public let file: String?
    /// The 1-based line in `file`, if the problem is on one line.
    public let line: Int?
    /// What was wrong and, where possible, what to do about it.
    public let message: String

    public init(_ kind: Kind, file: String? = nil, line: Int? = nil, _ message: String) {
        self.kind = kind
        self.file = file
        self.line = line
        self.message = message
    }

    public var description: String {
        switch (file, line) {
        case let (file?, line?): return "\(file):\(line): \(message)"
        case let (file?, nil): return "\(file): \(message)"
        default: return message
        }
    }
}
