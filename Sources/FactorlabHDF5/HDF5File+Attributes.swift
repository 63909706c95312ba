import CHDF5
import Foundation

/// Attributes on the root group, groups and datasets.
extension HDF5File {
    /// Sets attribute `name` on the object at `object` (default: the root group), replacing any
    /// previous value. The object must already exist (see `createGroup(_:)`).
    public func setAttribute(_ name: String, _ value: HDF5AttributeValue, on object: String = "/") throws {
        let objectPath = try normalize(object, "set attribute")
        try withFile("set attribute '\(name)'", object: objectPath) { id, context in
            try requireWritable(context)
            guard !name.isEmpty else { throw context.error("attribute names cannot be empty") }
            guard try kind(of: objectPath, in: id, context) != nil else {
                throw context.error("no object at this path; create it first with createGroup(_:) or by writing the dataset")
            }
            if try context.check(H5Aexists_by_name(id, objectPath, name, fl_H5P_DEFAULT()), "H5Aexists_by_name") > 0 {
                try context.check(H5Adelete_by_name(id, objectPath, name, fl_H5P_DEFAULT()), "H5Adelete_by_name")
            }
            switch value {
            case .string(let string):
                try writeStrings([string], scalar: true, name, objectPath, id, context)
            case .strings(let strings):
                try writeStrings(strings, scalar: false, name, objectPath, id, context)
            case .int64(let v):
                try withUnsafeBytes(of: v) {
                    try writeNumbers($0.baseAddress!, count: 1, scalar: true, fl_H5T_NATIVE_INT64(), name, objectPath, id, context)
                }
            case .double(let v):
                try withUnsafeBytes(of: v) {
                    try writeNumbers($0.baseAddress!, count: 1, scalar: true, fl_H5T_NATIVE_DOUBLE(), name, objectPath, id, context)
                }
            case .int64s(let values):
                try values.withUnsafeBytes {
                    try writeNumbers($0.baseAddress, count: values.count, scalar: false, fl_H5T_NATIVE_INT64(),
                                     name, objectPath, id, context)
                }
            case .doubles(let values):
                try values.withUnsafeBytes {
                    try writeNumbers($0.baseAddress, count: values.count, scalar: false, fl_H5T_NATIVE_DOUBLE(),
                                     name, objectPath, id, context)
                }
            }
        }
    }

    /// The attribute `name` of the object at `object` (default: the root group). Integers of any
    /// width are returned as `.int64`/`.int64s`, floats as `.double`/`.doubles`.
    public func attribute(_ name: String, of object: String = "/") throws -> HDF5AttributeValue {
        let objectPath = try normalize(object, "read attribute")
        return try withFile("read attribute '\(name)'", object: objectPath) { id, context in
            guard try kind(of: objectPath, in: id, context) != nil else { throw context.error("no object at this path") }
            guard try context.check(H5Aexists_by_name(id, objectPath, name, fl_H5P_DEFAULT()), "H5Aexists_by_name") > 0 else {
                throw context.error("no attribute named '\(name)' (the object has: \(try attributeNames(objectPath, id, context).joined(separator: ", ")))")
            }
            let attribute = try context.check(
                H5Aopen_by_name(id, objectPath, name, fl_H5P_DEFAULT(), fl_H5P_DEFAULT()), "H5Aopen_by_name")
            defer { H5Aclose(attribute) }
            return try readAttribute(attribute, context)
        }
    }

    /// True when the object at `object` has an attribute called `name`.
    public func hasAttribute(_ name: String, of object: String = "/") throws -> Bool {
        let objectPath = try normalize(object, "look up attribute")
        return try withFile("look up attribute '\(name)'", object: objectPath) { id, context in
            guard try kind(of: objectPath, in: id, context) != nil else { throw context.error("no object at this path") }
            return try context.check(H5Aexists_by_name(id, objectPath, name, fl_H5P_DEFAULT()), "H5Aexists_by_name") > 0
        }
    }

    /// Names of the attributes of the object at `object`, sorted by name.
    public func attributeNames(of object: String = "/") throws -> [String] {
        let objectPath = try normalize(object, "list attributes")
        return try withFile("list attributes", object: objectPath) { id, context in
            guard try kind(of: objectPath, in: id, context) != nil else { throw context.error("no object at this path") }
            return try attributeNames(objectPath, id, context)
        }
    }

    // MARK: Typed accessors

    /// A string attribute; any other type is an error naming the attribute.
    public func stringAttribute(_ name: String, of object: String = "/") throws -> String {
        guard case .string(let v) = try attribute(name, of: object) else { throw typeError(name, object, "string") }
        return v
    }

    /// A scalar integer attribute.
    public func int64Attribute(_ name: String, of object: String = "/") throws -> Int64 {
        guard case .int64(let v) = try attribute(name, of: object) else { throw typeError(name, object, "int64") }
        return v
    }

