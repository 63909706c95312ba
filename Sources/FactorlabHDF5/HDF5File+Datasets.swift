import CHDF5
import FactorlabTensor

/// Datasets: Float32 tensors and arrays of `HDF5Scalar` values, with their shapes.
///
/// Every dataset of rank 1 or more is chunked (chunks of at most `maxChunkBytes`) and carries the
/// Fletcher32 checksum filter, which HDF5 verifies on every read. HDF5 cannot chunk a scalar
/// (rank-0) dataspace, so rank-0 values are stored compactly inside the dataset's object header,
/// which in this file format (version 2) is itself protected by a checksum.
extension HDF5File {
    /// Largest chunk written, in bytes. HDF5's default chunk cache is 1 MiB per dataset.
    public static let maxChunkBytes = 1 << 20

    // MARK: Writing

    /// Writes `tensor` (any layout; stored row-major) as a new Float32 dataset at `path`,
    /// creating missing groups. Fails if an object already exists there.
    public func write(_ tensor: Tensor, to path: String) throws {
        let shape = tensor.shape
        try tensor.withUnsafePointer { pointer in
            try writeDataset(UnsafeRawPointer(pointer), shape: shape, type: .float32, to: path)
        }
    }

    /// Writes `values` as a new dataset at `path` with the given shape (default: one axis of
    /// `values.count`), creating missing groups.
    public func write<T: HDF5Scalar>(_ values: [T], shape: [Int]? = nil, to path: String) throws {
        let shape = shape ?? [values.count]
        let count = shape.reduce(1, *)
        guard shape.allSatisfy({ $0 >= 0 }), count == values.count else {
            throw HDF5Error(file: self.path, object: path, operation: "write",
                            message: "shape \(describe(shape)) holds \(count) elements but \(values.count) values were given")
        }
        try values.withUnsafeBytes { bytes in
            try writeDataset(bytes.baseAddress, shape: shape, type: T.hdf5ElementType, to: path)
        }
    }

    /// Chunk extents for a dataset: whole trailing axes while they fit in `maxChunkBytes`, then
    /// an even split of the next axis, 1 along the rest. Zero extents get chunk extent 1.
    public static func chunkShape(for shape: [Int], elementSize: Int,
                                  maxChunkBytes: Int = HDF5File.maxChunkBytes) -> [Int] {
        var budget = max(1, maxChunkBytes / elementSize)
        var chunk = [Int](repeating: 1, count: shape.count)
        for axis in stride(from: shape.count - 1, through: 0, by: -1) {
            let extent = max(shape[axis], 1)
            if extent <= budget {
                chunk[axis] = extent
                budget /= extent
            } else {
                // Split this axis into equal pieces no larger than the budget (less padding
                // in the last chunk than cutting at exactly `budget`).
                let pieces = (extent + budget - 1) / budget
                chunk[axis] = (extent + pieces - 1) / pieces
                break
            }
        }
        return chunk
    }

    func writeDataset(_ data: UnsafeRawPointer?, shape: [Int], type: HDF5ElementType, to path: String) throws {
        let object = try normalize(path, "write")
        try withFile("write", object: object) { id, context in
            try requireWritable(context)
            guard object != "/" else { throw context.error("the root group cannot be a dataset") }
            guard shape.allSatisfy({ $0 >= 0 }) else { throw context.error("negative extent in shape \(describe(shape))") }
            if try kind(of: object, in: id, context) != nil {
                throw context.error("an object already exists at this path (datasets are written once)")
            }
            let count = shape.reduce(1, *)

            let dcpl = try context.check(H5Pcreate(fl_H5P_DATASET_CREATE()), "H5Pcreate(dataset create)")
            defer { H5Pclose(dcpl) }
            let space: hid_t
            if shape.isEmpty {
                space = try context.check(H5Screate(H5S_SCALAR), "H5Screate(scalar)")
                try context.check(H5Pset_layout(dcpl, H5D_COMPACT), "H5Pset_layout(compact)")
            } else {
                let dims = shape.map { hsize_t($0) }
                // A zero extent needs a maximum of at least 1 so that a chunk of extent 1 fits.
                let maxDims = shape.map { hsize_t(max($0, 1)) }
                space = try context.check(H5Screate_simple(Int32(shape.count), dims, maxDims), "H5Screate_simple")
                let chunk = HDF5File.chunkShape(for: shape, elementSize: type.size).map { hsize_t($0) }
                try context.check(H5Pset_chunk(dcpl, Int32(chunk.count), chunk), "H5Pset_chunk")
                try context.check(H5Pset_fletcher32(dcpl), "H5Pset_fletcher32")
            }
            defer { H5Sclose(space) }

            let lcpl = try context.check(H5Pcreate(fl_H5P_LINK_CREATE()), "H5Pcreate(link create)")
            defer { H5Pclose(lcpl) }
            try context.check(H5Pset_create_intermediate_group(lcpl, 1), "H5Pset_create_intermediate_group")

            let dataset = try context.check(
                H5Dcreate2(id, object, type.nativeType, space, lcpl, dcpl, fl_H5P_DEFAULT()), "H5Dcreate2")
            defer { H5Dclose(dataset) }
            if count > 0 {
                try context.check(
                    H5Dwrite(dataset, type.nativeType, fl_H5S_ALL(), fl_H5S_ALL(), fl_H5P_DEFAULT(), data),
                    "H5Dwrite")
            }
        }
    }

