import FactorlabAutograd
import FactorlabTensor

/// The butterfly accelerator: a product of log2(n) butterfly factors, each mixing the pairs
/// (x_i, x_{i+stride}) with its own 2x2 matrix ("twiddle").
///
/// The input is padded with zeros to n, the next power of two of in_features; ceil(out/n)
/// butterflies are stacked side by side and the output is truncated to out_features. With
/// nblocks > 1, nblocks butterflies are chained per stack, alternating the stride order
/// (block 0: strides 1, 2, ..., n/2; block 1: n/2, ..., 1; ...).
///
/// Parameter `butterfly.twiddle` has shape [stack, nblocks, log2 n, n/2, 2, 2]: entry
/// [s, b, t, j] is the twiddle [[a, b], [c, d]] of pair j in the t-th factor applied by block b,
/// where pair j with stride st joins i = (j / st) * 2 st + j % st and i + st:
///   y_i = a x_i + b x_{i+st},   y_{i+st} = c x_i + d x_{i+st}.
/// Parameters and MACs per token: 2 n log2 n per butterfly (stack * nblocks of them).
///
/// Init rule: each twiddle is a random rotation scaled by g, [[g cos t, -g sin t], [g sin t, g cos t]]
/// with t uniform, and g^(2 F) = n std^2 for F = nblocks log2 n factors. Rotations preserve the
/// energy of every pair exactly, so each stacked butterfly maps ||x||^2 to g^(2F) ||x||^2 spread
/// over n outputs: for unit-variance inputs the output variance is in * g^(2F) / n = in * std^2,
/// the dense layer's, with no heavy tail (random Gaussian twiddles would match it only in
/// expectation, with a log-normal spread that grows with depth).
public final class ButterflyLinear: LinearLayer {
    public let twiddle: Parameter
    public let bias: Parameter?
    public let inFeatures: Int
    public let outFeatures: Int
    /// Padded size (a power of two).
    public let n: Int
    public let logN: Int
    public let nblocks: Int
    public let stack: Int
    public var kind: LinearKind { .butterfly(nblocks: nblocks) }
    public var parameters: [Parameter] { [twiddle] + (bias.map { [$0] } ?? []) }
    public var parameterNames: [String] { ["butterfly.twiddle", "bias"] }
    public var macsPerToken: Int { stack * nblocks * 2 * n * logN }
    /// No rule: one tensor of 2 x 2 mixing factors.
    public var factorFanIns: [Int?] { parameters.map { _ in nil } }

    /// Twiddle shape for a layer.
    public static func twiddleShape(inFeatures: Int, outFeatures: Int, nblocks: Int) throws -> [Int] {
        guard inFeatures >= 2, outFeatures >= 1, nblocks >= 1, nblocks <= 1 << 10, inFeatures <= 1 << 24, outFeatures <= 1 << 24 else {
            throw LayerError("butterfly \(inFeatures)->\(outFeatures)", "needs in_features >= 2, out_features >= 1 and nblocks >= 1 (got nblocks \(nblocks); at most 1024 blocks and 2^24 features)")
        }
        var n = 1, l = 0
        while n < inFeatures { n *= 2; l += 1 }
        return [(outFeatures + n - 1) / n, nblocks, l, n / 2, 2, 2]
    }

    public convenience init(inFeatures: Int, outFeatures: Int, nblocks: Int = 1, bias: Bool = true, std: Float = 0.02,
                            rng: inout RandomGenerator) throws {
        var weights = WeightInit.random(rng)
        defer { rng = weights.generator! }
        try self.init(inFeatures: inFeatures, outFeatures: outFeatures, nblocks: nblocks, bias: bias, std: std, weights: &weights)
    }

    /// Random twiddles: each 2x2 factor a scaled rotation by a uniform angle.
    public init(inFeatures: Int, outFeatures: Int, nblocks: Int = 1, bias: Bool = true, std: Float = 0.02,
                weights: inout WeightInit) throws {
        let shape = try ButterflyLinear.twiddleShape(inFeatures: inFeatures, outFeatures: outFeatures, nblocks: nblocks)
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.stack = shape[0]
        self.nblocks = nblocks
        self.logN = shape[2]
        self.n = 1 << logN
        let factors = Float(nblocks * logN)
        let g = powf(Float(n) * std * std, 1 / (2 * factors))
        let t = weights.fill(shape) { p, count, rng in
            for j in 0..<(count / 4) {
                let theta = 2 * Float.pi * rng.nextUniform()
                let c = g * cosf(theta), s = g * sinf(theta)
                p[4 * j] = c; p[4 * j + 1] = -s; p[4 * j + 2] = s; p[4 * j + 3] = c
            }
        }
        twiddle = Parameter("butterfly.twiddle", t)
        self.bias = bias ? Parameter("bias", Tensor(zeros: [outFeatures])) : nil
    }

