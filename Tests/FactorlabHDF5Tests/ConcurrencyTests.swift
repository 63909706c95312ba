import FactorlabHDF5
import FactorlabTensor
import Foundation
import XCTest

final class ConcurrencyTests: XCTestCase {
    /// The serial HDF5 library is not thread-safe; the module's lock must make concurrent use
    /// from many threads (different files, and one shared file) correct.
    func testConcurrentWritersAndReaders() throws {
        let folder = try makeTemporaryFolder("threads")
        defer { try? FileManager.default.removeItem(at: folder) }
        let shared = try HDF5File(creating: folder.appendingPathComponent("shared.h5"))
        let failures = FailureLog()
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            do {
                let url = folder.appendingPathComponent("w\(worker).h5")
                for round in 0..<5 {
                    try HDF5File.writeAtomically(to: url) { file in
                        for j in 0..<10 {
                            try file.write(Tensor(shape: [64, 64], repeating: Float(worker * 100 + j)), to: "/p/\(j)")
                        }
                        try file.setAttribute("round", .int64(Int64(round)))
                    }
                    try shared.write([Int64(worker), Int64(round)], to: "/w\(worker)/r\(round)")
                    let reader = try HDF5File(readingFrom: url)
                    let value = try reader.readTensor("/p/7", expectedShape: [64, 64])[5, 5]
                    if value != Float(worker * 100 + 7) { failures.add("worker \(worker) read \(value)") }
                    if try reader.int64Attribute("round") != Int64(round) { failures.add("worker \(worker) round") }
                    try reader.close()
                }
            } catch {
                failures.add("worker \(worker): \(error)")
            }
        }
        XCTAssertEqual(failures.messages, [])
        try shared.close()
        let reader = try HDF5File(readingFrom: shared.url)
        XCTAssertEqual(try reader.datasetPaths().count, 40)
        XCTAssertEqual(try reader.read("/w3/r4", as: Int64.self), [3, 4])
        try reader.close()
    }
}

/// A lock-protected list of failure messages collected from worker threads.
final class FailureLog: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [String] = []
    func add(_ message: String) { lock.lock(); list.append(message); lock.unlock() }
    var messages: [String] { lock.lock(); defer { lock.unlock() }; return list }
}
