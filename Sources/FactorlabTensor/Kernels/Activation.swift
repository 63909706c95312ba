// GELU (GPT-2's tanh approximation) and dropout, forward and backward side by side.

/// Namespace for the neural-network kernels. Each takes contiguous inputs (callers pass
/// `contiguous()` tensors) and returns freshly allocated outputs.
public enum Kernels {}

extension Kernels {
    @usableFromInline static let geluScale: Float = 0.7978845608028654 // sqrt(2/pi)

    /// y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    public static func geluForward(_ x: Tensor) -> Tensor {
        x.mapVectorized(costPerItem: 8) { v in
            let cube: FloatVector = v * v * v
            let u: FloatVector = geluScale * (v + 0.044715 * cube)
            return 0.5 * v * (1 + vtanh(u))
        }
    }

    /// dx = dy * (0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2)), t = tanh(u).
    public static func geluBackward(_ x: Tensor, _ dy: Tensor) -> Tensor {
        precondition(x.shape == dy.shape, "geluBackward: x \(describe(x.shape)) vs dy \(describe(dy.shape))")
        let out = Tensor(uninitializedShape: x.shape)
        let n = x.count
        x.withUnsafePointer { px in
            dy.withUnsafePointer { pd in
                let sx = SendablePointer(px), sd = SendablePointer(pd), so = SendablePointer(out.storage.base)
                Parallel.forRange(n / 16 + 1, costPerItem: 160) { r in
                    var i = r.lowerBound * 16
                    let hi = min(n, r.upperBound * 16)
                    func grad(_ v: FloatVector, _ g: FloatVector) -> FloatVector {
                        let v2: FloatVector = v * v
                        let inner: FloatVector = v + 0.044715 * v2 * v
                        let t: FloatVector = vtanh(geluScale * inner)
                        let sech2: FloatVector = 1 - t * t
                        let du: FloatVector = geluScale * (1 + 0.134145 * v2)
                        let local: FloatVector = 0.5 * (1 + t) + 0.5 * v * sech2 * du
                        return g * local
                    }
                    while i + 16 <= hi {
                        let v = UnsafeRawPointer(sx.p + i).loadUnaligned(as: FloatVector.self)
                        let g = UnsafeRawPointer(sd.p + i).loadUnaligned(as: FloatVector.self)
                        UnsafeMutableRawPointer(so.p + i).storeBytes(of: grad(v, g), as: FloatVector.self)
                        i += 16
                    }
                    while i < hi {
                        so.p[i] = grad(FloatVector(repeating: sx.p[i]), FloatVector(repeating: sd.p[i]))[0]
                        i += 1
                    }
                }
            }
        }
        return out
    }

    /// Inverted dropout: keeps each element with probability 1-p and scales it by 1/(1-p).
    /// Element i is kept when hash(key, i) >= p, so the mask depends only on `key` and the
    /// position: reproducible and independent of threading. Returns the output and the mask
    /// (0 or 1/(1-p)), which the backward pass multiplies by.
    public static func dropoutForward(_ x: Tensor, p: Float, key: UInt64) -> (y: Tensor, mask: Tensor) {
        precondition(p >= 0 && p < 1, "dropout: probability \(p) outside [0, 1)")
        let scale = 1 / (1 - p)
        let mask = Tensor(shape: x.shape) { i in
            RandomGenerator.unitFloat(RandomGenerator.mix(key &+ UInt64(i) &* 0x9E37_79B9_7F4A_7C15)) >= p ? scale : 0
        }
        return (try! x * mask, mask)
    }
}
