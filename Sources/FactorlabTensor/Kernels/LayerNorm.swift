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
                    layerNormBackwardRow(x: sx.p + i * c, dy: sd.p + i * c, weight: sw.p, mean: sm.p[i], rstd: sr.p[i],
                                         dx: sdx.p + i * c, dweight: dw, dbias: db, c)
                }
            }
        }}}}}
        let summed = try! partial.sum(toShape: [1, 2, c])
        return (dx, try! summed.slice(axis: 1, 0..<1).reshaped([c]).contiguous(),
                try! summed.slice(axis: 1, 1..<2).reshaped([c]).contiguous())
    }

    /// One row of ``layerNormBackward``: writes dx and adds the row's terms to the worker's
    /// dweight and dbias. Eight lanes at a time (the row means are reductions, which LLVM does
    /// not vectorize by itself under strict float semantics); the tail goes to lane 0.
    @inline(__always)
    static func layerNormBackwardRow(x xr: UnsafePointer<Float>, dy dr: UnsafePointer<Float>, weight w: UnsafePointer<Float>,
                                     mean m: Float, rstd rs: Float, dx o: UnsafeMutablePointer<Float>,
                                     dweight dw: UnsafeMutablePointer<Float>, dbias db: UnsafeMutablePointer<Float>, _ c: Int) {
        typealias V = SIMD8<Float>
        let mv = V(repeating: m), rv = V(repeating: rs)
        var sumG = V(), sumGN = V()
        var j = 0
        while j + 8 <= c {
            let n = (load8(xr + j) - mv) * rv, d = load8(dr + j)
            let g = d * load8(w + j)
            sumG += g
            sumGN += g * n
            store8(load8(dw + j) + d * n, dw + j)
            store8(load8(db + j) + d, db + j)
            j += 8
        }
        while j < c {
            let n = (xr[j] - m) * rs, g = dr[j] * w[j]
            sumG[0] += g
            sumGN[0] += g * n
            dw[j] += dr[j] * n
            db[j] += dr[j]
            j += 1
        }
        let meanG = laneSum(sumG) / Float(c), meanGN = laneSum(sumGN) / Float(c)
        let mg = V(repeating: meanG), mgn = V(repeating: meanGN)
        j = 0
        while j + 8 <= c {
            let n = (load8(xr + j) - mv) * rv
            store8(rv * (load8(dr + j) * load8(w + j) - mg - n * mgn), o + j)
            j += 8
        }
        while j < c {
            let n = (xr[j] - m) * rs
            o[j] = rs * (dr[j] * w[j] - meanG - n * meanGN)
            j += 1
        }
    }
}
