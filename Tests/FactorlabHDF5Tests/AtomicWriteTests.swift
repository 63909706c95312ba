import FactorlabHDF5
import FactorlabTensor
import Foundation
import XCTest

final class AtomicWriteTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws { folder = try makeTemporaryFolder("atomic") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    struct Deliberate: Error {}

    func writeGeneration(_ generation: Int64, to url: URL) throws {
        try HDF5File.writeAtomically(to: url) { file in
            try file.write(Tensor(shape: [3]) { Float($0) + Float(generation) }, to: "/params/w")
            try file.setAttribute("generation", .int64(generation))
        }
    }

    func assertGeneration(_ generation: Int64, at url: URL, file: StaticString = #filePath, line: UInt = #line) throws {
        let reader = try HDF5File(readingFrom: url)
        defer { try? reader.close() }
        XCTAssertEqual(try reader.int64Attribute("generation"), generation, file: file, line: line)
        let g = Float(generation)
        XCTAssertEqual(try reader.readTensor("/params/w").scalars, [g, g + 1, g + 2], file: file, line: line)
    }

    func leftovers() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.contains(".tmp-") }
    }

    func testSuccessfulWriteReplacesTargetAndLeavesNoTemporaryFile() throws {
        let url = folder.appendingPathComponent("ckpt.h5")
        try writeGeneration(1, to: url)
        try assertGeneration(1, at: url)
        try writeGeneration(2, to: url)
        try assertGeneration(2, at: url)
        XCTAssertEqual(try leftovers(), [])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), ["ckpt.h5"])
    }

    func testFailingBodyLeavesPreviousFileIntactAndNoTemporaryFile() throws {
        let url = folder.appendingPathComponent("ckpt.h5")
        try writeGeneration(1, to: url)
        let before = try Data(contentsOf: url)
        var sawTemporary = false
        XCTAssertThrowsError(try HDF5File.writeAtomically(to: url) { file in
            sawTemporary = file.url.lastPathComponent.hasPrefix(".ckpt.h5.tmp-\(getpid())-")
            try file.write(Tensor(shape: [1000], repeating: 9), to: "/params/w")
            throw Deliberate()
        }) { error in XCTAssertTrue(error is Deliberate, "\(error)") }
        XCTAssertTrue(sawTemporary)
        // An HDF5 failure inside the body (writing a dataset twice) is handled the same way.
        assertThrowsMentioning(["/params/w", "already exists"]) {
            try HDF5File.writeAtomically(to: url) { file in
                try file.write([Int64(1)], to: "/params/w")
                try file.write([Int64(2)], to: "/params/w")
            }
        }
        XCTAssertEqual(try Data(contentsOf: url), before)
        try assertGeneration(1, at: url)
        XCTAssertEqual(try leftovers(), [])
    }

    func testStaleTemporaryFilesOfDeadWritersAreRemoved() throws {
        let url = folder.appendingPathComponent("ckpt.h5")
        // A PID that surely belongs to no live process: one we started and already reaped.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/true")
        try process.run()
        process.waitUntilExit()
        let dead = folder.appendingPathComponent(".ckpt.h5.tmp-\(process.processIdentifier)-abc")
        let live = folder.appendingPathComponent(".ckpt.h5.tmp-\(getpid())-def")
        let other = folder.appendingPathComponent(".other.h5.tmp-\(process.processIdentifier)-abc")
        for stale in [dead, live, other] { try Data([1, 2, 3]).write(to: stale) }
        try writeGeneration(3, to: url)
        try assertGeneration(3, at: url)
        XCTAssertEqual(try leftovers().sorted(), [other.lastPathComponent, live.lastPathComponent].sorted())
    }

    // MARK: Killed writer

    static let slowWriterVariable = "FACTORLAB_HDF5_SLOW_WRITER_TARGET"

    /// The child process's work: write slowly into an atomic save until killed.
    func slowWrite(to target: String) throws {
        try HDF5File.writeAtomically(to: URL(fileURLWithPath: target)) { file in
            try file.setAttribute("generation", .int64(99))
            for i in 0..<200 {  // at most 200 MB, about 10 s, if nobody kills us
                try file.write(Tensor(shape: [512, 512], repeating: Float(i)), to: "/params/chunk.\(i)")
                try file.flush()
                usleep(50_000)
            }
        }
    }

    /// The test re-runs itself in a child process (the test binary, filtered to this test, with
    /// an environment variable set); the child takes the first branch and writes until killed.
    func testWriterKilledMidWriteLeavesPreviousFileIntact() throws {
        if let target = ProcessInfo.processInfo.environment[Self.slowWriterVariable] {
            return try slowWrite(to: target)
        }
        #if os(Linux)
        let url = folder.appendingPathComponent("ckpt.h5")
        try writeGeneration(1, to: url)
        let before = try Data(contentsOf: url)

        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        child.arguments = ["FactorlabHDF5Tests.AtomicWriteTests/testWriterKilledMidWriteLeavesPreviousFileIntact"]
        var environment = ProcessInfo.processInfo.environment
        environment[Self.slowWriterVariable] = url.path
        child.environment = environment
        child.standardOutput = FileHandle.nullDevice
        child.standardError = FileHandle.nullDevice
        try child.run()

        // Wait until the child's temporary file holds a few megabytes, then kill it mid-write.
        let prefix = ".ckpt.h5.tmp-\(child.processIdentifier)-"
        var temporary: URL?
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline && child.isRunning {
            if let name = try leftovers().first(where: { $0.hasPrefix(prefix) }) {
                let candidate = folder.appendingPathComponent(name)
                let size = (try? FileManager.default.attributesOfItem(atPath: candidate.path)[.size] as? Int) ?? 0
                if size > 3_000_000 { temporary = candidate; break }
            }
            usleep(20_000)
        }
        XCTAssertTrue(child.isRunning, "the child finished or died before it could be killed")
        kill(child.processIdentifier, SIGKILL)
        child.waitUntilExit()
        XCTAssertEqual(child.terminationReason, .uncaughtSignal)
        XCTAssertEqual(child.terminationStatus, SIGKILL)
        let leftover = try XCTUnwrap(temporary, "the child never produced a temporary file")

        // The target is byte-for-byte the previous file and reads back; the half-written
        // temporary file is left behind (a killed process cannot clean up)...
        XCTAssertEqual(try Data(contentsOf: url), before)
        try assertGeneration(1, at: url)
        XCTAssertTrue(FileManager.default.fileExists(atPath: leftover.path))
        // ...until the next atomic write to the same target removes it.
        try writeGeneration(2, to: url)
        try assertGeneration(2, at: url)
        XCTAssertEqual(try leftovers(), [])
        #else
        throw XCTSkip("uses /proc/self/exe to re-run the test binary; Linux only")
        #endif
    }
}
