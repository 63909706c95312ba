// Reductions: sums (to a broadcast source shape, or over chosen axes), means and maxima.
// Sums accumulate in Double when they fold many values into one, to keep results independent
// of the summation length.

extension Tensor {
    /// Sum of all elements.
    public func sum() -> Float {
        withUnsafePointer { p in
            var acc: Double = 0
            for i in 0..<count { acc += Double(p[i]) }
            return Float(acc)
        }
    }

    /// Mean of all elements.
    public func mean() -> Float { count == 0 ? .nan : sum() / Float(count) }

    /// Sums this tensor down to `target`, a shape it was broadcast from (the gradient of
    /// broadcasting). Leading axes are summed away, axes where `target` has extent 1 are summed
    /// with the extent kept.
    public func sum(toShape target: [Int]) throws -> Tensor {
        if target == shape { return self }
        let broadcast = try Tensor.broadcastShape(target, shape, op: "sum(toShape:)")
        guard broadcast == shape else {
            throw TensorError("sum(toShape:)", "\(describe(shape)) is not a broadcast of \(describe(target))")
        }
        // The common case, a bias gradient: the target is the trailing axes of this shape.
        let trailing = Array(target.drop { $0 == 1 })
        if !trailing.isEmpty, trailing.count <= rank, Array(shape.suffix(trailing.count)) == trailing {
            return try Tensor.columnSums(self, columns: trailing.reduce(1, *)).reshaped(target)
        }
        let lead = rank - target.count
        // Output strides over the input's axes: 0 where the axis is reduced.
        let tStrides = Tensor.contiguousStrides(target)
        var ostr = [Int](repeating: 0, count: rank)
        for i in 0..<target.count where target[i] == shape[lead + i] { ostr[lead + i] = tStrides[i] }
        var acc = [Double](repeating: 0, count: target.reduce(1, *))
        let inner = shape[rank - 1], innerStride = ostr[rank - 1]
        var index = [Int](repeating: 0, count: rank)
        var o = 0
        withUnsafePointer { src in
            for row in 0..<(count / Swift.max(inner, 1)) {
                let r = src + row * inner
                if innerStride == 0 {
                    var s: Double = 0
                    for j in 0..<inner { s += Double(r[j]) }
                    acc[o] += s
                } else {
                    for j in 0..<inner { acc[o + j] += Double(r[j]) }
                }
                var axis = rank - 2
                while axis >= 0 {
                    index[axis] += 1
                    o += ostr[axis]
                    if index[axis] < shape[axis] { break }
                    o -= ostr[axis] * shape[axis]
                    index[axis] = 0
                    axis -= 1
                }
            }
        }
        return try Tensor(shape: target, scalars: acc.map { Float($0) })
    }

    /// Sums the rows of `x` viewed as [rows, columns]: each worker adds a contiguous band of rows
    /// into its own partial (vectorized across columns), and the partials are added in a fixed
    /// order, so the result does not depend on timing.
    static func columnSums(_ x: Tensor, columns: Int) -> Tensor {
        let rows = x.count / Swift.max(columns, 1)
        let workers = Swift.min(Parallel.workers, Swift.max(1, rows * columns / 65_536))
        let partial = Tensor(zeros: [workers, columns])
        x.withUnsafePointer { px in
            let sx = SendablePointer(px), sp = SendablePointer(partial.unsafeBase)
            Parallel.onWorkers(workers) { w in
                let acc = sp.p + w * columns
                for r in (rows * w / workers)..<(rows * (w + 1) / workers) {
                    let row = sx.p + r * columns
                    for j in 0..<columns { acc[j] += row[j] }
                }
            }
        }
        let out = Tensor(zeros: [columns])
        let o = out.unsafeBase, p = partial.unsafeBase
        for w in 0..<workers { for j in 0..<columns { o[j] += p[w * columns + j] } }
        return out
    }

    /// Sum over `axes`; with `keepDims` the summed axes stay with extent 1.
    public func sum(axes: [Int], keepDims: Bool = false) throws -> Tensor {
        let norm = try Set(axes.map { try axis($0, op: "sum") })
        let kept = shape.enumerated().map { norm.contains($0.offset) ? 1 : $0.element }
        let s = try sum(toShape: kept)
        return keepDims ? s : try s.reshaped(shape.enumerated().filter { !norm.contains($0.offset) }.map(\.element))
    }

    /// Mean over `axes`.
    public func mean(axes: [Int], keepDims: Bool = false) throws -> Tensor {
        let norm = try Set(axes.map { try axis($0, op: "mean") })
        let n = norm.reduce(1) { $0 * shape[$1] }
        return try sum(axes: axes, keepDims: keepDims) * (1 / Float(n))
    }

    /// Maximum along one axis, and the index where it is first reached.
    public func max(axis: Int, keepDims: Bool = false) throws -> (values: Tensor, indices: [Int]) {
        let a = try self.axis(axis, op: "max")
        guard shape[a] > 0 else { throw TensorError("max", "axis \(a) of shape \(describe(shape)) is empty") }
        let outer = shape[..<a].reduce(1, *), n = shape[a], inner = shape[(a + 1)...].reduce(1, *)
        var vals = [Float](repeating: -.infinity, count: outer * inner)
        var idx = [Int](repeating: 0, count: outer * inner)
        withUnsafePointer { p in
            for o in 0..<outer {
                for k in 0..<n {
                    let row = p + (o * n + k) * inner
                    for i in 0..<inner where row[i] > vals[o * inner + i] || (k == 0) {
                        vals[o * inner + i] = row[i]
                        idx[o * inner + i] = k
                    }
                }
            }
        }
        var outShape = shape
        if keepDims { outShape[a] = 1 } else { outShape.remove(at: a) }
        return (try Tensor(shape: outShape, scalars: vals), idx)
    }
}