    /// A scalar floating-point attribute.
    public func doubleAttribute(_ name: String, of object: String = "/") throws -> Double {
        guard case .double(let v) = try attribute(name, of: object) else { throw typeError(name, object, "double") }
        return v
    }

    /// An array-of-strings attribute.
    public func stringsAttribute(_ name: String, of object: String = "/") throws -> [String] {
        guard case .strings(let v) = try attribute(name, of: object) else { throw typeError(name, object, "string array") }
        return v
    }

    /// An array-of-integers attribute.
    public func int64sAttribute(_ name: String, of object: String = "/") throws -> [Int64] {
        guard case .int64s(let v) = try attribute(name, of: object) else { throw typeError(name, object, "int64 array") }
        return v
    }

    /// An array-of-doubles attribute.
    public func doublesAttribute(_ name: String, of object: String = "/") throws -> [Double] {
        guard case .doubles(let v) = try attribute(name, of: object) else { throw typeError(name, object, "double array") }
        return v
    }

    private func typeError(_ name: String, _ object: String, _ wanted: String) -> HDF5Error {
        let found = (try? attribute(name, of: object).kindName) ?? "another type"
        return HDF5Error(file: path, object: object, operation: "read attribute '\(name)'",
                         message: "expected a \(wanted) attribute, found a \(found)")
    }

    // MARK: Plumbing (lock held)

    private func attributeNames(_ objectPath: String, _ id: hid_t, _ context: HDF5Context) throws -> [String] {
        final class Names { var list: [String] = [] }
        let names = Names()
        let callback: H5A_operator2_t = { _, name, _, data in
            guard let name, let data else { return -1 }
            Unmanaged<Names>.fromOpaque(data).takeUnretainedValue().list.append(String(cString: name))
            return 0
        }
        let objectID = try context.check(H5Oopen(id, objectPath, fl_H5P_DEFAULT()), "H5Oopen")
        defer { H5Oclose(objectID) }
        try withExtendedLifetime(names) {
            var index: hsize_t = 0
            try context.check(H5Aiterate2(objectID, H5_INDEX_NAME, H5_ITER_INC, &index, callback,
                                          Unmanaged.passUnretained(names).toOpaque()), "H5Aiterate2")
        }
        return names.list
    }

    private func createAttribute(_ name: String, _ objectPath: String, type: hid_t, count: Int, scalar: Bool,
                                 _ id: hid_t, _ context: HDF5Context) throws -> hid_t {
        let space: hid_t
        if scalar {
            space = try context.check(H5Screate(H5S_SCALAR), "H5Screate(scalar)")
        } else {
            var dims = [hsize_t(count)]
            space = try context.check(H5Screate_simple(1, &dims, nil), "H5Screate_simple")
        }
        defer { H5Sclose(space) }
        return try context.check(
            H5Acreate_by_name(id, objectPath, name, type, space, fl_H5P_DEFAULT(), fl_H5P_DEFAULT(), fl_H5P_DEFAULT()),
            "H5Acreate_by_name")
    }

    private func writeNumbers(_ data: UnsafeRawPointer?, count: Int, scalar: Bool, _ type: hid_t, _ name: String,
                              _ objectPath: String, _ id: hid_t, _ context: HDF5Context) throws {
        let attribute = try createAttribute(name, objectPath, type: type, count: count, scalar: scalar, id, context)
        defer { H5Aclose(attribute) }
        if count > 0 { try context.check(H5Awrite(attribute, type, data), "H5Awrite") }
    }

    /// Strings are written fixed-length (NUL-terminated UTF-8, the longest string's size): they
    /// live in the attribute's own (checksummed) message. Variable-length strings would live in
    /// the global heap, which carries no checksum and which a damaged file can make libhdf5 1.10
    /// loop on for ever (found by fuzzing). Both kinds are read.
    private func writeStrings(_ strings: [String], scalar: Bool, _ name: String, _ objectPath: String,
                              _ id: hid_t, _ context: HDF5Context) throws {
        let size = max(1, (strings.map(\.utf8.count).max() ?? 0) + 1)
        let type = try fixedStringType(size: size, context)
        defer { H5Tclose(type) }
        let attribute = try createAttribute(name, objectPath, type: type, count: strings.count, scalar: scalar, id, context)
        defer { H5Aclose(attribute) }
        guard !strings.isEmpty else { return }
        var bytes = [UInt8](repeating: 0, count: strings.count * size)
        for (i, s) in strings.enumerated() { bytes.replaceSubrange((i * size)..<(i * size + s.utf8.count), with: Array(s.utf8)) }
        _ = try context.check(H5Awrite(attribute, type, bytes), "H5Awrite")
    }

