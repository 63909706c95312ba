// Softmax and log-softmax over the last axis, forward and backward.

extension Kernels {
    /// Softmax of one row in place: row = exp(row - max) / sum.
    @inlinable @inline(__always)
    static func softmaxRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
        var m = rowMax(src, n)
        if m == -.infinity { m = 0 } // an all -inf row: exp gives zeros, the sum guard below keeps NaN out
        for j in 0..<n { dst[j] = fexp(src[j] - m) }
        let s = rowSum(UnsafePointer(dst), n)
        let inv = s > 0 ? 1 / s : 0
        for j in 0..<n { dst[j] *= inv }
    }

    /// Softmax of one row of `n` floats in place (public for inference kernels).
    public static func softmaxRowInPlace(_ row: UnsafeMutablePointer<Float>, _ n: Int) { softmaxRow(row, row, n) }

    /// y = softmax(x) along the last axis.
    public static func softmaxForward(_ x: Tensor) -> Tensor {
        let n = x.shape.last ?? 1, rows = x.count / Swift.max(n, 1)
        let out = Tensor(uninitializedShape: x.shape)
        x.withUnsafePointer { px in
            let s = SendablePointer(px), d = SendablePointer(out.storage.base)
            Parallel.forRange(rows, costPerItem: n * 8) { r in
                for i in r { softmaxRow(s.p + i * n, d.p + i * n, n) }
            }
        }
        return out
    }

    /// dx = y * (dy - sum(dy * y)) along the last axis, given the forward output y.
    public static func softmaxBackward(_ y: Tensor, _ dy: Tensor) -> Tensor {
        let n = y.shape.last ?? 1, rows = y.count / Swift.max(n, 1)
        let out = Tensor(uninitializedShape: y.shape)
        y.withUnsafePointer { py in
            dy.withUnsafePointer { pd in
                let sy = SendablePointer(py), sd = SendablePointer(pd), so = SendablePointer(out.storage.base)
                Parallel.forRange(rows, costPerItem: n * 3) { r in
                    for i in r {
                        let yr = sy.p + i * n, dr = sd.p + i * n, orow = so.p + i * n
                        let dot = rowDot(yr, dr, n)
                        for j in 0..<n { orow[j] = yr[j] * (dr[j] - dot) }
                    }
                }
            }
        }
        return out
    }

    /// y = x - logsumexp(x) along the last axis.
    public static func logSoftmaxForward(_ x: Tensor) -> Tensor {
        let n = x.shape.last ?? 1, rows = x.count / Swift.max(n, 1)
        let out = Tensor(uninitializedShape: x.shape)
        x.withUnsafePointer { px in
            let s = SendablePointer(px), d = SendablePointer(out.storage.base)
            Parallel.forRange(rows, costPerItem: n * 8) { r in
                for i in r {
                    let xr = s.p + i * n, orow = d.p + i * n
                    let lse = logSumExp(xr, n)
                    for j in 0..<n { orow[j] = xr[j] - lse }
                }
            }
        }
        return out
    }

    /// dx = dy - exp(y) * sum(dy) along the last axis, given the forward output y.
    public static func logSoftmaxBackward(_ y: Tensor, _ dy: Tensor) -> Tensor {
        let n = y.shape.last ?? 1, rows = y.count / Swift.max(n, 1)
        let out = Tensor(uninitializedShape: y.shape)
        y.withUnsafePointer { py in
            dy.withUnsafePointer { pd in
                let sy = SendablePointer(py), sd = SendablePointer(pd), so = SendablePointer(out.storage.base)
                Parallel.forRange(rows, costPerItem: n * 8) { r in
                    for i in r {
                        let yr = sy.p + i * n, dr = sd.p + i * n, orow = so.p + i * n
                        let s = rowSum(dr, n)
                        for j in 0..<n { orow[j] = dr[j] - fexp(yr[j]) * s }
                    }
                }
            }
        }
        return out
    }

    /// log(sum(exp(x))) of one row, stable for large inputs.
    @inlinable @inline(__always)
    static func logSumExp(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        let m = rowMax(x, n)
        if !m.isFinite { return m }
        return m + Foundation.log(rowSumExp(x, n, shift: m))
    }
}

import Foundation
