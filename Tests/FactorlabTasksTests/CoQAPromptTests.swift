import XCTest
@testable import FactorlabTasks

/// Prompt layout and truncation, with whitespace-separated words as the "tokens".
final class CoQAPromptTests: XCTestCase {
    let words: (String) -> Int = { $0.split(whereSeparator: \.isWhitespace).count }
    let story = "one two three four five six seven eight"  // 8 words
    let history = [(question: "q1?", answer: "a1"), (question: "q2?", answer: "a2"), (question: "q3?", answer: "a3")]
    // Each history turn is 4 words ("Q: q1?" "A: a1"), the question 3 ("Q: q4?" "A:"), the target 1.

    func build(_ budget: Int, keep: Int = 2) throws -> CoQAPrompt {
        try CoQAPromptBuilder.build(story: story, history: history, question: "q4?", answer: "a4",
                                    tokenBudget: budget, keepRecentTurns: keep, count: words)
    }

    func testLayoutWithoutBudget() {
        let p = CoQAPromptBuilder.build(story: story, history: history, question: "q4?", answer: "a4")
        XCTAssertEqual(p.prompt, "one two three four five six seven eight\n\nQ: q1?\nA: a1\nQ: q2?\nA: a2\nQ: q3?\nA: a3\nQ: q4?\nA:")
        XCTAssertEqual(p.target, " a4\n")
        let inference = CoQAPromptBuilder.build(story: "S.", history: [], question: "Who?", answer: nil)
        XCTAssertEqual(inference.prompt, "S.\n\nQ: Who?\nA:")
        XCTAssertEqual(inference.target, "")
    }

    func testFitsWhole() throws {
        let p = try build(24)
        XCTAssertEqual(words(p.prompt) + words(p.target), 24)
        XCTAssertEqual([p.historyTurnsKept, p.historyTurnsDropped, p.storyCharactersDropped], [3, 0, 0])
    }

    func testDropsOldestHistoryFirst() throws {
        let p = try build(23)
        XCTAssertEqual(p.prompt, "one two three four five six seven eight\n\nQ: q2?\nA: a2\nQ: q3?\nA: a3\nQ: q4?\nA:")
        XCTAssertEqual([p.historyTurnsKept, p.historyTurnsDropped, p.storyCharactersDropped], [2, 1, 0])
    }

    func testThenCutsTheStoryFromTheStartKeepingRecentHistory() throws {
        let p = try build(19)  // 2 turns (8) + question (3) + target (1) leave 7 words of story
        XCTAssertEqual(p.prompt, "two three four five six seven eight\n\nQ: q2?\nA: a2\nQ: q3?\nA: a3\nQ: q4?\nA:")
        XCTAssertEqual([p.historyTurnsKept, p.historyTurnsDropped, p.storyCharactersDropped], [2, 1, 4])
        let q = try build(14)  // 2 words of story
        XCTAssertEqual(q.prompt, "seven eight\n\nQ: q2?\nA: a2\nQ: q3?\nA: a3\nQ: q4?\nA:")
        XCTAssertEqual(q.storyCharactersDropped, story.count - "seven eight".count)
        let r = try build(12)  // no story left
        XCTAssertEqual(r.prompt, "Q: q2?\nA: a2\nQ: q3?\nA: a3\nQ: q4?\nA:")
        XCTAssertEqual(r.storyCharactersDropped, story.count)
    }

    func testThenDropsTheRemainingHistory() throws {
        let p = try build(11)
        XCTAssertEqual(p.prompt, "Q: q3?\nA: a3\nQ: q4?\nA:")
        XCTAssertEqual([p.historyTurnsKept, p.historyTurnsDropped], [1, 2])
        let q = try build(4)
        XCTAssertEqual(q.prompt, "Q: q4?\nA:")
        XCTAssertEqual(q.historyTurnsKept, 0)
        assertThrows(CoQAPromptError.self,
                     "the question and answer alone take 4 tokens, over the budget of 3; raise the budget or skip this turn") {
            _ = try self.build(3)
        }
    }

    func testKeepRecentTurnsZeroDropsAllHistoryBeforeTheStory() throws {
        let p = try build(15, keep: 0)
        XCTAssertEqual(p.prompt, "one two three four five six seven eight\n\nQ: q4?\nA:")
        XCTAssertEqual([p.historyTurnsKept, p.historyTurnsDropped, p.storyCharactersDropped], [0, 3, 0])
        // The same budget with the default keeps the two most recent turns and cuts the story instead.
        let q = try build(15)
        XCTAssertEqual(q.prompt, "six seven eight\n\nQ: q2?\nA: a2\nQ: q3?\nA: a3\nQ: q4?\nA:")
        XCTAssertEqual([q.historyTurnsKept, q.historyTurnsDropped], [2, 1])
    }

    func testExamplesForAStoryUseGoldHistory() throws {
        let stories = try CoQADataset.load(Fixtures.url("coqa_dev.json"))
        let examples = try CoQAPromptBuilder.examples(for: stories[0], tokenBudget: 1000, count: words)
        XCTAssertEqual(examples.map(\.turnID), [1, 2, 3, 4, 5])
        XCTAssertEqual(examples[0].prompt.target, " Asta\n")
        XCTAssertTrue(examples[0].prompt.prompt.hasSuffix("friend Sharkie.\n\nQ: What was the fish named?\nA:"))
        XCTAssertTrue(examples[2].prompt.prompt.hasSuffix(
            "\n\nQ: What was the fish named?\nA: Asta\nQ: Where did he live?\nA: the ocean\nQ: Who was his friend?\nA:"))
        XCTAssertEqual(examples[4].prompt.historyTurnsKept, 4)
        // A tight budget: the last turn keeps its two most recent history turns and the story's end.
        let tight = try CoQAPromptBuilder.examples(for: stories[0], tokenBudget: 40, count: words)
        let last = tight[4].prompt
        XCTAssertEqual(last.historyTurnsKept, 2)
        XCTAssertGreaterThan(last.storyCharactersDropped, 0)
        XCTAssertTrue(last.prompt.contains("said Asta's friend Sharkie.\n\nQ: Who was his friend?"))
        XCTAssertLessThanOrEqual(words(last.prompt) + words(last.target), 40)
        XCTAssertEqual(words(last.prompt) + words(last.target), 40)
    }
}
