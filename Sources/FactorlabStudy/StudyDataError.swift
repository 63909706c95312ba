/// A problem in a run's records, naming the file, the 1-based line (for `metrics.jsonl`) and the key, e.g.
/// `Checkpoints/dense-4L-128d/metrics.jsonl line 7 key "val_loss": expected a number, found string "nan"`.
public struct StudyDataError: Error, Equatable, CustomStringConvertible {
    /// What kind of problem it is, for callers that branch on it.
    public enum Kind: String, Sendable {
        case missingFile, unreadableFile, invalidJSON, missingKey, wrongType, invalidValue, noRuns
    }

    public let kind: Kind
    /// The file's path as it was opened.
    public let file: String
    /// 1-based line number (metrics.jsonl); nil for whole-file problems and single-object files.
    public let line: Int?
    /// The key, with its parents for nested objects (`model.n_embd`); nil when no key is involved.
    public let key: String?
    public let problem: String

    public init(_ kind: Kind, file: String, line: Int? = nil, key: String? = nil, _ problem: String) {
        self.kind = kind
        self.file = file
        self.line = line
        self.key = key
        self.problem = problem
    }

    public var description: String {
        var text = file
        if let line { text += " line \(line)" }
        if let key { text += " key \"\(key)\"" }
        return text + ": " + problem
    }
}

extension StudyDataError {
    /// A record's decoding problem, in `file` (at `line`).
    init(_ e: RecordError, file: String, line: Int?) {
        let kind: Kind
        switch e.kind {
        case .invalidJSON: kind = .invalidJSON
        case .missingKey: kind = .missingKey
        case .wrongType: kind = .wrongType
        case .invalidValue: kind = .invalidValue
        }
        self.init(kind, file: file, line: line, key: e.key, e.problem)
    }
}
