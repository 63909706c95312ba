import FactorlabHDF5
import FactorlabTensor
import Foundation
import XCTest

final class DatasetRoundTripTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws { folder = try makeTemporaryFolder("datasets") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    /// Values that exercise every bit pattern class: signs, subnormals, infinities, a NaN payload.
    func awkwardScalars(_ count: Int) -> [Float] {
        let specials: [Float] = [0, -0.0, .infinity, -.infinity, .leastNonzeroMagnitude, .greatestFiniteMagnitude,
                                 Float(bitPattern: 0x7FC0_1234), Float(bitPattern: 0x0000_0101), -3.25]
        return (0..<count).map { i in i < specials.count ? specials[i] : Float(i) * 0.37 - 11 }
    }

    func testTensorsOfEveryRankRoundTripBitForBit() throws {
        let url = folder.appendingPathComponent("ranks.h5")
        let shapes: [[Int]] = [[], [1], [7], [3, 5], [2, 3, 4], [2, 1, 3, 2], [0], [4, 0, 3]]
        var written: [String: Tensor] = [:]
        let file = try HDF5File(creating: url)
        for (i, shape) in shapes.enumerated() {
            let count = shape.reduce(1, *)
            let tensor = try Tensor(shape: shape, scalars: awkwardScalars(count))
            let path = "/params/h.\(i).attn.c_attn.weight"
            try file.write(tensor, to: path)
            written[path] = tensor
        }
        try file.close()
        XCTAssertFalse(file.isOpen)

        let reader = try HDF5File(readingFrom: url)
        defer { try? reader.close() }
        for (path, tensor) in written {
            let back = try reader.readTensor(path, expectedShape: tensor.shape)
            XCTAssertEqual(back.shape, tensor.shape, path)
            XCTAssertEqual(back.scalars.map(\.bitPattern), tensor.scalars.map(\.bitPattern), path)
            XCTAssertEqual(try reader.shape(of: path), tensor.shape)
            XCTAssertEqual(try reader.elementType(of: path), .float32)
        }
        XCTAssertEqual(try reader.readTensor("/params/h.0.attn.c_attn.weight").item, 0)
    }

    func testTensorSpanningSeveralChunksRoundTrips() throws {
        // [300, 1000] floats = 1.2 MB: two chunks of [150, 1000].
        XCTAssertEqual(HDF5File.chunkShape(for: [300, 1000], elementSize: 4), [150, 1000])
        let url = folder.appendingPathComponent("big.h5")
        let tensor = Tensor(shape: [300, 1000]) { Float($0) * 0.001 - 7 }
        let file = try HDF5File(creating: url)
        try file.write(tensor, to: "big")
        try file.close()
        let back = try HDF5File(readingFrom: url).readTensor("/big", expectedShape: [300, 1000])
        XCTAssertEqual(back.scalars.map(\.bitPattern), tensor.scalars.map(\.bitPattern))
        XCTAssertEqual(back[299, 999], Float(299_999) * 0.001 - 7)
    }

    func testNonContiguousTensorIsStoredRowMajor() throws {
        let url = folder.appendingPathComponent("view.h5")
        let base = try Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        let file = try HDF5File(creating: url)
        try file.write(base.transposed(), to: "/t")
        try file.close()
        let back = try HDF5File(readingFrom: url).readTensor("/t")
        XCTAssertEqual(back.shape, [3, 2])
        XCTAssertEqual(back.scalars, [1, 4, 2, 5, 3, 6])
    }

