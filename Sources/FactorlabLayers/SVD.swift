import COpenBLAS
import FactorlabTensor

/// Thin singular value decomposition through LAPACK (`dgesdd`, in Double for projections).
enum SVD {
    /// A = U diag(S) V^T for a row-major m x n matrix; U is m x k, S has k values (descending),
    /// Vt is k x n, k = min(m, n).
    static func decompose(_ a: [Double], m: Int, n: Int, what: String) throws -> (u: [Double], s: [Double], vt: [Double]) {
        let k = min(m, n)
        var work = a
        var s = [Double](repeating: 0, count: k)
        var u = [Double](repeating: 0, count: m * k)
        var vt = [Double](repeating: 0, count: k * n)
        let info = LAPACKE_dgesdd(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "S")), Int32(m), Int32(n), &work, Int32(n),
                                  &s, &u, Int32(k), &vt, Int32(n))
        guard info == 0 else {
            throw LayerError(what, "LAPACK dgesdd failed on a \(m)x\(n) matrix (info \(info))")
        }
        return (u, s, vt)
    }
}
