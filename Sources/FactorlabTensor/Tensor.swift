import Foundation

/// An n-dimensional array of `Float` with value semantics.
///
/// Storage is shared between tensors (views made by `reshaped`, `permuted`, `slice`) and copied
/// only when a tensor that shares it is mutated (copy-on-write). Layout is described by `shape`,
/// `strides` (in elements) and `offset`; most tensors are row-major contiguous, and kernels call
/// `contiguous()` on inputs that are not, which is free when they already are.
///
/// ```swift
/// let x = try Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
/// let xt = x.transposed()          // a view: shape [3, 2], no copy
/// let y = try x.matmul(xt)         // [2, 2], via cblas_sgemm with a transpose flag
/// ```
public struct Tensor: @unchecked Sendable {
    /// Extent of each axis.
    public private(set) var shape: [Int]
    /// Distance in elements between neighbours along each axis.
    public private(set) var strides: [Int]
    /// Index in `storage` of the element at all-zero indices.
    public private(set) var offset: Int
    /// The buffer this tensor views.
    public private(set) var storage: TensorStorage

    /// Number of elements.
    public var count: Int { shape.reduce(1, *) }
    /// Number of axes.
    public var rank: Int { shape.count }

    // MARK: Construction

    /// A view of `storage` with the given layout (no copy).
    public init(shape: [Int], strides: [Int], offset: Int, storage: TensorStorage) {
        self.shape = shape
        self.strides = strides
        self.offset = offset
        self.storage = storage
    }

    /// A contiguous tensor whose elements are left uninitialized: kernels that overwrite every
    /// element use it to avoid a redundant fill.
    public init(uninitializedShape shape: [Int]) {
        self.init(shape: shape, strides: Tensor.contiguousStrides(shape), offset: 0,
                  storage: TensorStorage(uninitializedCount: Tensor.checkedCount(shape)))
    }

    /// The number of elements of `shape`, or nil if an extent is negative or the product
    /// overflows: for shapes read from files, which must be refused with an error, not a stop.
    public static func elementCount(_ shape: [Int]) -> Int? {
        var n = 1
        for d in shape {
            let (r, o) = n.multipliedReportingOverflow(by: d)
            if d < 0 || o { return nil }
            n = r
        }
        return n
    }

    /// The number of elements of `shape`. A negative extent or an overflowing product stops the
    /// process with a message (even in `-Ounchecked` builds, where a precondition would vanish
    /// and memory would be corrupted instead); callers validate sizes from files before this.
    @inline(__always)
    public static func checkedCount(_ shape: [Int]) -> Int {
        var n = 1
        for d in shape {
            let (r, o) = n.multipliedReportingOverflow(by: d)
            if d < 0 || o { fatalError("invalid tensor shape \(describe(shape)) (negative or overflowing element count)") }
            n = r
        }
        return n
    }

    /// A contiguous tensor with every element equal to `value`.
    public init(shape: [Int], repeating value: Float) {
        self.init(shape: shape, strides: Tensor.contiguousStrides(shape), offset: 0,
                  storage: TensorStorage(count: Tensor.checkedCount(shape), repeating: value))
    }

    /// A contiguous tensor of zeros.
    public init(zeros shape: [Int]) { self.init(shape: shape, repeating: 0) }

    /// A rank-0 tensor holding one value.
    public init(_ scalar: Float) { self.init(shape: [], repeating: scalar) }

    /// A contiguous tensor from row-major scalars; their number must match the shape.
    public init(shape: [Int], scalars: [Float]) throws {
        guard shape.allSatisfy({ $0 >= 0 }) else {
            throw TensorError("Tensor(shape:scalars:)", "negative extent in shape \(describe(shape))")
        }
        let n = shape.reduce(1, *)
        guard n == scalars.count else {
            throw TensorError("Tensor(shape:scalars:)",
                              "shape \(describe(shape)) holds \(n) elements but \(scalars.count) scalars were given")
        }
        let storage = scalars.withUnsafeBufferPointer { TensorStorage(copying: $0.baseAddress!, count: n) }
        self.init(shape: shape, strides: Tensor.contiguousStrides(shape), offset: 0, storage: storage)
    }

    /// A contiguous tensor whose elements are `f(i)` for the row-major index `i`.
    public init(shape: [Int], generator f: (Int) -> Float) {
        self.init(uninitializedShape: shape)
        let p = storage.base
        for i in 0..<count { p[i] = f(i) }
    }