    /// The in-memory type for reading variable-length strings (older files).
    private func variableStringType(_ context: HDF5Context) throws -> hid_t {
        let type = try context.check(H5Tcopy(fl_H5T_C_S1()), "H5Tcopy")
        do {
            try context.check(H5Tset_size(type, fl_H5T_VARIABLE()), "H5Tset_size(variable)")
            try context.check(H5Tset_cset(type, H5T_CSET_UTF8), "H5Tset_cset(UTF-8)")
        } catch {
            H5Tclose(type)
            throw error
        }
        return type
    }

    private func fixedStringType(size: Int, _ context: HDF5Context) throws -> hid_t {
        let type = try context.check(H5Tcopy(fl_H5T_C_S1()), "H5Tcopy")
        do {
            try context.check(H5Tset_size(type, size), "H5Tset_size")
            try context.check(H5Tset_strpad(type, H5T_STR_NULLTERM), "H5Tset_strpad")
            try context.check(H5Tset_cset(type, H5T_CSET_UTF8), "H5Tset_cset(UTF-8)")
        } catch {
            H5Tclose(type)
            throw error
        }
        return type
    }

    private func readAttribute(_ attribute: hid_t, _ context: HDF5Context) throws -> HDF5AttributeValue {
        let space = try context.check(H5Aget_space(attribute), "H5Aget_space")
        defer { H5Sclose(space) }
        let fileType = try context.check(H5Aget_type(attribute), "H5Aget_type")
        defer { H5Tclose(fileType) }
        let spaceClass = H5Sget_simple_extent_type(space)
        let scalar = spaceClass == H5S_SCALAR
        let count = spaceClass == H5S_NULL ? 0 : Int(try context.check(H5Sget_simple_extent_npoints(space), "H5Sget_simple_extent_npoints"))
        // Attributes are small (configs, recipes); a file claiming more is damaged or hostile.
        guard count <= 1 << 24 else { throw context.error("the attribute claims \(count) elements: the file is damaged") }

        switch H5Tget_class(fileType) {
        case H5T_STRING:
            let strings = try readStrings(attribute, fileType: fileType, space: space, count: count, context)
            return scalar ? .string(strings.first ?? "") : .strings(strings)
        case H5T_INTEGER:
            var values = [Int64](repeating: 0, count: count)
            if count > 0 {
                try context.check(H5Aread(attribute, fl_H5T_NATIVE_INT64(), &values), "H5Aread(int64)")
            }
            return scalar ? .int64(values.first ?? 0) : .int64s(values)
        case H5T_FLOAT:
            var values = [Double](repeating: 0, count: count)
            if count > 0 {
                try context.check(H5Aread(attribute, fl_H5T_NATIVE_DOUBLE(), &values), "H5Aread(double)")
            }
            return scalar ? .double(values.first ?? 0) : .doubles(values)
        default:
            throw context.error("unsupported attribute type \(HDF5ElementType.describe(fileType)) (expected string, integer or float)")
        }
    }

    private func readStrings(_ attribute: hid_t, fileType: hid_t, space: hid_t, count: Int,
                             _ context: HDF5Context) throws -> [String] {
        guard count > 0 else { return [] }
        let isVariable = try context.check(H5Tis_variable_str(fileType), "H5Tis_variable_str") > 0
        if isVariable {
            let memType = try variableStringType(context)
            defer { H5Tclose(memType) }
            var pointers = [UnsafeMutablePointer<CChar>?](repeating: nil, count: count)
            try context.check(H5Aread(attribute, memType, &pointers), "H5Aread(variable-length string)")
            let strings = pointers.map { $0.map { String(cString: $0) } ?? "" }
            fl_reclaim_vlen(memType, space, &pointers)
            return strings
        }
        // Fixed-length: read the raw bytes of each element and drop NUL or space padding.
        let size = H5Tget_size(fileType)
        guard size > 0, size <= 1 << 26, count * size <= 1 << 28 else {
            throw context.error("fixed-length string attribute of \(count) x \(size) bytes: the file is damaged")
        }
        let memType = try context.check(H5Tcopy(fileType), "H5Tcopy")
        defer { H5Tclose(memType) }
        var bytes = [UInt8](repeating: 0, count: count * size)
        try context.check(H5Aread(attribute, memType, &bytes), "H5Aread(fixed-length string)")
        let padding = H5Tget_strpad(fileType)
        return (0..<count).map { i in
            var element = bytes[(i * size)..<((i + 1) * size)]
            if let nul = element.firstIndex(of: 0) { element = element[..<nul] }
            if padding == H5T_STR_SPACEPAD {
                while element.last == UInt8(ascii: " ") { element = element.dropLast() }
            }
            return String(decoding: element, as: UTF8.self)
        }
    }
}
