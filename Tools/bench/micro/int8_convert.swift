import Foundation

@inline(__always) func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self) }
@inline(__always) func laneSum(_ a: SIMD8<Float>) -> Float { ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7])) }
@inline(__always) func int8Lanes(_ raw: UnsafeRawPointer, _ offset: Int) -> SIMD8<Float> {
    SIMD8<Float>(SIMD8<Int32>(truncatingIfNeeded: raw.loadUnaligned(fromByteOffset: offset, as: SIMD8<Int8>.self)))
}
// V0: current
@inline(__always) func dot0(_ q: UnsafePointer<Int8>, _ d: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int) -> Float {
    @inline(__always) func group(_ raw: UnsafeRawPointer, _ x: UnsafePointer<Float>) -> SIMD8<Float> {
        let a = int8Lanes(raw, 0) * load8(x), b = int8Lanes(raw, 8) * load8(x + 8)
        let c = int8Lanes(raw, 16) * load8(x + 16), e = int8Lanes(raw, 24) * load8(x + 24)
        return (a + b) + (c + e)
    }
    var even = SIMD8<Float>(), odd = SIMD8<Float>()
    var j = 0, k = 0
    while j + 64 <= n {
        let raw = UnsafeRawPointer(q + j)
        even += group(raw, x + j) * d[k]
        odd += group(raw + 32, x + j + 32) * d[k + 1]
        j += 64; k += 2
    }
    return laneSum(even + odd)
}
// V1: FMA
@inline(__always) func dot1(_ q: UnsafePointer<Int8>, _ d: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int) -> Float {
    @inline(__always) func group(_ raw: UnsafeRawPointer, _ x: UnsafePointer<Float>) -> SIMD8<Float> {
        var a = int8Lanes(raw, 0) * load8(x)
        var b = int8Lanes(raw, 8) * load8(x + 8)
        a = a.addingProduct(int8Lanes(raw, 16), load8(x + 16))
        b = b.addingProduct(int8Lanes(raw, 24), load8(x + 24))
        return a + b
    }
    var even = SIMD8<Float>(), odd = SIMD8<Float>()
    var j = 0, k = 0
    while j + 64 <= n {
        let raw = UnsafeRawPointer(q + j)
        even = even.addingProduct(group(raw, x + j), SIMD8(repeating: d[k]))
        odd = odd.addingProduct(group(raw + 32, x + j + 32), SIMD8(repeating: d[k + 1]))
        j += 64; k += 2
    }
    return laneSum(even + odd)
}
// V2: shift conversion on 32-bit words; xp is x permuted per group: xp[g*32 + 8*b + i] = x[g*32 + 4*i + b]
@inline(__always) func dot2(_ q: UnsafePointer<Int8>, _ d: UnsafePointer<Float>, _ xp: UnsafePointer<Float>, _ n: Int) -> Float {
    @inline(__always) func group(_ raw: UnsafeRawPointer, _ x: UnsafePointer<Float>) -> SIMD8<Float> {
        let v = raw.loadUnaligned(as: SIMD8<Int32>.self)
        let b0 = SIMD8<Float>((v &<< 24) &>> 24), b1 = SIMD8<Float>((v &<< 16) &>> 24)
        let b2 = SIMD8<Float>((v &<< 8) &>> 24), b3 = SIMD8<Float>(v &>> 24)
        var a = b0 * load8(x), b = b1 * load8(x + 8)
        a = a.addingProduct(b2, load8(x + 16)); b = b.addingProduct(b3, load8(x + 24))
        return a + b
    }
    var even = SIMD8<Float>(), odd = SIMD8<Float>()
    var j = 0, k = 0
    while j + 64 <= n {
        let raw = UnsafeRawPointer(q + j)
        even = even.addingProduct(group(raw, xp + j), SIMD8(repeating: d[k]))
        odd = odd.addingProduct(group(raw + 32, xp + j + 32), SIMD8(repeating: d[k + 1]))
        j += 64; k += 2
    }
    return laneSum(even + odd)
}
// V3: magic-number conversion (xor 0x80, and, or 0x4B000000, fsub)
@inline(__always) func dot3(_ q: UnsafePointer<Int8>, _ d: UnsafePointer<Float>, _ xp: UnsafePointer<Float>, _ n: Int) -> Float {
    let m = SIMD8<UInt32>(repeating: 0xFF), e = SIMD8<UInt32>(repeating: 0x4B00_0000), fl = SIMD8<UInt32>(repeating: 0x8080_8080)
    let off = SIMD8<Float>(repeating: 8388608 + 128)
    @inline(__always) func f(_ u: SIMD8<UInt32>) -> SIMD8<Float> { unsafeBitCast(u | e, to: SIMD8<Float>.self) - off }
    @inline(__always) func group(_ raw: UnsafeRawPointer, _ x: UnsafePointer<Float>) -> SIMD8<Float> {
        let v = raw.loadUnaligned(as: SIMD8<UInt32>.self) ^ fl
        let b0 = f(v & m), b1 = f((v &>> 8) & m), b2 = f((v &>> 16) & m), b3 = f(v &>> 24)
        var a = b0 * load8(x), b = b1 * load8(x + 8)
        a = a.addingProduct(b2, load8(x + 16)); b = b.addingProduct(b3, load8(x + 24))
        return a + b
    }
    var even = SIMD8<Float>(), odd = SIMD8<Float>()
    var j = 0, k = 0
    while j + 64 <= n {
        let raw = UnsafeRawPointer(q + j)
        even = even.addingProduct(group(raw, xp + j), SIMD8(repeating: d[k]))
        odd = odd.addingProduct(group(raw + 32, xp + j + 32), SIMD8(repeating: d[k + 1]))
        j += 64; k += 2
    }
    return laneSum(even + odd)
}

let rows = Int(CommandLine.arguments.dropFirst().first ?? "1024")!, cols = 768
var q = [Int8](repeating: 0, count: rows * cols)
for i in q.indices { q[i] = Int8(truncatingIfNeeded: (i &* 2654435761) >> 7) }
let groups = cols / 32
var s = [Float](repeating: 0, count: rows * groups)
for i in s.indices { s[i] = Float(i % 7 + 1) * 0.01 }
var x = [Float](repeating: 0, count: cols)
for i in x.indices { x[i] = Float(i % 13) * 0.1 - 0.6 }
var xp = x
for g in 0..<groups { for b in 0..<4 { for i in 0..<8 { xp[g*32 + 8*b + i] = x[g*32 + 4*i + b] } } }
var y = [Float](repeating: 0, count: rows)
func run(_ name: String, _ xin: [Float], _ k: (UnsafePointer<Int8>, UnsafePointer<Float>, UnsafePointer<Float>, Int) -> Float) {
    var best = Double.infinity
    var check: Float = 0
    for _ in 0..<7 {
        let t0 = DispatchTime.now().uptimeNanoseconds
        var reps = 0
        while reps < 200 {
            q.withUnsafeBufferPointer { qb in s.withUnsafeBufferPointer { sb in xin.withUnsafeBufferPointer { xb in
                for r in 0..<rows { y[r] = k(qb.baseAddress! + r * cols, sb.baseAddress! + r * groups, xb.baseAddress!, cols) }
            } } }
            reps += 1
        }
        let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9 / Double(reps)
        best = min(best, dt)
        check = y.reduce(0, +)
    }
    print(name, String(format: "%.1f GB/s (int8 bytes)  check %.4f", Double(rows * cols) / best / 1e9, check))
}
run("v0 current", x, dot0)
run("v1 fma    ", x, dot1)
run("v2 shift  ", xp, dot2)
run("v3 magic  ", xp, dot3)
