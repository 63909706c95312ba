@testable import FactorlabHDF5
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

    /// A damaged chunk index must not read as unwritten chunks (HDF5's fill value, zeros). Files
    /// written now use checksummed chunk indexes, so the damage is a checksum error; old files
    /// (version-1 B-trees, no checksum) are still read, and a chunk missing from their index is
    /// caught by counting the stored chunks before reading.
    func testDamagedChunkIndexIsAnErrorNotZeros() throws {
        let victim = "/params/w"
        let tensor = Tensor(shape: [300, 1000]) { Float($0 + 1) }   // no element is zero
        // Old format: zero the "entries used" count of the chunk B-tree node ("TREE", type 1).
        let old = folder.appendingPathComponent("old.h5")
        let legacy = try HDF5File(creatingLegacyFormat: old)
        try legacy.write(tensor, to: victim)
        try legacy.close()
        XCTAssertEqual(try HDF5File(readingFrom: old).readTensor(victim).scalars, tensor.scalars, "an intact old file reads")
        let data = try Data(contentsOf: old)
        let nodes = occurrences(of: Array("TREE".utf8), in: data).filter { data[$0 + 4] == 1 }
        XCTAssertEqual(nodes.count, 1, "one chunk B-tree node")
        var damaged = data
        damaged[nodes[0] + 6] = 0
        damaged[nodes[0] + 7] = 0
        try damaged.write(to: old)
        let reader = try HDF5File(readingFrom: old)
        _ = assertThrowsMentioning([old.path, victim, "chunks", "damaged"]) { _ = try reader.readTensor(victim) }
        try reader.close()

        // New format: no "TREE" node; a flipped byte in the index (or anywhere in the metadata) is a checksum error.
        let new = folder.appendingPathComponent("new.h5")
        let file = try HDF5File(creating: new)
        try file.write(tensor, to: victim)
        try file.close()
        let bytes = try Data(contentsOf: new)
        XCTAssertTrue(occurrences(of: Array("TREE".utf8), in: bytes).isEmpty, "no version-1 B-tree in the new format")
        let index = try XCTUnwrap(occurrences(of: Array("FAHD".utf8), in: bytes).first ?? occurrences(of: Array("FADB".utf8), in: bytes).first,
                                  "a fixed-array chunk index")
        try flipByte(in: new, at: index + 6)
        XCTAssertThrowsError(try { let r = try HDF5File(readingFrom: new); defer { try? r.close() }; _ = try r.readTensor(victim) }()) { e in
            XCTAssertTrue("\(e)".contains(new.path), "\(e)")
        }
    }
}
