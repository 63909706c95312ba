import FactorlabAutograd
import FactorlabTensor
import Foundation

// Fitting butterfly twiddles to a dense matrix. No closed form exists for the optimal
// projection, so the fit has two parts:
//  1. A hierarchical start (after Zheng, Riccietti & Gribonval 2023, "Efficient identification of
//     butterfly sparse matrix factorizations"): split the factors into a first half (block-
//     diagonal, blocks of size bs) and a second half (acting within residue classes mod bs). Then
//     B[o, i] = Left[o, j] Right[j, i] for a single j, so each sub-block of B with rows o = c mod bs
//     and columns in one diagonal block is rank one; its best rank-one approximation gives one
//     column of Left and one row of Right, and both halves are factored recursively. This is exact
//     when the matrix is a butterfly.
//  2. Adam on the relative Frobenius error ||B(twiddles) - W||^2 / ||W||^2, with the exact
//     gradient from the layer's own backward kernel, keeping the best iterate.

extension Projection {
    /// Fits a `ButterflyLinear` to W [out, in]; reports the error reached and the iterations used.
    public static func butterfly(weight: Tensor, bias: Tensor?, nblocks: Int = 1, iterations: Int = 300,
                                 learningRate: Float = 0.01, name: String = "layer") throws -> Result {
        let m = weight.shape.first ?? 0, nIn = weight.rank == 2 ? weight.shape[1] : 0
        let a = try validated(weight, name, "butterfly")
        let shape = try ButterflyLinear.twiddleShape(inFeatures: nIn, outFeatures: m, nblocks: nblocks)
        let stack = shape[0], logN = shape[2], n = 1 << logN, half = n / 2
        var tw = [Float](repeating: 0, count: shape.reduce(1, *))
        let perBlock = logN * half * 4
        for s in 0..<stack {
            // The stack's square target, zero-padded: rows s*n ..< (s+1)*n, columns 0 ..< n.
            var target = [Double](repeating: 0, count: n * n)
            for o in 0..<n where s * n + o < m { for i in 0..<nIn { target[o * n + i] = a[(s * n + o) * nIn + i] } }
            let stages = try hierarchical(target, n: n, what: name)
            let base = s * nblocks * perBlock
            for t in 0..<logN { for j in 0..<half { for e in 0..<4 { tw[base + (t * half + j) * 4 + e] = Float(stages[t][j * 4 + e]) } } }
            // Further chained blocks start as the identity.
            for b in 1..<max(nblocks, 1) {
                for f in 0..<(logN * half) { tw[base + b * perBlock + f * 4] = 1; tw[base + b * perBlock + f * 4 + 3] = 1 }
            }
        }
        var layer = try ButterflyLinear(inFeatures: nIn, outFeatures: m, twiddle: try Tensor(shape: shape, scalars: tw), bias: bias)
        var best = try relativeError(weight, layer)
        var bestTwiddle = layer.twiddle.value
        var used = 0
        if best > 1e-6 && iterations > 0 {
            (bestTwiddle, best, used) = try refine(layer: layer, weight: weight, start: best, iterations: iterations, learningRate: learningRate)
            layer = try ButterflyLinear(inFeatures: nIn, outFeatures: m, twiddle: bestTwiddle, bias: bias)
        }
        return Result(layer: layer, relativeError: try relativeError(weight, layer), iterations: used)
    }

    /// Adam on the relative squared Frobenius error; returns the best twiddles, their error and the
    /// number of iterations run.
    static func refine(layer: ButterflyLinear, weight: Tensor, start: Double, iterations: Int,
                       learningRate: Float) throws -> (Tensor, Double, Int) {
        let nIn = layer.inFeatures
        var eye = Tensor(zeros: [nIn, nIn])
        eye.withUnsafeMutablePointer { p in for i in 0..<nIn { p[i * nIn + i] = 1 } }
        // The layer applied to the identity gives W^T.
        let param = Parameter("twiddle", layer.twiddle.value)
        let fit = try fitAdam([param], input: eye, target: weight.transposed().contiguous(), start: start, iterations: iterations,
                              learningRate: learningRate) { x in
            try ButterflyLinear.multiply(x, param.variable, inFeatures: nIn, outFeatures: layer.outFeatures, n: layer.n, strides: layer.strides)
        }
        return (fit.best[0], fit.error, fit.iterations)
    }

