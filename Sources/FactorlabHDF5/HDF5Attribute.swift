/// The value of an HDF5 attribute: a string, a 64-bit integer or a double, or an array of one
/// of them. Strings are written as variable-length UTF-8 (h5py reads them as `str`); fixed-length
/// strings written by other tools are read too, with trailing padding removed.
public enum HDF5AttributeValue: Sendable, Equatable, CustomStringConvertible {
    case string(String)
    case int64(Int64)
    case double(Double)
    case strings([String])
    case int64s([Int64])
    case doubles([Double])

    public var description: String {
        switch self {
        case .string(let v): return "\"\(v)\""
        case .int64(let v): return "\(v)"
        case .double(let v): return "\(v)"
        case .strings(let v): return "\(v)"
        case .int64s(let v): return "\(v)"
        case .doubles(let v): return "\(v)"
        }
    }

    /// The kind of value, for error messages ("string", "int64 array", ...).
    var kindName: String {
        switch self {
        case .string: return "string"
        case .int64: return "int64"
        case .double: return "double"
        case .strings: return "string array"
        case .int64s: return "int64 array"
        case .doubles: return "double array"
        }
    }
}
