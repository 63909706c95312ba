// GELU (GPT-2's tanh approximation) and dropout, forward and backward side by side.

/// Namespace for the neural-network kernels. Each takes contiguous inputs (callers pass
/// `contiguous()` tensors) and returns freshly allocated outputs.
public enum Kernels {}

extension Kernels {
    @usableFromInline static let geluScale: Float = 0.7978845608028654 // sqrt(2/pi)

    /// y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    public static func geluForward(_ x: Tensor) -> Tensor {
        let out = Tensor(uninitializedShape: x.shape)
        x.withUnsafePointer { px in
            let sx = SendablePointer(px), so = SendablePointer(out.storage.base)
            parallelElements(x.count, cost: 30) { lo, hi in
                for i in lo..<hi {
                    let v = sx.p[i]
                    so.p[i] = 0.5 * v * (1 + ftanh(geluScale * (v + 0.044715 * v * v * v)))
                }
            }
        }
        return out
    }

    /// dx = dy * (0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2)), t = tanh(u).
    public static func geluBackward(_ x: Tensor, _ dy: Tensor) -> Tensor {
        precondition(x.shape == dy.shape, "geluBackward: x \(describe(x.shape)) vs dy \(describe(dy.shape))")
        let out = Tensor(uninitializedShape: x.shape)
        x.withUnsafePointer { px in
            dy.withUnsafePointer { pd in
                let sx = SendablePointer(px), sd = SendablePointer(pd), so = SendablePointer(out.storage.base)
                parallelElements(x.count, cost: 40) { lo, hi in
                    for i in lo..<hi {
                        let v = sx.p[i], v2 = v * v
                        let t = ftanh(geluScale * (v + 0.044715 * v2 * v))
                        let local = 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * geluScale * (1 + 0.134145 * v2)
                        so.p[i] = sd.p[i] * local
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
            SeededHash.dropoutScale(key: key, index: i, p: p, scale: scale)
        }
        return (try! x * mask, mask)
    }
}
