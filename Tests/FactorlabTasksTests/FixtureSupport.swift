import Foundation
import XCTest

/// Paths into the test bundle's Fixtures folder and the reference values of
/// Tools/reference/make_task_metric_fixtures.py.
enum Fixtures {
    static func url(_ relative: String) throws -> URL {
        let root = try XCTUnwrap(Bundle.module.url(forResource: "Fixtures", withExtension: nil),
                                 "missing Fixtures: run python3 Tools/reference/make_task_metric_fixtures.py")
        return root.appendingPathComponent(relative)
    }

    static var glueRoot: URL { get throws { try url("glue") } }
    static var glueBadRoot: URL { get throws { try url("glue_bad") } }

    /// task_metrics.json, parsed.
    static func reference() throws -> [String: Any] {
        let data = try Data(contentsOf: url("task_metrics.json"))
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    static func section(_ key: String) throws -> [String: Any] {
        try XCTUnwrap(reference()[key] as? [String: Any], "task_metrics.json has no \(key)")
    }
}

/// Reads a JSON number array as [Int] / [Double].
func ints(_ value: Any?) throws -> [Int] { try XCTUnwrap(value as? [NSNumber]).map(\.intValue) }
func doubles(_ value: Any?) throws -> [Double] { try XCTUnwrap(value as? [NSNumber]).map(\.doubleValue) }

/// Asserts that `body` throws an error whose description is exactly `message`.
func assertThrows<E: Error & CustomStringConvertible>(_ type: E.Type, _ message: String,
                                                      file: StaticString = #filePath, line: UInt = #line,
                                                      _ body: () throws -> Void) {
    do {
        try body()
        XCTFail("expected \(E.self): \(message)", file: file, line: line)
    } catch let error as E {
        XCTAssertEqual(error.description, message, file: file, line: line)
    } catch {
        XCTFail("expected \(E.self), got \(error)", file: file, line: line)
    }
}