    /// Wraps an existing twiddle tensor.
    public init(inFeatures: Int, outFeatures: Int, twiddle: Tensor, bias: Tensor?) throws {
        let nb = twiddle.rank == 6 ? twiddle.shape[1] : 1
        let shape = try ButterflyLinear.twiddleShape(inFeatures: inFeatures, outFeatures: outFeatures, nblocks: nb)
        guard twiddle.shape == shape else {
            throw LayerError("butterfly \(inFeatures)->\(outFeatures)", "twiddle \(describe(twiddle.shape)) does not match the expected \(describe(shape))")
        }
        if let b = bias, b.shape != [outFeatures] {
            throw LayerError("butterfly", "bias \(describe(b.shape)) does not match \(outFeatures) outputs")
        }
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        stack = shape[0]
        nblocks = nb
        logN = shape[2]
        n = 1 << logN
        self.twiddle = Parameter("butterfly.twiddle", twiddle.contiguous())
        self.bias = bias.map { Parameter("bias", $0.contiguous()) }
    }

    /// Stride of each factor in application order (nblocks * log2 n entries).
    public var strides: [Int] {
        (0..<nblocks).flatMap { b in (0..<logN).map { t in b % 2 == 0 ? 1 << t : 1 << (logN - 1 - t) } }
    }

    public func callAsFunction(_ x: Variable) throws -> Variable {
        try checkInput(x, "butterfly \(inFeatures)->\(outFeatures)")
        return try addBias(ButterflyLinear.multiply(x, twiddle.variable, inFeatures: inFeatures, outFeatures: outFeatures,
                                                    n: n, strides: strides))
    }

    public func denseMatrix() throws -> Tensor {
        var eye = Tensor(zeros: [inFeatures, inFeatures])
        eye.withUnsafeMutablePointer { p in for i in 0..<inFeatures { p[i * inFeatures + i] = 1 } }
        let wt = try Tape.withoutRecording {
            try ButterflyLinear.multiply(Variable(eye), Variable(twiddle.value), inFeatures: inFeatures,
                                         outFeatures: outFeatures, n: n, strides: strides)
        }
        return wt.value.transposed().contiguous()
    }

    /// The differentiable butterfly product for x [..., in] and twiddles [stack, nblocks, L, n/2, 2, 2].
    public static func multiply(_ x: Variable, _ tw: Variable, inFeatures: Int, outFeatures: Int, n: Int, strides: [Int]) throws -> Variable {
        let rows = x.value.count / inFeatures
        let xin = try x.value.reshaped([rows, inFeatures]).contiguous()
        let plan = ButterflyKernel(n: n, strides: strides, stack: tw.shape[0], inFeatures: inFeatures, outFeatures: outFeatures)
        let planar = plan.planar(tw.value.contiguous())
        let out = plan.forward(xin, planar: planar)
        var outShape = x.shape
        outShape[outShape.count - 1] = outFeatures
        let twShape = tw.shape
        return Variable.record(try out.reshaped(outShape), inputs: [x, tw], name: "butterfly") { g in
            let (dx, dplanar) = plan.backward(xin, planar: planar, dout: try g.reshaped([rows, outFeatures]).contiguous())
            return [try dx.reshaped(x.shape), try plan.unplanar(dplanar).reshaped(twShape)]
        }
    }
}

/// The butterfly kernels on planar twiddles: for each stack and factor, four arrays a, b, c, d
/// of n/2 floats, so that strides >= 16 run on 16-wide vectors. Rows (tokens) are split between
/// worker threads; each row runs through all factors while it sits in L1.
struct ButterflyKernel: @unchecked Sendable {
    let n: Int
    let strides: [Int]
    let stack: Int
    let inFeatures: Int
    let outFeatures: Int
    var factors: Int { strides.count }
    var half: Int { n / 2 }

    /// [stack, factors, n/2, 2, 2] -> [stack, factors, 4, n/2]
    func planar(_ tw: Tensor) -> Tensor {
        let out = Tensor(uninitializedShape: [stack * factors * 4 * half])
        tw.withUnsafePointer { src in
            let dst = out.unsafeBase
            for f in 0..<(stack * factors) {
                let s = src + f * half * 4, d = dst + f * half * 4
                for j in 0..<half {
                    d[j] = s[4 * j]; d[half + j] = s[4 * j + 1]; d[2 * half + j] = s[4 * j + 2]; d[3 * half + j] = s[4 * j + 3]
                }
            }
        }
        return out
    }

