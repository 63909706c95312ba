import FactorlabTensor

/// Compares tape gradients with central finite differences.
///
/// The scalar checked is L = sum(f(x) * R) with R a fixed random tensor, so every output element
/// contributes with its own weight. L is accumulated in Double from the Float outputs.
///
/// Tolerance argument (Float32 kernels): with step h, the central difference has truncation
/// error about h^2/6 * |L'''| and rounding error about eps32 * |L| / h. For h = 1e-2 and inputs
/// and outputs of order 1 both stay below about 1e-3 relative to the gradient's largest entry,
/// while any wrong formula gives errors of order 1. Tests use 1e-2 on the normalized error below.
public enum GradientCheck {
    public struct Result: CustomStringConvertible {
        /// Per input: max |analytic - numeric| / max(max |numeric|, 1e-3).
        public let normalizedErrors: [Double]
        public var worst: Double { normalizedErrors.max() ?? 0 }
        public var description: String { "gradient check errors: \(normalizedErrors)" }
    }

    public static func check(_ inputs: [Tensor], step h: Float = 1e-2, seed: UInt64 = 7,
                             _ f: ([Variable]) throws -> Variable) throws -> Result {
        // Analytic gradients.
        let tape = Tape()
        let vars = inputs.map { tape.watch($0.contiguous()) }
        let out = try tape.record { try f(vars) }
        var rng = RandomGenerator(seed: seed)
        let weights = Tensor.randomNormal(out.shape, using: &rng)
        let grads = try tape.backward(out, seed: weights)
        let w = weights.scalars

        func loss(_ xs: [Tensor]) throws -> Double {
            let y = try Tape.withoutRecording { try f(xs.map { Variable($0) }) }.value.scalars
            var acc: Double = 0
            for i in 0..<y.count { acc += Double(y[i]) * Double(w[i]) }
            return acc
        }

        var errors: [Double] = []
        for (k, x) in inputs.enumerated() {
            let analytic = grads[vars[k]]?.scalars ?? [Float](repeating: 0, count: x.count)
            var numeric = [Double](repeating: 0, count: x.count)
            var base = x.contiguous().scalars
            for i in 0..<base.count {
                let orig = base[i]
                var xs = inputs.map { $0.contiguous() }
                base[i] = orig + h
                xs[k] = try Tensor(shape: x.shape, scalars: base)
                let up = try loss(xs)
                base[i] = orig - h
                xs[k] = try Tensor(shape: x.shape, scalars: base)
                let down = try loss(xs)
                base[i] = orig
                numeric[i] = (up - down) / (2 * Double(h))
            }
            let scale = max(numeric.map(abs).max() ?? 0, 1e-3)
            var worst: Double = 0
            for i in 0..<numeric.count { worst = max(worst, abs(Double(analytic[i]) - numeric[i]) / scale) }
            errors.append(worst)
        }
        return Result(normalizedErrors: errors)
    }

    /// The same check for the parameters of a model: tape gradients of L = sum(f() * R) against
    /// central differences of each parameter element (perturbed in place and restored). One
    /// normalized error per parameter, in the order given.
    public static func checkParameters(_ parameters: [Parameter], step h: Float = 1e-2, seed: UInt64 = 7,
                                       _ f: () throws -> Variable) throws -> Result {
        for p in parameters { p.zeroGrad() }
        let tape = Tape()
        let out = try tape.record { try f() }
        var rng = RandomGenerator(seed: seed)
        let weights = Tensor.randomNormal(out.shape, using: &rng)
        try tape.backward(out, seed: weights)
        let w = weights.scalars
        func loss() throws -> Double {
            let y = try Tape.withoutRecording { try f() }.value.scalars
            var acc: Double = 0
            for i in 0..<y.count { acc += Double(y[i]) * Double(w[i]) }
            return acc
        }
        var errors: [Double] = []
        for p in parameters {
            let analytic = p.grad?.contiguous().scalars ?? [Float](repeating: 0, count: p.value.count)
            let saved = p.value
            var base = saved.contiguous().scalars
            var numeric = [Double](repeating: 0, count: base.count)
            for i in 0..<base.count {
                let orig = base[i]
                base[i] = orig + h
                p.value = try Tensor(shape: saved.shape, scalars: base)
                let up = try loss()
                base[i] = orig - h
                p.value = try Tensor(shape: saved.shape, scalars: base)
                let down = try loss()
                base[i] = orig
                numeric[i] = (up - down) / (2 * Double(h))
            }
            p.value = saved
            let scale = max(numeric.map(abs).max() ?? 0, 1e-3)
            var worst: Double = 0
            for i in 0..<numeric.count { worst = max(worst, abs(Double(analytic[i]) - numeric[i]) / scale) }
            errors.append(worst)
        }
        return Result(normalizedErrors: errors)
    }
}
