// Transcendental functions for the hot kernels (softmax, GELU), written branch-free on scalars
// so that the loops calling them are vectorized by LLVM (generic SIMD methods such as `clamped`
// and SIMD integer conversion are not specialized by the compiler and run element by element).
//
// `fexp` follows the Cephes single-precision scheme: exp(x) = 2^n * exp(r) with n = round(x/ln 2)
// and |r| <= ln(2)/2, exp(r) from a degree-6 polynomial; relative error below 2 ulp over
// [-87, 88]. Rounding and 2^n use the 1.5 * 2^23 "magic number" trick instead of float-to-int
// conversions. Inputs below -87.3 give exactly 0 (masked logits vanish), above 88.7 give +inf,
// NaN stays NaN.

@inlinable @inline(__always)
public func fexp(_ x: Float) -> Float {
    let magic: Float = 12_582_912 // 1.5 * 2^23: adding it rounds to an integer held in the low mantissa bits
    let v = Swift.min(Swift.max(x, -87.3), 88.3762626647949)
    let t = v * 1.44269504088896341 + magic
    let n = t - magic
    var r = v - n * 0.693359375
    r = r - n * -2.12194440e-4
    let r2 = r * r
    var y: Float = 1.9875691500e-4
    y = y * r + 1.3981999507e-3
    y = y * r + 8.3334519073e-3
    y = y * r + 4.1665795894e-2
    y = y * r + 1.6666665459e-1
    y = y * r + 5.0000001201e-1
    y = y * r2 + r + 1
    let scale = Float(bitPattern: (t.bitPattern &- magic.bitPattern &+ 127) &<< 23)
    var out = y * scale
    out = x < -87.3 ? 0 : out
    out = x > 88.7 ? .infinity : out
    return x != x ? x : out
}

/// tanh(x) = 1 - 2 / (exp(2x) + 1); absolute error below 3e-7.
@inlinable @inline(__always)
public func ftanh(_ x: Float) -> Float {
    let e = fexp(2 * Swift.min(Swift.max(x, -20), 20))
    return 1 - 2 / (e + 1)
}

/// 16 floats, for kernels that load and store whole vectors explicitly (butterfly stages).
public typealias FloatVector = SIMD16<Float>

/// Runs `body(lo, hi)` over `0..<n` split into contiguous parts, in parallel when `n * cost`
/// is large. The body is a plain loop the compiler vectorizes.
@inlinable @inline(__always)
public func parallelElements(_ n: Int, cost: Int, _ body: (Int, Int) -> Void) {
    Parallel.forRange((n + 63) / 64, costPerItem: 64 * cost) { r in
        let lo = r.lowerBound * 64, hi = Swift.min(n, r.upperBound * 64)
        if lo < hi { body(lo, hi) }
    }
}

// Row reductions with eight independent accumulators: strict IEEE addition keeps LLVM from
// reordering a single running sum, so these spell the reassociation out; the eight lanes are
// then vectorized together (one 8-wide vector with AVX2). Results differ from a sequential sum
// only by rounding.

/// max(x[0..<n]); -inf for n = 0.
@inlinable @inline(__always)
public func rowMax(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var m0 = -Float.infinity, m1 = m0, m2 = m0, m3 = m0, m4 = m0, m5 = m0, m6 = m0, m7 = m0
    var j = 0
    while j + 8 <= n {
        m0 = Swift.max(m0, x[j]); m1 = Swift.max(m1, x[j + 1]); m2 = Swift.max(m2, x[j + 2]); m3 = Swift.max(m3, x[j + 3])
        m4 = Swift.max(m4, x[j + 4]); m5 = Swift.max(m5, x[j + 5]); m6 = Swift.max(m6, x[j + 6]); m7 = Swift.max(m7, x[j + 7])
        j += 8
    }
    while j < n { m0 = Swift.max(m0, x[j]); j += 1 }
    return Swift.max(Swift.max(Swift.max(m0, m1), Swift.max(m2, m3)), Swift.max(Swift.max(m4, m5), Swift.max(m6, m7)))
}

/// sum(x[0..<n]).
@inlinable @inline(__always)
public func rowSum(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var a0: Float = 0, a1: Float = 0, a2: Float = 0, a3: Float = 0, a4: Float = 0, a5: Float = 0, a6: Float = 0, a7: Float = 0
    var j = 0
    while j + 8 <= n {
        a0 += x[j]; a1 += x[j + 1]; a2 += x[j + 2]; a3 += x[j + 3]
        a4 += x[j + 4]; a5 += x[j + 5]; a6 += x[j + 6]; a7 += x[j + 7]
        j += 8
    }
    while j < n { a0 += x[j]; j += 1 }
    return ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))
}

/// sum(exp(x[0..<n] - shift)).
@inlinable @inline(__always)
public func rowSumExp(_ x: UnsafePointer<Float>, _ n: Int, shift: Float) -> Float {
    var a0: Float = 0, a1: Float = 0, a2: Float = 0, a3: Float = 0, a4: Float = 0, a5: Float = 0, a6: Float = 0, a7: Float = 0
    var j = 0
    while j + 8 <= n {
        a0 += fexp(x[j] - shift); a1 += fexp(x[j + 1] - shift); a2 += fexp(x[j + 2] - shift); a3 += fexp(x[j + 3] - shift)
        a4 += fexp(x[j + 4] - shift); a5 += fexp(x[j + 5] - shift); a6 += fexp(x[j + 6] - shift); a7 += fexp(x[j + 7] - shift)
        j += 8
    }
    while j < n { a0 += fexp(x[j] - shift); j += 1 }
    return ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))
}

/// sum(x[0..<n] * y[0..<n]).
@inlinable @inline(__always)
public func rowDot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int) -> Float {
    var a0: Float = 0, a1: Float = 0, a2: Float = 0, a3: Float = 0, a4: Float = 0, a5: Float = 0, a6: Float = 0, a7: Float = 0
    var j = 0
    while j + 8 <= n {
        a0 += x[j] * y[j]; a1 += x[j + 1] * y[j + 1]; a2 += x[j + 2] * y[j + 2]; a3 += x[j + 3] * y[j + 3]
        a4 += x[j + 4] * y[j + 4]; a5 += x[j + 5] * y[j + 5]; a6 += x[j + 6] * y[j + 6]; a7 += x[j + 7] * y[j + 7]
        j += 8
    }
    while j < n { a0 += x[j] * y[j]; j += 1 }
    return ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))
}
