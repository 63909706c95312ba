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
