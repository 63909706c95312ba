import FactorlabAutograd
import FactorlabTensor
import Foundation

/// AdamW exactly as `torch.optim.AdamW` (Loshchilov & Hutter, decoupled weight decay):
///
///     p <- p * (1 - lr * weight_decay)                  (decay groups only)
///     m <- m + (1 - beta1) * (g - m)                     (torch: exp_avg.lerp_)
///     v <- beta2 * v + (1 - beta2) * g * g
///     p <- p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
///
/// with epsilon outside the square root, in the same order of float operations as torch so that
/// runs agree to rounding.
public final class AdamW {
    public struct Hyperparameters: Equatable, Sendable, Codable {
        public var lr: Float = 3e-4
        public var beta1: Float = 0.9
        public var beta2: Float = 0.999
        public var eps: Float = 1e-8
        public var weightDecay: Float = 0.01
        public init(lr: Float = 3e-4, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8, weightDecay: Float = 0.01) {
            self.lr = lr
            self.beta1 = beta1
            self.beta2 = beta2
            self.eps = eps
            self.weightDecay = weightDecay
        }
    }

    /// The parameters being optimized, by name, with whether weight decay applies.
    public let parameters: [(name: String, parameter: Parameter, decay: Bool)]
    /// Each parameter's learning-rate multiplier (its parameter group's): the step and the decay
    /// of parameter i use lr x lrScales[i]. All 1 unless given.
    public let lrScales: [Float]
    public var hyper: Hyperparameters
    /// First and second moment estimates, one per parameter (zero until the first step).
    public private(set) var m: [Tensor]
    public private(set) var v: [Tensor]
    /// Number of steps taken (torch's `state['step']`).
    public private(set) var step: Int = 0

    /// Default decay rule: weight matrices and structured factors decay; biases, LayerNorm
    /// parameters and embeddings do not (names containing `ln_`, `.bias`, `wte`, `wpe`, or rank < 2).
    public static func defaultDecay(name: String, parameter: Parameter) -> Bool {
        !(parameter.value.rank < 2 || name.hasSuffix(".bias") || name.contains("ln_") || name.hasPrefix("wte") || name.hasPrefix("wpe"))
    }

    public init(_ named: [(String, Parameter)], hyper: Hyperparameters,
                decay: (String, Parameter) -> Bool = AdamW.defaultDecay, lrScale: (String, Parameter) -> Float = { _, _ in 1 }) {
        var seen = Set<ObjectIdentifier>()
        parameters = named.compactMap { name, p in
            guard p.requiresGrad, seen.insert(ObjectIdentifier(p)).inserted else { return nil }
            return (name, p, decay(name, p))
        }
        lrScales = parameters.map { lrScale($0.name, $0.parameter) }
        self.hyper = hyper
        m = parameters.map { Tensor(zeros: $0.parameter.shape) }
        v = parameters.map { Tensor(zeros: $0.parameter.shape) }
    }

    /// One update with learning rate `lr` (from a schedule; defaults to `hyper.lr`). Parameters
    /// without a gradient are skipped, as torch does.
    /// `gradScale` multiplies every gradient as it is read (gradient clipping without a separate
    /// pass over the gradients; the gradients themselves are left as they are).
    public func step(lr: Float? = nil, gradScale: Float = 1) {
        step += 1
        let baseLR = lr ?? hyper.lr
        let (b1, b2, eps) = (hyper.beta1, hyper.beta2, hyper.eps)
        let bc1 = 1 - powf(b1, Float(step)), bc2Sqrt = (1 - powf(b2, Float(step))).squareRoot()
        for (i, entry) in parameters.enumerated() {
            guard let g = entry.parameter.grad else { continue }
            let lr = lrScales[i] == 1 ? baseLR : baseLR * lrScales[i]
            let stepSize = lr / bc1
            let decayFactor: Float = entry.decay ? 1 - lr * hyper.weightDecay : 1
            let n = g.count
            let c = UpdateConstants(b1: b1, b2: b2, eps: eps, bc2Sqrt: bc2Sqrt, stepSize: stepSize,
                                    gradScale: gradScale, decayFactor: decayFactor)
            g.withUnsafePointer { gp in
                m[i].withUnsafeMutablePointer { mp in
                    v[i].withUnsafeMutablePointer { vp in
                        entry.parameter.value.withUnsafeMutablePointer { pp in
                            let sg = SendablePointer(gp), sm = SendablePointer(mp), sv = SendablePointer(vp), sp = SendablePointer(pp)
                            parallelElements(n, cost: 12) { lo, hi in
                                AdamW.update(p: sp.p, g: sg.p, m: sm.p, v: sv.p, lo, hi, c)
                            }
                        }
                    }
                }
            }
        }
    }

    /// The per-step constants of the update.
    struct UpdateConstants {
        var b1, b2, eps, bc2Sqrt, stepSize, gradScale, decayFactor: Float
    }

