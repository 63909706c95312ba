import Foundation

// Layer normalization over the last axis, forward and backward (as in llm.c's layernorm_*).

extension Kernels {
    /// y = (x - mean) * rstd * weight + bias over the last axis of x [..., C].
    /// Returns y and the per-row mean and reciprocal standard deviation the backward pass needs.
    public static func layerNormForward(_ x: Tensor, weight: Tensor, bias: Tensor?, eps: Float)
        -> (y: Tensor, mean: Tensor, rstd: Tensor) {
        let c = x.shape.last ?? 1, rows = x.count / Swift.max(c, 1)
        let y = Tensor(uninitializedShape: x.shape)
        let mean = Tensor(uninitializedShape: [rows]), rstd = Tensor(uninitializedShape: [rows])
        let b = bias ?? Tensor(zeros: [c])
        x.withUnsafePointer { px in weight.withUnsafePointer { pw in b.withUnsafePointer { pb in
            let sx = SendablePointer(px), sw = SendablePointer(pw), sb = SendablePointer(pb)
            let sy = SendablePointer(y.storage.base), sm = SendablePointer(mean.storage.base)
            let sr = SendablePointer(rstd.storage.base)
            Parallel.forRange(rows, costPerItem: c * 4) { r in
                for i in r {
                    let xr = sx.p + i * c, yr = sy.p + i * c
                    let m = rowSum(xr, c) / Float(c)
                    // Variance as E[(x - m)^2], two passes for accuracy; the centred row goes to y first.
                    for j in 0..<c { yr[j] = xr[j] - m }
                    let v = rowDot(UnsafePointer(yr), UnsafePointer(yr), c)
                    let rs = 1 / (v / Float(c) + eps).squareRoot()
                    for j in 0..<c { yr[j] = yr[j] * rs * sw.p[j] + sb.p[j] }
                    sm.p[i] = m
                    sr.p[i] = rs
                }
            }
        }}}
        return (y, mean, rstd)
    }

    /// Gradients of layer norm: dx, dweight, dbias.
    /// With n = (x - mean) * rstd and g = dy * weight:
    /// dx = rstd * (g - mean(g) - n * mean(g * n)), dweight = sum(dy * n), dbias = sum(dy).
    public static func layerNormBackward(_ x: Tensor, weight: Tensor, mean: Tensor, rstd: Tensor, dy: Tensor)
        -> (dx: Tensor, dweight: Tensor, dbias: Tensor) {
        let c = x.shape.last ?? 1, rows = x.count / Swift.max(c, 1)
        let dx = Tensor(uninitializedShape: x.shape)
        let workers = Swift.min(Parallel.workers, Swift.max(1, rows))
        // One partial dweight/dbias per worker, summed at the end: no shared writes.
        let partial = Tensor(zeros: [workers, 2, c])
        x.withUnsafePointer { px in weight.withUnsafePointer { pw in dy.withUnsafePointer { pd in
        mean.withUnsafePointer { pm in rstd.withUnsafePointer { pr in
            let sx = SendablePointer(px), sw = SendablePointer(pw), sd = SendablePointer(pd)
            let sm = SendablePointer(pm), sr = SendablePointer(pr)
            let sdx = SendablePointer(dx.storage.base), sp = SendablePointer(partial.storage.base)
            Parallel.onWorkers(workers) { w in
                let lo = rows * w / workers, hi = rows * (w + 1) / workers
                let dw = sp.p + w * 2 * c, db = dw + c
                for i in lo..<hi {
                    let xr = sx.p + i * c, dr = sd.p + i * c, o = sdx.p + i * c
                    let m = sm.p[i], rs = sr.p[i]
                    var meanG: Float = 0, meanGN: Float = 0
                    for j in 0..<c {
                        let n = (xr[j] - m) * rs
                        let g = dr[j] * sw.p[j]
                        meanG += g
                        meanGN += g * n
                        dw[j] += dr[j] * n
                        db[j] += dr[j]
                    }
                    meanG /= Float(c)
                    meanGN /= Float(c)
                    for j in 0..<c {
                        let n = (xr[j] - m) * rs
                        o[j] = rs * (dr[j] * sw.p[j] - meanG - n * meanGN)
                    }
                }
            }
        }}}}}
        let summed = try! partial.sum(toShape: [1, 2, c])
        return (dx, try! summed.slice(axis: 1, 0..<1).reshaped([c]).contiguous(),
                try! summed.slice(axis: 1, 1..<2).reshaped([c]).contiguous())
    }
}
