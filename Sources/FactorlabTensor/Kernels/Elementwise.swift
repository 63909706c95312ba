import Foundation

// Element-wise arithmetic with NumPy broadcasting. Each public op checks shapes and names
// itself in errors; the shared drivers below pick a fast path (same shape, scalar, trailing
// broadcast such as a bias) before the general strided one.

extension Tensor {
    /// Applies `f` to every element.
    @inlinable
    public func map(_ f: (Float) -> Float) -> Tensor {
        let out = Tensor(uninitializedShape: shape)
        withUnsafePointer { src in
            let dst = out.storage.base
            for i in 0..<count { dst[i] = f(src[i]) }
        }
        return out
    }

    /// Applies `f` to every element in parallel for large tensors (`cost`: rough operations per
    /// element, to decide whether threads pay off).
    @inlinable
    public func mapParallel(cost: Int = 4, _ f: (Float) -> Float) -> Tensor {
        let out = Tensor(uninitializedShape: shape)
        let n = count
        withUnsafePointer { src in
            let s = SendablePointer(src), d = SendablePointer(out.storage.base)
            parallelElements(n, cost: cost) { lo, hi in
                for i in lo..<hi { d.p[i] = f(s.p[i]) }
            }
        }
        return out
    }

    /// `f(a, b)` element-wise after broadcasting both to a common shape.
    @inlinable
    public static func broadcasting(_ a: Tensor, _ b: Tensor, op: String, _ f: (Float, Float) -> Float) throws -> Tensor {
        let outShape = try Tensor.broadcastShape(a.shape, b.shape, op: op)
        let out = Tensor(uninitializedShape: outShape)
        let dst = out.storage.base
        let n = out.count
        if n == 0 { return out }
        if a.shape == b.shape && a.isContiguous && b.isContiguous {
            let pa = a.storage.base + a.offset, pb = b.storage.base + b.offset
            withExtendedLifetime((a, b)) { for i in 0..<n { dst[i] = f(pa[i], pb[i]) } }
            return out
        }
        if b.count == 1 && a.shape == outShape && a.isContiguous {
            let s = b.storage.base[b.offset], pa = a.storage.base + a.offset
            withExtendedLifetime(a) { for i in 0..<n { dst[i] = f(pa[i], s) } }
            return out
        }
        if a.count == 1 && b.shape == outShape && b.isContiguous {
            let s = a.storage.base[a.offset], pb = b.storage.base + b.offset
            withExtendedLifetime(b) { for i in 0..<n { dst[i] = f(s, pb[i]) } }
            return out
        }
        // Trailing broadcast: b (or a) covers the last axes of the output exactly, e.g. a bias.
        if a.shape == outShape && a.isContiguous && b.isContiguous, isTrailing(b.shape, of: outShape) {
            let inner = b.count, pa = a.storage.base + a.offset, pb = b.storage.base + b.offset
            withExtendedLifetime((a, b)) {
                for row in 0..<(n / inner) {
                    let ra = pa + row * inner, rd = dst + row * inner
                    for j in 0..<inner { rd[j] = f(ra[j], pb[j]) }
                }
            }
            return out
        }
        // General case: iterate the output row by row with broadcast strides (0 on expanded axes).
        let ea = try a.expanded(to: outShape), eb = try b.expanded(to: outShape)
        let rank = outShape.count
        let inner = outShape[rank - 1]
        let sa = ea.strides[rank - 1], sb = eb.strides[rank - 1]
        var index = [Int](repeating: 0, count: rank)
        var oa = ea.offset, ob = eb.offset
        let pa = ea.storage.base, pb = eb.storage.base
        withExtendedLifetime((ea, eb)) {
            for row in 0..<(n / inner) {
                let rd = dst + row * inner
                for j in 0..<inner { rd[j] = f(pa[oa + j * sa], pb[ob + j * sb]) }
                var axis = rank - 2
                while axis >= 0 {
                    index[axis] += 1
                    oa += ea.strides[axis]; ob += eb.strides[axis]
                    if index[axis] < outShape[axis] { break }
                    oa -= ea.strides[axis] * outShape[axis]; ob -= eb.strides[axis] * outShape[axis]
                    index[axis] = 0
                    axis -= 1
                }
            }
        }
        return out
    }

    /// True when `small` (without leading 1s) equals the last axes of `big`.
    @inlinable
    static func isTrailing(_ small: [Int], of big: [Int]) -> Bool {
        let s = Array(small.drop { $0 == 1 })
        return !s.isEmpty && s.count <= big.count && Array(big.suffix(s.count)) == s
    }

    public static func + (a: Tensor, b: Tensor) throws -> Tensor { try broadcasting(a, b, op: "add") { $0 + $1 } }
    public static func - (a: Tensor, b: Tensor) throws -> Tensor { try broadcasting(a, b, op: "sub") { $0 - $1 } }
    public static func * (a: Tensor, b: Tensor) throws -> Tensor { try broadcasting(a, b, op: "mul") { $0 * $1 } }
    public static func / (a: Tensor, b: Tensor) throws -> Tensor { try broadcasting(a, b, op: "div") { $0 / $1 } }

    public static func + (a: Tensor, s: Float) -> Tensor { a.map { $0 + s } }
    public static func - (a: Tensor, s: Float) -> Tensor { a.map { $0 - s } }
    public static func * (a: Tensor, s: Float) -> Tensor { a.map { $0 * s } }
    public static func * (s: Float, a: Tensor) -> Tensor { a.map { $0 * s } }
    public static func / (a: Tensor, s: Float) -> Tensor { a.map { $0 / s } }
    public static prefix func - (a: Tensor) -> Tensor { a.map { -$0 } }

    public func exp() -> Tensor {
        let out = Tensor(uninitializedShape: shape)
        withUnsafePointer { src in
            let s = SendablePointer(src), d = SendablePointer(out.storage.base)
            parallelElements(count, cost: 20) { lo, hi in for i in lo..<hi { d.p[i] = fexp(s.p[i]) } }
        }
        return out
    }
    public func tanh() -> Tensor {
        let out = Tensor(uninitializedShape: shape)
        withUnsafePointer { src in
            let s = SendablePointer(src), d = SendablePointer(out.storage.base)
            parallelElements(count, cost: 24) { lo, hi in for i in lo..<hi { d.p[i] = ftanh(s.p[i]) } }
        }
        return out
    }
    public func log() -> Tensor { map { Foundation.log($0) } }
    public func sqrt() -> Tensor { map { $0.squareRoot() } }
    public func squared() -> Tensor { map { $0 * $0 } }
    public func relu() -> Tensor { map { Swift.max($0, 0) } }

    /// Adds `other` (same shape) into this tensor in place: `self += scale * other`.
    public mutating func addInPlace(_ other: Tensor, scale: Float = 1) throws {
        guard shape == other.shape else {
            throw TensorError("addInPlace", "shapes differ: \(describe(shape)) and \(describe(other.shape))")
        }
        let n = count
        other.withUnsafePointer { src in
            withUnsafeMutablePointer { dst in
                if scale == 1 { for i in 0..<n { dst[i] += src[i] } } else { for i in 0..<n { dst[i] += scale * src[i] } }
            }
        }
    }
}
