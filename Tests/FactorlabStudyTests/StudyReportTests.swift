import Foundation
import XCTest
#if canImport(FoundationXML)
import FoundationXML
#endif
@testable import FactorlabStudy

final class StudyReportTests: XCTestCase {
    func testRenderToTmpForInspection() throws {
        let out = URL(fileURLWithPath: "/tmp/factorlab-study-report")
        let summary = try StudyReport.generate(runDirectories: [Fixtures.runsRoot], outputDirectory: out)
        print(summary.recommendations.map(\.sentence).joined(separator: "\n"))
    }
}
