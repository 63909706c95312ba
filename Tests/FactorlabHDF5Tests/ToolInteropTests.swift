import FactorlabHDF5
import FactorlabTensor
import Foundation
import XCTest

/// Files must be readable by the standard HDF5 tools (and so by h5py, which uses the same library).
final class ToolInteropTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws { folder = try makeTemporaryFolder("tools") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    func writeSample(_ url: URL) throws {
        try HDF5File.writeAtomically(to: url) { file in
            try file.write(Tensor(shape: [4, 12]) { Float($0) }, to: "/params/h.0.attn.c_attn.weight")
            try file.write(Tensor(shape: [3]) { Float($0) * 0.5 }, to: "/params/ln_f.bias")
            try file.write(Tensor(2.5), to: "/scalar")
            try file.write([UInt64(7), 8], to: "/rng/state")
            try file.setAttribute("format", .string("factorlab-checkpoint"))
            try file.setAttribute("n_layer", .int64(12))
            try file.setAttribute("kinds", .strings(["dense", "monarch"]), on: "/params")
        }
    }

    func testH5lsListsTheLayout() throws {
        guard let h5ls = findExecutable("h5ls") else { throw XCTSkip("h5ls not installed (apt install hdf5-tools)") }
        let url = folder.appendingPathComponent("sample.h5")
        try writeSample(url)
        let (status, output) = try runTool(h5ls, ["-r", url.path])
        XCTAssertEqual(status, 0, output)
        let lines = output.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ") }
        XCTAssertEqual(lines, [
            "/ Group",
            "/params Group",
            "/params/h.0.attn.c_attn.weight Dataset {4, 12}",
            "/params/ln_f.bias Dataset {3}",
            "/rng Group",
            "/rng/state Dataset {2}",
            "/scalar Dataset {SCALAR}",
        ])
        let (dataStatus, data) = try runTool(h5ls, ["-d", url.path + "/params/ln_f.bias"])
        XCTAssertEqual(dataStatus, 0, data)
        XCTAssertTrue(data.contains("0, 0.5, 1"), data)
    }

    func testH5dumpShowsChunkingChecksumsAndAttributes() throws {
        guard let h5dump = findExecutable("h5dump") else { throw XCTSkip("h5dump not installed (apt install hdf5-tools)") }
        let url = folder.appendingPathComponent("sample.h5")
        try writeSample(url)
        let (status, header) = try runTool(h5dump, ["-H", "-p", url.path])
        XCTAssertEqual(status, 0, header)
        for fragment in ["DATASET \"h.0.attn.c_attn.weight\"", "DATATYPE  H5T_IEEE_F32LE",
                         "DATASPACE  SIMPLE { ( 4, 12 ) / ( 4, 12 ) }", "CHUNKED ( 4, 12 )", "CHECKSUM FLETCHER32",
                         "DATATYPE  H5T_STD_U64LE", "ATTRIBUTE \"format\"", "ATTRIBUTE \"kinds\"",
                         "CSET H5T_CSET_UTF8", "STRPAD H5T_STR_NULLTERM"] {
            XCTAssertTrue(header.contains(fragment), "h5dump -H -p output lacks '\(fragment)':\n\(header)")
        }
        let (attrStatus, attribute) = try runTool(h5dump, ["-a", "/format", url.path])
        XCTAssertEqual(attrStatus, 0, attribute)
        XCTAssertTrue(attribute.contains("\"factorlab-checkpoint\""), attribute)
        let (dataStatus, data) = try runTool(h5dump, ["-d", "/scalar", url.path])
        XCTAssertEqual(dataStatus, 0, data)
        XCTAssertTrue(data.contains("2.5"), data)
    }
}
