import FactorlabHDF5
import FactorlabTensor
import Foundation
import XCTest

/// Damaged, foreign and mismatched files must give errors naming the file (and dataset), never
/// wrong numbers.
final class CorruptionTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws { folder = try makeTemporaryFolder("corruption") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    func testShapeMismatchNamesFileDatasetAndBothShapes() throws {
        let url = folder.appendingPathComponent("shapes.h5")
        let file = try HDF5File(creating: url)
        try file.write(Tensor(zeros: [768, 2304]), to: "/params/h.3.attn.c_attn.weight")
        try file.close()
        let reader = try HDF5File(readingFrom: url)
        let text = assertThrowsMentioning([url.path, "/params/h.3.attn.c_attn.weight", "expected [768, 768]",
                                           "found [768, 2304]"]) {
            _ = try reader.readTensor("/params/h.3.attn.c_attn.weight", expectedShape: [768, 768])
        }
        XCTAssertEqual(text, "HDF5 read of '/params/h.3.attn.c_attn.weight' in \(url.path) failed: "
                       + "shape mismatch: expected [768, 768], found [768, 2304]")
        try reader.close()
    }

    func testFlippedByteInChunkedDataIsDetectedByFletcher32() throws {
        let url = folder.appendingPathComponent("flip.h5")
        let victim = "/params/h.0.mlp.c_fc.weight"
        let tensor = Tensor(shape: [300, 1000]) { Float($0) }  // two chunks; element i holds i exactly
        let file = try HDF5File(creating: url)
        try file.write(tensor, to: victim)
        try file.write(Tensor(shape: [4], repeating: 2), to: "/params/bystander")
        try file.close()

        // Elements 200_000...200_003 are unique in the file; flip the low mantissa bit of 200_001,
        // which would silently read back as 200_001.015625 without a checksum.
        let pattern = bytes(of: [200_000, 200_001, 200_002, 200_003])
        let hits = occurrences(of: pattern, in: try Data(contentsOf: url))
        XCTAssertEqual(hits.count, 1)
        try flipByte(in: url, at: hits[0] + 4)

        let reader = try HDF5File(readingFrom: url)
        let text = assertThrowsMentioning([url.path, victim, "checksum did not match", "file is corrupted"]) {
            _ = try reader.readTensor(victim)
        }
        XCTAssertTrue(text.contains("Fletcher32"), text)
        // The other dataset is unharmed and still reads.
        XCTAssertEqual(try reader.readTensor("/params/bystander").scalars, [2, 2, 2, 2])
        try reader.close()
    }

    func testFlippedByteInScalarIsDetectedByTheObjectHeaderChecksum() throws {
        let url = folder.appendingPathComponent("scalar.h5")
        let file = try HDF5File(creating: url)
        try file.write(Tensor(1234.5678), to: "/loss_scale")
        try file.close()
        let hits = occurrences(of: bytes(of: [1234.5678]), in: try Data(contentsOf: url))
        XCTAssertEqual(hits.count, 1)
        try flipByte(in: url, at: hits[0])

        let reader = try HDF5File(readingFrom: url)
        assertThrowsMentioning([url.path, "/loss_scale", "checksum did not match", "incorrect metadata checksum"]) {
            _ = try reader.readTensor("/loss_scale")
        }
        try? reader.close()
    }

    func testTruncatedFileGivesErrorNamingTheFile() throws {
        let url = folder.appendingPathComponent("whole.h5")
        let file = try HDF5File(creating: url)
        try file.write(Tensor(shape: [500, 1000]) { Float($0) }, to: "/params/wte")
        try file.setAttribute("step", .int64(10))
        try file.close()
        let data = try Data(contentsOf: url)
        let truncated = folder.appendingPathComponent("truncated.h5")
        try data.prefix(data.count / 2).write(to: truncated)

        let text = assertThrowsMentioning([truncated.path]) {
            let reader = try HDF5File(readingFrom: truncated)
            _ = try reader.readTensor("/params/wte")
        }
        XCTAssertTrue(text.contains("truncated"), text)
    }

    func testNonHDF5AndMissingFilesGiveErrorsNamingTheFile() throws {
        let text = folder.appendingPathComponent("notes.h5")
        try Data("step 1000 loss 3.2\n".utf8).write(to: text)
        assertThrowsMentioning([text.path, "not an HDF5 file"]) { _ = try HDF5File(readingFrom: text) }

        let empty = folder.appendingPathComponent("empty.h5")
        try Data().write(to: empty)
        assertThrowsMentioning([empty.path]) { _ = try HDF5File(readingFrom: empty) }

        let missing = folder.appendingPathComponent("missing.h5")
        assertThrowsMentioning([missing.path, "no such file"]) { _ = try HDF5File(readingFrom: missing) }

        let noFolder = folder.appendingPathComponent("no/such/folder/out.h5")
        assertThrowsMentioning([noFolder.path, "could not create"]) { _ = try HDF5File(creating: noFolder) }
    }
}
