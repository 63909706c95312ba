import Foundation
import XCTest
import FactorlabTensor
@testable import FactorlabSafetensors

/// Each malformed file is built here byte by byte, written to a temporary file and read back:
/// reading must throw a `SafetensorsError` naming the file, the tensor and the problem, never
/// crash or read out of bounds. The cases follow the checks of the reference implementation
/// (safetensors/src/tensor.rs), which rejects the same files.
final class MalformedFileTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("factorlab-st-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: folder)
    }

    /// 8-byte little-endian length (the JSON's own unless overridden), the JSON, `dataBytes` bytes.
    func image(_ json: String, dataBytes: Int, length: UInt64? = nil) -> [UInt8] {
        let header = Array(json.utf8)
        var out: [UInt8] = []
        withUnsafeBytes(of: (length ?? UInt64(header.count)).littleEndian) { out.append(contentsOf: $0) }
        out += header
        out += (0..<dataBytes).map { UInt8(truncatingIfNeeded: $0 &* 37) }
        return out
    }

    func file(_ bytes: [UInt8], _ name: String = #function) throws -> URL {
        let url = folder.appendingPathComponent(name.filter { $0.isLetter || $0.isNumber } + ".safetensors")
        try Data(bytes).write(to: url)
        return url
    }

    func assertRejects(_ bytes: [UInt8], _ problem: SafetensorsError.Problem, tensor: String? = nil,
                       mentions: String, sourceFile: StaticString = #filePath, line: UInt = #line) throws {
        let url = try file(bytes, "case\(line)")
        assertThrows(try SafetensorsFile.read(url), problem, file: url.path, tensor: tensor, mentions: mentions,
                     sourceFile: sourceFile, line: line)
        // The in-memory reader applies the same checks.
        assertThrows(try SafetensorsFile(bytes: bytes, source: "buffer"), problem, file: "buffer", tensor: tensor,
                     mentions: mentions, sourceFile: sourceFile, line: line)
    }

    func testFileShorterThanEightBytes() throws {
        try assertRejects([], .fileTooShort, mentions: "is 0 bytes long")
        try assertRejects([8, 0, 0], .fileTooShort, mentions: "8-byte header length")
    }

    func testHeaderLengthBeyondFile() throws {
        try assertRejects(image("{}", dataBytes: 0, length: 100), .headerBeyondFile, mentions: "header length 100 runs past the end")
        // A length shorter than the JSON cuts it: "{" alone is not valid JSON.
        try assertRejects(image("{}", dataBytes: 0, length: 1), .invalidJSON, mentions: "found end of header at byte 1")
    }

    func testAbsurdHeaderLength() throws {
        try assertRejects(image("{}", dataBytes: 0, length: 100_000_001), .headerTooLarge, mentions: "exceeds the 100000000-byte limit")
        try assertRejects(image("{}", dataBytes: 0, length: .max), .headerTooLarge, mentions: "probably not a safetensors file")
    }

    func testHeaderNotJSONOrNotAnObject() throws {
        try assertRejects(image(#"{"w":"#, dataBytes: 0), .invalidJSON, mentions: "not valid JSON: unexpected end of header")
        try assertRejects(image("[1, 2]", dataBytes: 0), .invalidJSON, mentions: "header is an array, expected a JSON object")
        try assertRejects(image("{}\0\0\0\0\0\0", dataBytes: 0), .invalidJSON, mentions: "after the end of the JSON value")
        var badUTF8 = image(#"{"\#u{e9}":1}"#, dataBytes: 0)
        badUTF8[10] = 0xFF  // break the two-byte sequence of é
        try assertRejects(badUTF8, .invalidJSON, mentions: "not valid UTF-8")
        try assertRejects(image(String(repeating: "[", count: 1000), dataBytes: 0), .invalidJSON, mentions: "nesting deeper")
    }

    func testEntryFieldsMissingOrMistyped() throws {
        try assertRejects(image(#"{"w":{"dtype":"F32","shape":[1]}}"#, dataBytes: 4), .invalidHeader, tensor: "w",
                          mentions: #"no "data_offsets" field"#)
        try assertRejects(image(#"{"w":[1]}"#, dataBytes: 0), .invalidHeader, tensor: "w", mentions: "expected an object")
        try assertRejects(image(#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}}"#, dataBytes: 4), .invalidHeader,
                          tensor: "w", mentions: "two non-negative integers")
        try assertRejects(image(#"{"__metadata__":{"step":1}}"#, dataBytes: 0), .invalidHeader,
                          mentions: "__metadata__ key 'step' holds the number 1, expected a string")
        try assertRejects(image(#"{"w":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}"#,
                                dataBytes: 4), .invalidHeader, tensor: "w", mentions: "appears twice")
    }

    func testUnknownDtype() throws {
        try assertRejects(image(#"{"w":{"dtype":"Q8","shape":[1],"data_offsets":[0,1]}}"#, dataBytes: 1), .unknownDtype,
                          tensor: "w", mentions: "unknown dtype 'Q8'")
    }

    func testBadShapes() throws {
        try assertRejects(image(#"{"w":{"dtype":"F32","shape":[2,-3],"data_offsets":[0,24]}}"#, dataBytes: 24), .invalidShape,
                          tensor: "w", mentions: "shape entry -3 is negative")
        try assertRejects(image(#"{"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,10]}}"#, dataBytes: 10), .invalidShape,
                          tensor: "w", mentions: "2.5 is not an integer")
        try assertRejects(image(#"{"w":{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,4]}}"#, dataBytes: 4),
                          .invalidShape, tensor: "w", mentions: "is too large")
        try assertRejects(image(#"{"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,4]}}"#, dataBytes: 4),
                          .invalidShape, tensor: "w", mentions: "overflows")
    }

    func testOffsetsDisagreeingWithDtypeAndShape() throws {
        try assertRejects(image(#"{"w":{"dtype":"F32","shape":[3,4],"data_offsets":[0,40]}}"#, dataBytes: 40), .sizeMismatch,
                          tensor: "w", mentions: "hold 40 bytes but F32 [3, 4] needs 48")
        try assertRejects(image(#"{"w":{"dtype":"BF16","shape":[3],"data_offsets":[0,12]}}"#, dataBytes: 12), .sizeMismatch,
                          tensor: "w", mentions: "needs 6")
        try assertRejects(image(#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}}"#, dataBytes: 8), .invalidOffsets,
                          tensor: "w", mentions: "end before they begin")
    }

    func testOffsetsOutOfTheDataArea() throws {
        try assertRejects(image(#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, dataBytes: 4), .truncated,
                          tensor: "w", mentions: "end past the data area, which holds only 4 bytes")
        try assertRejects(image(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                                dataBytes: 6), .truncated, tensor: "b", mentions: "truncated")
    }

    func testOverlappingTensors() throws {
        try assertRejects(image(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
                                dataBytes: 12), .invalidOffsets, tensor: "b", mentions: "overlap tensor 'a' at [0, 8]")
        // Same offsets twice: the second entry overlaps the first.
        try assertRejects(image(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
                                dataBytes: 4), .invalidOffsets, tensor: "b", mentions: "overlap tensor 'a'")
    }

    func testHolesBetweenOrBeforeTensors() throws {
        try assertRejects(image(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}}"#,
                                dataBytes: 20), .invalidOffsets, tensor: "b",
                          mentions: "hole of 4 unused bytes after tensor 'a', which ends at 8")
        try assertRejects(image(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, dataBytes: 12), .invalidOffsets,
                          tensor: "a", mentions: "hole of 4 unused bytes at the start of the data area")
    }

    func testBytesAfterTheLastTensor() throws {
        try assertRejects(image(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, dataBytes: 12), .trailingBytes,
                          mentions: "4 bytes after the last tensor")
    }

    func testTruncatedFile() throws {
        let full = try SafetensorsFile.serialize([("a", Tensor(shape: [2], scalars: [1, 2])),
                                                  ("b", Tensor(shape: [3], scalars: [3, 4, 5]))])
        XCTAssertNoThrow(try SafetensorsFile(bytes: full))
        try assertRejects(Array(full.dropLast(3)), .truncated, tensor: "b", mentions: "the file is truncated")
        // Cut inside the header: the length now points past the end.
        try assertRejects(Array(full.prefix(20)), .headerBeyondFile, mentions: "runs past the end of the file (20 bytes)")
    }

    /// Files the reference accepts that a strict reader might wrongly refuse.
    func testToleratedVariations() throws {
        let spaced = image(#"  {"__metadata__":null, "w" : {"shape":[1],"dtype":"F32","data_offsets":[0,4],"extra":[1,{"x":null}]}}   "#,
                           dataBytes: 0) + [0, 0, 0xC0, 0x3F]  // 1.5
        let st = try SafetensorsFile.read(try file(spaced))
        XCTAssertEqual(st.metadata, [:])
        XCTAssertEqual(try st.tensor("w").scalars, [1.5])

        let empty = try SafetensorsFile(bytes: image("{}", dataBytes: 0))
        XCTAssertEqual(empty.names, [])
        let zeros = try SafetensorsFile(bytes: image(
            #"{"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"b":{"dtype":"F16","shape":[0,5],"data_offsets":[0,0]},"c":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}"#,
            dataBytes: 2))
        XCTAssertEqual(Set(zeros.names), ["a", "b", "c"])
        XCTAssertEqual(zeros.names.last, "c")
        XCTAssertEqual(try zeros.tensor("b").shape, [0, 5])
        XCTAssertEqual(try zeros.integers("c"), [0, 37])
    }

    func testMissingFileAndDirectory() throws {
        let missing = folder.appendingPathComponent("nope.safetensors")
        assertThrows(try SafetensorsFile.read(missing), .io, file: missing.path, mentions: "cannot open")
        assertThrows(try SafetensorsFile.read(folder), .io, file: folder.path, mentions: "not a regular file")
    }
}
