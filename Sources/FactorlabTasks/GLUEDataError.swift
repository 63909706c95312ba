/// A problem in a GLUE TSV file, naming the file, the 1-based line and what is wrong, e.g.
/// `/data/glue/CoLA/train.tsv line 3: expected 4 tab-separated columns (source, label, original
/// mark, sentence), found 3`.
public struct GLUEDataError: Error, Equatable, CustomStringConvertible {
    /// What kind of problem it is, for callers that branch on it.
    public enum Kind: String, Sendable {
        case missingFile, unreadableFile, invalidUTF8, missingHeader, missingColumn
        case columnCount, unknownLabel, badScore
    }

    public let kind: Kind
    /// The file's path as it was opened (or the name given to ``GLUEDataset/init(task:split:contents:fileName:)``).
    public let file: String
    /// 1-based line number in the file; nil for problems with the whole file.
    public let line: Int?
    public let problem: String

    public init(_ kind: Kind, file: String, line: Int?, _ problem: String) {
        self.kind = kind
        self.file = file
        self.line = line
        self.problem = problem
    }

    public var description: String {
        if let line { return "\(file) line \(line): \(problem)" }
        return "\(file): \(problem)"
    }
}
