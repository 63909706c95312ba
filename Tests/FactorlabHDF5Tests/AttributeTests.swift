import CHDF5
import FactorlabHDF5
import FactorlabTensor
import Foundation
import XCTest

final class AttributeTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws { folder = try makeTemporaryFolder("attributes") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    func testAttributesOfEveryTypeOnRootGroupAndDataset() throws {
        let url = folder.appendingPathComponent("attrs.h5")
        let file = try HDF5File(creating: url)
        try file.write(Tensor(shape: [2, 2], repeating: 1.5), to: "/params/wte")
        try file.createGroup("/config")
        try file.createGroup("/config")  // idempotent
        try file.setAttribute("format", .string("factorlab-checkpoint"))
        try file.setAttribute("version", .int64(1))
        try file.setAttribute("note", .string("ünïcödé ✓ 日本"))
        try file.setAttribute("empty", .string(""))
        try file.setAttribute("n_layer", .int64(12), on: "/config")
        try file.setAttribute("dropout", .double(0.1), on: "/config")
        try file.setAttribute("betas", .doubles([0.9, 0.95]), on: "/config")
        try file.setAttribute("layer_kinds", .strings(["dense", "low-rank", "monarch"]), on: "/config")
        try file.setAttribute("no_strings", .strings([]), on: "/config")
        try file.setAttribute("init_seeds", .int64s([Int64.min, 0, Int64.max]), on: "/params/wte")
        try file.setAttribute("std", .double(0.02), on: "/params/wte")
        try file.setAttribute("version", .int64(2))  // replaces the previous value
        assertThrowsMentioning(["/missing", "no object"]) { try file.setAttribute("x", .int64(1), on: "/missing") }
        try file.close()

        let reader = try HDF5File(readingFrom: url)
        defer { try? reader.close() }
        XCTAssertEqual(try reader.stringAttribute("format"), "factorlab-checkpoint")
        XCTAssertEqual(try reader.int64Attribute("version"), 2)
        XCTAssertEqual(try reader.stringAttribute("note"), "ünïcödé ✓ 日本")
        XCTAssertEqual(try reader.stringAttribute("empty"), "")
        XCTAssertEqual(try reader.int64Attribute("n_layer", of: "/config"), 12)
        XCTAssertEqual(try reader.doubleAttribute("dropout", of: "config"), 0.1)
        XCTAssertEqual(try reader.doublesAttribute("betas", of: "/config"), [0.9, 0.95])
        XCTAssertEqual(try reader.stringsAttribute("layer_kinds", of: "/config"), ["dense", "low-rank", "monarch"])
        XCTAssertEqual(try reader.attribute("no_strings", of: "/config"), .strings([]))
        XCTAssertEqual(try reader.int64sAttribute("init_seeds", of: "/params/wte"), [Int64.min, 0, Int64.max])
        XCTAssertEqual(try reader.attribute("std", of: "/params/wte"), .double(0.02))
        XCTAssertEqual(try reader.attributeNames(), ["empty", "format", "note", "version"])
        XCTAssertEqual(try reader.attributeNames(of: "/config"), ["betas", "dropout", "layer_kinds", "n_layer", "no_strings"])
        XCTAssertTrue(try reader.hasAttribute("std", of: "/params/wte"))
        XCTAssertFalse(try reader.hasAttribute("mean", of: "/params/wte"))

        assertThrowsMentioning(["no attribute named 'learning_rate'", "/config", url.path, "n_layer"]) {
            _ = try reader.doubleAttribute("learning_rate", of: "/config")
        }
        assertThrowsMentioning(["'n_layer'", "expected a string attribute, found a int64"]) {
            _ = try reader.stringAttribute("n_layer", of: "/config")
        }
        // The tensor itself is unaffected by its attributes.
        XCTAssertEqual(try reader.readTensor("/params/wte").scalars, [1.5, 1.5, 1.5, 1.5])
    }

