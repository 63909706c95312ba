import Foundation
import XCTest
import FactorlabTensor
@testable import FactorlabSafetensors

/// Reads files written by the official `safetensors` library and compares every value, bit for
/// bit, with torch's `.float()` (Tools/reference/make_safetensors_fixtures.py wrote both).
final class FixtureTests: XCTestCase {
    struct ExpectedTensor {
        var dtype: String
        var shape: [Int]
        var float32Bits: [UInt32]?
        var int64: [Int64]?
    }

    static func fixtureURL(_ name: String) throws -> URL {
        let base = (name as NSString).deletingPathExtension, ext = (name as NSString).pathExtension
        return try XCTUnwrap(Bundle.module.url(forResource: base, withExtension: ext, subdirectory: "Fixtures"),
                             "missing fixture \(name): run python3 Tools/reference/make_safetensors_fixtures.py")
    }

    /// expected.json: {file: {"metadata": {...}, "tensors": {name: {dtype, shape, float32_bits | int64}}}}.
    static func expected(_ file: String) throws -> (metadata: [String: String], tensors: [String: ExpectedTensor]) {
        let data = try Data(contentsOf: fixtureURL("expected.json"))
        let root = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        let entry = try XCTUnwrap(root[file] as? [String: Any])
        let metadata = try XCTUnwrap(entry["metadata"] as? [String: String])
        var tensors: [String: ExpectedTensor] = [:]
        for (name, value) in try XCTUnwrap(entry["tensors"] as? [String: Any]) {
            let t = try XCTUnwrap(value as? [String: Any])
            tensors[name] = ExpectedTensor(
                dtype: try XCTUnwrap(t["dtype"] as? String),
                shape: try XCTUnwrap(t["shape"] as? [NSNumber]).map(\.intValue),
                float32Bits: (t["float32_bits"] as? [NSNumber])?.map { $0.uint32Value },
                int64: (t["int64"] as? [NSNumber])?.map { $0.int64Value })
        }
        return (metadata, tensors)
    }

    static let torchToSafetensors = ["float32": "F32", "float16": "F16", "bfloat16": "BF16", "float64": "F64",
                                     "int64": "I64", "int32": "I32"]

    func checkFixture(_ file: String) throws {
        let (metadata, expected) = try Self.expected(file)
        let st = try SafetensorsFile.read(Self.fixtureURL(file))
        XCTAssertEqual(st.metadata, metadata)
        XCTAssertEqual(Set(st.names), Set(expected.keys))
        XCTAssertEqual(st.names.count, expected.count)
        XCTAssertEqual(st.headerLength % 8, 0)

        for (name, want) in expected {
            let info = try XCTUnwrap(st.info(name), name)
            XCTAssertEqual(info.dtype, Self.torchToSafetensors[want.dtype], name)
            XCTAssertEqual(info.shape, want.shape, name)
            if let bits = want.float32Bits {
                let t = try st.tensor(name)
                XCTAssertEqual(t.shape, want.shape, name)
                let got = t.scalars.map(\.bitPattern)
                XCTAssertEqual(got.count, bits.count, name)
                let mismatches = zip(got, bits).enumerated().filter { $0.element.0 != $0.element.1 }
                XCTAssertTrue(mismatches.isEmpty, "\(name): \(mismatches.count) values differ, first: "
                              + mismatches.prefix(3).map { "[\($0.offset)] got 0x\(String($0.element.0, radix: 16)) "
                                  + "want 0x\(String($0.element.1, radix: 16))" }.joined(separator: ", "))
            } else {
                let ints = try XCTUnwrap(want.int64, name)
                XCTAssertEqual(try st.integers(name), ints, name)
            }
        }
    }

    func testMixedDtypesMatchTorchBitForBit() throws {
        try checkFixture("mixed.safetensors")
    }

    func testReferenceF32MatchesTorch() throws {
        try checkFixture("reference_f32.safetensors")
    }

