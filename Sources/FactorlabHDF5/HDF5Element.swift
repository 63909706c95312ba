import CHDF5

/// The element types Factorlab stores in datasets.
public enum HDF5ElementType: String, Sendable, Equatable, CustomStringConvertible {
    case float32, float64, int32, int64, uint64, int8, uint16

    public var description: String { rawValue }

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .int8: return 1
        case .uint16: return 2
        case .float32, .int32: return 4
        case .float64, .int64, .uint64: return 8
        }
    }

    /// The native HDF5 type used both in memory and in the file (little-endian on x86-64 and arm64).
    var nativeType: hid_t {
        switch self {
        case .float32: return fl_H5T_NATIVE_FLOAT()
        case .float64: return fl_H5T_NATIVE_DOUBLE()
        case .int32: return fl_H5T_NATIVE_INT32()
        case .int64: return fl_H5T_NATIVE_INT64()
        case .uint64: return fl_H5T_NATIVE_UINT64()
        case .int8: return fl_H5T_NATIVE_INT8()
        case .uint16: return fl_H5T_NATIVE_UINT16()
        }
    }

    /// The element type a stored HDF5 datatype corresponds to, or nil for anything else
    /// (strings, compounds, float16, uint8, ...).
    static func matching(_ type: hid_t) -> HDF5ElementType? {
        let size = H5Tget_size(type)
        switch H5Tget_class(type) {
        case H5T_FLOAT:
            return size == 4 ? .float32 : size == 8 ? .float64 : nil
        case H5T_INTEGER:
            let signed = H5Tget_sign(type) == H5T_SGN_2
            switch (size, signed) {
            case (1, true): return .int8
            case (2, false): return .uint16
            case (4, true): return .int32
            case (8, true): return .int64
            case (8, false): return .uint64
            default: return nil
            }
        default:
            return nil
        }
    }

    /// A readable name for any stored HDF5 datatype, for error messages.
    static func describe(_ type: hid_t) -> String {
        if let known = matching(type) { return known.rawValue }
        let size = H5Tget_size(type)
        switch H5Tget_class(type) {
        case H5T_FLOAT: return "float\(size * 8)"
        case H5T_INTEGER: return (H5Tget_sign(type) == H5T_SGN_2 ? "int" : "uint") + "\(size * 8)"
        case H5T_STRING: return "string"
        case H5T_COMPOUND: return "compound"
        default: return "HDF5 type class \(H5Tget_class(type).rawValue)"
        }
    }
}

/// A Swift scalar that can be written to and read from an HDF5 dataset.
public protocol HDF5Scalar: Sendable {
    static var hdf5ElementType: HDF5ElementType { get }
}

extension Float: HDF5Scalar { public static var hdf5ElementType: HDF5ElementType { .float32 } }
extension Double: HDF5Scalar { public static var hdf5ElementType: HDF5ElementType { .float64 } }
extension Int32: HDF5Scalar { public static var hdf5ElementType: HDF5ElementType { .int32 } }
extension Int64: HDF5Scalar { public static var hdf5ElementType: HDF5ElementType { .int64 } }
extension UInt64: HDF5Scalar { public static var hdf5ElementType: HDF5ElementType { .uint64 } }
extension Int8: HDF5Scalar { public static var hdf5ElementType: HDF5ElementType { .int8 } }
extension UInt16: HDF5Scalar { public static var hdf5ElementType: HDF5ElementType { .uint16 } }
