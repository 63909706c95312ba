import FactorlabTensor

// Differentiable arithmetic. Each operation computes its value with a tensor kernel and records
// its vector-Jacobian product beside it. Gradients of broadcast inputs are returned in the
// output's shape; the tape sums them back to each input's shape.

extension Variable {
    public static func + (a: Variable, b: Variable) throws -> Variable {
        make(try a.value + b.value, [a, b], "add") { g in [g, g] }
    }

    public static func - (a: Variable, b: Variable) throws -> Variable {
        make(try a.value - b.value, [a, b], "sub") { g in [g, -g] }
    }

    public static func * (a: Variable, b: Variable) throws -> Variable {
        let av = a.value, bv = b.value
        return make(try av * bv, [a, b], "mul") { g in
            [a.requiresGrad ? try g * bv : nil, b.requiresGrad ? try g * av : nil]
        }
    }

    public static func / (a: Variable, b: Variable) throws -> Variable {
        let av = a.value, bv = b.value
        let out = try av / bv
        return make(out, [a, b], "div") { g in
            let ga = try g / bv
            return [ga, -(try ga * out)] // d(a/b)/db = -a/b^2 = -(a/b)/b
        }
    }

    public static func + (a: Variable, s: Float) -> Variable { make(a.value + s, [a], "add-scalar") { g in [g] } }
    public static func - (a: Variable, s: Float) -> Variable { make(a.value - s, [a], "sub-scalar") { g in [g] } }
    public static func * (a: Variable, s: Float) -> Variable { make(a.value * s, [a], "mul-scalar") { g in [g * s] } }
    public static func * (s: Float, a: Variable) -> Variable { a * s }
    public static func / (a: Variable, s: Float) -> Variable { a * (1 / s) }
    public static prefix func - (a: Variable) -> Variable { make(-a.value, [a], "neg") { g in [-g] } }

    public func exp() -> Variable {
        let y = value.exp()
        return Variable.make(y, [self], "exp") { g in [try g * y] }
    }

    public func log() -> Variable {
        let x = value
        return Variable.make(x.log(), [self], "log") { g in [try g / x] }
    }

    public func tanh() -> Variable {
        let y = value.tanh()
        return Variable.make(y, [self], "tanh") { g in [try g * y.map { 1 - $0 * $0 }] }
    }

    public func sqrt() -> Variable {
        let y = value.sqrt()
        return Variable.make(y, [self], "sqrt") { g in [try g / (y * 2)] }
    }

    public func squared() -> Variable {
        let x = value
        return Variable.make(x.squared(), [self], "square") { g in [try g * (x * 2)] }
    }

    public func relu() -> Variable {
        let x = value
        return Variable.make(x.relu(), [self], "relu") { g in [try g * x.map { $0 > 0 ? 1 : 0 }] }
    }

    /// Sum of all elements, as a rank-0 variable.
    public func sum() -> Variable {
        let shape = self.shape
        return Variable.make(Tensor(value.sum()), [self], "sum") { g in [Tensor(shape: shape, repeating: g.item)] }
    }

    /// Mean of all elements, as a rank-0 variable.
    public func mean() -> Variable {
        let shape = self.shape, n = Float(value.count)
        return Variable.make(Tensor(value.mean()), [self], "mean") { g in [Tensor(shape: shape, repeating: g.item / n)] }
    }

    /// Sum over `axes` (negative axes count from the end).
    public func sum(axes: [Int], keepDims: Bool = false) throws -> Variable {
        let shape = self.shape
        let norm = try Set(axes.map { try value.axis($0, op: "sum") })
        let kept = shape.enumerated().map { norm.contains($0.offset) ? 1 : $0.element }
        return Variable.make(try value.sum(axes: axes, keepDims: keepDims), [self], "sum-axes") { g in
            [try g.reshaped(kept).expanded(to: shape).contiguous()]
        }
    }

    /// Mean over `axes`.
    public func mean(axes: [Int], keepDims: Bool = false) throws -> Variable {
        let n = try Set(axes.map { try value.axis($0, op: "mean") }).reduce(1) { $0 * shape[$1] }
        return try sum(axes: axes, keepDims: keepDims) * (1 / Float(n))
    }

    /// Matrix product with `torch.matmul` semantics for 2-D and 3-D operands.
    public func matmul(_ other: Variable) throws -> Variable {
        let a = value, b = other.value
        return Variable.make(try a.matmul(b), [self, other], "matmul") { g in
            switch (a.rank, b.rank) {
            case (3, 2):
                let a2 = try a.reshaped([-1, a.shape[2]]), g2 = try g.reshaped([-1, g.shape[2]])
                return [try g.matmul(b.transposed()), try a2.transposed().matmul(g2)]
            default:
                return [try g.matmul(b.transposed()), try a.transposed().matmul(g)]
            }
        }
    }
}
