import FactorlabTensor

// Differentiable views and joins: gradients flow back through reshapes, permutations,
// slices and concatenations.

extension Variable {
    public func reshaped(_ shape: [Int]) throws -> Variable {
        let original = self.shape
        return Variable.make(try value.reshaped(shape), [self], "reshape") { g in [try g.reshaped(original)] }
    }

    public func permuted(_ order: [Int]) throws -> Variable {
        var inverse = [Int](repeating: 0, count: order.count)
        for (i, o) in order.enumerated() where o >= 0 && o < order.count { inverse[o] = i }
        return Variable.make(try value.permuted(order), [self], "permute") { g in [try g.permuted(inverse)] }
    }

    /// The last two axes swapped.
    public func transposed() -> Variable {
        Variable.make(value.transposed(), [self], "transpose") { g in [g.transposed()] }
    }

    public func slice(axis: Int, _ range: Range<Int>) throws -> Variable {
        let shape = self.shape
        let a = try value.axis(axis, op: "slice")
        return Variable.make(try value.slice(axis: axis, range), [self], "slice") { g in
            // Scatter the gradient back into zeros of the input's shape.
            var parts: [Tensor] = []
            var before = shape, after = shape
            before[a] = range.lowerBound
            after[a] = shape[a] - range.upperBound
            if before[a] > 0 { parts.append(Tensor(zeros: before)) }
            parts.append(g)
            if after[a] > 0 { parts.append(Tensor(zeros: after)) }
            return [try Tensor.concatenate(parts, axis: a)]
        }
    }

    public static func concatenate(_ parts: [Variable], axis: Int) throws -> Variable {
        let values = parts.map(\.value)
        let out = try Tensor.concatenate(values, axis: axis)
        let a = try out.axis(axis, op: "concatenate")
        return make(out, parts, "concatenate") { g in
            var start = 0
            return try values.map { v in
                defer { start += v.shape[a] }
                return try g.slice(axis: a, start..<(start + v.shape[a])).contiguous()
            }
        }
    }
}
