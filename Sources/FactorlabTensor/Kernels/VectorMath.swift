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

/// ``fexp(_:)`` on 8 lanes at once, with the same operations in the same order (so each lane
/// equals the scalar result bit for bit). Reductions call it explicitly: LLVM does not vectorize
/// a loop that both calls the scalar form and keeps several accumulators.
@inlinable @inline(__always)
public func fexp(_ x: SIMD8<Float>) -> SIMD8<Float> {
    let magic = SIMD8<Float>(repeating: 12_582_912)
    // Clamp with masked replacement: the generic pointwiseMin/Max are not specialized (they were
    // out-of-line calls). NaN lanes pass through, as in the scalar max/min.
    var v = x
    v.replace(with: -87.3, where: v .< -87.3)
    v.replace(with: 88.3762626647949, where: v .> 88.3762626647949)
    let t = v * 1.44269504088896341 + magic
    let n = t - magic
    var r = v - n * 0.693359375
    r = r - n * -2.12194440e-4
    let r2 = r * r
    var y = SIMD8<Float>(repeating: 1.9875691500e-4)
    y = y * r + 1.3981999507e-3
    y = y * r + 8.3334519073e-3
    y = y * r + 4.1665795894e-2
    y = y * r + 1.6666665459e-1
    y = y * r + 5.0000001201e-1
    y = y * r2 + r + 1
    let bits = unsafeBitCast(t, to: SIMD8<UInt32>.self) &- unsafeBitCast(magic, to: SIMD8<UInt32>.self) &+ 127
    var out = y * unsafeBitCast(bits &<< 23, to: SIMD8<Float>.self)
    out.replace(with: 0, where: x .< -87.3)
    out.replace(with: .infinity, where: x .> 88.7)
    out.replace(with: x, where: x .!= x)
    return out
}

/// Loads 8 floats from `p` (no alignment needed).
@inlinable @inline(__always)
public func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

/// Stores 8 floats at `p` (no alignment needed).
@inlinable @inline(__always)
public func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
}

/// ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)): the lane sum in a fixed order.
@inlinable @inline(__always)
public func laneSum(_ a: SIMD8<Float>) -> Float {
    ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]))
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
// reordering a single running sum, so these spell the reassociation out as one 8-lane vector
// (lane k sums elements k, k+8, ...; the tail goes to lane 0; then ``laneSum``). Results differ
// from a sequential sum only by rounding.

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

/// The index of the largest of x[0..<n], the first one on ties, exactly as the scalar scan
/// `if x[j] > best { best = x[j]; index = j }` from x[0] picks it: NaNs never win (and a NaN in
/// x[0] wins by default), and -0 ties with +0. Two vector passes: the maximum over 8 lanes, then
/// the first block of 8 holding it. Greedy decoding runs it on every row of logits each step.
@inlinable
public func rowArgmax(_ x: UnsafePointer<Float>, _ n: Int) -> Int {
    guard n > 1, !x[0].isNaN else { return 0 }
    // Four running maxima, so the compares do not wait on each other.
    var l0 = SIMD8<Float>(repeating: x[0]), l1 = l0, l2 = l0, l3 = l0
    @inline(__always) func keep(_ lanes: inout SIMD8<Float>, _ v: SIMD8<Float>) {
        lanes.replace(with: v, where: v .> lanes) // false for NaN: a NaN never replaces
    }
    var j = 0
    while j + 32 <= n {
        keep(&l0, load8(x + j)); keep(&l1, load8(x + j + 8)); keep(&l2, load8(x + j + 16)); keep(&l3, load8(x + j + 24))
        j += 32
    }
    while j + 8 <= n { keep(&l0, load8(x + j)); j += 8 }
    keep(&l0, l1); keep(&l2, l3); keep(&l0, l2)
    var best = l0[0]
    for k in 1..<8 where l0[k] > best { best = l0[k] }
    while j < n { if x[j] > best { best = x[j] }; j += 1 }
    let target = SIMD8<Float>(repeating: best)
    j = 0
    while j + 8 <= n {
        if any(load8(x + j) .== target) { break }
        j += 8
    }
    while x[j] != best { j += 1 } // best occurs at or after j
    return j
}

/// x[j] = exp(x[j] - shift) for j < n, in place, in one pass; returns their sum, added in the
/// order of ``rowSum``. The exponential pass of a softmax (attention, the fused cross-entropy).
@inlinable @inline(__always)
public func expShiftedInPlace(_ x: UnsafeMutablePointer<Float>, _ n: Int, shift m: Float) -> Float {
    let shift = SIMD8<Float>(repeating: m)
    var acc = SIMD8<Float>()
    var j = 0
    while j + 8 <= n {
        let e = fexp(load8(x + j) - shift)
        store8(e, x + j)
        acc += e
        j += 8
    }
    while j < n { x[j] = fexp(x[j] - m); acc[0] += x[j]; j += 1 }
    return laneSum(acc)
}

/// sum(x[0..<n]).
@inlinable @inline(__always)
public func rowSum(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var a = SIMD8<Float>()
    var j = 0
    while j + 8 <= n {
        a += load8(x + j)
        j += 8
    }
    while j < n { a[0] += x[j]; j += 1 }
    return laneSum(a)
}

/// sum(exp(x[0..<n] - shift)).
@inlinable @inline(__always)
public func rowSumExp(_ x: UnsafePointer<Float>, _ n: Int, shift: Float) -> Float {
    var a = SIMD8<Float>()
    let s = SIMD8<Float>(repeating: shift)
    var j = 0
    while j + 8 <= n {
        a += fexp(load8(x + j) - s)
        j += 8
    }
    while j < n { a[0] += fexp(x[j] - shift); j += 1 }
    return laneSum(a)
}

/// sum(x[0..<n] * y[0..<n]).
@inlinable @inline(__always)
public func rowDot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int) -> Float {
    var a = SIMD8<Float>()
    var j = 0
    while j + 8 <= n {
        a += load8(x + j) * load8(y + j)
        j += 8
    }
    while j < n { a[0] += x[j] * y[j]; j += 1 }
    return laneSum(a)
}
