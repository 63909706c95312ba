import COpenBLAS
import FactorlabAutograd
import FactorlabTensor
import Foundation

/// The second moments of a layer's inputs on calibration data, G = sum over rows of x^T x
/// (in_features x in_features), accumulated in Double from streamed batches: the full activation
/// matrix is never kept.
public final class InputStatistics {
    public let features: Int
    /// Rows (tokens) seen.
    public private(set) var rows = 0
    /// Row-major G; only the upper triangle is accumulated, `symmetric()` fills the rest.
    var gram: [Double]

    public init(features: Int) {
        self.features = features
        gram = [Double](repeating: 0, count: features * features)
    }

    /// Adds the rows of x [..., features].
    public func add(_ x: Tensor) {
        let n = features
        let count = x.count / max(n, 1)
        guard count > 0 else { return }
        let values = x.contiguous().scalars
        // In chunks of rows, converted to Double, through dsyrk (G += X^T X, upper triangle).
        let chunk = 256
        var buffer = [Double](repeating: 0, count: chunk * n)
        var start = 0
        while start < count {
            let k = min(chunk, count - start)
            for i in 0..<(k * n) { buffer[i] = Double(values[start * n + i]) }
            cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, Int32(n), Int32(k), 1, buffer, Int32(n), 1, &gram, Int32(n))
            start += k
        }
        rows += count
    }

    /// G with both triangles filled.
    func symmetric() -> [Double] {
        var g = gram
        let n = features
        for i in 0..<n { for j in 0..<i { g[i * n + j] = g[j * n + i] } }
        return g
    }
}

/// Projections that minimise the error on calibration inputs, ||(W - W') X^T||_F, instead of the
/// weight error ||W - W'||_F (X the [tokens, in] matrix of the layer's inputs). With G = X^T X =
/// L L^T (Cholesky, after damping), the objective is ||(W - W') L||_F.
///
/// - Low rank: the closed form of SVD-LLM (Wang et al., ICLR 2025): truncated SVD of W L, then
///   W' = U_r S_r V_r^T L^{-1}; factors U = U_r sqrt(S_r), V = sqrt(S_r) V_r^T L^{-1}.
/// - Monarch, butterfly, BTT: no closed form. Start from the data-free projection and run Adam on
///   ||W'(theta) L - W L||^2 / ||W L||^2 (the layer applied to the rows of L^T, through its own
///   backward), keeping the best iterate, so the result is never worse than the data-free start on
///   the calibration objective.
///
/// Damping: G + lambda I with lambda = ``relativeDamping`` x mean(diag G), so a rank-deficient G
/// (fewer calibration tokens than inputs, or dead features) still factors; the objective then
/// also weighs, slightly, the directions the calibration data never visits.
public enum DataAwareProjection {
    public static let relativeDamping = 1e-4

    public struct Result {
        public let layer: LinearLayer
        /// ||W - W'||_F / ||W||_F of the data-aware result and of the data-free start.
        public let weightError: Double, dataFreeWeightError: Double
        /// ||(W - W') L||_F / ||W L||_F of the data-aware result and of the data-free start.
        public let outputError: Double, dataFreeOutputError: Double
        public let iterations: Int
    }

    /// Projects W [out, in] (bias copied) to `kind`, minimising the output error on `statistics`.
    public static func project(weight: Tensor, bias: Tensor?, to kind: LinearKind, statistics: InputStatistics,
                               iterations: Int = 300, name: String = "layer") throws -> Result {
        let m = weight.shape.first ?? 0, n = weight.rank == 2 ? weight.shape[1] : 0
        guard statistics.features == n else {
            throw LayerError("\(name) (\(kind) calibration)", "statistics of \(statistics.features) features for a layer of \(n) inputs")
        }
        guard statistics.rows > 0 else {
            throw LayerError("\(name) (\(kind) calibration)", "no calibration rows reached this layer")
        }
        if case .lowRank(let r) = kind, statistics.rows < r {
            throw LayerError("\(name) (\(kind) calibration)",
                             "\(statistics.rows) calibration tokens are fewer than the rank \(r) asked; give more text (--calib-tokens)")
        }
        _ = try Projection.validated(weight, name, "\(kind) calibration")
        let l = try cholesky(statistics, name: name)
        let dataFree = try Projection.project(weight: weight, bias: bias, to: kind, name: name, butterflyIterations: iterations)
        let w = weight.scalars.map(Double.init)
        let target = multiply(w, m: m, n: n, by: l)            // W L  [out, in]
        let targetNorm = frobenius(target)
        func outputError(_ layer: LinearLayer) throws -> Double {
            let wl = multiply(try layer.denseMatrix().scalars.map(Double.init), m: m, n: n, by: l)
            return frobenius(zip(wl, target).map { $0 - $1 }) / max(targetNorm, 1e-300)
        }
        let startError = try outputError(dataFree.layer)
        var layer: LinearLayer
        var used = 0
        if case .lowRank(let r) = kind {
            layer = try whitenedLowRank(target, m: m, n: n, l: l, rank: r, bias: bias, name: name)
            // The closed form is the minimum; keep the data-free start only if rounding made it lose.
            if try outputError(layer) > startError { layer = dataFree.layer }
        } else if kind == .dense {
            layer = dataFree.layer
        } else {
            (layer, used) = try refine(dataFree.layer, target: target, l: l, n: n, m: m, start: startError, iterations: iterations)
        }
        return Result(layer: layer, weightError: try Projection.relativeError(weight, layer), dataFreeWeightError: dataFree.relativeError,
                      outputError: try outputError(layer), dataFreeOutputError: startError, iterations: used)
    }

