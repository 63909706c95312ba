// A read kernel for measuring memory bandwidth (the read half of STREAM): every float of a
// buffer is loaded once, in 8-lane vectors with four independent accumulators so the loads,
// not the additions, set the pace. It prefetches ``Kernels/streamPrefetchBytes`` ahead, as the
// matrix-vector kernels do, so that the ceiling it measures is the one they can reach.

import COpenBLAS

extension Kernels {
    /// The sum of `count` floats at `p` (its value only keeps the loads from being optimized away).
    public static func streamRead(_ p: UnsafePointer<Float>, _ count: Int) -> Float {
        typealias V = SIMD8<Float>
        var a = V(), b = V(), c = V(), d = V()
        var i = 0
        let raw = UnsafeRawPointer(p)
        while i + 32 <= count {
            factorlab_prefetch(raw + 4 * i + streamPrefetchBytes)
            factorlab_prefetch(raw + 4 * i + streamPrefetchBytes + 64)
            a += raw.loadUnaligned(fromByteOffset: 4 * i, as: V.self)
            b += raw.loadUnaligned(fromByteOffset: 4 * (i + 8), as: V.self)
            c += raw.loadUnaligned(fromByteOffset: 4 * (i + 16), as: V.self)
            d += raw.loadUnaligned(fromByteOffset: 4 * (i + 24), as: V.self)
            i += 32
        }
        var total = (a + b + c + d).sum()
        while i < count { total += p[i]; i += 1 }
        return total
    }
}
