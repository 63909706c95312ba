/// How a CoQA prompt is laid out; the defaults give
///
///     {story}
///
///     Q: {question 1}
///     A: {answer 1}
///     Q: {question}
///     A:
///
/// with the target " {answer}\n" (a leading space, so a BPE tokenizer sees the answer's first
/// word as it appears in running text, and a newline the model learns to emit when done).
public struct CoQAPromptFormat: Sendable, Equatable {
    public var questionPrefix = "Q: "
    public var answerPrefix = "A:"
    /// Between the story and the conversation (left out when the story has been cut to nothing).
    public var storySeparator = "\n\n"
    /// After each answer, in the history and at the end of the target.
    public var answerTerminator = "\n"

    public init() {}

    func history(_ turns: ArraySlice<(question: String, answer: String)>) -> String {
        turns.map { "\(questionPrefix)\($0.question)\n\(answerPrefix) \($0.answer)\(answerTerminator)" }.joined()
    }

    func prompt(story: Substring, history: String, question: String) -> String {
        (story.isEmpty ? "" : story + storySeparator) + history + "\(questionPrefix)\(question)\n\(answerPrefix)"
    }

    func target(_ answer: String?) -> String { answer.map { " \($0)\(answerTerminator)" } ?? "" }
}

/// A prompt and its answer target, kept apart so a trainer can put the loss on target tokens only.
public struct CoQAPrompt: Equatable, Sendable {
    /// Story, conversation history and the question, ending in the answer prefix ("A:").
    public var prompt: String
    /// What the model should continue with (" answer\n"); "" when built without an answer.
    public var target: String
    /// History turns in the prompt (the most recent ones).
    public var historyTurnsKept: Int
    /// Oldest history turns left out to fit the budget.
    public var historyTurnsDropped: Int
    /// Characters cut from the start of the story to fit the budget (0 when it is whole).
    public var storyCharactersDropped: Int
}

/// A prompt for one turn of a story.
public struct CoQAPromptExample: Equatable, Sendable {
    public var storyID: String
    public var turnID: Int
    public var prompt: CoQAPrompt
}

/// The budget cannot be met even with no story and no history.
public struct CoQAPromptError: Error, Equatable, CustomStringConvertible {
    /// Tokens of the question and target alone.
    public let minimumTokens: Int
    public let budget: Int

    public var description: String {
        "the question and answer alone take \(minimumTokens) tokens, over the budget of \(budget); "
            + "raise the budget or skip this turn"
    }
}

/// Builds generative CoQA prompts from strings; tokenizer-agnostic (budgets are measured with a
/// caller-supplied `count` closure, e.g. `{ tokenizer.encode($0).count }`).
public enum CoQAPromptBuilder {
    /// The prompt with the whole story and history (no budget).
    public static func build(story: String, history: [(question: String, answer: String)], question: String,
                             answer: String?, format: CoQAPromptFormat = CoQAPromptFormat()) -> CoQAPrompt {
        CoQAPrompt(prompt: format.prompt(story: story[...], history: format.history(history[...]), question: question),
                   target: format.target(answer), historyTurnsKept: history.count, historyTurnsDropped: 0,
                   storyCharactersDropped: 0)
    }

    /// The prompt fitted to `tokenBudget` tokens for prompt plus target, counted as
    /// `count(prompt) + count(target)`. While it is too long, in this order:
    ///
    /// 1. drop history turns, oldest first, down to the `keepRecentTurns` most recent;
    /// 2. cut the story from the start at word boundaries (the least that fits, found by
    ///    bisection over word starts), keeping its end, which is nearest the conversation;
    /// 3. with the story gone, drop the remaining history turns, oldest first.
    ///
    /// - Throws: ``CoQAPromptError`` when even question and target alone do not fit.
    public static func build(story: String, history: [(question: String, answer: String)], question: String,
                             answer: String?, tokenBudget: Int, keepRecentTurns: Int = 2,
                             format: CoQAPromptFormat = CoQAPromptFormat(),
                             count: (String) -> Int) throws -> CoQAPrompt {
        let target = format.target(answer)
        let targetTokens = target.isEmpty ? 0 : count(target)
        func attempt(_ storyPart: Substring, _ dropped: Int) -> CoQAPrompt? {
            let prompt = format.prompt(story: storyPart, history: format.history(history[dropped...]), question: question)
            guard count(prompt) + targetTokens <= tokenBudget else { return nil }
            return CoQAPrompt(prompt: prompt, target: target, historyTurnsKept: history.count - dropped,
                              historyTurnsDropped: dropped,
                              storyCharactersDropped: story.distance(from: story.startIndex, to: storyPart.startIndex))
        }
        // 1. Whole story, history dropped oldest first down to keepRecentTurns.
        let keepFrom = max(0, history.count - max(0, keepRecentTurns))
        for dropped in 0...keepFrom {
            if let fitted = attempt(story[...], dropped) { return fitted }
        }
        // 2. Story cut from the start at word starts; suffixes[k] keeps the story from its k-th word.
        let starts = wordStarts(story)
        let suffixes = starts.map { story[$0...] } + [story[story.endIndex...]]
        var low = 1, high = suffixes.count - 1  // the least k in low...high that fits, if any
        if attempt(suffixes[high], keepFrom) != nil {
            while low < high {
                let mid = (low + high) / 2
                if attempt(suffixes[mid], keepFrom) != nil { high = mid } else { low = mid + 1 }
            }
            // Token counts are not exactly monotone in the cut; step forward until it truly fits.
            for k in high..<suffixes.count {
                if let fitted = attempt(suffixes[k], keepFrom) { return fitted }
            }
        }
        // 3. No story; drop the remaining history oldest first.
        for dropped in keepFrom...history.count {
            if let fitted = attempt(story[story.endIndex...], dropped) { return fitted }
        }
        let minimum = count(format.prompt(story: "", history: "", question: question)) + targetTokens
        throw CoQAPromptError(minimumTokens: minimum, budget: tokenBudget)
    }

    /// One prompt per turn of `story`, with the gold answers of the earlier turns as history and
    /// the turn's gold answer as target (teacher forcing, for training and for dev-set loss).
    public static func examples(for story: CoQAStory, tokenBudget: Int, keepRecentTurns: Int = 2,
                                format: CoQAPromptFormat = CoQAPromptFormat(),
                                count: (String) -> Int) throws -> [CoQAPromptExample] {
        let qa = story.turns.map { (question: $0.question, answer: $0.answer.inputText) }
        return try story.turns.enumerated().map { t, turn in
            let prompt = try build(story: story.story, history: Array(qa[..<t]), question: turn.question,
                                   answer: turn.answer.inputText, tokenBudget: tokenBudget,
                                   keepRecentTurns: keepRecentTurns, format: format, count: count)
            return CoQAPromptExample(storyID: story.id, turnID: turn.turnID, prompt: prompt)
        }
    }

    /// Indices where a word begins: the first non-whitespace character after whitespace, and the
    /// start if the story does not begin with whitespace.
    static func wordStarts(_ s: String) -> [String.Index] {
        var starts: [String.Index] = []
        var previousIsSpace = true
        for i in s.indices {
            let isSpace = s[i].isWhitespace
            if !isSpace && previousIsSpace { starts.append(i) }
            previousIsSpace = isSpace
        }
        return starts
    }
}
