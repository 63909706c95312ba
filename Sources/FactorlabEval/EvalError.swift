/// A problem with an evaluation's data or settings: the file and line when one is involved, and
/// what is wrong (`lambada.jsonl:3: no string field 'text'`).
public struct EvalError: Error, CustomStringConvertible, Equatable {
    public let file: String?
    public let line: Int?
    public let message: String

    public init(file: String? = nil, line: Int? = nil, _ message: String) {
        self.file = file
        self.line = line
        self.message = message
    }

    public var description: String {
        guard let file else { return message }
        return line.map { "\(file):\($0): \(message)" } ?? "\(file): \(message)"
    }
}
