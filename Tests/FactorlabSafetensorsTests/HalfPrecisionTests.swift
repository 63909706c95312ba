import XCTest
@testable import FactorlabSafetensors

/// The F16 and BF16 conversions against an independent definition, over all 65536 inputs.
final class HalfPrecisionTests: XCTestCase {
    /// binary16 value from its fields, computed in Double: (-1)^s × 2^(e-15) × (1 + m/1024) for
    /// normals, (-1)^s × 2^-24 × m for subnormals.
    static func referenceFloat16(_ h: UInt16) -> Double {
        let sign: Double = h & 0x8000 != 0 ? -1 : 1
        let e = Int(h >> 10) & 0x1F, m = Double(h & 0x3FF)
        switch e {
        case 0x1F: return m == 0 ? sign * .infinity : .nan
        case 0: return sign * m * 0x1p-24
        default: return sign * (1 + m / 1024) * Double(sign: .plus, exponent: e - 15, significand: 1)
        }
    }

    func testEveryFloat16PatternConvertsExactly() {
        var checked = 0
        for raw in 0...0xFFFF {
            let h = UInt16(raw)
            let got = floatFromFloat16Bits(h)
            let want = Self.referenceFloat16(h)
            if want.isNaN {
                XCTAssertTrue(got.isNaN, "0x\(String(h, radix: 16))")
                // Sign and payload kept, quiet bit set (x86 F16C, ARM FCVT, torch's vector path).
                XCTAssertEqual(got.bitPattern, UInt32(h & 0x8000) << 16 | 0x7FC0_0000 | UInt32(h & 0x3FF) << 13,
                               "0x\(String(h, radix: 16))")
            } else {
                // Every half is exactly a float: the Double reference converts without rounding.
                XCTAssertEqual(got.bitPattern, Float(want).bitPattern, "0x\(String(h, radix: 16))")
                XCTAssertEqual(Double(got), want)
            }
            checked += 1
        }
        XCTAssertEqual(checked, 65536)
        XCTAssertEqual(floatFromFloat16Bits(0x0001), 5.960464477539063e-08)  // 2^-24
        XCTAssertEqual(floatFromFloat16Bits(0x8000).bitPattern, 0x8000_0000)   // -0 keeps its sign
        XCTAssertEqual(floatFromFloat16Bits(0xC500), -5)
    }

    func testEveryBFloat16PatternIsTheTopHalfOfAFloat() {
        for raw in 0...0xFFFF {
            let b = UInt16(raw)
            XCTAssertEqual(floatFromBFloat16Bits(b).bitPattern, UInt32(b) << 16)
        }
        XCTAssertEqual(floatFromBFloat16Bits(0x3F80), 1)
        XCTAssertEqual(floatFromBFloat16Bits(0x0001), Float(sign: .plus, exponent: -133, significand: 1))  // subnormal
        XCTAssertEqual(floatFromBFloat16Bits(0x7F81).bitPattern, 0x7F81_0000)  // signalling NaN kept as is
    }
}
