import FactorlabAutograd
import FactorlabTensor
import Foundation

/// Projections of a trained dense weight onto the structured classes: how accelerators are
/// applied to a pretrained model. Each returns the new layer (bias copied) and its relative
/// Frobenius error ||W - W'||_F / ||W||_F.
public enum Projection {
    public struct Result {
        public let layer: LinearLayer
        public let relativeError: Double
        /// Optimizer iterations used (butterfly only).
        public let iterations: Int
    }

    /// Projects a dense matrix W [out, in] to `kind`.
    public static func project(weight: Tensor, bias: Tensor?, to kind: LinearKind, name: String = "layer",
                               butterflyIterations: Int = 300) throws -> Result {
        switch kind {
        case .dense:
            return Result(layer: try DenseLinear(weight: weight, bias: bias), relativeError: 0, iterations: 0)
        case .lowRank(let r): return try lowRank(weight: weight, bias: bias, rank: r, name: name)
        case .monarch(let k): return try monarch(weight: weight, bias: bias, nblocks: k, name: name)
        case .butterfly(let k): return try butterfly(weight: weight, bias: bias, nblocks: k, iterations: butterflyIterations, name: name)
        case .btt(let r, let normalized): return try btt(weight: weight, bias: bias, rank: r, normalized: normalized, name: name)
        }
    }

    /// Checks that W is a finite 2-D matrix.
    static func validated(_ w: Tensor, _ name: String, _ kind: String) throws -> [Double] {
        guard w.rank == 2 else { throw LayerError("\(name) (\(kind) projection)", "weight must be [out, in], got \(describe(w.shape))") }
        let values = w.scalars
        if let bad = values.firstIndex(where: { !$0.isFinite }) {
            throw LayerError("\(name) (\(kind) projection)",
                             "weight has a non-finite value \(values[bad]) at [\(bad / w.shape[1]), \(bad % w.shape[1])]; cannot project a matrix with NaN or inf")
        }
        return values.map(Double.init)
    }

    static func relativeError(_ w: Tensor, _ layer: LinearLayer) throws -> Double {
        let approx = try layer.denseMatrix().scalars, exact = w.scalars
        var num: Double = 0, den: Double = 0
        for i in 0..<exact.count {
            let d = Double(exact[i]) - Double(approx[i])
            num += d * d
            den += Double(exact[i]) * Double(exact[i])
        }
        return den == 0 ? num.squareRoot() : (num / den).squareRoot()
    }

    /// Truncated SVD, optimal in Frobenius norm (Eckart-Young): U = U_r sqrt(S_r), V = sqrt(S_r) V_r^T.
    public static func lowRank(weight: Tensor, bias: Tensor?, rank: Int, name: String = "layer") throws -> Result {
        let m = weight.shape.first ?? 0, n = weight.rank == 2 ? weight.shape[1] : 0
        let a = try validated(weight, name, "lowrank:\(rank)")
        guard rank >= 1, rank <= min(m, n) else {
            throw LayerError("\(name) (lowrank projection)", "rank \(rank) must be between 1 and min(in, out) = \(min(m, n))")
        }
        let (u, s, vt) = try SVD.decompose(a, m: m, n: n, what: "\(name) (lowrank projection)")
        let k = min(m, n)
        let uf = Tensor(shape: [m, rank]) { i in Float(u[(i / rank) * k + i % rank] * s[i % rank].squareRoot()) }
        let vf = Tensor(shape: [rank, n]) { i in Float(vt[i] * s[i / n].squareRoot()) }
        let layer = try LowRankLinear(u: uf, v: vf, bias: bias)
        return Result(layer: layer, relativeError: try relativeError(weight, layer), iterations: 0)
    }

