import Foundation
import XCTest
@testable import FactorlabTasks

/// Against the Python port of evaluate-v1.0.py in Tools/reference/make_task_metric_fixtures.py.
final class CoQAEvaluatorTests: XCTestCase {
    let tolerance = 1e-12

    func testNormalizationAndTokens() throws {
        let cases = try XCTUnwrap(Fixtures.section("coqa")["normalize"] as? [[String: Any]])
        XCTAssertEqual(cases.count, 11)
        for c in cases {
            let input = try XCTUnwrap(c["input"] as? String)
            XCTAssertEqual(CoQAEvaluator.normalizeAnswer(input), c["normalized"] as? String, input)
            XCTAssertEqual(CoQAEvaluator.tokens(input), c["tokens"] as? [String], input)
        }
        XCTAssertEqual(CoQAEvaluator.normalizeAnswer("The Ocean!"), "ocean")
    }

    func testExactMatchAndF1() throws {
        let cases = try XCTUnwrap(Fixtures.section("coqa")["pairs"] as? [[String: Any]])
        XCTAssertEqual(cases.count, 10)
        for c in cases {
            let gold = try XCTUnwrap(c["gold"] as? String), prediction = try XCTUnwrap(c["prediction"] as? String)
            XCTAssertEqual(CoQAEvaluator.exactMatch(gold: gold, prediction: prediction), (c["em"] as? NSNumber)?.doubleValue)
            XCTAssertEqual(CoQAEvaluator.f1(gold: gold, prediction: prediction), try XCTUnwrap(c["f1"] as? Double),
                           accuracy: tolerance, "\(gold) / \(prediction)")
        }
        // "the the cat" vs "cat cat": 1 shared token of 1 gold, 2 predicted: F1 = 2/3.
        XCTAssertEqual(CoQAEvaluator.f1(gold: "the the cat", prediction: "cat cat"), 2.0 / 3.0, accuracy: 1e-15)
    }

    func testLeaveOneOutTurnScores() throws {
        let cases = try XCTUnwrap(Fixtures.section("coqa")["turns"] as? [[String: Any]])
        for c in cases {
            let gold = try XCTUnwrap(c["gold"] as? [String]), prediction = try XCTUnwrap(c["prediction"] as? String)
            let score = CoQAEvaluator.turnScore(goldAnswers: gold, prediction: prediction)
            XCTAssertEqual(score.em, try XCTUnwrap(c["em"] as? Double), accuracy: tolerance, prediction)
            XCTAssertEqual(score.f1, try XCTUnwrap(c["f1"] as? Double), accuracy: tolerance, prediction)
        }
        // "unknown" against [yes, Yes, yes..., unknown]: only leaving out gold 1-3 keeps "unknown" available: EM 3/4.
        XCTAssertEqual(CoQAEvaluator.turnScore(goldAnswers: ["yes", "Yes", "yes, they looked up", "unknown"],
                                               prediction: "unknown").em, 0.75)
    }

    func predictions() throws -> [CoQAPrediction] {
        try XCTUnwrap(Fixtures.section("coqa")["predictions"] as? [[String: Any]]).map {
            CoQAPrediction(id: $0["id"] as! String, turnID: ($0["turn_id"] as! NSNumber).intValue, answer: $0["answer"] as! String)
        }
    }

    func testFullEvaluationWithBreakdown() throws {
        let reference = try Fixtures.section("coqa")
        let stories = try CoQADataset.load(Fixtures.url("coqa_dev.json"))
        let result = try CoQAEvaluator.evaluate(stories: stories, predictions: predictions())

        let turnScores = try XCTUnwrap(reference["turn_scores"] as? [[String: Any]])
        XCTAssertEqual(result.turnScores.count, turnScores.count)
        XCTAssertEqual(turnScores.count, 12)
        for t in turnScores {
            let key = CoQATurnKey(storyID: t["id"] as! String, turnID: (t["turn_id"] as! NSNumber).intValue)
            let score = try XCTUnwrap(result.turnScores[key], "\(key)")
            XCTAssertEqual(score.em, t["em"] as! Double, accuracy: tolerance, "\(key)")
            XCTAssertEqual(score.f1, t["f1"] as! Double, accuracy: tolerance, "\(key)")
        }
        XCTAssertEqual(result.missingPredictions, [CoQATurnKey(storyID: "3zotghdk5ibi9cex97fepx7jetpso7", turnID: 3)])

        let unrounded = try XCTUnwrap(reference["report_unrounded"] as? [String: [String: Any]])
        let rounded = try XCTUnwrap(reference["report"] as? [String: [String: Any]])
        XCTAssertEqual(Set(unrounded.keys), Set(CoQAEvaluation.reportKeys))
        for key in CoQAEvaluation.reportKeys {
            let mine = try XCTUnwrap(result.scores[key], key)
            XCTAssertEqual(mine.em, unrounded[key]!["em"] as! Double, accuracy: tolerance, key)
            XCTAssertEqual(mine.f1, unrounded[key]!["f1"] as! Double, accuracy: tolerance, key)
            XCTAssertEqual(mine.turns, (unrounded[key]!["turns"] as! NSNumber).intValue, key)
            XCTAssertEqual(mine.rounded.em, (rounded[key]!["em"] as! NSNumber).doubleValue, key)
            XCTAssertEqual(mine.rounded.f1, (rounded[key]!["f1"] as! NSNumber).doubleValue, key)
        }
        XCTAssertEqual(result.scores["in_domain"]?.turns, 9)
        XCTAssertEqual(result.scores["out_domain"]?.turns, 4)
        XCTAssertEqual(result.scores["overall"]?.turns, 13)
        XCTAssertEqual(result.officialJSON(), reference["report_json"] as? String)
    }

    func testPythonRounding() {
        XCTAssertEqual(CoQAScore.roundOneDecimal(43.75), 43.8)   // 43.75 is exact: tie to even
        XCTAssertEqual(CoQAScore.roundOneDecimal(0.25), 0.2)     // exact tie: to even
        XCTAssertEqual(CoQAScore.roundOneDecimal(0.35), 0.3)     // 0.34999999999999997780 in binary
        XCTAssertEqual(CoQAScore.roundOneDecimal(0.45), 0.5)     // 0.45000000000000001110
        XCTAssertEqual(CoQAScore.roundOneDecimal(0.05), 0.1)     // 0.05000000000000000277
    }

    func testUnknownSourceAndDuplicateTurns() throws {
        var stories = try CoQADataset.load(Fixtures.url("coqa_dev.json"))
        stories[2].source = "blogs"
        assertThrows(CoQAEvaluationError.self,
                     "story \"3tpz7apl9fqh1g0fvr7dl3z9gwl3om\" has source \"blogs\"; the official evaluator knows only "
                     + "mctest, gutenberg, race, cnn, wikipedia, reddit, science") {
            _ = try CoQAEvaluator.evaluate(stories: stories, predictions: [CoQATurnKey: String]())
        }
        stories[2] = stories[0]
        assertThrows(CoQAEvaluationError.self,
                     "gold stories contain 3dr23u6we5exclen4th8uq9rb42tel turn 1 twice; story ids must be unique") {
            _ = try CoQAEvaluator.evaluate(stories: stories, predictions: [CoQATurnKey: String]())
        }
    }
}