    /// Inverse of `planar`.
    func unplanar(_ p: Tensor) -> Tensor {
        let out = Tensor(uninitializedShape: [stack * factors * half * 4])
        p.withUnsafePointer { src in
            let dst = out.unsafeBase
            for f in 0..<(stack * factors) {
                let s = src + f * half * 4, d = dst + f * half * 4
                for j in 0..<half {
                    d[4 * j] = s[j]; d[4 * j + 1] = s[half + j]; d[4 * j + 2] = s[2 * half + j]; d[4 * j + 3] = s[3 * half + j]
                }
            }
        }
        return out
    }

    /// One factor in place on a row of n floats.
    @inline(__always)
    func stage(_ x: UnsafeMutablePointer<Float>, _ tw: UnsafePointer<Float>, stride st: Int) {
        let a = tw, b = tw + half, c = tw + 2 * half, d = tw + 3 * half
        if st >= 16 {
            var g = 0, j = 0
            while g < n {
                var o = 0
                while o < st {
                    let i = g + o
                    let x0 = UnsafeRawPointer(x + i).loadUnaligned(as: FloatVector.self)
                    let x1 = UnsafeRawPointer(x + i + st).loadUnaligned(as: FloatVector.self)
                    let va = UnsafeRawPointer(a + j).loadUnaligned(as: FloatVector.self)
                    let vb = UnsafeRawPointer(b + j).loadUnaligned(as: FloatVector.self)
                    let vc = UnsafeRawPointer(c + j).loadUnaligned(as: FloatVector.self)
                    let vd = UnsafeRawPointer(d + j).loadUnaligned(as: FloatVector.self)
                    UnsafeMutableRawPointer(x + i).storeBytes(of: va * x0 + vb * x1, as: FloatVector.self)
                    UnsafeMutableRawPointer(x + i + st).storeBytes(of: vc * x0 + vd * x1, as: FloatVector.self)
                    o += 16
                    j += 16
                }
                g += 2 * st
            }
        } else {
            var j = 0, g = 0
            while g < n {
                for o in 0..<st {
                    let i = g + o
                    let x0 = x[i], x1 = x[i + st]
                    x[i] = a[j] * x0 + b[j] * x1
                    x[i + st] = c[j] * x0 + d[j] * x1
                    j += 1
                }
                g += 2 * st
            }
        }
    }

    /// Backward of one factor: dy (in place) becomes dx; twiddle gradients accumulate into dtw.
    @inline(__always)
    func stageBackward(_ dy: UnsafeMutablePointer<Float>, _ xin: UnsafePointer<Float>, _ tw: UnsafePointer<Float>,
                       _ dtw: UnsafeMutablePointer<Float>, stride st: Int) {
        let a = tw, b = tw + half, c = tw + 2 * half, d = tw + 3 * half
        let da = dtw, db = dtw + half, dc = dtw + 2 * half, dd = dtw + 3 * half
        if st >= 16 {
            var g = 0, j = 0
            while g < n {
                var o = 0
                while o < st {
                    let i = g + o
                    let x0 = UnsafeRawPointer(xin + i).loadUnaligned(as: FloatVector.self)
                    let x1 = UnsafeRawPointer(xin + i + st).loadUnaligned(as: FloatVector.self)
                    let g0 = UnsafeRawPointer(dy + i).loadUnaligned(as: FloatVector.self)
                    let g1 = UnsafeRawPointer(dy + i + st).loadUnaligned(as: FloatVector.self)
                    func acc(_ p: UnsafeMutablePointer<Float>, _ v: FloatVector) {
                        UnsafeMutableRawPointer(p + j).storeBytes(of: UnsafeRawPointer(p + j).loadUnaligned(as: FloatVector.self) + v, as: FloatVector.self)
                    }
                    acc(da, g0 * x0); acc(db, g0 * x1); acc(dc, g1 * x0); acc(dd, g1 * x1)
                    let va = UnsafeRawPointer(a + j).loadUnaligned(as: FloatVector.self)
                    let vb = UnsafeRawPointer(b + j).loadUnaligned(as: FloatVector.self)
                    let vc = UnsafeRawPointer(c + j).loadUnaligned(as: FloatVector.self)
                    let vd = UnsafeRawPointer(d + j).loadUnaligned(as: FloatVector.self)
                    UnsafeMutableRawPointer(dy + i).storeBytes(of: va * g0 + vc * g1, as: FloatVector.self)
                    UnsafeMutableRawPointer(dy + i + st).storeBytes(of: vb * g0 + vd * g1, as: FloatVector.self)
                    o += 16
                    j += 16
                }
                g += 2 * st
            }
        } else {
            var j = 0, g = 0
            while g < n {
                for o in 0..<st {
                    let i = g + o
                    let x0 = xin[i], x1 = xin[i + st], g0 = dy[i], g1 = dy[i + st]
                    da[j] += g0 * x0; db[j] += g0 * x1; dc[j] += g1 * x0; dd[j] += g1 * x1
                    dy[i] = a[j] * g0 + c[j] * g1
                    dy[i + st] = b[j] * g0 + d[j] * g1
                    j += 1
                }
                g += 2 * st
            }
        }
    }

