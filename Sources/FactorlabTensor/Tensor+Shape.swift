import Foundation

// Views and shape manipulation. Views share storage; none of these copy unless documented.
extension Tensor {
    /// Normalizes a possibly negative axis (-1 is the last axis) and checks its range.
    public func axis(_ axis: Int, op: String) throws -> Int {
        let a = axis < 0 ? axis + rank : axis
        guard a >= 0 && a < rank else {
            throw TensorError(op, "axis \(axis) out of range for a tensor of shape \(describe(shape)) (rank \(rank))")
        }
        return a
    }

    /// The same elements with another shape. One extent may be -1 (inferred). A view when the
    /// tensor is contiguous, otherwise a packed copy.
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        var target = newShape
        let inferred = target.indices.filter { target[$0] == -1 }
        guard inferred.count <= 1, target.allSatisfy({ $0 >= -1 }) else {
            throw TensorError("reshape", "cannot reshape \(describe(shape)) to \(describe(newShape)): at most one -1 and no other negative extent")
        }
        if let i = inferred.first {
            let known = target.enumerated().filter { $0.offset != i }.map(\.element).reduce(1, *)
            guard known > 0, count % known == 0 else {
                throw TensorError("reshape", "cannot reshape \(describe(shape)) (\(count) elements) to \(describe(newShape))")
            }
            target[i] = count / known
        }
        guard target.reduce(1, *) == count else {
            throw TensorError("reshape", "cannot reshape \(describe(shape)) (\(count) elements) to \(describe(newShape)) (\(target.reduce(1, *)) elements)")
        }
        let c = contiguous()
        return Tensor(shape: target, strides: Tensor.contiguousStrides(target), offset: c.offset, storage: c.storage)
    }

    /// Axes reordered: result axis i is input axis `order[i]` (a view, like `torch.permute`).
    public func permuted(_ order: [Int]) throws -> Tensor {
        guard order.count == rank, Set(order) == Set(0..<rank) else {
            throw TensorError("permute", "order \(order) is not a permutation of the \(rank) axes of \(describe(shape))")
        }
        return Tensor(shape: order.map { shape[$0] }, strides: order.map { strides[$0] }, offset: offset, storage: storage)
    }

    /// The last two axes swapped (a view). A rank-1 tensor is returned unchanged.
    public func transposed() -> Tensor {
        guard rank >= 2 else { return self }
        var order = Array(0..<rank)
        order.swapAt(rank - 1, rank - 2)
        return try! permuted(order)
    }

    /// Elements `range` along `axis` (a view, like `x.narrow(axis, start, length)`).
    public func slice(axis: Int, _ range: Range<Int>) throws -> Tensor {
        let a = try self.axis(axis, op: "slice")
        guard range.lowerBound >= 0, range.upperBound <= shape[a] else {
            throw TensorError("slice", "range \(range) out of bounds for axis \(a) of shape \(describe(shape))")
        }
        var s = shape
        s[a] = range.count
        return Tensor(shape: s, strides: strides, offset: offset + range.lowerBound * strides[a], storage: storage)
    }

    /// Tensors joined along an existing axis; all other extents must agree.
    public static func concatenate(_ parts: [Tensor], axis: Int) throws -> Tensor {
        guard let first = parts.first else { throw TensorError("concatenate", "no tensors given") }
        let a = try first.axis(axis, op: "concatenate")
        for p in parts {
            var s1 = p.shape, s0 = first.shape
            guard s1.count == s0.count else {
                throw TensorError("concatenate", "ranks differ: \(describe(first.shape)) and \(describe(p.shape))")
            }
            s1[a] = 0; s0[a] = 0
            guard s1 == s0 else {
                throw TensorError("concatenate", "shapes \(describe(first.shape)) and \(describe(p.shape)) differ outside axis \(a)")
            }
        }
        var outShape = first.shape
        outShape[a] = parts.reduce(0) { $0 + $1.shape[a] }
        let out = Tensor(uninitializedShape: outShape)
        let outer = first.shape[..<a].reduce(1, *)
        let innerOut = outShape[a...].reduce(1, *)
        var column = 0
        for p in parts {
            let width = p.shape[a...].reduce(1, *)
            p.withUnsafePointer { src in
                for o in 0..<outer {
                    (out.storage.base + o * innerOut + column).update(from: src + o * width, count: width)
                }
            }
            column += width
        }
        return out
    }

    /// The shape two shapes broadcast to (NumPy rules), or an error naming both.
    public static func broadcastShape(_ a: [Int], _ b: [Int], op: String) throws -> [Int] {
        let r = Swift.max(a.count, b.count)
        var out = [Int](repeating: 1, count: r)
        for i in 0..<r {
            let da = i < r - a.count ? 1 : a[i - (r - a.count)]
            let db = i < r - b.count ? 1 : b[i - (r - b.count)]
            guard da == db || da == 1 || db == 1 else {
                throw TensorError(op, "shapes \(describe(a)) and \(describe(b)) do not broadcast (axis \(i): \(da) vs \(db))")
            }
            out[i] = Swift.max(da, db)
        }
        return out
    }

    /// A view of this tensor broadcast to `target` (stride 0 along expanded axes).
    public func expanded(to target: [Int]) throws -> Tensor {
        guard target.count >= rank else {
            throw TensorError("expand", "cannot expand \(describe(shape)) to lower rank \(describe(target))")
        }
        let lead = target.count - rank
        var newStrides = [Int](repeating: 0, count: target.count)
        for i in 0..<rank {
            if shape[i] == target[lead + i] {
                newStrides[lead + i] = strides[i]
            } else if shape[i] == 1 {
                newStrides[lead + i] = 0
            } else {
                throw TensorError("expand", "cannot expand \(describe(shape)) to \(describe(target))")
            }
        }
        return Tensor(shape: target, strides: newStrides, offset: offset, storage: storage)
    }
}
