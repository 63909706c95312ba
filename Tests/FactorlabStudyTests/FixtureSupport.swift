import Foundation
import FactorlabTestSupport
import XCTest
@testable import FactorlabStudy

/// Paths into the test bundle's Fixtures folder and the values of Tools/reference/make_study_fixtures.py.
enum Fixtures {
    static func url(_ relative: String) throws -> URL {
        let root = try XCTUnwrap(Bundle.module.url(forResource: "Fixtures", withExtension: nil),
                                 "missing Fixtures: run python3 Tools/reference/make_study_fixtures.py")
        return root.appendingPathComponent(relative)
    }

    static var runsRoot: URL { get throws { try url("runs") } }

    /// expected.json, parsed.
    static func expected() throws -> [String: Any] {
        let data = try Data(contentsOf: url("expected.json"))
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    static func section(_ key: String) throws -> [String: Any] {
        try XCTUnwrap(expected()[key] as? [String: Any], "expected.json has no \(key)")
    }

    /// Every fixture run, loaded.
    static func runs() throws -> [StudyRun] {
        try StudyRun.discover([runsRoot]).map { try StudyRun.load(from: $0) }
    }

    /// The analysis of every fixture run, at `budgets`.
    static func analysis(budgets: [Double]? = nil) throws -> StudyAnalysis {
        StudyAnalysis(runs: try runs(), budgets: budgets)
    }
}

func double(_ value: Any?) throws -> Double { try XCTUnwrap(value as? NSNumber).doubleValue }
func doubles(_ value: Any?) throws -> [Double] { try XCTUnwrap(value as? [NSNumber]).map(\.doubleValue) }

/// A fresh empty temporary directory, removed when the test ends.
func temporaryDirectory(_ test: XCTestCase) throws -> URL { try temporaryFolder("study", removedAfter: test) }

/// Asserts that `body` throws a ``StudyDataError`` whose description is exactly `message`.
func assertStudyError(_ message: String, kind: StudyDataError.Kind? = nil, file: StaticString = #filePath, line: UInt = #line,
                      _ body: () throws -> Void) {
    do {
        try body()
        XCTFail("expected StudyDataError: \(message)", file: file, line: line)
    } catch let error as StudyDataError {
        XCTAssertEqual(error.description, message, file: file, line: line)
        if let kind { XCTAssertEqual(error.kind, kind, file: file, line: line) }
    } catch {
        XCTFail("expected StudyDataError, got \(error)", file: file, line: line)
    }
}
