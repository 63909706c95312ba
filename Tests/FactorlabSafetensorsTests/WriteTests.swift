import Foundation
import XCTest
import FactorlabTensor
@testable import FactorlabSafetensors

/// The writer: round trips, the reference byte layout, atomic replacement, argument checks.
final class WriteTests: XCTestCase {
    var folder: URL!

    /// The metadata note of Tools/reference/make_safetensors_fixtures.py (JSON escapes, non-ASCII).
    static let note = "quote \" backslash \\ newline \n tab \t caf\u{e9} \u{2603}"

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("factorlab-st-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: folder)
    }

    func bits(_ t: Tensor) -> [UInt32] { t.scalars.map(\.bitPattern) }

    func testRoundTripKeepsEveryBitShapeAndMetadata() throws {
        let specials: [UInt32] = [0x8000_0000, 0x0000_0001, 0x7F80_0000, 0xFF80_0000, 0x7FC0_0123, 0x7F7F_FFFF]
        var rng = RandomGenerator(seed: 7)
        let tensors: [(String, Tensor)] = [
            ("z.specials", try Tensor(shape: [2, 3], scalars: specials.map { Float(bitPattern: $0) })),
            ("a.scalar", Tensor(-2.75)),
            ("empty", Tensor(zeros: [0, 4])),
            ("h.0.mlp.c_fc.weight", Tensor.randomNormal([8, 5], using: &rng)),
            ("transposed", try Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6]).transposed()),  // a strided view
        ]
        let metadata = ["format": "pt", "note": Self.note, "ctrl": "bell \u{07} nul-free \u{1F}", "": "empty key"]
        let url = folder.appendingPathComponent("round.safetensors")
        try SafetensorsFile.write(tensors, metadata: metadata, to: url)

        let st = try SafetensorsFile.read(url)
        XCTAssertEqual(st.names, ["a.scalar", "empty", "h.0.mlp.c_fc.weight", "transposed", "z.specials"])
        XCTAssertEqual(st.metadata, metadata)
        for (name, t) in tensors {
            let back = try st.tensor(name)
            XCTAssertEqual(st.info(name)?.dtype, "F32")
            XCTAssertEqual(back.shape, t.shape, name)
            XCTAssertEqual(bits(back), bits(t), name)
        }
        XCTAssertEqual(try st.tensor("transposed").scalars, [1, 4, 2, 5, 3, 6])
        XCTAssertEqual(try st.tensor("z.specials").scalars.map(\.bitPattern), specials)
    }

    /// Same tensors and metadata as the fixture written by `safetensors.torch.save_file`: the
    /// bytes must be identical.
    func testBytesMatchTheReferenceWriter() throws {
        let fixture = try FixtureTests.fixtureURL("reference_f32.safetensors")
        let reference = try SafetensorsFile.read(fixture)
        let tensors = try reference.names.reversed().map { ($0, try reference.tensor($0)) }
        XCTAssertEqual(tensors.count, 5)
        XCTAssertEqual(try reference.tensor("wte")[0, 1], Float(1) / 7 - 0.5)

        let expected = try [UInt8](Data(contentsOf: fixture))
        XCTAssertEqual(try SafetensorsFile.serialize(tensors, metadata: ["format": "pt"]), expected)
        let url = folder.appendingPathComponent("ours.safetensors")
        try SafetensorsFile.write(tensors, metadata: ["format": "pt"], to: url)
        XCTAssertEqual(try [UInt8](Data(contentsOf: url)), expected)
    }

    /// The layout of the reference writer, checked field by field on a file with unsorted input.
    func testLayoutIsAlignedSortedAndContiguous() throws {
        let tensors: [(String, Tensor)] = [
            ("b", try Tensor(shape: [3], scalars: [1, 2, 3])),
            ("a", Tensor(shape: [2, 2], repeating: 0.5)),
            ("B", Tensor(4)),            // uppercase sorts before lowercase (byte order)
            ("a.0", Tensor(zeros: [0])),
        ]
        for metadata in [nil, [:], ["k": "v"]] as [[String: String]?] {
            let url = folder.appendingPathComponent("layout.safetensors")
            try SafetensorsFile.write(tensors, metadata: metadata, to: url)
            let bytes = try [UInt8](Data(contentsOf: url))
            let n = bytes.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
            XCTAssertEqual(n % 8, 0, "header length \(n)")
            let header = bytes[8..<(8 + n)]
            let json = String(decoding: header, as: UTF8.self)
            XCTAssertTrue(json.hasPrefix("{"))
            let trimmed = json.reversed().drop(while: { $0 == " " })
            XCTAssertEqual(trimmed.first, "}")
            XCTAssertLessThan(json.count - trimmed.count, 8, "padding is fewer than 8 spaces")

            // Entries appear, and data follows, in byte-wise name order with contiguous offsets.
            let order = ["B", "a", "a.0", "b"]
            let positions = order.map { json.range(of: "\"\($0)\":{")!.lowerBound }
            XCTAssertEqual(positions, positions.sorted())
            let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(header)) as? [String: Any])
            var offset = 0
            for name in order {
                let entry = try XCTUnwrap(obj[name] as? [String: Any])
                XCTAssertEqual(entry["dtype"] as? String, "F32")
                let offsets = try XCTUnwrap(entry["data_offsets"] as? [Int])
                XCTAssertEqual(offsets[0], offset, name)
                offset = offsets[1]
            }
            XCTAssertEqual(8 + n + offset, bytes.count, "data area ends at the end of the file")
            if let metadata {
                XCTAssertTrue(json.hasPrefix("{\"__metadata__\":{"))
                XCTAssertEqual(obj["__metadata__"] as? [String: String], metadata)
            } else {
                XCTAssertNil(obj["__metadata__"])
            }
            // Data: B = 4, a = 4 × 0.5, a.0 empty, b = 1, 2, 3, as little-endian floats.
            let data = Array(bytes[(8 + n)...])
            let floats = stride(from: 0, to: data.count, by: 4).map {
                Float(bitPattern: UInt32(data[$0]) | UInt32(data[$0 + 1]) << 8 | UInt32(data[$0 + 2]) << 16 | UInt32(data[$0 + 3]) << 24)
            }
            XCTAssertEqual(floats, [4, 0.5, 0.5, 0.5, 0.5, 1, 2, 3])
        }
    }

    func testWriteReplacesAtomicallyAndLeavesNoTemporaryFiles() throws {
        let url = folder.appendingPathComponent("ckpt.safetensors")
        try SafetensorsFile.write(["w": Tensor(shape: [1000], repeating: 1)], to: url)
        let before = try SafetensorsFile.read(url)  // stays mapped across the replacement
        try SafetensorsFile.write(["w": Tensor(shape: [3], repeating: 2), "v": Tensor(5)], to: url)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), ["ckpt.safetensors"])
        let after = try SafetensorsFile.read(url)
        XCTAssertEqual(after.names, ["v", "w"])
        XCTAssertEqual(try after.tensor("w").scalars, [2, 2, 2])
        XCTAssertEqual(try before.tensor("w").scalars, [Float](repeating: 1, count: 1000))

        let nowhere = folder.appendingPathComponent("missing/ckpt.safetensors")
        assertThrows(try SafetensorsFile.write(["w": Tensor(1)], to: nowhere), .io, file: nowhere.path,
                     mentions: "does the folder exist")
    }

    func testWriterRejectsDuplicateAndReservedNames() throws {
        let url = folder.appendingPathComponent("bad.safetensors")
        assertThrows(try SafetensorsFile.write([("w", Tensor(1)), ("w", Tensor(2))], to: url), .invalidArgument,
                     file: url.path, tensor: "w", mentions: "two tensors are named 'w'")
        assertThrows(try SafetensorsFile.write([("__metadata__", Tensor(1))], to: url), .invalidArgument,
                     file: url.path, tensor: "__metadata__", mentions: "reserved")
        XCTAssertFalse(FileManager.default.fileExists(atPath: url.path))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), [])
    }

    func testLargeTensorRoundTripThroughTheMapping() throws {
        var rng = RandomGenerator(seed: 11)
        let big = Tensor.randomUniform([1024, 3072], low: -1, high: 1, using: &rng)  // 12 MB
        let url = folder.appendingPathComponent("big.safetensors")
        try SafetensorsFile.write([("c_fc", big), ("bias", Tensor(shape: [3072], repeating: 0.25))], to: url)
        let st = try SafetensorsFile.read(url)
        XCTAssertEqual(st.entry("c_fc")?.dataOffsets, 12288..<(12288 + 1024 * 3072 * 4))
        let back = try st.tensor("c_fc")
        XCTAssertEqual(back.shape, [1024, 3072])
        XCTAssertEqual(bits(back), bits(big))
        XCTAssertEqual(try st.tensor("bias")[3071], 0.25)
    }

    /// Writes the reference tensors with the fixture script's metadata. With
    /// FACTORLAB_SAFETENSORS_EXPORT=/some/path set, the file goes there for
    /// `python3 Tools/reference/make_safetensors_fixtures.py --check /some/path`.
    func testExportForPythonCheck() throws {
        let reference = try SafetensorsFile.read(try FixtureTests.fixtureURL("reference_f32.safetensors"))
        let tensors = try reference.names.map { ($0, try reference.tensor($0)) }
        let target = ProcessInfo.processInfo.environment["FACTORLAB_SAFETENSORS_EXPORT"]
            .map { URL(fileURLWithPath: $0) } ?? folder.appendingPathComponent("export.safetensors")
        let metadata = ["format": "pt", "note": Self.note]
        try SafetensorsFile.write(tensors, metadata: metadata, to: target)
        let back = try SafetensorsFile.read(target)
        XCTAssertEqual(back.metadata, metadata)
        XCTAssertEqual(back.names, ["a.scalar", "h.0.attn", "ln.bias", "wte", "z_empty"])
        for (name, t) in tensors { XCTAssertEqual(bits(try back.tensor(name)), bits(t), name) }
    }
}
