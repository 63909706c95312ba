/// The element types the safetensors format defines, spelled as in the header's `"dtype"`.
///
/// All of them can be parsed and validated; `SafetensorsFile.tensor(_:)` converts the floating
/// types F32, F16, BF16 and F64 to `Float`, `SafetensorsFile.integers(_:)` the integer types and
/// BOOL to `Int64`.
public enum SafetensorsDtype: String, CaseIterable, Sendable {
    case BOOL, U8, I8, I16, U16, I32, U32, I64, U64
    case F16, BF16, F32, F64, C64
    case F8_E5M2, F8_E4M3, F8_E8M0, F8_E4M3FNUZ, F8_E5M2FNUZ
    case F4, F6_E2M3, F6_E3M2

    /// Size of one element in bits (4 and 6 for the packed sub-byte types).
    public var bitWidth: Int {
        switch self {
        case .F4: return 4
        case .F6_E2M3, .F6_E3M2: return 6
        case .BOOL, .U8, .I8, .F8_E5M2, .F8_E4M3, .F8_E8M0, .F8_E4M3FNUZ, .F8_E5M2FNUZ: return 8
        case .I16, .U16, .F16, .BF16: return 16
        case .I32, .U32, .F32: return 32
        case .I64, .U64, .F64, .C64: return 64
        }
    }

    /// Bytes needed by `count` elements, or nil on overflow or when packed sub-byte elements
    /// do not fill whole bytes.
    func byteCount(elements count: Int) -> Int? {
        let (bits, overflow) = count.multipliedReportingOverflow(by: bitWidth)
        guard !overflow, bits % 8 == 0 else { return nil }
        return bits / 8
    }
}