    func forward(_ x: Tensor, planar: Tensor) -> Tensor {
        let rows = x.shape[0]
        let out = Tensor(uninitializedShape: [rows, outFeatures])
        let workers = min(Parallel.workers, max(1, rows))
        let scratch = Tensor(uninitializedShape: [workers, n])
        let sx = SendablePointer(x.unsafeBase), so = SendablePointer(out.unsafeBase)
        let st = SendablePointer(planar.unsafeBase), ss = SendablePointer(scratch.unsafeBase)
        Parallel.onWorkers(workers) { w in
            let buf = ss.p + w * n
            for r in (rows * w / workers)..<(rows * (w + 1) / workers) {
                for s in 0..<stack {
                    buf.update(from: sx.p + r * inFeatures, count: inFeatures)
                    (buf + inFeatures).update(repeating: 0, count: n - inFeatures)
                    for f in 0..<factors { stage(buf, st.p + (s * factors + f) * 4 * half, stride: strides[f]) }
                    let lo = s * n, width = min(n, outFeatures - lo)
                    (so.p + r * outFeatures + lo).update(from: buf, count: width)
                }
            }
        }
        withExtendedLifetime((x, planar, scratch)) {}
        return out
    }

    /// Recomputes each row's factor inputs (instead of storing them for all rows), then walks
    /// the factors backward. Twiddle gradients accumulate per worker and are summed at the end.
    func backward(_ x: Tensor, planar: Tensor, dout: Tensor) -> (Tensor, Tensor) {
        let rows = x.shape[0]
        let dx = Tensor(zeros: [rows, inFeatures])
        let workers = min(Parallel.workers, max(1, rows))
        let paramCount = stack * factors * 4 * half
        let dtwAll = Tensor(zeros: [workers, paramCount])
        let scratch = Tensor(uninitializedShape: [workers, (factors + 1) * n])
        let sx = SendablePointer(x.unsafeBase), sg = SendablePointer(dout.unsafeBase), sdx = SendablePointer(dx.unsafeBase)
        let st = SendablePointer(planar.unsafeBase), sdt = SendablePointer(dtwAll.unsafeBase)
        let ss = SendablePointer(scratch.unsafeBase)
        Parallel.onWorkers(workers) { w in
            let acts = ss.p + w * (factors + 1) * n   // acts[f] = input of factor f; last slot = gradient row
            let grad = acts + factors * n
            let dtw = sdt.p + w * paramCount
            for r in (rows * w / workers)..<(rows * (w + 1) / workers) {
                for s in 0..<stack {
                    let tws = st.p + s * factors * 4 * half
                    acts.update(from: sx.p + r * inFeatures, count: inFeatures)
                    (acts + inFeatures).update(repeating: 0, count: n - inFeatures)
                    for f in 0..<(factors - 1) {
                        (acts + (f + 1) * n).update(from: acts + f * n, count: n)
                        stage(acts + (f + 1) * n, tws + f * 4 * half, stride: strides[f])
                    }
                    let lo = s * n, width = min(n, outFeatures - lo)
                    grad.update(from: sg.p + r * outFeatures + lo, count: width)
                    (grad + width).update(repeating: 0, count: n - width)
                    for f in stride(from: factors - 1, through: 0, by: -1) {
                        stageBackward(grad, acts + f * n, tws + f * 4 * half, dtw + (s * factors + f) * 4 * half, stride: strides[f])
                    }
                    let dxr = sdx.p + r * inFeatures
                    for i in 0..<inFeatures { dxr[i] += grad[i] }
                }
            }
        }
        withExtendedLifetime((x, planar, dout, scratch)) {}
        let dplanar = (try? dtwAll.sum(toShape: [1, paramCount]).reshaped([paramCount])) ?? Tensor(zeros: [paramCount])
        return (dx, dplanar)
    }
}

import Foundation
