import Foundation

/// A CoQA answer: the free-form `input_text` (the target a generative model learns and is scored
/// against) and the rationale span in the story it was drawn from.
public struct CoQAAnswer: Equatable, Sendable {
    public var inputText: String
    /// Character offsets of the rationale in the story (-1 for "unknown" answers); nil if absent.
    public var spanStart: Int?
    public var spanEnd: Int?
    public var spanText: String?

    public init(inputText: String, spanStart: Int? = nil, spanEnd: Int? = nil, spanText: String? = nil) {
        self.inputText = inputText
        self.spanStart = spanStart
        self.spanEnd = spanEnd
        self.spanText = spanText
    }
}

/// One question of a conversation with its answer and, in the dev set, the other annotators' answers.
public struct CoQATurn: Equatable, Sendable {
    /// 1-based turn number (`turn_id`).
    public var turnID: Int
    public var question: String
    public var answer: CoQAAnswer
    /// The answers of `additional_answers` "0", "1", "2" (in the file's key order) for this turn;
    /// empty in the training set.
    public var additionalAnswers: [CoQAAnswer]

    /// Every gold answer text, the main answer first: what the official evaluator scores against.
    public var goldAnswers: [String] { [answer.inputText] + additionalAnswers.map(\.inputText) }

    public init(turnID: Int, question: String, answer: CoQAAnswer, additionalAnswers: [CoQAAnswer] = []) {
        self.turnID = turnID
        self.question = question
        self.answer = answer
        self.additionalAnswers = additionalAnswers
    }
}

/// One CoQA passage with its conversation.
public struct CoQAStory: Equatable, Sendable {
    public var id: String
    /// The source collection as written in the file: mctest, gutenberg, race, cnn, wikipedia
    /// (in-domain), reddit, science (out-of-domain).
    public var source: String
    public var filename: String
    public var story: String
    public var turns: [CoQATurn]

    public init(id: String, source: String, filename: String, story: String, turns: [CoQATurn]) {
        self.id = id
        self.source = source
        self.filename = filename
        self.story = story
        self.turns = turns
    }
}

/// A malformed CoQA file: bad JSON, a missing field, or a conversation whose turns do not line
/// up, naming the file, the story id and the turn where known.
public struct CoQADataError: Error, Equatable, CustomStringConvertible {
    public let file: String
    public let storyID: String?
    public let turn: Int?
    public let problem: String

    public init(file: String, storyID: String? = nil, turn: Int? = nil, _ problem: String) {
        self.file = file
        self.storyID = storyID
        self.turn = turn
        self.problem = problem
    }

    public var description: String {
        var place = file
        if let storyID { place += " story \"\(storyID)\"" }
        if let turn { place += " turn \(turn)" }
        return "\(place): \(problem)"
    }
}

/// Reads the official CoQA JSON (`coqa-train-v1.0.json`, `coqa-dev-v1.0.json`).
///
/// Strict about alignment, unlike the official evaluator (which only warns): the i-th question
/// must have `turn_id` i+1, and `answers` and every list in `additional_answers` must hold
/// exactly one answer per question with the same `turn_id`. Any mismatch, or a missing answer,
/// throws a ``CoQADataError`` naming the story and turn; nothing is skipped silently.
public enum CoQADataset {
    /// Loads the stories of a CoQA file.
    public static func load(_ file: URL) throws -> [CoQAStory] {
        guard FileManager.default.fileExists(atPath: file.path) else {
            throw CoQADataError(file: file.path, "file not found; expected the official CoQA JSON (e.g. coqa-dev-v1.0.json)")
        }
        return try parse(Data(contentsOf: file), fileName: file.path)
    }

    /// Parses CoQA JSON already in memory; `fileName` is used in error messages.
    public static func parse(_ data: Data, fileName: String) throws -> [CoQAStory] {
        let root: Any
        do { root = try JSONSerialization.jsonObject(with: data) } catch {
            throw CoQADataError(file: fileName, "not valid JSON: \(error.localizedDescription)")
        }
        guard let object = root as? [String: Any], let data = object["data"] as? [Any] else {
            throw CoQADataError(file: fileName, "expected an object with a \"data\" array of stories")
        }
        guard !data.isEmpty else { throw CoQADataError(file: fileName, "the \"data\" array holds no stories") }
        return try data.enumerated().map { index, item in
            try parseStory(item, index: index, file: fileName)
        }
    }

