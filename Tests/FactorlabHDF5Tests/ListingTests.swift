import FactorlabHDF5
import FactorlabTensor
import Foundation
import XCTest

final class ListingTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws { folder = try makeTemporaryFolder("listing") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    func testListsDatasetsRecursivelyWithFullPathsAndChecksExistence() throws {
        let url = folder.appendingPathComponent("list.h5")
        let file = try HDF5File(creating: url)
        let paths = ["/params/wte", "/params/h.0.attn.c_attn.weight", "/params/h.0.attn.c_attn.bias",
                     "/params/h.1.mlp.c_fc.weight", "/optimizer/m/params/wte", "/step_scalar"]
        for (i, path) in paths.enumerated() { try file.write(Tensor(shape: [i + 1], repeating: Float(i)), to: path) }
        try file.write([Int64(7)], to: "/rng/state")
        try file.createGroup("/empty/inner")
        try file.close()

        let reader = try HDF5File(readingFrom: url)
        XCTAssertEqual(try reader.datasetPaths(), [
            "/optimizer/m/params/wte",
            "/params/h.0.attn.c_attn.bias", "/params/h.0.attn.c_attn.weight", "/params/h.1.mlp.c_fc.weight",
            "/params/wte",
            "/rng/state",
            "/step_scalar",
        ])
        XCTAssertEqual(try reader.datasetPaths(under: "/params"), [
            "/params/h.0.attn.c_attn.bias", "/params/h.0.attn.c_attn.weight", "/params/h.1.mlp.c_fc.weight",
            "/params/wte",
        ])
        XCTAssertEqual(try reader.datasetPaths(under: "optimizer/m"), ["/optimizer/m/params/wte"])
        XCTAssertEqual(try reader.datasetPaths(under: "/empty"), [])
        assertThrowsMentioning(["/params/wte", "no group"]) { _ = try reader.datasetPaths(under: "/params/wte") }

        XCTAssertTrue(try reader.exists("/params/h.0.attn.c_attn.weight"))
        XCTAssertTrue(try reader.isDataset("/params/h.0.attn.c_attn.weight"))
        XCTAssertFalse(try reader.isGroup("/params/h.0.attn.c_attn.weight"))
        XCTAssertTrue(try reader.isGroup("/params"))
        XCTAssertTrue(try reader.isGroup("/"))
        XCTAssertEqual(try reader.kind(of: "/empty/inner"), .group)
        XCTAssertFalse(try reader.exists("/params/h.0.attn"))          // a name prefix is not a group
        XCTAssertFalse(try reader.exists("/params/h.0.attn.c_attn.weight/x"))
        XCTAssertFalse(try reader.exists("/nope/deeper/still"))
        XCTAssertEqual(try reader.readTensor("/params/h.1.mlp.c_fc.weight").scalars, [3, 3, 3, 3])
        XCTAssertTrue(HDF5File.libraryVersion.hasPrefix("1.") || HDF5File.libraryVersion.hasPrefix("2."),
                      HDF5File.libraryVersion)
        try reader.close()
    }
}