    /// The closed-form optimal Monarch projection (Dao et al. 2022, Theorem 1), generalized to
    /// the rectangular shapes of `MonarchLinear`.
    ///
    /// With output index o = si * k + l and input index i = kk * p + pi, entry W[o, i] only
    /// involves blkdiag1[kk, qi, :] and blkdiag2[l, :, (kk q + qi) / k] for the qi with
    /// (kk q + qi) mod k = l, and every factor row/column belongs to exactly one (kk, l) pair. So
    /// the problem splits into k * k independent sub-blocks T[si, pi] = W[si k + l, kk p + pi],
    /// each approximated optimally by its truncated SVD of rank |{qi}|.
    public static func monarch(weight: Tensor, bias: Tensor?, nblocks k: Int, name: String = "layer") throws -> Result {
        let m = weight.shape.first ?? 0, n = weight.rank == 2 ? weight.shape[1] : 0
        let a = try validated(weight, name, "monarch:\(k)")
        let (s1, s2) = try MonarchLinear.factorShapes(inFeatures: n, outFeatures: m, nblocks: k)
        let q = s1[1], p = s1[2], s = s2[1], r = s2[2]
        var w1 = [Float](repeating: 0, count: s1.reduce(1, *))
        var w2 = [Float](repeating: 0, count: s2.reduce(1, *))
        for kk in 0..<k {
            for l in 0..<k {
                let qis = (0..<q).filter { (kk * q + $0) % k == l }
                if qis.isEmpty { continue }
                var t = [Double](repeating: 0, count: s * p)
                for si in 0..<s { for pi in 0..<p { t[si * p + pi] = a[(si * k + l) * n + kk * p + pi] } }
                let (u, sv, vt) = try SVD.decompose(t, m: s, n: p, what: "\(name) (monarch projection)")
                let kmin = min(s, p)
                for (rank, qi) in qis.enumerated() where rank < kmin {
                    let scale = sv[rank].squareRoot()
                    let ri = (kk * q + qi) / k
                    for pi in 0..<p { w1[(kk * q + qi) * p + pi] = Float(scale * vt[rank * p + pi]) }
                    for si in 0..<s { w2[(l * s + si) * r + ri] = Float(scale * u[si * kmin + rank]) }
                }
            }
        }
        let layer = try MonarchLinear(inFeatures: n, outFeatures: m, blkdiag1: try Tensor(shape: s1, scalars: w1),
                                      blkdiag2: try Tensor(shape: s2, scalars: w2), bias: bias)
        return Result(layer: layer, relativeError: try relativeError(weight, layer), iterations: 0)
    }

    /// The closed-form optimal block tensor-train projection (two cores, rank r): entry
    /// W[j0 n1 + j1, i1 m0 + i0] involves only core2[j0, j1, i1 r + t] and core1[i1, j0 r + t, i0]
    /// (t < r), and each (i1, j0) pair owns its factor entries. So the problem splits into m1 * n0
    /// independent sub-blocks T[j1, i0], each approximated optimally by its truncated SVD of
    /// rank r, as for Monarch. The normalized variant gets gammas that undo its RMS cap, so the
    /// layer computes exactly the projected matrix.
    public static func btt(weight: Tensor, bias: Tensor?, rank r: Int, normalized: Bool = false, name: String = "layer") throws -> Result {
        let m = weight.shape.first ?? 0, n = weight.rank == 2 ? weight.shape[1] : 0
        let kind = LinearKind.btt(rank: r, normalized: normalized)
        let a = try validated(weight, name, kind.description)
        let (c1, c2) = try BTTLinear.coreShapes(inFeatures: n, outFeatures: m, rank: r)
        let (m0, m1) = BTTLinear.split(n), (n0, n1) = BTTLinear.split(m)
        var w1 = [Float](repeating: 0, count: c1.reduce(1, *))
        var w2 = [Float](repeating: 0, count: c2.reduce(1, *))
        let kmin = min(n1, m0)
        var t = [Double](repeating: 0, count: n1 * m0)
        for i1 in 0..<m1 {
            for j0 in 0..<n0 {
                for j1 in 0..<n1 { for i0 in 0..<m0 { t[j1 * m0 + i0] = a[(j0 * n1 + j1) * n + i1 * m0 + i0] } }
                let (u, sv, vt) = try SVD.decompose(t, m: n1, n: m0, what: "\(name) (\(kind) projection)")
                for k in 0..<r where k < kmin {
                    let scale = sv[k].squareRoot()
                    for i0 in 0..<m0 { w1[(i1 * n0 * r + j0 * r + k) * m0 + i0] = Float(scale * vt[k * m0 + i0]) }
                    for j1 in 0..<n1 { w2[(j0 * n1 + j1) * m1 * r + i1 * r + k] = Float(scale * u[j1 * kmin + k]) }
                }
            }
        }
        var gammas: (Tensor, Tensor)?
        if normalized {
            func undoCap(_ w: [Float], dIn: Int, dOut: Int) -> Tensor {
                let rms = (w.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(w.count) + 1e-8).squareRoot()
                return Tensor(shape: [1], repeating: Float(max(1, rms / Double(BTTLinear.maxRMS(dIn: dIn, dOut: dOut)))))
            }
            gammas = (undoCap(w1, dIn: m0, dOut: n0 * r), undoCap(w2, dIn: m1 * r, dOut: n1))
        }
        let layer = try BTTLinear(inFeatures: n, outFeatures: m, core1: try Tensor(shape: c1, scalars: w1),
                                  core2: try Tensor(shape: c2, scalars: w2), gammas: gammas, bias: bias)
        return Result(layer: layer, relativeError: try relativeError(weight, layer), iterations: 0)
    }
}