    /// Lower-triangular L with L L^T = G + lambda I, row-major n x n (upper part zero).
    static func cholesky(_ statistics: InputStatistics, name: String) throws -> [Double] {
        let n = statistics.features
        var g = statistics.symmetric()
        let meanDiagonal = (0..<n).reduce(0.0) { $0 + g[$1 * n + $1] } / Double(max(n, 1))
        let lambda = max(relativeDamping * meanDiagonal, 1e-12)
        for i in 0..<n { g[i * n + i] += lambda }
        let info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "L")), Int32(n), &g, Int32(n))
        guard info == 0 else {
            throw LayerError("\(name) (calibration)", "the damped input covariance is not positive definite (LAPACK dpotrf info \(info)); the calibration inputs hold non-finite values?")
        }
        for i in 0..<n { for j in (i + 1)..<max(n, i + 1) { g[i * n + j] = 0 } }
        return g
    }

    /// A [m, n] times L [n, n], row-major, in Double.
    static func multiply(_ a: [Double], m: Int, n: Int, by l: [Double]) -> [Double] {
        var out = [Double](repeating: 0, count: m * n)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(n), 1, a, Int32(n), l, Int32(n), 0, &out, Int32(n))
        return out
    }

    static func frobenius(_ a: [Double]) -> Double { a.reduce(0) { $0 + $1 * $1 }.squareRoot() }

    /// The SVD-LLM closed form from W L.
    static func whitenedLowRank(_ wl: [Double], m: Int, n: Int, l: [Double], rank r: Int, bias: Tensor?, name: String) throws -> LinearLayer {
        try LowRankLinear.validate(inFeatures: n, outFeatures: m, rank: r)
        let (u, s, vt) = try SVD.decompose(wl, m: m, n: n, what: "\(name) (whitened lowrank projection)")
        let k = min(m, n)
        var right = [Double](repeating: 0, count: r * n)       // sqrt(S_r) V_r^T, then times L^{-1}
        for i in 0..<r { for j in 0..<n { right[i * n + j] = vt[i * n + j] * s[i].squareRoot() } }
        cblas_dtrsm(CblasRowMajor, CblasRight, CblasLower, CblasNoTrans, CblasNonUnit, Int32(r), Int32(n), 1, l, Int32(n), &right, Int32(n))
        let uf = Tensor(shape: [m, r]) { i in Float(u[(i / r) * k + i % r] * s[i % r].squareRoot()) }
        let vf = try Tensor(shape: [r, n], scalars: right.map { Float($0) })
        return try LowRankLinear(u: uf, v: vf, bias: bias)
    }

    /// Adam on the whitened objective from the data-free layer's parameters (the bias excluded).
    static func refine(_ start: LinearLayer, target: [Double], l: [Double], n: Int, m: Int, start err: Double,
                       iterations: Int) throws -> (LinearLayer, Int) {
        guard iterations > 0, err > 1e-9 else { return (start, 0) }
        // Rows of L^T are the inputs; the layer maps them to rows of (W' L)^T.
        let input = Tensor(shape: [n, n]) { idx in Float(l[(idx % n) * n + idx / n]) }
        let wanted = Tensor(shape: [n, m]) { idx in Float(target[(idx % m) * n + idx / m]) }
        let factors = start.parameters.filter { $0 !== start.bias }
        let bias = start.bias
        let savedBias = bias?.value
        bias?.value = Tensor(zeros: bias!.shape)
        defer { if let savedBias { bias?.value = savedBias } }
        let fit = try Projection.fitAdam(factors, input: input, target: wanted, start: err, iterations: iterations) { x in try start(x) }
        for (p, v) in zip(factors, fit.best) { p.value = v }
        return (start, fit.iterations)
    }
}
