// Vectorized transcendental functions for the hot kernels (softmax, GELU).
//
// `exp` follows the Cephes single-precision scheme: exp(x) = 2^n * exp(r) with n = round(x/ln 2)
// and |r| <= ln(2)/2, exp(r) from a degree-6 polynomial. Relative error is below 2 ulp over
// [-87, 88]; inputs below -87.3 give exactly 0 (so masked logits vanish), above 88.7 give +inf.

public typealias FloatVector = SIMD16<Float>

@inlinable @inline(__always)
public func vexp(_ x: FloatVector) -> FloatVector {
    let hi: FloatVector = .init(repeating: 88.3762626647949)
    let lo: FloatVector = .init(repeating: -87.3)
    var v = x.clamped(lowerBound: lo, upperBound: hi)
    let n = (v * 1.44269504088896341 + 0.5).rounded(.down)
    v = v - n * 0.693359375
    v = v - n * -2.12194440e-4
    let v2 = v * v
    var y: FloatVector = .init(repeating: 1.9875691500e-4)
    y = y * v + 1.3981999507e-3
    y = y * v + 8.3334519073e-3
    y = y * v + 4.1665795894e-2
    y = y * v + 1.6666665459e-1
    y = y * v + 5.0000001201e-1
    y = y * v2 + v + 1
    let bits = (SIMD16<Int32>(n, rounding: .towardZero) &+ 127) &<< 23
    var r = y * unsafeBitCast(bits, to: FloatVector.self)
    r.replace(with: 0, where: x .< lo)
    r.replace(with: Float.infinity, where: x .> 88.7)
    r.replace(with: x, where: x .!= x) // NaN stays NaN
    return r
}

/// tanh(x) = 1 - 2 / (exp(2x) + 1); absolute error below 3e-7.
@inlinable @inline(__always)
public func vtanh(_ x: FloatVector) -> FloatVector {
    let e = vexp(2 * x.clamped(lowerBound: .init(repeating: -20), upperBound: .init(repeating: 20)))
    return 1 - 2 / (e + 1)
}

/// Scalar versions that share the vector code paths, so scalar tails round the same way.
@inlinable @inline(__always)
public func sexp(_ x: Float) -> Float { vexp(FloatVector(repeating: x))[0] }

@inlinable @inline(__always)
public func stanh(_ x: Float) -> Float { vtanh(FloatVector(repeating: x))[0] }

/// Applies a vector function to `n` floats, 16 at a time, with a padded tail.
@inlinable @inline(__always)
public func mapVectors(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int,
                       _ f: (FloatVector) -> FloatVector) {
    let w = FloatVector.scalarCount
    var i = 0
    while i + w <= n {
        let v = UnsafeRawPointer(src + i).loadUnaligned(as: FloatVector.self)
        UnsafeMutableRawPointer(dst + i).storeBytes(of: f(v), as: FloatVector.self)
        i += w
    }
    if i < n {
        var v = FloatVector(repeating: 0)
        for j in 0..<(n - i) { v[j] = src[i + j] }
        let r = f(v)
        for j in 0..<(n - i) { dst[i + j] = r[j] }
    }
}
