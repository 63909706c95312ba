import Foundation
@inline(__always) func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self) }
@inline(__always) func laneSum(_ a: SIMD8<Float>) -> Float { ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7])) }
@inline(__always) func prefetchAhead(_ p: UnsafeRawPointer) { _ = p }
@inline(__always)
func dotRows8(_ w: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ ldx: Int, _ n: Int) -> (SIMD4<Float>, SIMD4<Float>) {
    var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
    var a4 = SIMD8<Float>(), a5 = SIMD8<Float>(), a6 = SIMD8<Float>(), a7 = SIMD8<Float>()
    var j = 0
    while j + 8 <= n {
        let wv = load8(w + j)
        a0 += wv * load8(x + j); a1 += wv * load8(x + ldx + j); a2 += wv * load8(x + 2 * ldx + j); a3 += wv * load8(x + 3 * ldx + j)
        a4 += wv * load8(x + 4 * ldx + j); a5 += wv * load8(x + 5 * ldx + j); a6 += wv * load8(x + 6 * ldx + j); a7 += wv * load8(x + 7 * ldx + j)
        j += 8
    }
    return (SIMD4(laneSum(a0), laneSum(a1), laneSum(a2), laneSum(a3)), SIMD4(laneSum(a4), laneSum(a5), laneSum(a6), laneSum(a7)))
}
// two weight rows x four input rows
@inline(__always)
func dot2x4(_ w0: UnsafePointer<Float>, _ w1: UnsafePointer<Float>, _ x0: UnsafePointer<Float>, _ x1: UnsafePointer<Float>,
            _ x2: UnsafePointer<Float>, _ x3: UnsafePointer<Float>, _ n: Int) -> (SIMD4<Float>, SIMD4<Float>) {
    var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
    var b0 = SIMD8<Float>(), b1 = SIMD8<Float>(), b2 = SIMD8<Float>(), b3 = SIMD8<Float>()
    var j = 0
    while j + 8 <= n {
        let u = load8(w0 + j), v = load8(w1 + j)
        var t = load8(x0 + j); a0 += u * t; b0 += v * t
        t = load8(x1 + j); a1 += u * t; b1 += v * t
        t = load8(x2 + j); a2 += u * t; b2 += v * t
        t = load8(x3 + j); a3 += u * t; b3 += v * t
        j += 8
    }
    return (SIMD4(laneSum(a0), laneSum(a1), laneSum(a2), laneSum(a3)), SIMD4(laneSum(b0), laneSum(b1), laneSum(b2), laneSum(b3)))
}
@inline(__always)
func dot2x4f(_ w0: UnsafePointer<Float>, _ w1: UnsafePointer<Float>, _ x0: UnsafePointer<Float>, _ x1: UnsafePointer<Float>,
            _ x2: UnsafePointer<Float>, _ x3: UnsafePointer<Float>, _ n: Int) -> (SIMD4<Float>, SIMD4<Float>) {
    var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
    var b0 = SIMD8<Float>(), b1 = SIMD8<Float>(), b2 = SIMD8<Float>(), b3 = SIMD8<Float>()
    var j = 0
    while j + 8 <= n {
        let u = load8(w0 + j), v = load8(w1 + j)
        var t = load8(x0 + j); a0 = a0.addingProduct(u, t); b0 = b0.addingProduct(v, t)
        t = load8(x1 + j); a1 = a1.addingProduct(u, t); b1 = b1.addingProduct(v, t)
        t = load8(x2 + j); a2 = a2.addingProduct(u, t); b2 = b2.addingProduct(v, t)
        t = load8(x3 + j); a3 = a3.addingProduct(u, t); b3 = b3.addingProduct(v, t)
        j += 8
    }
    return (SIMD4(laneSum(a0), laneSum(a1), laneSum(a2), laneSum(a3)), SIMD4(laneSum(b0), laneSum(b1), laneSum(b2), laneSum(b3)))
}
let args = CommandLine.arguments
let rows = Int(args[1])!, cols = Int(args[2])!, m = 8
var w = [Float](repeating: 0, count: rows * cols); for i in w.indices { w[i] = Float((i * 7) % 11) * 0.01 - 0.05 }
var x = [Float](repeating: 0, count: m * cols); for i in x.indices { x[i] = Float((i * 5) % 13) * 0.1 - 0.6 }
var y = [Float](repeating: 0, count: m * rows)
func time(_ name: String, _ body: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) {
    var best = Double.infinity
    for _ in 0..<9 {
        let t0 = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<20 { w.withUnsafeBufferPointer { wb in x.withUnsafeBufferPointer { xb in y.withUnsafeMutableBufferPointer { yb in body(wb.baseAddress!, xb.baseAddress!, yb.baseAddress!) } } } }
        best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9 / 20)
    }
    print(name, String(format: "%.1f GFLOP/s  %.1f us  check %.4f", Double(2 * m * rows * cols) / best / 1e9, best * 1e6, y.reduce(0, +)))
}
time("rows8 ") { w, x, y in for r in 0..<rows { let (lo, hi) = dotRows8(w + r * cols, x, cols, cols); for k in 0..<4 { y[k * rows + r] = lo[k]; y[(k + 4) * rows + r] = hi[k] } } }
time("2x4   ") { w, x, y in
    var r = 0
    while r + 2 <= rows {
        for i in stride(from: 0, to: 8, by: 4) {
            let (a, b) = dot2x4(w + r * cols, w + (r + 1) * cols, x + i * cols, x + (i + 1) * cols, x + (i + 2) * cols, x + (i + 3) * cols, cols)
            for k in 0..<4 { y[(i + k) * rows + r] = a[k]; y[(i + k) * rows + r + 1] = b[k] }
        }
        r += 2
    }
}
time("2x4fma") { w, x, y in
    var r = 0
    while r + 2 <= rows {
        for i in stride(from: 0, to: 8, by: 4) {
            let (a, b) = dot2x4f(w + r * cols, w + (r + 1) * cols, x + i * cols, x + (i + 1) * cols, x + (i + 2) * cols, x + (i + 3) * cols, cols)
            for k in 0..<4 { y[(i + k) * rows + r] = a[k]; y[(i + k) * rows + r + 1] = b[k] }
        }
        r += 2
    }
}
@inline(__always)
func dot3x4f(_ w0: UnsafePointer<Float>, _ ldw: Int, _ x0: UnsafePointer<Float>, _ ldx: Int, _ n: Int) -> (SIMD4<Float>, SIMD4<Float>, SIMD4<Float>) {
    let w1 = w0 + ldw, w2 = w0 + 2 * ldw, x1 = x0 + ldx, x2 = x0 + 2 * ldx, x3 = x0 + 3 * ldx
    var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
    var b0 = SIMD8<Float>(), b1 = SIMD8<Float>(), b2 = SIMD8<Float>(), b3 = SIMD8<Float>()
    var c0 = SIMD8<Float>(), c1 = SIMD8<Float>(), c2 = SIMD8<Float>(), c3 = SIMD8<Float>()
    var j = 0
    while j + 8 <= n {
        let u = load8(w0 + j), v = load8(w1 + j), s = load8(w2 + j)
        var t = load8(x0 + j); a0 = a0.addingProduct(u, t); b0 = b0.addingProduct(v, t); c0 = c0.addingProduct(s, t)
        t = load8(x1 + j); a1 = a1.addingProduct(u, t); b1 = b1.addingProduct(v, t); c1 = c1.addingProduct(s, t)
        t = load8(x2 + j); a2 = a2.addingProduct(u, t); b2 = b2.addingProduct(v, t); c2 = c2.addingProduct(s, t)
        t = load8(x3 + j); a3 = a3.addingProduct(u, t); b3 = b3.addingProduct(v, t); c3 = c3.addingProduct(s, t)
        j += 8
    }
    return (SIMD4(laneSum(a0), laneSum(a1), laneSum(a2), laneSum(a3)), SIMD4(laneSum(b0), laneSum(b1), laneSum(b2), laneSum(b3)), SIMD4(laneSum(c0), laneSum(c1), laneSum(c2), laneSum(c3)))
}
time("3x4fma") { w, x, y in
    var r = 0
    while r + 3 <= rows {
        for i in stride(from: 0, to: 8, by: 4) {
            let (a, b, c) = dot3x4f(w + r * cols, cols, x + i * cols, cols, cols)
            for k in 0..<4 { y[(i + k) * rows + r] = a[k]; y[(i + k) * rows + r + 1] = b[k]; y[(i + k) * rows + r + 2] = c[k] }
        }
        r += 3
    }
}
@inline(__always) func laneSums(_ a: SIMD8<Float>, _ b: SIMD8<Float>, _ c: SIMD8<Float>, _ d: SIMD8<Float>) -> SIMD4<Float> {
    // fold 8 -> 4 per vector, then pairwise: [a,b] and [c,d]
    let p = a.lowHalf + a.highHalf, q = b.lowHalf + b.highHalf, r = c.lowHalf + c.highHalf, s = d.lowHalf + d.highHalf
    let pq = SIMD4(lowHalf: p.evenHalf, highHalf: q.evenHalf) + SIMD4(lowHalf: p.oddHalf, highHalf: q.oddHalf)   // [p0+p1, p2+p3, q0+q1, q2+q3]
    let rs = SIMD4(lowHalf: r.evenHalf, highHalf: s.evenHalf) + SIMD4(lowHalf: r.oddHalf, highHalf: s.oddHalf)
    return SIMD4(lowHalf: pq.evenHalf, highHalf: rs.evenHalf) + SIMD4(lowHalf: pq.oddHalf, highHalf: rs.oddHalf)
}
@inline(__always)
func dot3x4g(_ w0: UnsafePointer<Float>, _ ldw: Int, _ x0: UnsafePointer<Float>, _ ldx: Int, _ n: Int) -> (SIMD4<Float>, SIMD4<Float>, SIMD4<Float>) {
    let w1 = w0 + ldw, w2 = w0 + 2 * ldw, x1 = x0 + ldx, x2 = x0 + 2 * ldx, x3 = x0 + 3 * ldx
    var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
    var b0 = SIMD8<Float>(), b1 = SIMD8<Float>(), b2 = SIMD8<Float>(), b3 = SIMD8<Float>()
    var c0 = SIMD8<Float>(), c1 = SIMD8<Float>(), c2 = SIMD8<Float>(), c3 = SIMD8<Float>()
    var j = 0
    while j + 8 <= n {
        let u = load8(w0 + j), v = load8(w1 + j), s = load8(w2 + j)
        var t = load8(x0 + j); a0 = a0.addingProduct(u, t); b0 = b0.addingProduct(v, t); c0 = c0.addingProduct(s, t)
        t = load8(x1 + j); a1 = a1.addingProduct(u, t); b1 = b1.addingProduct(v, t); c1 = c1.addingProduct(s, t)
        t = load8(x2 + j); a2 = a2.addingProduct(u, t); b2 = b2.addingProduct(v, t); c2 = c2.addingProduct(s, t)
        t = load8(x3 + j); a3 = a3.addingProduct(u, t); b3 = b3.addingProduct(v, t); c3 = c3.addingProduct(s, t)
        j += 8
    }
    return (laneSums(a0, a1, a2, a3), laneSums(b0, b1, b2, b3), laneSums(c0, c1, c2, c3))
}
time("3x4sum") { w, x, y in
    var r = 0
    while r + 3 <= rows {
        for i in stride(from: 0, to: 8, by: 4) {
            let (a, b, c) = dot3x4g(w + r * cols, cols, x + i * cols, cols, cols)
            for k in 0..<4 { y[(i + k) * rows + r] = a[k]; y[(i + k) * rows + r + 1] = b[k]; y[(i + k) * rows + r + 2] = c[k] }
        }
        r += 3
    }
}
// AVX-512 variants (32 vector registers): 16-wide 3x4, and 8-wide 3 weight rows x all 8 input rows.
@inline(__always) func load16(_ p: UnsafePointer<Float>) -> SIMD16<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self) }
@inline(__always) func laneSum16(_ a: SIMD16<Float>) -> Float { a.sum() }
@inline(__always)
func dot3x4w(_ w0: UnsafePointer<Float>, _ ldw: Int, _ x0: UnsafePointer<Float>, _ ldx: Int, _ n: Int) -> (SIMD4<Float>, SIMD4<Float>, SIMD4<Float>) {
    let w1 = w0 + ldw, w2 = w0 + 2 * ldw, x1 = x0 + ldx, x2 = x0 + 2 * ldx, x3 = x0 + 3 * ldx
    var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
    var b0 = SIMD16<Float>(), b1 = SIMD16<Float>(), b2 = SIMD16<Float>(), b3 = SIMD16<Float>()
    var c0 = SIMD16<Float>(), c1 = SIMD16<Float>(), c2 = SIMD16<Float>(), c3 = SIMD16<Float>()
    var j = 0
    while j + 16 <= n {
        let u = load16(w0 + j), v = load16(w1 + j), s = load16(w2 + j)
        var t = load16(x0 + j); a0 = a0.addingProduct(u, t); b0 = b0.addingProduct(v, t); c0 = c0.addingProduct(s, t)
        t = load16(x1 + j); a1 = a1.addingProduct(u, t); b1 = b1.addingProduct(v, t); c1 = c1.addingProduct(s, t)
        t = load16(x2 + j); a2 = a2.addingProduct(u, t); b2 = b2.addingProduct(v, t); c2 = c2.addingProduct(s, t)
        t = load16(x3 + j); a3 = a3.addingProduct(u, t); b3 = b3.addingProduct(v, t); c3 = c3.addingProduct(s, t)
        j += 16
    }
    return (SIMD4(laneSum16(a0), laneSum16(a1), laneSum16(a2), laneSum16(a3)), SIMD4(laneSum16(b0), laneSum16(b1), laneSum16(b2), laneSum16(b3)), SIMD4(laneSum16(c0), laneSum16(c1), laneSum16(c2), laneSum16(c3)))
}
time("3x4w16") { w, x, y in
    var r = 0
    while r + 3 <= rows {
        for i in stride(from: 0, to: 8, by: 4) {
            let (a, b, c) = dot3x4w(w + r * cols, cols, x + i * cols, cols, cols)
            for k in 0..<4 { y[(i + k) * rows + r] = a[k]; y[(i + k) * rows + r + 1] = b[k]; y[(i + k) * rows + r + 2] = c[k] }
        }
        r += 3
    }
}
@inline(__always)
func dot3x8(_ w0: UnsafePointer<Float>, _ ldw: Int, _ x: UnsafePointer<Float>, _ ldx: Int, _ n: Int, _ y: UnsafeMutablePointer<Float>, _ ldy: Int) {
    var acc = (SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>())
    var bcc = acc, ccc = acc
    let w1 = w0 + ldw, w2 = w0 + 2 * ldw
    var j = 0
    while j + 8 <= n {
        let u = load8(w0 + j), v = load8(w1 + j), s = load8(w2 + j)
        var t = load8(x + j); acc.0 = acc.0.addingProduct(u, t); bcc.0 = bcc.0.addingProduct(v, t); ccc.0 = ccc.0.addingProduct(s, t)
        t = load8(x + ldx + j); acc.1 = acc.1.addingProduct(u, t); bcc.1 = bcc.1.addingProduct(v, t); ccc.1 = ccc.1.addingProduct(s, t)
        t = load8(x + 2*ldx + j); acc.2 = acc.2.addingProduct(u, t); bcc.2 = bcc.2.addingProduct(v, t); ccc.2 = ccc.2.addingProduct(s, t)
        t = load8(x + 3*ldx + j); acc.3 = acc.3.addingProduct(u, t); bcc.3 = bcc.3.addingProduct(v, t); ccc.3 = ccc.3.addingProduct(s, t)
        t = load8(x + 4*ldx + j); acc.4 = acc.4.addingProduct(u, t); bcc.4 = bcc.4.addingProduct(v, t); ccc.4 = ccc.4.addingProduct(s, t)
        t = load8(x + 5*ldx + j); acc.5 = acc.5.addingProduct(u, t); bcc.5 = bcc.5.addingProduct(v, t); ccc.5 = ccc.5.addingProduct(s, t)
        t = load8(x + 6*ldx + j); acc.6 = acc.6.addingProduct(u, t); bcc.6 = bcc.6.addingProduct(v, t); ccc.6 = ccc.6.addingProduct(s, t)
        t = load8(x + 7*ldx + j); acc.7 = acc.7.addingProduct(u, t); bcc.7 = bcc.7.addingProduct(v, t); ccc.7 = ccc.7.addingProduct(s, t)
        j += 8
    }
    // Stored one input row at a time, without building arrays (no allocation in the kernel).
    @inline(__always) func put(_ i: Int, _ a: SIMD8<Float>, _ b: SIMD8<Float>, _ c: SIMD8<Float>) {
        y[i * ldy] = laneSum(a); y[i * ldy + 1] = laneSum(b); y[i * ldy + 2] = laneSum(c)
    }
    put(0, acc.0, bcc.0, ccc.0); put(1, acc.1, bcc.1, ccc.1); put(2, acc.2, bcc.2, ccc.2); put(3, acc.3, bcc.3, ccc.3)
    put(4, acc.4, bcc.4, ccc.4); put(5, acc.5, bcc.5, ccc.5); put(6, acc.6, bcc.6, ccc.6); put(7, acc.7, bcc.7, ccc.7)
}
time("3x8   ") { w, x, y in
    var r = 0
    while r + 3 <= rows { dot3x8(w + r * cols, cols, x, cols, cols, y + r, rows); r += 3 }
}
