import Foundation
import XCTest
@testable import FactorlabTasks

final class CoQADatasetTests: XCTestCase {
    func testLoadsTheDevStyleFixture() throws {
        let stories = try CoQADataset.load(Fixtures.url("coqa_dev.json"))
        XCTAssertEqual(stories.map(\.id), ["3dr23u6we5exclen4th8uq9rb42tel", "3zotghdk5ibi9cex97fepx7jetpso7",
                                           "3tpz7apl9fqh1g0fvr7dl3z9gwl3om"])
        XCTAssertEqual(stories.map(\.source), ["mctest", "gutenberg", "reddit"])
        XCTAssertEqual(stories.map(\.turns.count), [5, 4, 4])
        XCTAssertEqual(stories[0].filename, "mc160.test.41")
        XCTAssertTrue(stories[0].story.hasPrefix("Once there was a beautiful fish named Asta."))
        XCTAssertTrue(stories[2].story.contains("café in Vienna"))

        let turn = stories[0].turns[1]
        XCTAssertEqual(turn.turnID, 2)
        XCTAssertEqual(turn.question, "Where did he live?")
        XCTAssertEqual(turn.answer, CoQAAnswer(inputText: "the ocean", spanStart: 58, spanEnd: 70, spanText: "in the ocean"))
        XCTAssertEqual(turn.additionalAnswers.map(\.inputText), ["in the ocean", "ocean", "The ocean."])
        XCTAssertEqual(turn.goldAnswers, ["the ocean", "in the ocean", "ocean", "The ocean."])
        XCTAssertEqual(stories[1].turns[1].additionalAnswers[0].inputText, "\"I reckon so,\"")
        XCTAssertEqual(stories[1].turns.map(\.turnID), [1, 2, 3, 4])
    }

    /// A story JSON with `questions`/`answers` given as (turn_id, text) pairs.
    func json(questions: [Int], answers: [Int], extra: [Int]? = nil) -> Data {
        let q = questions.map { "{\"input_text\": \"q\($0)?\", \"turn_id\": \($0)}" }.joined(separator: ", ")
        let a = answers.map { "{\"input_text\": \"a\($0)\", \"turn_id\": \($0), \"span_start\": 0, \"span_end\": 1, \"span_text\": \"x\"}" }
            .joined(separator: ", ")
        let e = extra.map { list in
            ", \"additional_answers\": {\"0\": [" + list.map { "{\"input_text\": \"b\($0)\", \"turn_id\": \($0)}" }
                .joined(separator: ", ") + "]}"
        } ?? ""
        return Data("""
            {"version": "1.0", "data": [{"source": "race", "id": "s1", "filename": "f", "story": "A story.",
             "questions": [\(q)], "answers": [\(a)]\(e)}]}
            """.utf8)
    }

    func testGoodInMemoryStoryWithoutAdditionalAnswers() throws {
        let stories = try CoQADataset.parse(json(questions: [1, 2], answers: [1, 2]), fileName: "train.json")
        XCTAssertEqual(stories[0].turns.map(\.goldAnswers), [["a1"], ["a2"]])
        XCTAssertEqual(stories[0].turns[0].answer.spanText, "x")
    }

    func testMisalignedTurnsAreErrorsNamingStoryAndTurn() {
        assertThrows(CoQADataError.self, "d.json story \"s1\" turn 2: no answer in answers (1 answers for more questions)") {
            _ = try CoQADataset.parse(self.json(questions: [1, 2], answers: [1]), fileName: "d.json")
        }
        assertThrows(CoQADataError.self, "d.json story \"s1\" turn 2: question 2 has turn_id 3; turn ids must run 1, 2, 3, ...") {
            _ = try CoQADataset.parse(self.json(questions: [1, 3], answers: [1, 3]), fileName: "d.json")
        }
        assertThrows(CoQADataError.self, "d.json story \"s1\" turn 2: entry 1 of answers has turn_id 3, expected 2") {
            _ = try CoQADataset.parse(self.json(questions: [1, 2], answers: [1, 3]), fileName: "d.json")
        }
        assertThrows(CoQADataError.self,
                     "d.json story \"s1\" turn 2: entry 1 of additional_answers \"0\" has turn_id 1, expected 2") {
            _ = try CoQADataset.parse(self.json(questions: [1, 2], answers: [1, 2], extra: [1, 1]), fileName: "d.json")
        }
        assertThrows(CoQADataError.self, "d.json story \"s1\" turn 3: answers has 3 entries for 2 questions") {
            _ = try CoQADataset.parse(self.json(questions: [1, 2], answers: [1, 2, 3]), fileName: "d.json")
        }
        assertThrows(CoQADataError.self, "d.json: expected an object with a \"data\" array of stories") {
            _ = try CoQADataset.parse(Data("[1]".utf8), fileName: "d.json")
        }
        let missing = FileManager.default.temporaryDirectory.appendingPathComponent("no-such-coqa.json")
        assertThrows(CoQADataError.self,
                     "\(missing.path): file not found; expected the official CoQA JSON (e.g. coqa-dev-v1.0.json)") {
            _ = try CoQADataset.load(missing)
        }
    }

    func testPredictionsFileRoundTrip() throws {
        let predictions = [CoQAPrediction(id: "s1", turnID: 1, answer: "the \"ocean\""),
                           CoQAPrediction(id: "s1", turnID: 2, answer: "café\\n\tx")]
        let text = CoQAPredictionsFile.text(predictions)
        XCTAssertEqual(text, """
            [
              {"id": "s1", "turn_id": 1, "answer": "the \\"ocean\\""},
              {"id": "s1", "turn_id": 2, "answer": "café\\\\n\\tx"}
            ]

            """)
        XCTAssertEqual(CoQAPredictionsFile.text([]), "[]\n")
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("coqa-pred-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: url) }
        try CoQAPredictionsFile.write(predictions, to: url)
        XCTAssertEqual(try CoQAPredictionsFile.read(url), predictions)
    }
}