    // MARK: Reading

    /// Reads the Float32 dataset at `path` into a contiguous tensor. With `expectedShape`, a
    /// dataset of another shape is an error naming both shapes.
    public func readTensor(_ path: String, expectedShape: [Int]? = nil) throws -> Tensor {
        try readDataset(path, type: .float32, expectedShape: expectedShape) { shape, read in
            let tensor = Tensor(uninitializedShape: shape)
            try read(UnsafeMutableRawPointer(tensor.unsafeBase))
            return tensor
        }
    }

    /// Reads the dataset at `path` as a flat row-major array of `T`; the stored element type
    /// must be exactly `T` (no silent conversions).
    public func read<T: HDF5Scalar>(_ path: String, as type: T.Type = T.self,
                                    expectedShape: [Int]? = nil) throws -> [T] {
        try readDataset(path, type: T.hdf5ElementType, expectedShape: expectedShape) { shape, read in
            let count = shape.reduce(1, *)
            return try [T](unsafeUninitializedCapacity: count) { buffer, initialized in
                try read(UnsafeMutableRawPointer(buffer.baseAddress))
                initialized = count
            }
        }
    }

    /// The shape of the dataset at `path` ([] for a scalar).
    public func shape(of path: String) throws -> [Int] {
        try datasetInfo(path).shape
    }

    /// The element type of the dataset at `path`, or nil if it is not one of `HDF5ElementType`.
    public func elementType(of path: String) throws -> HDF5ElementType? {
        try datasetInfo(path).type
    }

    private func datasetInfo(_ path: String) throws -> (shape: [Int], type: HDF5ElementType?) {
        let object = try normalize(path, "inspect")
        return try withFile("inspect", object: object) { id, context in
            let dataset = try openDataset(object, in: id, context)
            defer { H5Dclose(dataset) }
            let fileType = try context.check(H5Dget_type(dataset), "H5Dget_type")
            defer { H5Tclose(fileType) }
            return (try datasetShape(dataset, context), HDF5ElementType.matching(fileType))
        }
    }

    /// Opens a dataset with an error that says so when the path is missing or is a group.
    func openDataset(_ object: String, in id: hid_t, _ context: HDF5Context) throws -> hid_t {
        switch try kind(of: object, in: id, context) {
        case nil: throw context.error("no such dataset")
        case .group?: throw context.error("this is a group, not a dataset")
        case .dataset?: return try context.check(H5Dopen2(id, object, fl_H5P_DEFAULT()), "H5Dopen2")
        }
    }

    func datasetShape(_ dataset: hid_t, _ context: HDF5Context) throws -> [Int] {
        let space = try context.check(H5Dget_space(dataset), "H5Dget_space")
        defer { H5Sclose(space) }
        let rank = try context.check(H5Sget_simple_extent_ndims(space), "H5Sget_simple_extent_ndims")
        var dims = [hsize_t](repeating: 0, count: Int(rank))
        if rank > 0 {
            try context.check(H5Sget_simple_extent_dims(space, &dims, nil), "H5Sget_simple_extent_dims")
        }
        return dims.map { Int($0) }
    }

