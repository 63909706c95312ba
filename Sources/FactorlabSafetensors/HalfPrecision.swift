/// Bit-level conversions of 16-bit floats to `Float`, written out so they do not depend on
/// Swift's `Float16` (unavailable on x86 Linux) and are exact for every one of the 65536 inputs.

/// IEEE 754 binary16 (F16) to binary32.
///
/// Every finite half, subnormals included, is exactly representable as a float, so this is
/// exact. Infinities keep their sign. A NaN keeps its sign and payload (shifted into the top of
/// the float mantissa) and gets the quiet bit set: the rule of x86 F16C `vcvtph2ps`, ARM `FCVT`
/// and PyTorch's vectorized CPU path.
@inlinable
public func float32BitsFromFloat16(_ h: UInt16) -> UInt32 {
    let sign = UInt32(h & 0x8000) << 16
    let exponent = UInt32(h >> 10) & 0x1F
    var mantissa = UInt32(h & 0x03FF)
    switch exponent {
    case 0x1F:
        // inf (mantissa 0) or NaN (quieted).
        return sign | 0x7F80_0000 | (mantissa << 13) | (mantissa != 0 ? 0x0040_0000 : 0)
    case 0:
        if mantissa == 0 { return sign }  // signed zero
        // Subnormal: value = mantissa * 2^-24. Shift the leading one up to the implicit bit,
        // lowering the exponent once per shift; 2^-14 has biased float exponent 127 - 14 = 113.
        var e: UInt32 = 113
        while mantissa & 0x0400 == 0 {
            mantissa <<= 1
            e -= 1
        }
        return sign | (e << 23) | ((mantissa & 0x03FF) << 13)
    default:
        // Normal: rebias the exponent from 15 to 127.
        return sign | ((exponent + 112) << 23) | (mantissa << 13)
    }
}

/// bfloat16 (BF16) to binary32: bfloat16 is the top half of a float, so this is exact for every
/// input, NaN payloads included (no quieting, as in PyTorch).
@inlinable
public func float32BitsFromBFloat16(_ b: UInt16) -> UInt32 { UInt32(b) << 16 }

/// `Float` from an F16 bit pattern; see `float32BitsFromFloat16(_:)`.
@inlinable
public func floatFromFloat16Bits(_ h: UInt16) -> Float { Float(bitPattern: float32BitsFromFloat16(h)) }

/// `Float` from a BF16 bit pattern.
@inlinable
public func floatFromBFloat16Bits(_ b: UInt16) -> Float { Float(bitPattern: float32BitsFromBFloat16(b)) }
