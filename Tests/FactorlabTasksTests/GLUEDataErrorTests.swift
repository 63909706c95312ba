import Foundation
import XCTest
@testable import FactorlabTasks

/// Each file in Fixtures/glue_bad has one problem; the error must name file, line and problem.
final class GLUEDataErrorTests: XCTestCase {
    func check(_ task: GLUETask, _ split: GLUESplit, _ kind: GLUEDataError.Kind, line: Int?, _ problem: String,
               file: StaticString = #filePath, lineNumber: UInt = #line) throws {
        let path = try Fixtures.glueBadRoot.appendingPathComponent(task.fileName(split)).path
        do {
            _ = try GLUEDataset(task: task, split: split, root: Fixtures.glueBadRoot)
            XCTFail("expected an error for \(path)", file: file, line: lineNumber)
        } catch let error as GLUEDataError {
            XCTAssertEqual(error.kind, kind, file: file, line: lineNumber)
            XCTAssertEqual(error.file, path, file: file, line: lineNumber)
            XCTAssertEqual(error.line, line, file: file, line: lineNumber)
            XCTAssertEqual(error.problem, problem, file: file, line: lineNumber)
            let expected = line.map { "\(path) line \($0): \(problem)" } ?? "\(path): \(problem)"
            XCTAssertEqual(error.description, expected, file: file, line: lineNumber)
        }
    }

    func testWrongColumnCount() throws {
        try check(.rte, .train, .columnCount, line: 3,
                  "expected 4 tab-separated columns (index, sentence1, sentence2, label), found 3")
        try check(.cola, .dev, .columnCount, line: 2,
                  "expected 4 tab-separated columns (source, label, original mark, sentence), found 3")
    }

    func testLabelOutsideTheTaskSet() throws {
        try check(.sst2, .dev, .unknownLabel, line: 3, "label \"2\" is not one of 0, 1 (SST-2)")
        try check(.qnli, .dev, .unknownLabel, line: 2, "label \"entailed\" is not one of entailment, not_entailment (QNLI)")
        try check(.mnli, .dev, .unknownLabel, line: 2,
                  "label \"-\" is not one of entailment, neutral, contradiction (MNLI)")
    }

    func testBadSTSBScores() throws {
        try check(.stsb, .dev, .badScore, line: 2, "score \"n/a\" is not a number")
        try check(.stsb, .train, .badScore, line: 3, "score 5.5 is outside [0, 5]")
    }

    func testMissingColumnAndMissingFile() throws {
        try check(.wnli, .dev, .missingColumn, line: 1,
                  "the header has no column \"sentence1\" (it has: index, sentence_1, sentence2, label)")
        try check(.cola, .train, .missingFile, line: nil,
                  "file not found; expected the official GLUE layout (CoLA/train.tsv), e.g. from download_glue_data.py")
    }

    func testEmptyFileAndInvalidUTF8() {
        assertThrows(GLUEDataError.self, "empty.tsv: the file is empty; expected a header line") {
            _ = try GLUEDataset(task: .rte, split: .dev, contents: Data(), fileName: "empty.tsv")
        }
        let bytes = Data("index\tsentence\n0\tbad ".utf8) + Data([0xFF, 0xFE]) + Data("\n".utf8)
        assertThrows(GLUEDataError.self, "bad.tsv line 2: the line is not valid UTF-8") {
            _ = try GLUEDataset(task: .sst2, split: .test, contents: bytes, fileName: "bad.tsv")
        }
    }

    /// A wrong column count in QQP is skipped, not an error; a bad QQP label still is.
    func testQQPBadLabelIsStillAnError() {
        let text = "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n1\t2\t3\ta?\tb?\tyes\n"
        assertThrows(GLUEDataError.self, "q.tsv line 2: label \"yes\" is not one of 0, 1 (QQP)") {
            _ = try GLUEDataset(task: .qqp, split: .train, contents: Data(text.utf8), fileName: "q.tsv")
        }
    }
}