    private static func parseStory(_ item: Any, index: Int, file: String) throws -> CoQAStory {
        guard let story = item as? [String: Any] else {
            throw CoQADataError(file: file, "data[\(index)] is not an object")
        }
        guard let id = story["id"] as? String else { throw CoQADataError(file: file, "data[\(index)] has no string \"id\"") }
        func fail(_ turn: Int?, _ problem: String) -> CoQADataError {
            CoQADataError(file: file, storyID: id, turn: turn, problem)
        }
        guard let source = story["source"] as? String else { throw fail(nil, "no string \"source\"") }
        guard let text = story["story"] as? String else { throw fail(nil, "no string \"story\"") }
        guard let questions = story["questions"] as? [Any] else { throw fail(nil, "no \"questions\" array") }
        guard let answers = story["answers"] as? [Any] else { throw fail(nil, "no \"answers\" array") }

        // additional_answers: {"0": [...], "1": [...], ...}; JSONSerialization loses key order, so sort the keys.
        var additional: [(key: String, answers: [Any])] = []
        if let extra = story["additional_answers"] {
            guard let dict = extra as? [String: Any] else { throw fail(nil, "\"additional_answers\" is not an object") }
            for key in dict.keys.sorted(by: { ($0.count, $0) < ($1.count, $1) }) {
                guard let list = dict[key] as? [Any] else { throw fail(nil, "additional_answers \"\(key)\" is not an array") }
                additional.append((key, list))
            }
        }

        var turns: [CoQATurn] = []
        for (i, q) in questions.enumerated() {
            let expected = i + 1
            guard let question = q as? [String: Any], let questionText = question["input_text"] as? String,
                  let turnID = intValue(question["turn_id"]) else {
                throw fail(expected, "question \(expected) needs a string \"input_text\" and an integer \"turn_id\"")
            }
            guard turnID == expected else {
                throw fail(expected, "question \(expected) has turn_id \(turnID); turn ids must run 1, 2, 3, ...")
            }
            let answer = try parseAnswer(answers, i, list: "answers", turnID: turnID, fail: fail)
            let extra = try additional.map { try parseAnswer($0.answers, i, list: "additional_answers \"\($0.key)\"", turnID: turnID, fail: fail) }
            turns.append(CoQATurn(turnID: turnID, question: questionText, answer: answer, additionalAnswers: extra))
        }
        for (name, count) in [("answers", answers.count)] + additional.map({ ("additional_answers \"\($0.key)\"", $0.answers.count) })
            where count > questions.count {
            throw fail(questions.count + 1, "\(name) has \(count) entries for \(questions.count) questions")
        }
        return CoQAStory(id: id, source: source, filename: story["filename"] as? String ?? "", story: text, turns: turns)
    }

    private static func parseAnswer(_ list: [Any], _ i: Int, list name: String, turnID: Int,
                                    fail: (Int?, String) -> CoQADataError) throws -> CoQAAnswer {
        guard i < list.count else {
            throw fail(turnID, "no answer in \(name) (\(list.count) answers for more questions)")
        }
        guard let a = list[i] as? [String: Any], let text = a["input_text"] as? String else {
            throw fail(turnID, "entry \(i) of \(name) has no string \"input_text\"")
        }
        guard let answerTurn = intValue(a["turn_id"]) else {
            throw fail(turnID, "entry \(i) of \(name) has no integer \"turn_id\"")
        }
        guard answerTurn == turnID else {
            throw fail(turnID, "entry \(i) of \(name) has turn_id \(answerTurn), expected \(turnID)")
        }
        return CoQAAnswer(inputText: text, spanStart: intValue(a["span_start"]), spanEnd: intValue(a["span_end"]),
                          spanText: a["span_text"] as? String)
    }

    /// An integer from JSONSerialization's NSNumber (rejecting fractions).
    private static func intValue(_ value: Any?) -> Int? {
        guard let number = value as? NSNumber else { return nil }
        let d = number.doubleValue
        guard d == d.rounded(), abs(d) < 1e15 else { return nil }
        return number.intValue
    }
}