    /// Spot checks of values whose meaning is easy to state, so a regenerated fixture that went
    /// wrong in the same way as the reader would still be caught.
    func testSpecialValuesHaveTheirKnownMeaning() throws {
        let st = try SafetensorsFile.read(Self.fixtureURL("mixed.safetensors"))
        let f16 = try st.tensor("f16_special").scalars
        XCTAssertEqual(f16[0].bitPattern, 0x0000_0000)                 // +0
        XCTAssertEqual(f16[1].bitPattern, 0x8000_0000)                 // -0
        XCTAssertEqual(f16[2], Float(sign: .plus, exponent: -24, significand: 1))  // smallest subnormal
        XCTAssertEqual(f16[6], Float(1023) * Float(sign: .plus, exponent: -24, significand: 1))  // largest subnormal
        XCTAssertEqual(f16[9], 1)
        XCTAssertEqual(f16[12], 65504)
        XCTAssertEqual(f16[14], .infinity)
        XCTAssertEqual(f16[15], -.infinity)
        XCTAssertTrue(f16[16].isNaN && f16[17].isNaN && f16[18].isNaN)
        XCTAssertEqual(f16[17].sign, .minus)

        let scalar = try st.tensor("f32_scalar")
        XCTAssertEqual(scalar.shape, [])
        XCTAssertEqual(scalar.item, 3.25)
        XCTAssertEqual(try st.tensor("f32_empty").shape, [0, 3])
        XCTAssertEqual(try st.tensor("f16_empty").shape, [0])
        XCTAssertEqual(try st.tensor("f64_values").scalars[0], Float(1.0 / 3.0))
        XCTAssertEqual(try st.integers("i64_ids"), [0, -1, 1 << 40, 50256])
        XCTAssertEqual(st.metadata["note"], "quote \" backslash \\ newline \n tab \t caf\u{e9} \u{2603}")
        XCTAssertEqual(st.entry("f16_subnormals")?.dtype, .F16)
        XCTAssertEqual(st.entry("f16_subnormals")?.elementCount, 1023)
    }

    func testWrongAccessorsAndMissingNamesThrowHelpfulErrors() throws {
        let url = try Self.fixtureURL("mixed.safetensors")
        let st = try SafetensorsFile.read(url)
        assertThrows(try st.tensor("i64_ids"), .unsupportedDtype, file: url.path, tensor: "i64_ids", mentions: "integers(_:)")
        assertThrows(try st.integers("f16_special"), .unsupportedDtype, file: url.path, tensor: "f16_special", mentions: "tensor(_:)")
        assertThrows(try st.tensor("wte.weight"), .tensorNotFound, file: url.path, tensor: "wte.weight", mentions: "no such tensor")
        XCTAssertNil(st.info("wte.weight"))
        XCTAssertFalse(st.contains("wte.weight"))
        XCTAssertTrue(st.contains("bf16_random"))
    }
}

/// Asserts that `body` throws a `SafetensorsError` of the given problem whose message names the
/// file, the tensor (when given) and contains `mentions`.
func assertThrows<T>(_ body: @autoclosure () throws -> T, _ problem: SafetensorsError.Problem, file path: String,
                     tensor: String? = nil, mentions: String, sourceFile: StaticString = #filePath, line: UInt = #line) {
    do {
        _ = try body()
        XCTFail("expected a \(problem) error, got success", file: sourceFile, line: line)
    } catch let e as SafetensorsError {
        XCTAssertEqual(e.problem, problem, "\(e)", file: sourceFile, line: line)
        XCTAssertEqual(e.file, path, file: sourceFile, line: line)
        XCTAssertEqual(e.tensor, tensor, "\(e)", file: sourceFile, line: line)
        let text = e.description
        XCTAssertTrue(text.contains(path), "message does not name the file: \(text)", file: sourceFile, line: line)
        if let tensor { XCTAssertTrue(text.contains("'\(tensor)'"), "message does not name the tensor: \(text)", file: sourceFile, line: line) }
        XCTAssertTrue(text.contains(mentions), "message lacks '\(mentions)': \(text)", file: sourceFile, line: line)
    } catch {
        XCTFail("expected SafetensorsError, got \(error)", file: sourceFile, line: line)
    }
}