    /// Opens the dataset, checks its element type and shape, then lets `make` allocate the
    /// destination for `shape` and call the reader it is given with that destination.
    private func readDataset<R>(_ path: String, type: HDF5ElementType, expectedShape: [Int]?,
                                _ make: ([Int], (UnsafeMutableRawPointer?) throws -> Void) throws -> R) throws -> R {
        let object = try normalize(path, "read")
        return try withFile("read", object: object) { id, context in
            let dataset = try openDataset(object, in: id, context)
            defer { H5Dclose(dataset) }
            let fileType = try context.check(H5Dget_type(dataset), "H5Dget_type")
            defer { H5Tclose(fileType) }
            guard HDF5ElementType.matching(fileType) == type else {
                throw context.error("the dataset stores \(HDF5ElementType.describe(fileType)) elements, but \(type) was requested")
            }
            let shape = try datasetShape(dataset, context)
            if let expectedShape, expectedShape != shape {
                throw context.error("shape mismatch: expected \(describe(expectedShape)), found \(describe(shape))")
            }
            let count = try HDF5File.elementCount(shape, context)
            try verifyStorage(dataset, shape: shape, elementSize: type.size, context)
            return try make(shape) { destination in
                guard count > 0 else { return }
                let status = H5Dread(dataset, type.nativeType, fl_H5S_ALL(), fl_H5S_ALL(), fl_H5P_DEFAULT(), destination)
                if status < 0 {
                    throw context.error("H5Dread returned \(status)", withStack: true)
                }
            }
        }
    }

    /// The element count of a stored shape, refusing one that overflows before it sizes memory.
    static func elementCount(_ shape: [Int], _ context: HDF5Context) throws -> Int {
        var n = 1
        for d in shape {
            let (r, o) = n.multipliedReportingOverflow(by: d)
            guard d >= 0, !o, r <= Int.max / 16 else { throw context.error("the stored shape \(describe(shape)) is too large to read") }
            n = r
        }
        return n
    }

    /// Checks that a chunked dataset's storage is all there before it is read: every chunk the
    /// shape needs is allocated, and each holds at least its data. HDF5 returns fill values
    /// (zeros) for a chunk its index does not list, so a damaged index in a file written with
    /// unchecksummed (version 1) B-trees would otherwise read as silently zeroed weights.
    func verifyStorage(_ dataset: hid_t, shape: [Int], elementSize: Int, _ context: HDF5Context) throws {
        guard !shape.isEmpty, shape.allSatisfy({ $0 > 0 }) else { return }
        let dcpl = try context.check(H5Dget_create_plist(dataset), "H5Dget_create_plist")
        defer { H5Pclose(dcpl) }
        guard H5Pget_layout(dcpl) == H5D_CHUNKED else {
            let stored = H5Dget_storage_size(dataset)
            guard stored >= hsize_t(shape.reduce(1, *) * elementSize) else {
                throw context.error("the dataset stores \(stored) bytes, its shape \(describe(shape)) needs \(shape.reduce(1, *) * elementSize): the file is damaged or truncated")
            }
            return
        }
        var chunk = [hsize_t](repeating: 0, count: shape.count)
        try context.check(H5Pget_chunk(dcpl, Int32(shape.count), &chunk), "H5Pget_chunk")
        guard chunk.allSatisfy({ $0 > 0 }) else { throw context.error("the dataset's chunk shape \(chunk) is invalid: the file is damaged") }
        let expected = zip(shape, chunk).reduce(1) { $0 * ((hsize_t($1.0) + $1.1 - 1) / $1.1) }
        let space = try context.check(H5Dget_space(dataset), "H5Dget_space")
        defer { H5Sclose(space) }
        var allocated: hsize_t = 0
        try context.check(H5Dget_num_chunks(dataset, space, &allocated), "H5Dget_num_chunks")
        guard allocated == expected else {
            throw context.error("\(allocated) of the \(expected) chunks its shape \(describe(shape)) needs are stored: the file's chunk index is damaged or the file is incomplete (restore it from another copy or rewrite it)")
        }
        let chunkBytes = chunk.reduce(hsize_t(1), *) * hsize_t(elementSize)
        var offsets = [hsize_t](repeating: 0, count: shape.count)
        for index in 0..<allocated {
            var mask: UInt32 = 0, address: haddr_t = 0, size: hsize_t = 0
            defer { _ = mask }
            try context.check(H5Dget_chunk_info(dataset, space, index, &offsets, &mask, &address, &size), "H5Dget_chunk_info")
            // Unfiltered chunks hold exactly their data; filtered ones (checksums, compression) hold something.
            guard size > 0, H5Pget_nfilters(dcpl) > 0 || size == chunkBytes else {
                throw context.error("chunk \(index) at \(offsets) stores \(size) bytes, expected \(chunkBytes): the file is damaged")
            }
        }
    }
}