    /// Files written by other tools may hold fixed-length strings and 32-bit numbers.
    func testReadsFixedLengthStringsAndNarrowNumbersWrittenThroughTheCAPI() throws {
        let url = folder.appendingPathComponent("foreign.h5")
        try HDF5File(creating: url).close()
        let fid = H5Fopen(url.path, fl_H5F_ACC_RDWR(), fl_H5P_DEFAULT())
        XCTAssertGreaterThanOrEqual(fid, 0)
        let scalar = H5Screate(H5S_SCALAR)
        let stringType = H5Tcopy(fl_H5T_C_S1())
        XCTAssertEqual(H5Tset_size(stringType, 8), 0)
        XCTAssertEqual(H5Tset_strpad(stringType, H5T_STR_NULLPAD), 0)
        let attribute = H5Acreate2(fid, "model", stringType, scalar, fl_H5P_DEFAULT(), fl_H5P_DEFAULT())
        XCTAssertGreaterThanOrEqual(attribute, 0)
        var text: [UInt8] = Array("gpt2".utf8) + [0, 0, 0, 0]
        XCTAssertEqual(H5Awrite(attribute, stringType, &text), 0)
        H5Aclose(attribute)

        var dims: [hsize_t] = [2]
        let pair = H5Screate_simple(1, &dims, nil)
        let spacePadded = H5Tcopy(stringType)
        H5Tset_strpad(spacePadded, H5T_STR_SPACEPAD)
        let names = H5Acreate2(fid, "names", spacePadded, pair, fl_H5P_DEFAULT(), fl_H5P_DEFAULT())
        var padded: [UInt8] = Array("wte     wpe     ".utf8)
        XCTAssertEqual(H5Awrite(names, spacePadded, &padded), 0)
        H5Aclose(names)

        let ints = H5Acreate2(fid, "block_size", fl_H5T_NATIVE_INT32(), scalar, fl_H5P_DEFAULT(), fl_H5P_DEFAULT())
        var blockSize: Int32 = 1024
        XCTAssertEqual(H5Awrite(ints, fl_H5T_NATIVE_INT32(), &blockSize), 0)
        H5Aclose(ints)
        let floats = H5Acreate2(fid, "lr", fl_H5T_NATIVE_FLOAT(), pair, fl_H5P_DEFAULT(), fl_H5P_DEFAULT())
        var lrs: [Float] = [6e-4, 0.5]
        XCTAssertEqual(H5Awrite(floats, fl_H5T_NATIVE_FLOAT(), &lrs), 0)
        H5Aclose(floats)
        H5Tclose(spacePadded); H5Tclose(stringType); H5Sclose(pair); H5Sclose(scalar)
        XCTAssertEqual(H5Fclose(fid), 0)

        let reader = try HDF5File(readingFrom: url)
        XCTAssertEqual(try reader.stringAttribute("model"), "gpt2")
        XCTAssertEqual(try reader.stringsAttribute("names"), ["wte", "wpe"])
        XCTAssertEqual(try reader.int64Attribute("block_size"), 1024)
        XCTAssertEqual(try reader.doublesAttribute("lr"), [Double(Float(6e-4)), 0.5])
        try reader.close()
    }
}

/// A string attribute larger than an object-header message (64 KiB), such as a long recipe, is
/// still written and read back.
final class LargeAttributeTests: XCTestCase {
    func testAStringAttributeOver64KiBRoundTrips() throws {
        let folder = try makeTemporaryFolder("large-attr")
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("big.h5")
        let text = String(repeating: "model: {n_layer: 2}  # a long recipe line\n", count: 3000)  // about 126 KB
        let file = try HDF5File(creating: url)
        try file.setAttribute("recipe", .string(text))
        try file.close()
        let reader = try HDF5File(readingFrom: url)
        XCTAssertEqual(try reader.stringAttribute("recipe"), text)
        try reader.close()
    }
}
