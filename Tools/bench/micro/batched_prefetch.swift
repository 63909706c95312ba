import Foundation
@inline(__always) func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self) }
@inline(__always) func laneSum(_ a: SIMD8<Float>) -> Float { ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7])) }
@inline(__always)
func dot3x4(_ w0: UnsafePointer<Float>, _ ldw: Int, _ x0: UnsafePointer<Float>, _ ldx: Int, _ n: Int, mode: Int, dist: Int) -> (SIMD4<Float>, SIMD4<Float>, SIMD4<Float>) {
    let w1 = w0 + ldw, w2 = w0 + 2 * ldw, x1 = x0 + ldx, x2 = x0 + 2 * ldx, x3 = x0 + 3 * ldx
    var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
    var b0 = SIMD8<Float>(), b1 = SIMD8<Float>(), b2 = SIMD8<Float>(), b3 = SIMD8<Float>()
    var c0 = SIMD8<Float>(), c1 = SIMD8<Float>(), c2 = SIMD8<Float>(), c3 = SIMD8<Float>()
    @inline(__always) func step(_ j: Int) {
        let u = load8(w0 + j), v = load8(w1 + j), s = load8(w2 + j)
        var t = load8(x0 + j); a0 = a0.addingProduct(u, t); b0 = b0.addingProduct(v, t); c0 = c0.addingProduct(s, t)
        t = load8(x1 + j); a1 = a1.addingProduct(u, t); b1 = b1.addingProduct(v, t); c1 = c1.addingProduct(s, t)
        t = load8(x2 + j); a2 = a2.addingProduct(u, t); b2 = b2.addingProduct(v, t); c2 = c2.addingProduct(s, t)
        t = load8(x3 + j); a3 = a3.addingProduct(u, t); b3 = b3.addingProduct(v, t); c3 = c3.addingProduct(s, t)
    }
    var j = 0
    while j + 16 <= n {
        if mode == 1 { fl_prefetch(w0 + j + 512); fl_prefetch(w1 + j + 512); fl_prefetch(w2 + j + 512) }
        else if mode == 2 { let p = w0 + 3 * j + dist; fl_prefetch(p); fl_prefetch(p + 16); fl_prefetch(p + 32) }
        step(j); step(j + 8); j += 16
    }
    return (SIMD4(laneSum(a0), laneSum(a1), laneSum(a2), laneSum(a3)), SIMD4(laneSum(b0), laneSum(b1), laneSum(b2), laneSum(b3)), SIMD4(laneSum(c0), laneSum(c1), laneSum(c2), laneSum(c3)))
}
let args = CommandLine.arguments
let rows = Int(args[1])!, cols = Int(args[2])!, m = 8
let w = UnsafeMutablePointer<Float>.allocate(capacity: rows * cols + 65536); for i in 0..<(rows * cols) { w[i] = Float((i * 7) % 11) * 0.01 - 0.05 }
let x = UnsafeMutablePointer<Float>.allocate(capacity: m * cols); for i in 0..<(m * cols) { x[i] = Float((i * 5) % 13) * 0.1 - 0.6 }
let y = UnsafeMutablePointer<Float>.allocate(capacity: m * rows)
/// One pass over all weight triples, timed (best of 7). With `piece`, the triples go in pieces of
/// that many, visited as two threads' interleaved claims would (pieces 0, 2, 4, ... then 1, 3,
/// 5, ...), so each piece's stream starts cold; with `warm`, a piece's first bytes are
/// prefetched at its start.
func time(_ name: String, mode: Int, dist: Int, piece: Int? = nil, warm: Int = 0) {
    var best = Double.infinity
    let triples = rows / 3, size = piece ?? Swift.max(triples, 1), pieces = (triples + size - 1) / size
    let order = Array(stride(from: 0, to: pieces, by: 2)) + Array(stride(from: 1, to: pieces, by: 2))
    for _ in 0..<7 {
        let t0 = DispatchTime.now().uptimeNanoseconds
        for p in order {
            let lo = p * size, hi = min(triples, lo + size)
            var o = 0
            while o < warm { fl_prefetch(UnsafeRawPointer(w + 3 * lo * cols) + o); o += 64 }
            for t in lo..<hi {
                let r = 3 * t
                for i in stride(from: 0, to: 8, by: 4) {
                    let (a, b, c) = dot3x4(w + r * cols, cols, x + i * cols, cols, cols, mode: mode, dist: dist)
                    for k in 0..<4 { y[(i + k) * rows + r] = a[k]; y[(i + k) * rows + r + 1] = b[k]; y[(i + k) * rows + r + 2] = c[k] }
                }
            }
        }
        best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
    }
    var s: Float = 0; for i in 0..<(m * rows) { s += y[i] }
    print(name, String(format: "%.1f GFLOP/s  %.2f GB/s  %.0f us  check %.4f", Double(2 * m * rows * cols) / best / 1e9, Double(4 * rows * cols) / best / 1e9, best * 1e6, s))
}
time("none     ", mode: 0, dist: 0)
time("row+2KB  ", mode: 1, dist: 0)
for d in [512, 1024, 1536, 2048, 3072] { time("lin+\(d * 4)B", mode: 2, dist: d) }
// Pieces of 16 triples (48 KB at 256 columns), prefetching 8 KB ahead as the kernel does.
time("pieces lin+8KB", mode: 2, dist: 2048, piece: 16)
time("pieces lin+8KB, first 4KB prefetched", mode: 2, dist: 2048, piece: 16, warm: 4096)