    /// Row-major strides for a shape.
    public static func contiguousStrides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var s = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[i] = s
            s *= shape[i]
        }
        return strides
    }

    // MARK: Layout queries

    /// True when elements are laid out row-major without gaps (the offset may be non-zero).
    public var isContiguous: Bool {
        var expected = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) where shape[i] != 1 {
            if strides[i] != expected { return false }
            expected *= shape[i]
        }
        return true
    }

    /// All elements in row-major order.
    public var scalars: [Float] {
        let c = contiguous()
        return Array(UnsafeBufferPointer(start: c.storage.base + c.offset, count: c.count))
    }

    /// The single element of a one-element tensor.
    public var item: Float {
        precondition(count == 1, "item: tensor of shape \(describe(shape)) has \(count) elements, expected 1")
        return storage.base[offset]
    }

    /// Element at the given indices (one per axis). Bounds are checked: this is for tests and
    /// inspection, not for kernels.
    public subscript(_ indices: Int...) -> Float {
        get {
            precondition(indices.count == rank,
                         "subscript: \(indices.count) indices for a tensor of rank \(rank)")
            var idx = offset
            for (axis, i) in indices.enumerated() {
                precondition(i >= 0 && i < shape[axis],
                             "subscript: index \(i) out of range for axis \(axis) of shape \(describe(shape))")
                idx += i * strides[axis]
            }
            return storage.base[idx]
        }
    }

    // MARK: Raw access for kernels

    /// A contiguous version of this tensor: `self` when already contiguous, else a packed copy.
    public func contiguous() -> Tensor {
        if isContiguous { return self }
        var out = Tensor(uninitializedShape: shape)
        StridedCopy.copy(from: self, to: out.storage.base)
        out.offset = 0
        return out
    }

    /// Calls `body` with a pointer to this tensor's elements in row-major order.
    @inlinable
    public func withUnsafePointer<R>(_ body: (UnsafePointer<Float>) throws -> R) rethrows -> R {
        let c = contiguous()
        return try withExtendedLifetime(c) { try body(UnsafePointer(c.storage.base + c.offset)) }
    }

    /// Calls `body` with a mutable pointer to this tensor's elements in row-major order, after
    /// making the storage unique and contiguous (copy-on-write).
    public mutating func withUnsafeMutablePointer<R>(_ body: (UnsafeMutablePointer<Float>) throws -> R) rethrows -> R {
        makeUniqueContiguous()
        return try body(storage.base + offset)
    }

    /// Ensures this tensor owns its storage and is contiguous.
    public mutating func makeUniqueContiguous() {
        if !isContiguous || !isKnownUniquelyReferenced(&storage) {
            let c = contiguous()
            let copy = TensorStorage(copying: c.storage.base + c.offset, count: count)
            storage = copy
            offset = 0
            strides = Tensor.contiguousStrides(shape)
        }
    }

    /// Pointer to the first element of a contiguous tensor the caller keeps alive.
    /// For audited kernels only: prefer `withUnsafePointer`.
    @inlinable
    public var unsafeBase: UnsafeMutablePointer<Float> {
        precondition(isContiguous, "unsafeBase requires a contiguous tensor")
        return storage.base + offset
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let vals = scalars
        let shown = vals.prefix(8).map { String(format: "%.5g", $0) }.joined(separator: ", ")
        return "Tensor(\(describe(shape))\(vals.count > 8 ? ", first 8" : ""): [\(shown)\(vals.count > 8 ? ", ..." : "")])"
    }
}

/// Element-by-element equality within a tolerance: |a-b| <= atol + rtol*|b|.
extension Tensor {
    public func isClose(to other: Tensor, rtol: Float = 1e-5, atol: Float = 1e-6) -> Bool {
        guard shape == other.shape else { return false }
        let a = scalars, b = other.scalars
        for i in 0..<a.count where !(abs(a[i] - b[i]) <= atol + rtol * abs(b[i])) { return false }
        return true
    }

    /// The largest absolute difference to another tensor of the same shape.
    public func maxAbsDifference(_ other: Tensor) -> Float {
        precondition(shape == other.shape, "maxAbsDifference: shapes \(describe(shape)) and \(describe(other.shape))")
        let a = scalars, b = other.scalars
        var m: Float = 0
        for i in 0..<a.count { m = Swift.max(m, abs(a[i] - b[i])) }
        return m
    }
}

extension Tensor {
    /// Index (row-major) of the first NaN or infinite element, or nil: weights read from files are
    /// checked with it before they are used.
    public func firstNonFinite() -> Int? {
        let c = contiguous()
        let p = c.unsafeBase
        for i in 0..<c.count where !p[i].isFinite { return i }
        withExtendedLifetime(c) {}
        return nil
    }

    /// Element `index` of the row-major order.
    public func scalar(at index: Int) -> Float {
        let c = contiguous()
        defer { withExtendedLifetime(c) {} }
        return c.unsafeBase[index]
    }
}

extension Tensor {
    /// A contiguous copy with storage of its own.
    public func contiguousCopy() -> Tensor {
        let c = contiguous()
        let out = Tensor(uninitializedShape: shape)
        out.unsafeBase.update(from: c.unsafeBase, count: count)
        withExtendedLifetime(c) {}
        return out
    }
}
