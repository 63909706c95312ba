import CHDF5
import Foundation

/// An open HDF5 file: tensors and integer arrays as checksummed datasets, attributes on any
/// object, groups created from slash paths.
///
/// Object paths are absolute slash paths; slashes separate groups and everything else (dots
/// included) belongs to the name, so `/params/h.3.attn.c_attn.weight` is the dataset
/// `h.3.attn.c_attn.weight` in the group `/params`. A path without a leading slash is taken
/// relative to the root.
///
/// ```swift
/// try HDF5File.writeAtomically(to: url) { file in
///     try file.write(wte, to: "/params/wte")
///     try file.setAttribute("step", .int64(1000))
/// }
/// let file = try HDF5File(readingFrom: url)
/// let wte = try file.readTensor("/params/wte", expectedShape: [50257, 768])
/// try file.close()
/// ```
///
/// Files use the HDF5 1.8+ format (version-2 object headers), whose metadata carries checksums;
/// every non-scalar dataset also has the Fletcher32 filter, so a flipped bit in data or metadata
/// is reported as an `HDF5Error` instead of returned as wrong numbers.
///
/// All HDF5 calls are serialised by one process-wide lock (the serial library is not
/// thread-safe), so a file may be handed to another thread, but calls never overlap.
public final class HDF5File: @unchecked Sendable {
    // @unchecked: `fileID` is only read or written while holding HDF5Library's lock.

    /// Where the file lives on disk.
    public let url: URL
    /// True when opened with `init(readingFrom:)`.
    public let isReadOnly: Bool
    private var fileID: hid_t

    /// The file's path on disk, as used in error messages.
    public var path: String { url.path }

    /// The version of the linked HDF5 library, e.g. "1.10.8" (worth recording in checkpoints).
    public static var libraryVersion: String { HDF5Library.version }

    /// True until `close()` succeeds.
    public var isOpen: Bool { HDF5Library.shared.withLock { fileID >= 0 } }

    // MARK: Opening and closing

    /// Creates a new file, replacing any file already at `url`.
    public convenience init(creating url: URL) throws {
        try self.init(url: url, create: true, exclusive: false)
    }

    /// A file in the 1.8 format Factorlab wrote before (unchecksummed version-1 chunk B-trees):
    /// for the tests that show such old files are still read, and verified.
    convenience init(creatingLegacyFormat url: URL) throws {
        try self.init(url: url, create: true, exclusive: false, legacyFormat: true)
    }

    /// Opens an existing file read-only.
    public convenience init(readingFrom url: URL) throws {
        try self.init(url: url, create: false, exclusive: false)
    }