    /// The update of elements lo..<hi, eight at a time: the same float operations in the same
    /// order as the scalar formula in the type's documentation, so every lane rounds as torch
    /// does (the four arrays are distinct, which the compiler cannot prove: hence explicit SIMD).
    @inline(__always)
    static func update(p: UnsafeMutablePointer<Float>, g: UnsafePointer<Float>, m: UnsafeMutablePointer<Float>,
                       v: UnsafeMutablePointer<Float>, _ lo: Int, _ hi: Int, _ c: UpdateConstants) {
        typealias V = SIMD8<Float>
        let scaled = c.gradScale != 1, decays = c.decayFactor != 1
        let oneMinusB1 = V(repeating: 1 - c.b1), oneMinusB2 = V(repeating: 1 - c.b2), b2 = V(repeating: c.b2)
        let gs = V(repeating: c.gradScale), df = V(repeating: c.decayFactor)
        let bc2 = V(repeating: c.bc2Sqrt), eps = V(repeating: c.eps), stepSize = V(repeating: c.stepSize)
        var j = lo
        while j + 8 <= hi {
            var gj = load8(g + j)
            if scaled { gj = gj * gs }
            var pj = load8(p + j)
            if decays { pj = pj * df }
            let m0 = load8(m + j)
            let mj = m0 + oneMinusB1 * (gj - m0)
            let vj = b2 * load8(v + j) + oneMinusB2 * gj * gj
            store8(mj, m + j)
            store8(vj, v + j)
            let denom = vj.squareRoot() / bc2 + eps
            store8(pj - stepSize * (mj / denom), p + j)
            j += 8
        }
        while j < hi {
            let gj = scaled ? g[j] * c.gradScale : g[j]
            var pj = p[j]
            if decays { pj *= c.decayFactor }
            let mj = m[j] + (1 - c.b1) * (gj - m[j])
            let vj = c.b2 * v[j] + (1 - c.b2) * gj * gj
            m[j] = mj
            v[j] = vj
            let denom = vj.squareRoot() / c.bc2Sqrt + c.eps
            p[j] = pj - c.stepSize * (mj / denom)
            j += 1
        }
    }

    /// Drops every parameter's gradient.
    public func zeroGrad() { for e in parameters { e.parameter.zeroGrad() } }

    /// Restores moments and step count (from a checkpoint); shapes must match.
    public func restore(step: Int, m: [Tensor], v: [Tensor]) throws {
        guard m.count == parameters.count, v.count == parameters.count else {
            throw OptimizerError("optimizer state has \(m.count) moments for \(parameters.count) parameters")
        }
        for (i, e) in parameters.enumerated() where m[i].shape != e.parameter.shape || v[i].shape != e.parameter.shape {
            throw OptimizerError("optimizer state for \(e.name) has shape \(describe(m[i].shape)), parameter is \(describe(e.parameter.shape))")
        }
        self.step = step
        self.m = m
        self.v = v
    }
}

/// A mismatch between saved optimizer state and the parameters.
public struct OptimizerError: Error, CustomStringConvertible {
    public let description: String
    init(_ message: String) { description = "optimizer: " + message }
}

/// Gradient utilities.
public enum Gradients {
    /// The global L2 norm of all gradients.
    ///
    /// Each gradient is cut into blocks of 4,096 elements; a block's sum of squares is taken in
    /// float over eight lanes (512 terms per lane), and the block sums are added in Double in a
    /// fixed order. Blocks run in parallel, but the result does not depend on the thread count.
    public static func globalNorm(_ parameters: [Parameter]) -> Double {
        let block = 4096
        var total = 0.0
        for p in parameters {
            guard let g = p.grad else { continue }
            let n = g.count, blocks = (n + block - 1) / block
            var sums = [Double](repeating: 0, count: blocks)
            g.withUnsafePointer { gp in
                sums.withUnsafeMutableBufferPointer { sp in
                    let src = SendablePointer(gp), dst = SendablePointer(sp.baseAddress!)
                    Parallel.forRange(blocks, costPerItem: block) { range in
                        for b in range {
                            let lo = b * block
                            dst.p[b] = Double(rowDot(src.p + lo, src.p + lo, Swift.min(block, n - lo)))
                        }
                    }
                }
            }
            for s in sums { total += s }
        }
        return total.squareRoot()
    }

    /// Scales gradients so their global norm is at most `maxNorm`, as
    /// `torch.nn.utils.clip_grad_norm_` (coefficient maxNorm / (norm + 1e-6), capped at 1).
    /// Returns the norm before clipping.
    @discardableResult
    public static func clip(_ parameters: [Parameter], maxNorm: Double) -> Double {
        let norm = globalNorm(parameters)
        let coef = clipCoefficient(norm: norm, maxNorm: maxNorm)
        if coef < 1 { scale(parameters, by: coef) }
        return norm
    }

    /// The factor ``clip(_:maxNorm:)`` multiplies the gradients by: maxNorm / (norm + 1e-6)
    /// when that is below 1 (torch's clip_grad_norm_), else 1.
    public static func clipCoefficient(norm: Double, maxNorm: Double) -> Float {
        let coef = maxNorm / (norm + 1e-6)
        return coef < 1 ? Float(coef) : 1
    }

    /// Multiplies every gradient by `factor` (e.g. 1/accumulation steps).
    public static func scale(_ parameters: [Parameter], by factor: Float) {
        for p in parameters {
            guard var g = p.grad else { continue }
            p.grad = nil // drop the second reference so the scaling happens in place
            let n = g.count
            g.withUnsafeMutablePointer { gp in for i in 0..<n { gp[i] *= factor } }
            p.grad = g
        }
    }
}
