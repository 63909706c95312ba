import Foundation

/// One answer for the official evaluator's predictions file.
public struct CoQAPrediction: Equatable, Sendable {
    /// The story id.
    public var id: String
    public var turnID: Int
    public var answer: String

    public init(id: String, turnID: Int, answer: String) {
        self.id = id
        self.turnID = turnID
        self.answer = answer
    }
}

/// The predictions file `evaluate-v1.0.py --pred-file` reads: a JSON array of
/// `{"id": story id, "turn_id": n, "answer": "..."}`.
public enum CoQAPredictionsFile {
    /// The file text: one object per line, keys in the order id, turn_id, answer, UTF-8 kept as is.
    public static func text(_ predictions: [CoQAPrediction]) -> String {
        guard !predictions.isEmpty else { return "[]\n" }
        let rows = predictions.map { "  {\"id\": \(jsonString($0.id)), \"turn_id\": \($0.turnID), \"answer\": \(jsonString($0.answer))}" }
        return "[\n" + rows.joined(separator: ",\n") + "\n]\n"
    }

    /// Writes ``text(_:)`` to `url` atomically.
    public static func write(_ predictions: [CoQAPrediction], to url: URL) throws {
        try Data(text(predictions).utf8).write(to: url, options: .atomic)
    }

    /// Reads a predictions file (any JSON layout of the same array).
    public static func read(_ url: URL) throws -> [CoQAPrediction] {
        let root = try JSONSerialization.jsonObject(with: Data(contentsOf: url))
        guard let list = root as? [[String: Any]] else {
            throw CoQADataError(file: url.path, "expected a JSON array of {\"id\", \"turn_id\", \"answer\"} objects")
        }
        return try list.enumerated().map { i, item in
            guard let id = item["id"] as? String, let turn = item["turn_id"] as? NSNumber, let answer = item["answer"] as? String else {
                throw CoQADataError(file: url.path, "entry \(i) needs a string \"id\", an integer \"turn_id\" and a string \"answer\"")
            }
            return CoQAPrediction(id: id, turnID: turn.intValue, answer: answer)
        }
    }

    /// A JSON string literal: quotes, backslashes and control characters escaped.
    static func jsonString(_ s: String) -> String {
        var out = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where c.value < 0x20: out += String(format: "\\u%04x", c.value)
            default: out.unicodeScalars.append(c)
            }
        }
        return out + "\""
    }
}
