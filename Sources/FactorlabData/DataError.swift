/// An error raised while reading, tokenizing or batching training data: names the file (and line
/// or byte offset) and the problem, and where possible what to do about it.
///
/// The description reads like a compiler diagnostic, e.g.
/// `data/train.jsonl:12: no field "text" in the JSON object (fields: "body", "id")` or
/// `data/train.bin: byte offset 2468: token id 50300 is not below the vocabulary size 50257 ...`.
public struct DataError: Error, CustomStringConvertible, Equatable, Sendable {
    /// What kind of problem this is, for callers that want to branch on it.
    public enum Kind: String, Sendable {
        /// A path does not exist, is not a regular file or folder, or cannot be read.
        case fileUnreadable
        /// A line of a JSONL file (or a `.json` file) is not valid JSON, or not a JSON object.
        case invalidJSON
        /// A JSON object lacks the text field, or the field is not a string.
        case missingField
        /// A token file's length is not a whole number of 2-byte token ids, or its header is wrong.
        case malformedTokenFile
        /// A token id is not below the vocabulary size.
        case tokenOutOfRange
        /// The source has no files, or its files hold no text.
        case emptyCorpus
        /// A split holds fewer tokens than one batch needs.
        case splitTooSmall
        /// The tokenizer's vocabulary does not fit the uint16 token format, or it has no `<|endoftext|>`.
        case unsupportedTokenizer
        /// An argument is out of range (a batch size of 0, a fraction outside [0, 1), a saved state
        /// that does not fit the loader).
        case invalidArgument
        /// Writing a token file or meta.json failed.
        case writeFailed
    }

    /// What kind of problem this is.
    public let kind: Kind
    /// The file involved, if any.
    public let file: String?
    /// The 1-based line in `file`, if the problem is on one line (JSONL).
    public let line: Int?
    /// The byte offset in `file`, if the problem is at one place in a binary file.
    public let offset: Int?
    /// What was wrong and, where possible, what to do about it.
    public let message: String

    public init(_ kind: Kind, file: String? = nil, line: Int? = nil, offset: Int? = nil, _ message: String) {
        self.kind = kind
        self.file = file
        self.line = line
        self.offset = offset
        self.message = message
    }

    public var description: String {
        var prefix = ""
        if let file { prefix += file + ":" }
        if let line { prefix += "\(line):" }
        if let offset { prefix += (prefix.isEmpty ? "" : " ") + "byte offset \(offset):" }
        return prefix.isEmpty ? message : prefix + " " + message
    }
}