    func testChunkShapes() {
        // Whole rows while they fit in 1 MiB, then an even split of the leading axis.
        XCTAssertEqual(HDF5File.chunkShape(for: [768, 2304], elementSize: 4), [110, 2304])
        XCTAssertEqual(HDF5File.chunkShape(for: [50257, 768], elementSize: 4), [340, 768])
        XCTAssertEqual(HDF5File.chunkShape(for: [768], elementSize: 4), [768])
        XCTAssertEqual(HDF5File.chunkShape(for: [1_000_000], elementSize: 4), [250_000])
        XCTAssertEqual(HDF5File.chunkShape(for: [2, 600_000], elementSize: 4), [1, 200_000])
        XCTAssertEqual(HDF5File.chunkShape(for: [4, 0, 3], elementSize: 4), [4, 1, 3])
        XCTAssertEqual(HDF5File.chunkShape(for: [1_000_000], elementSize: 8), [125_000])
        for shape in [[768, 2304], [50257, 768], [3, 1000, 1000]] {
            let chunk = HDF5File.chunkShape(for: shape, elementSize: 4)
            XCTAssertLessThanOrEqual(chunk.reduce(4, *), HDF5File.maxChunkBytes, "\(shape)")
        }
    }

    func testIntegerAndDoubleArraysRoundTrip() throws {
        let url = folder.appendingPathComponent("ints.h5")
        let rngState: [UInt64] = [0, 1, UInt64.max, 0x9E37_79B9_7F4A_7C15]
        let positions: [Int64] = [Int64.min, -1, 0, 42, Int64.max]
        let tokens: [Int32] = [50256, 0, 1, Int32.max, Int32.min, 7]
        let losses: [Double] = [10.98, 3.5, .pi]
        let file = try HDF5File(creating: url)
        try file.write(rngState, to: "/rng/state")
        try file.write(positions, to: "/data/positions")
        try file.write(tokens, shape: [2, 3], to: "/data/tokens")
        try file.write(losses, to: "/metrics/loss")
        try file.write([Int64](), to: "/data/empty")
        try file.close()

        let reader = try HDF5File(readingFrom: url)
        XCTAssertEqual(try reader.read("/rng/state", as: UInt64.self), rngState)
        XCTAssertEqual(try reader.read("/data/positions", as: Int64.self, expectedShape: [5]), positions)
        XCTAssertEqual(try reader.read("/data/tokens", as: Int32.self, expectedShape: [2, 3]), tokens)
        XCTAssertEqual(try reader.shape(of: "/data/tokens"), [2, 3])
        XCTAssertEqual(try reader.read("/metrics/loss", as: Double.self), losses)
        XCTAssertEqual(try reader.read("/data/empty", as: Int64.self), [])
        XCTAssertEqual(try reader.elementType(of: "/rng/state"), .uint64)
        // No silent conversions: int32 data read as Int64 is an error naming both types.
        assertThrowsMentioning(["/data/tokens", "int32", "int64", url.path]) {
            _ = try reader.read("/data/tokens", as: Int64.self)
        }
        assertThrowsMentioning(["/data/tokens", "int32", "float32"]) { _ = try reader.readTensor("/data/tokens") }
        try reader.close()
    }

    func testWritingTwiceAndWritingReadOnlyAreErrors() throws {
        let url = folder.appendingPathComponent("twice.h5")
        let file = try HDF5File(creating: url)
        try file.write([Int32(1)], to: "/a/b")
        assertThrowsMentioning(["/a/b", "already exists"]) { try file.write([Int32(2)], to: "/a/b") }
        assertThrowsMentioning(["/a", "already exists"]) { try file.write([Int32(2)], to: "a") }
        assertThrowsMentioning(["invalid object path"]) { try file.write([Int32(2)], to: "/a//c") }
        assertThrowsMentioning(["shape [2, 2] holds 4 elements but 3 values"]) {
            try file.write([Int32(1), 2, 3], shape: [2, 2], to: "/c")
        }
        try file.close()
        assertThrowsMentioning(["closed", url.path]) { try file.write([Int32(3)], to: "/d") }
        try file.close()  // a second close is a no-op

        let reader = try HDF5File(readingFrom: url)
        assertThrowsMentioning(["read-only", "/e"]) { try reader.write([Int32(3)], to: "/e") }
        XCTAssertEqual(try reader.read("/a/b", as: Int32.self), [1])
        assertThrowsMentioning(["/nothing/here", "no such dataset", url.path]) { _ = try reader.readTensor("/nothing/here") }
        assertThrowsMentioning(["/a", "group, not a dataset"]) { _ = try reader.readTensor("/a") }
    }
}
