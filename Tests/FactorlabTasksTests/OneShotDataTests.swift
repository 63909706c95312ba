import FactorlabTasks
import Foundation
import XCTest

/// The readers of the one-shot tasks on fixture files in the distribution formats.
final class OneShotDataTests: XCTestCase {
    func url(_ name: String) throws -> URL { try Fixtures.url("oneshot/\(name)") }

    func testCNNDailyMailStoriesCSVAndJSONL() throws {
        let stories = try OneShotData.summaries(try url("cnndm"))
        XCTAssertEqual(stories.count, 2)
        XCTAssertEqual(stories[0].article, "(CNN) -- The river flooded the town on Monday, officials said. Hundreds of residents were moved to the school gym, where volunteers served soup.")
        XCTAssertEqual(stories[0].highlights, ["The river flooded the town on Monday", "Hundreds of residents were moved to a school gym"])
        XCTAssertEqual(stories[1].highlights.count, 2)
        let csv = try OneShotData.summaries(try url("cnndm.csv"))
        XCTAssertEqual(csv.map(\.article), ["The mayor said, \"we will rebuild\", and left.", "Short article without quotes"])
        XCTAssertEqual(csv[0].highlights, ["The mayor promised to rebuild", "He left"], "a quoted field spans lines")
        XCTAssertEqual(csv[1].highlights, ["Short highlight"], "CRLF line end")
        let jsonl = try OneShotData.summaries(try url("cnndm.jsonl"))
        XCTAssertEqual(jsonl.map(\.highlights.count), [2, 1])
    }

    func testWMTSGMAndPlainParallelText() throws {
        let sgm = try OneShotData.translations(try url("wmt"))
        XCTAssertEqual(sgm.map(\.source), ["The house is small.", "I like the red car.", "Thank you very much."])
        XCTAssertEqual(sgm.map(\.target), ["La maison est petite.", "J'aime la voiture rouge.", "Merci beaucoup."])
        let plain = try OneShotData.translations(try url("wmt-plain"))
        XCTAssertEqual(plain, [.init(source: "Good morning.", target: "Bonjour."), .init(source: "See you tomorrow.", target: "À demain.")])
    }

    func testNaturalQuestionsOpen() throws {
        let q = try OneShotData.questions(try url("nq-open.jsonl"))
        XCTAssertEqual(q.count, 3)
        XCTAssertEqual(q[0].answers, ["John Milton", "Milton"])
    }

    func testBadFilesNameFileLineAndExpectation() throws {
        let cases: [(() throws -> Any, String)] = [
            ({ try OneShotData.summaries(try self.url("bad/nohighlight.story")) }, "nohighlight.story: has no @highlight followed by a sentence"),
            ({ try OneShotData.summaries(try self.url("bad/unclosed.csv")) }, "unclosed.csv:2: a quoted field is never closed"),
            ({ try OneShotData.questions(try self.url("bad/nq.jsonl")) }, "nq.jsonl:1: expected \"answer\" to be a non-empty list of strings"),
            ({ try OneShotData.segments(try self.url("bad/badid-src.en.sgm")) }, "badid-src.en.sgm:3: segment id 3, expected 2"),
            ({ try OneShotData.translations(try self.url("bad")) }, "has neither *src.en.sgm + *ref.fr.sgm nor *.en + *.fr files"),
            ({ try OneShotData.summaries(try self.url("nq-open.jsonl")) }, "nq-open.jsonl:1: expected string fields \"article\" and \"highlights\""),
            ({ try OneShotData.summaries(try self.url("missing.story")) }, "missing.story: no such file"),
        ]
        for (read, expected) in cases {
            XCTAssertThrowsError(try read()) { XCTAssertTrue("\($0)".contains(expected), "\($0)") }
        }
    }
}