    /// Adam on ||f(input) - target||^2 / ||target||^2 over `parameters` (f reads them through the
    /// tape), with bias correction and a cosine-decayed step scaled by each parameter's RMS;
    /// returns the best values seen (the start included), their relative error and the
    /// iterations run. The butterfly fit and the data-aware projections share it.
    static func fitAdam(_ parameters: [Parameter], input: Tensor, target: Tensor, start: Double, iterations: Int,
                        learningRate: Float = 0.01, _ f: (Variable) throws -> Variable) throws
        -> (best: [Tensor], error: Double, iterations: Int) {
        let norm2 = Double(target.squared().sum())
        var mom = parameters.map { Tensor(zeros: $0.shape) }, vel = parameters.map { Tensor(zeros: $0.shape) }
        let lrs = parameters.map { learningRate * Float(max((Double($0.value.squared().mean())).squareRoot(), 1e-3)) }
        var best = parameters.map(\.value), bestErr = start
        let beta1: Float = 0.9, beta2: Float = 0.999
        for it in 1...max(iterations, 1) where iterations > 0 {
            let tape = Tape()
            let loss = try tape.record { () -> Variable in
                (try f(Variable(input)) - Variable(target)).squared().sum() * Float(1 / max(norm2, 1e-30))
            }
            let err = Double(loss.value.item).squareRoot()
            if err < bestErr { bestErr = err; best = parameters.map(\.value) }
            for p in parameters { p.zeroGrad() }
            try tape.backward(loss)
            let decay = Float(0.5 * (1 + cos(Double.pi * Double(it - 1) / Double(iterations))))
            let c1 = 1 - powf(beta1, Float(it)), c2 = 1 - powf(beta2, Float(it))
            for (k, p) in parameters.enumerated() {
                guard let g = p.grad else { continue }
                let gp = g.contiguous().scalars, step = lrs[k] * decay
                p.value = p.value.contiguousCopy()
                mom[k].withUnsafeMutablePointer { mp in vel[k].withUnsafeMutablePointer { vp in p.value.withUnsafeMutablePointer { wp in
                    for i in 0..<gp.count {
                        mp[i] = beta1 * mp[i] + (1 - beta1) * gp[i]
                        vp[i] = beta2 * vp[i] + (1 - beta2) * gp[i] * gp[i]
                        wp[i] -= step * (mp[i] / c1) / ((vp[i] / c2).squareRoot() + 1e-12)
                    }
                }}}
            }
        }
        // The last update is evaluated too.
        if iterations > 0 {
            let y = try Tape.withoutRecording { try f(Variable(input)) }.value
            let err = (Double(try (y - target).squared().sum()) / max(norm2, 1e-30)).squareRoot()
            if err < bestErr { bestErr = err; best = parameters.map(\.value) }
        }
        return (best, bestErr, iterations)
    }

    /// Twiddles (per stage, n/2 pairs of [a, b, c, d]) of an n x n matrix for strides 1, 2, ..., n/2.
    static func hierarchical(_ mat: [Double], n: Int, what: String) throws -> [[Double]] {
        if n == 2 { return [[mat[0], mat[1], mat[2], mat[3]]] }
        let logN = n.trailingZeroBitCount
        let h = logN / 2, bs = 1 << h, nb = n / bs
        // Right blocks (bs x bs, one per diagonal block) and Left residue matrices (nb x nb, one per class).
        var right = [[Double]](repeating: [Double](repeating: 0, count: bs * bs), count: nb)
        var left = [[Double]](repeating: [Double](repeating: 0, count: nb * nb), count: bs)
        for blk in 0..<nb {
            for c in 0..<bs {
                // Sub-block rows o = c + bs u, columns blk*bs + v: ideally rank one.
                var sub = [Double](repeating: 0, count: nb * bs)
                for u in 0..<nb { for v in 0..<bs { sub[u * bs + v] = mat[(c + bs * u) * n + blk * bs + v] } }
                let (uu, s, vt) = try SVD.decompose(sub, m: nb, n: bs, what: "\(what) (butterfly projection)")
                let k = min(nb, bs), root = s[0].squareRoot()
                for u in 0..<nb { left[c][u * nb + blk] = root * uu[u * k] }
                for v in 0..<bs { right[blk][c * bs + v] = root * vt[v] }
            }
        }
        var stages = [[Double]](repeating: [Double](repeating: 0, count: n / 2 * 4), count: logN)
        // First h stages from the Right blocks: local index i_loc -> global blk*bs + i_loc.
        for blk in 0..<nb {
            let sub = bs == 1 ? [] : try hierarchical(right[blk], n: bs, what: what)
            for t in 0..<h {
                let st = 1 << t
                for jl in 0..<(bs / 2) {
                    let il = (jl / st) * 2 * st + jl % st
                    let i = blk * bs + il
                    let jg = (i / (2 * st)) * st + i % (2 * st)
                    for e in 0..<4 { stages[t][jg * 4 + e] = sub[t][jl * 4 + e] }
                }
            }
        }
        // Last logN - h stages from the Left residue classes: local i_loc -> global c + bs * i_loc.
        for c in 0..<bs {
            let sub = try hierarchical(left[c], n: nb, what: what)
            for t in 0..<(logN - h) {
                let stl = 1 << t, stg = bs * stl
                for jl in 0..<(nb / 2) {
                    let il = (jl / stl) * 2 * stl + jl % stl
                    let i = c + bs * il
                    let jg = (i / (2 * stg)) * stg + i % (2 * stg)
                    for e in 0..<4 { stages[h + t][jg * 4 + e] = sub[t][jl * 4 + e] }
                }
            }
        }
        return stages
    }
}