    init(url: URL, create: Bool, exclusive: Bool, legacyFormat: Bool = false) throws {
        self.url = url
        self.isReadOnly = !create
        let path = url.path
        let context = HDF5Context(file: path, object: nil, operation: create ? "create" : "open")
        fileID = try HDF5Library.shared.withLock {
            let fapl = try context.check(H5Pcreate(fl_H5P_FILE_ACCESS()), "H5Pcreate(file access)")
            defer { H5Pclose(fapl) }
            // Close every object still open when the file closes, so close() really closes.
            try context.check(H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG), "H5Pset_fclose_degree")
            if create {
                // The 1.10 file format: superblock v3, version-2 object headers, and chunk indexes
                // (fixed array, single chunk) that carry checksums like the rest of the metadata,
                // so a damaged index is detected instead of read as unwritten chunks (fill values).
                try context.check(H5Pset_libver_bounds(fapl, legacyFormat ? fl_H5F_LIBVER_V18() : fl_H5F_LIBVER_V110(), fl_H5F_LIBVER_LATEST()),
                                  "H5Pset_libver_bounds")
                let flags = exclusive ? fl_H5F_ACC_EXCL() : fl_H5F_ACC_TRUNC()
                // The root group's attributes and links stay compact too (see createGroup).
                let fcpl = try context.check(H5Pcreate(fl_H5P_FILE_CREATE()), "H5Pcreate(file create)")
                defer { H5Pclose(fcpl) }
                try context.check(H5Pset_attr_phase_change(fcpl, 65535, 65535), "H5Pset_attr_phase_change")
                try context.check(H5Pset_link_phase_change(fcpl, 65535, 65535), "H5Pset_link_phase_change")
                let id = H5Fcreate(path, flags, fcpl, fapl)
                if id < 0 {
                    throw context.error("could not create the file (check that the folder exists and is writable)",
                                        withStack: true)
                }
                return id
            }
            guard FileManager.default.fileExists(atPath: path) else {
                throw context.error("no such file")
            }
            let isHDF5 = H5Fis_hdf5(path)
            if isHDF5 == 0 {
                throw context.error("not an HDF5 file (no HDF5 signature found)")
            }
            let id = H5Fopen(path, fl_H5F_ACC_RDONLY(), fapl)
            if id < 0 {
                throw context.error("could not open the file: it may be truncated or damaged, or unreadable",
                                    withStack: true)
            }
            return id
        }
    }

    /// Flushes (when writable) and closes the file. Calling it again does nothing.
    public func close() throws {
        try HDF5Library.shared.withLock {
            guard fileID >= 0 else { return }
            let context = HDF5Context(file: path, object: nil, operation: "close")
            let id = fileID
            fileID = -1
            if !isReadOnly {
                let flushed = H5Fflush(id, H5F_SCOPE_GLOBAL)
                if flushed < 0 {
                    let error = context.error("H5Fflush returned \(flushed)", withStack: true)
                    H5Fclose(id)
                    throw error
                }
            }
            try context.check(H5Fclose(id), "H5Fclose")
        }
    }

    /// Writes buffered data to disk without closing (the operating system may still cache it).
    public func flush() throws {
        try withFile("flush", object: nil) { id, context in
            _ = try context.check(H5Fflush(id, H5F_SCOPE_GLOBAL), "H5Fflush")
        }
    }

    deinit {
        // Safety net only: errors cannot be reported here, so callers should call close().
        HDF5Library.shared.withLock {
            if fileID >= 0 { H5Fclose(fileID) }
        }
    }

    // MARK: Shared plumbing

    /// Runs `body` with the lock held and the file's id, after checking the file is open.
    func withFile<R>(_ operation: String, object: String?,
                     _ body: (hid_t, HDF5Context) throws -> R) throws -> R {
        try HDF5Library.shared.withLock {
            let context = HDF5Context(file: path, object: object, operation: operation)
            guard fileID >= 0 else { throw context.error("the file is closed") }
            return try body(fileID, context)
        }
    }

    /// Throws unless the file was opened for writing.
    func requireWritable(_ context: HDF5Context) throws {
        if isReadOnly { throw context.error("the file was opened read-only") }
    }

    /// `path` as an absolute object path: "/" for the root, otherwise "/a/b" with no empty,
    /// "." or ".." components and no trailing slash.
    static func normalize(_ path: String, file: String, operation: String) throws -> String {
        if path.isEmpty || path == "/" { return "/" }
        let body = path.hasPrefix("/") ? String(path.dropFirst()) : path
        let parts = body.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." }) else {
            throw HDF5Error(file: file, object: path, operation: operation,
                            message: "invalid object path: use slash-separated names like /params/h.0.attn.c_attn.weight")
        }
        return "/" + parts.joined(separator: "/")
    }

    func normalize(_ path: String, _ operation: String) throws -> String {
        try HDF5File.normalize(path, file: self.path, operation: operation)
    }

    // MARK: Groups and existence

    /// Creates the group at `path` and any missing parents; does nothing if it already exists.
    public func createGroup(_ path: String) throws {
        let object = try normalize(path, "create group")
        try withFile("create group", object: object) { id, context in
            try requireWritable(context)
            if object == "/" { return }
            switch try kind(of: object, in: id, context) {
            case .group?: return
            case .dataset?: throw context.error("a dataset already exists at this path")
            case nil: break
            }
            let lcpl = try context.check(H5Pcreate(fl_H5P_LINK_CREATE()), "H5Pcreate(link create)")
            defer { H5Pclose(lcpl) }
            try context.check(H5Pset_create_intermediate_group(lcpl, 1), "H5Pset_create_intermediate_group")
            // Links stay in the group's own (checksummed) object header, however many there are:
            // "dense" storage (a fractal heap and a B-tree) is where fuzzing found libhdf5 1.10
            // freeing invalid memory on a damaged file.
            let gcpl = try context.check(H5Pcreate(fl_H5P_GROUP_CREATE()), "H5Pcreate(group create)")
            defer { H5Pclose(gcpl) }
            try context.check(H5Pset_link_phase_change(gcpl, 65535, 65535), "H5Pset_link_phase_change")
            try context.check(H5Pset_attr_phase_change(gcpl, 65535, 65535), "H5Pset_attr_phase_change")
            let group = try context.check(H5Gcreate2(id, object, lcpl, gcpl, fl_H5P_DEFAULT()), "H5Gcreate2")
            H5Gclose(group)
        }
    }

    /// What an object path names.
    public enum ObjectKind: Sendable, Equatable { case group, dataset }

    /// The kind of object at `path`, or nil when nothing is there.
    public func kind(of path: String) throws -> ObjectKind? {
        let object = try normalize(path, "look up")
        return try withFile("look up", object: object) { id, context in
            try kind(of: object, in: id, context)
        }
    }

    /// True when a group or dataset exists at `path`.
    public func exists(_ path: String) throws -> Bool { try kind(of: path) != nil }

    /// True when a dataset exists at `path`.
    public func isDataset(_ path: String) throws -> Bool { try kind(of: path) == .dataset }

    /// True when a group exists at `path` (the root always does).
    public func isGroup(_ path: String) throws -> Bool { try kind(of: path) == .group }

    /// Checks each link along a normalized path, then the type of the object it reaches.
    func kind(of object: String, in id: hid_t, _ context: HDF5Context) throws -> ObjectKind? {
        if object == "/" { return .group }
        var prefix = ""
        let parts = object.dropFirst().split(separator: "/")
        for (index, part) in parts.enumerated() {
            // Every prefix must be a group for the next link to be looked up in it.
            if index > 0, try objectType(prefix, in: id, context) != H5I_GROUP { return nil }
            prefix += "/" + part
            let found = try context.check(H5Lexists(id, prefix, fl_H5P_DEFAULT()), "H5Lexists")
            if found == 0 { return nil }
        }
        switch try objectType(object, in: id, context) {
        case H5I_GROUP: return .group
        case H5I_DATASET: return .dataset
        default: throw context.error("the object is neither a group nor a dataset (a named datatype?)")
        }
    }

    private func objectType(_ object: String, in id: hid_t, _ context: HDF5Context) throws -> H5I_type_t {
        let handle = try context.check(H5Oopen(id, object, fl_H5P_DEFAULT()), "H5Oopen")
        defer { H5Oclose(handle) }
        return H5Iget_type(handle)
    }

    // MARK: Listing

    /// Full paths of every dataset under `group`, recursively, sorted by name within each group.
    public func datasetPaths(under group: String = "/") throws -> [String] {
        let root = try normalize(group, "list")
        return try withFile("list", object: root) { id, context in
            guard try kind(of: root, in: id, context) == .group else {
                throw context.error("no group at this path")
            }
            var found: [String] = []
            try collectDatasets(in: root, file: id, context, into: &found)
            return found
        }
    }

    private func collectDatasets(in group: String, file: hid_t, _ context: HDF5Context,
                                 into found: inout [String], depth: Int = 0) throws {
        // Groups can link to their ancestors; no file of ours nests deeper than a few levels.
        guard depth < 32 else { throw context.error("groups nest more than 32 levels below \(group.prefix(80)) (a link cycle?)") }
        let groupID = try context.check(H5Gopen2(file, group, fl_H5P_DEFAULT()), "H5Gopen2")
        defer { H5Gclose(groupID) }
        var info = H5G_info_t()
        try context.check(H5Gget_info(groupID, &info), "H5Gget_info")
        var names: [String] = []
        for index in 0..<info.nlinks {
            let length = try context.check(
                H5Lget_name_by_idx(groupID, ".", H5_INDEX_NAME, H5_ITER_INC, index, nil, 0, fl_H5P_DEFAULT()),
                "H5Lget_name_by_idx")
            var buffer = [CChar](repeating: 0, count: Int(length) + 1)
            try context.check(
                H5Lget_name_by_idx(groupID, ".", H5_INDEX_NAME, H5_ITER_INC, index, &buffer, buffer.count,
                                   fl_H5P_DEFAULT()),
                "H5Lget_name_by_idx")
            names.append(decodeCString(buffer))
        }
        for name in names {
            let child = group == "/" ? "/" + name : group + "/" + name
            let handle = try context.check(H5Oopen(groupID, name, fl_H5P_DEFAULT()), "H5Oopen(\(child))")
            let type = H5Iget_type(handle)
            H5Oclose(handle)
            if type == H5I_DATASET {
                found.append(child)
            } else if type == H5I_GROUP {
                try collectDatasets(in: child, file: file, context, into: &found, depth: depth + 1)
            }
        }
    }
}
