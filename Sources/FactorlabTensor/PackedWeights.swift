// Weight-only low precision: a weight tensor stored as bfloat16 or as int8 with group-wise scales,
// and the kernels that multiply by it without ever forming the float32 matrix.
//
// The layout (documented for users in README, "Low-precision weights"):
//   - The tensor is viewed as rows of `rowLength` contiguous elements (for a linear weight [out, in]
//     a row is one output's weights, the dot-product dimension; for block factors [b, out, in] the
//     same; for butterfly twiddles a row is one level of one block).
//   - bf16: each element is the top 16 bits of its float32, rounded to nearest, ties to even
//     (torch's `.to(torch.bfloat16)`); dequantized exactly by shifting back.
//   - int8 (llama.cpp's Q8_0 layout, with a float32 scale where Q8_0 has a float16 one): each row is
//     cut into groups of 32 (the last one shorter when 32 does not divide the row); a group with
//     largest magnitude a gets the scale d = a / 127 (float32 division) and stores
//     q = clamp(round(w / d), -127, 127), round to nearest with ties away from zero; d = 0 gives q = 0.
//     The dequantized weight is Float(q) * d. 1.125 bytes per weight.
// Q8_0 over per-output-channel scales: a group of 32 bounds the damage one outlier weight can do to
// its neighbours' precision, which matters for the small, unevenly scaled factors of Monarch and BTT;
// the scale costs 0.125 bytes per weight. Float32 scales because this toolchain has no Float16 on
// x86-64 Linux, and they make the dequantized value a single float32 product.

import COpenBLAS

/// How a model's weight matrices are stored for inference.
public enum WeightFormat: String, Sendable, CaseIterable, Codable {
    case float32, bf16, int8

    /// Bytes per weight, scales included (int8: one float32 scale per group of 32).
    public var bytesPerWeight: Double {
        switch self {
        case .float32: return 4
        case .bf16: return 2
        case .int8: return 1 + 4.0 / Double(PackedWeights.groupSize)
        }
    }
}

/// One weight tensor in bf16 or int8 (see the layout above). Immutable once made.
public final class PackedWeights: @unchecked Sendable {
    public static let groupSize = 32

    public let format: WeightFormat
    /// The tensor's logical shape.
    public let shape: [Int]
    /// Elements per row and number of rows (rows * rowLength = the element count).
    public let rowLength: Int, rows: Int
    /// Scale groups per row (int8).
    public var groupsPerRow: Int { (rowLength + PackedWeights.groupSize - 1) / PackedWeights.groupSize }
    /// int8: the quantized values, row-major, and the scales [rows, groupsPerRow].
    public let int8Values: [Int8]
    public let scales: [Float]
    /// bf16: the bit patterns, row-major.
    public let bf16Bits: [UInt16]

    /// Bytes of weight data (values and scales), what a product reads from memory.
    public var byteCount: Int { int8Values.count + 4 * scales.count + 2 * bf16Bits.count }
    public var count: Int { rows * rowLength }

    /// Quantizes `tensor` (any shape; rows of `rowLength`, default its last axis) to `format`
    /// (bf16 or int8). Fails for float32 (nothing to pack) and for non-finite values.
    public init(quantizing tensor: Tensor, format: WeightFormat, rowLength: Int? = nil) throws {
        let t = tensor.contiguous()
        let n = t.count
        let len = rowLength ?? (t.shape.last ?? 1)
        guard format != .float32 else { throw TensorError("quantize", "float32 is not a packed format") }
        guard len >= 1, n % len == 0 else {
            throw TensorError("quantize", "row length \(len) does not divide the \(n) elements of \(describe(t.shape))")
        }
        if let bad = t.firstNonFinite() { throw TensorError("quantize", "element \(bad) is not finite (\(t.scalar(at: bad)))") }
        self.format = format
        shape = t.shape
        self.rowLength = len
        rows = n / len
        let src = UnsafeBufferPointer(start: t.unsafeBase, count: n)
        switch format {
        case .bf16:
            bf16Bits = src.map(PackedWeights.bf16Bits)
            int8Values = []
            scales = []
        case .int8:
            let g = PackedWeights.groupSize, groups = (len + g - 1) / g
            var q = [Int8](repeating: 0, count: n), s = [Float](repeating: 0, count: rows * groups)
            for r in 0..<rows {
                for k in 0..<groups {
                    let lo = r * len + k * g, hi = r * len + min(len, (k + 1) * g)
                    var amax: Float = 0
                    for i in lo..<hi { amax = max(amax, abs(src[i])) }
                    let d = amax / 127
                    s[r * groups + k] = d
                    guard d > 0 else { continue }
                    for i in lo..<hi { q[i] = Int8(max(-127, min(127, (src[i] / d).rounded()))) }
                }
            }
            int8Values = q
            scales = s
            bf16Bits = []
        case .float32:
            fatalError("unreachable")
        }
        _ = t
    }

    /// Packed data read from a file, validated: sizes against the shape, int8 values in
    /// [-127, 127], scales finite and non-negative. Errors name `what`.
    public init(format: WeightFormat, shape: [Int], rowLength: Int, int8Values: [Int8] = [], scales: [Float] = [],
                bf16Bits: [UInt16] = [], what: String) throws {
        func fail(_ m: String) -> TensorError { TensorError(what, m) }
        guard let n = Tensor.elementCount(shape) else { throw fail("shape \(shape) is not a tensor shape (negative or overflowing element count)") }
        guard rowLength >= 1, n % rowLength == 0 else { throw fail("row length \(rowLength) does not divide the \(n) elements of \(describe(shape))") }
        let rows = n / rowLength, groups = (rowLength + PackedWeights.groupSize - 1) / PackedWeights.groupSize
        switch format {
        case .int8:
            guard int8Values.count == n else { throw fail("holds \(int8Values.count) int8 values, the shape \(describe(shape)) needs \(n)") }
            guard scales.count == rows * groups else {
                throw fail("holds \(scales.count) scales, \(rows) rows of \(rowLength) in groups of \(PackedWeights.groupSize) need \(rows * groups)")
            }
            if let i = int8Values.firstIndex(of: -128) { throw fail("int8 value -128 at element \(i) (the format uses -127...127)") }
            if let i = scales.firstIndex(where: { !$0.isFinite || $0 < 0 }) { throw fail("scale \(i) is \(scales[i]), expected a finite value >= 0") }
        case .bf16:
            guard bf16Bits.count == n else { throw fail("holds \(bf16Bits.count) bf16 values, the shape \(describe(shape)) needs \(n)") }
            if let i = bf16Bits.firstIndex(where: { $0 & 0x7F80 == 0x7F80 }) { throw fail("bf16 element \(i) is not finite") }
        case .float32:
            throw fail("float32 is not a packed format")
        }
        self.format = format
        self.shape = shape
        self.rowLength = rowLength
        self.rows = rows
        self.int8Values = format == .int8 ? int8Values : []
        self.scales = format == .int8 ? scales : []
        self.bf16Bits = format == .bf16 ? bf16Bits : []
    }

    /// float32 -> bfloat16 bits, round to nearest, ties to even (NaN stays a quiet NaN).
    @inline(__always)
    public static func bf16Bits(_ x: Float) -> UInt16 {
        let b = x.bitPattern
        if x.isNaN { return UInt16(truncatingIfNeeded: b >> 16) | 0x0040 }
        return UInt16(truncatingIfNeeded: (b &+ 0x7FFF &+ ((b >> 16) & 1)) >> 16)
    }

    /// The float32 tensor these weights stand for.
    public func dequantized() -> Tensor {
        let t = Tensor(uninitializedShape: shape)
        for r in 0..<rows { dequantizeRow(r, into: t.unsafeBase + r * rowLength) }
        return t
    }

    /// Rows `ids` of a [rows, rowLength] table, dequantized into `out` ([ids.count, rowLength]):
    /// the lookup of a packed embedding. The ids must be valid rows (the caller checks them).
    public func gatherRows(_ ids: [Int32], into out: UnsafeMutablePointer<Float>) {
        for (i, id) in ids.enumerated() { dequantizeRow(Int(id), into: out + i * rowLength) }
    }

    /// Rows `range`, dequantized into `out` (range.count x rowLength floats).
    public func dequantizeRows(_ range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        for r in range { dequantizeRow(r, into: out + (r - range.lowerBound) * rowLength) }
    }

    /// Row `r`, dequantized into `out` (rowLength floats).
    @inline(__always)
    func dequantizeRow(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        let len = rowLength
        switch format {
        case .bf16:
            bf16Bits.withUnsafeBufferPointer { b in
                let p = b.baseAddress! + r * len
                for i in 0..<len { out[i] = Float(bitPattern: UInt32(p[i]) << 16) }
            }
        case .int8:
            int8Values.withUnsafeBufferPointer { qb in
                scales.withUnsafeBufferPointer { sb in
                    let g = PackedWeights.groupSize, groups = (len + g - 1) / g
                    let q = qb.baseAddress! + r * len, s = sb.baseAddress! + r * groups
                    for k in 0..<groups {
                        let d = s[k]
                        for i in (k * g)..<min(len, (k + 1) * g) { out[i] = Float(q[i]) * d }
                    }
                }
            }
        case .float32:
            break
        }
    }
}

extension Kernels {
    /// y = x W^T for a packed W viewed as `blocks` blocks of `rowsPerBlock` rows (of the packed
    /// row length, `cols`): for each of `inputRows` rows i of x, each block b and row o,
    /// y[i * ldy + b * yStride + o] (+)= dot(W[b, o, :], x[i * ldx + b * xStride ..< + cols]).
    /// A dense [out, in] weight is one block (xStride = yStride = 0); Monarch and BTT factors
    /// [b, out, in] use the strides of ``blockMatVec(_:_:_:blocks:rowsPerBlock:cols:xStride:yStride:accumulate:)``.
    ///
    /// Each weight row is read from memory once for all input rows: with one input row the row is
    /// dequantized in registers and multiplied at once; with several, each group of weights is
    /// converted in registers once per eight input rows (int8, ``dotInt8Rows8(_:_:_:_:_:)``) or
    /// four (``dotInt8Rows4(_:_:_:_:_:)``, ``dotBF16Rows4(_:_:_:_:)``), and the rows left over
    /// take the one-row kernel. The weight rows are split across the worker threads. The result equals, to float32 rounding of a
    /// different summation order at most, x times ``PackedWeights/dequantized()`` (the same
    /// dequantized values are used; QuantizationTests compares both paths with float64 products
    /// of them).
    public static func packedMatMul(_ w: PackedWeights, _ x: UnsafePointer<Float>, ldx: Int, _ y: UnsafeMutablePointer<Float>, ldy: Int,
                                    inputRows: Int, blocks: Int = 1, xStride: Int = 0, yStride: Int = 0, accumulate: Bool) {
        let cols = w.rowLength, total = w.rows
        precondition(blocks >= 1 && total % blocks == 0, "packedMatMul: \(total) rows do not split into \(blocks) blocks")
        let rowsPerBlock = total / blocks
        let (sx, sy) = (SendablePointer(x), SendablePointer(y))
        let isInt8 = w.format == .int8
        let groups = w.groupsPerRow
        func body(_ range: Range<Int>, q: UnsafePointer<Int8>?, s: UnsafePointer<Float>?, h: UnsafePointer<UInt16>?) {
            // Block and row within it, stepped along (no division per row: a 64-bit divide costs
            // about as much as a short row's dot product).
            var b = range.lowerBound / rowsPerBlock, o = range.lowerBound - b * rowsPerBlock
            @inline(__always) func advance() {
                o += 1
                if o == rowsPerBlock { o = 0; b += 1 }
            }
            @inline(__always) func store(_ d: Float, _ out: UnsafeMutablePointer<Float>) {
                out.pointee = accumulate ? out.pointee + d : d
            }
            if inputRows == 1 {
                // One input row: each weight row is dequantized in registers and multiplied at once.
                for r in range {
                    let xb = sx.p + b * xStride, yb = sy.p + b * yStride + o
                    let d = isInt8 ? dotInt8(q! + r * cols, s! + r * groups, xb, cols) : dotBF16(h! + r * cols, xb, cols)
                    store(d, yb)
                    advance()
                }
                return
            }
            // Several input rows: each weight group is converted in registers once for eight
            // input rows (int8) or four (int8's leftover fours; bf16: eight lanes widened).
            for r in range {
                let xb = sx.p + b * xStride, yb = sy.p + b * yStride + o
                var i = 0
                while isInt8 && i + 8 <= inputRows {
                    let (lo, hi) = dotInt8Rows8(q! + r * cols, s! + r * groups, xb + i * ldx, ldx, cols)
                    for k in 0..<4 {
                        store(lo[k], yb + (i + k) * ldy)
                        store(hi[k], yb + (i + 4 + k) * ldy)
                    }
                    i += 8
                }
                while i + 4 <= inputRows {
                    let d = isInt8 ? dotInt8Rows4(q! + r * cols, s! + r * groups, xb + i * ldx, ldx, cols)
                                   : dotBF16Rows4(h! + r * cols, xb + i * ldx, ldx, cols)
                    for k in 0..<4 { store(d[k], yb + (i + k) * ldy) }
                    i += 4
                }
                while i < inputRows {
                    let xi = xb + i * ldx
                    let d = isInt8 ? dotInt8(q! + r * cols, s! + r * groups, xi, cols) : dotBF16(h! + r * cols, xi, cols)
                    store(d, yb + i * ldy)
                    i += 1
                }
                advance()
            }
        }
        w.int8Values.withUnsafeBufferPointer { qb in
            w.scales.withUnsafeBufferPointer { sb in
                w.bf16Bits.withUnsafeBufferPointer { hb in
                    let (q, s, h) = (UncheckedSendable(qb.baseAddress), UncheckedSendable(sb.baseAddress), UncheckedSendable(hb.baseAddress))
                    Parallel.forRangeSpinning(total, costPerItem: cols * inputRows, piecesPerWorker: matVecPieces) { range in
                        body(range, q: q.value, s: s.value, h: h.value)
                    }
                }
            }
        }
    }

    /// y = x W^T for a packed W [out, in] and many rows of x (prefill, evaluation): W is
    /// dequantized a tile of output rows at a time into one scratch buffer of at most
    /// ``packedTileFloats`` floats (or one row, if longer), and each tile goes through sgemm
    /// against all rows of x, so no float32 copy of W of more than a tile ever exists.
    /// y[i * ldy + o] (+)= dot(W[o, :], x[i * ldx ..< + in]). The dequantized values are those
    /// of ``PackedWeights/dequantized()``.
    public static func packedGemm(_ w: PackedWeights, _ x: UnsafePointer<Float>, ldx: Int, _ y: UnsafeMutablePointer<Float>, ldy: Int,
                                  inputRows: Int, accumulate: Bool) {
        let cols = w.rowLength, total = w.rows
        let tileRows = max(1, min(total, packedTileFloats / max(cols, 1)))
        let tile = Tensor(uninitializedShape: [tileRows, cols])
        var o = 0
        while o < total {
            let n = min(tileRows, total - o)
            w.dequantizeRows(o..<(o + n), into: tile.unsafeBase)
            BLAS.sgemm(transA: false, transB: true, m: inputRows, n: n, k: cols, a: x, lda: ldx, b: tile.unsafeBase, ldb: cols,
                       beta: accumulate ? 1 : 0, c: y + o, ldc: ldy)
            o += n
        }
        withExtendedLifetime(tile) {}
    }

    /// The scratch of ``packedGemm(_:_:ldx:_:ldy:inputRows:accumulate:)``: 256K floats (1 MiB),
    /// enough rows per tile for sgemm to run at full speed.
    public static let packedTileFloats = 1 << 18

    /// Eight int8 weights at `raw + offset`, as float32 lanes (the conversion every int8 kernel shares).
    @inline(__always)
    static func int8Lanes(_ raw: UnsafeRawPointer, _ offset: Int) -> SIMD8<Float> {
        SIMD8<Float>(SIMD8<Int32>(truncatingIfNeeded: raw.loadUnaligned(fromByteOffset: offset, as: SIMD8<Int8>.self)))
    }

    /// Eight bf16 weights at `raw + offset` (bytes), widened to float32 lanes: a bf16 value is
    /// the top half of the float32 with the same bits.
    @inline(__always)
    static func bf16Lanes(_ raw: UnsafeRawPointer, _ offset: Int) -> SIMD8<Float> {
        unsafeBitCast(SIMD8<UInt32>(truncatingIfNeeded: raw.loadUnaligned(fromByteOffset: offset, as: SIMD8<UInt16>.self)) &<< 16,
                      to: SIMD8<Float>.self)
    }

    /// sum_i (q[i] * d[group of i]) x[i] over one int8 row of n, groups of 32: each group's
    /// products are accumulated in 8 lanes, scaled once, and added to one of two row
    /// accumulators (even and odd groups, so the adds do not wait on each other); the weights
    /// are prefetched ahead.
    @inline(__always)
    static func dotInt8(_ q: UnsafePointer<Int8>, _ d: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int) -> Float {
        @inline(__always)
        func group(_ raw: UnsafeRawPointer, _ x: UnsafePointer<Float>) -> SIMD8<Float> {
            let a = int8Lanes(raw, 0) * load8(x), b = int8Lanes(raw, 8) * load8(x + 8)
            let c = int8Lanes(raw, 16) * load8(x + 16), e = int8Lanes(raw, 24) * load8(x + 24)
            return (a + b) + (c + e)
        }
        var even = SIMD8<Float>(), odd = SIMD8<Float>()
        var total: Float = 0
        var j = 0, k = 0
        while j + 64 <= n {
            let raw = UnsafeRawPointer(q + j)
            prefetchAhead(raw)
            even += group(raw, x + j) * d[k]
            odd += group(raw + 32, x + j + 32) * d[k + 1]
            j += 64
            k += 2
        }
        if j + 32 <= n {
            even += group(UnsafeRawPointer(q + j), x + j) * d[k]
            j += 32
            k += 1
        }
        if j < n {
            // The last, shorter group.
            var s: Float = 0
            while j < n { s += Float(q[j]) * x[j]; j += 1 }
            total += s * d[k]
        }
        return laneSum(even + odd) + total
    }

    /// ``dotInt8(_:_:_:_:)`` for the four input rows x_k = x + k * ldx at once: each group of 32
    /// int8 weights is loaded and converted once and serves four products; each row's group sum
    /// is scaled by the group's scale and added to that row's accumulator.
    @inline(__always)
    static func dotInt8Rows4(_ q: UnsafePointer<Int8>, _ d: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ ldx: Int,
                             _ n: Int) -> SIMD4<Float> {
        let (x0, x1, x2, x3) = (x, x + ldx, x + 2 * ldx, x + 3 * ldx)
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
        var j = 0, k = 0
        while j + 32 <= n {
            let raw = UnsafeRawPointer(q + j)
            prefetchAhead(raw)
            var g0 = SIMD8<Float>(), g1 = SIMD8<Float>(), g2 = SIMD8<Float>(), g3 = SIMD8<Float>()
            for u in 0..<4 {
                let w = int8Lanes(raw, 8 * u)
                let c = j + 8 * u
                g0 += w * load8(x0 + c)
                g1 += w * load8(x1 + c)
                g2 += w * load8(x2 + c)
                g3 += w * load8(x3 + c)
            }
            let scale = d[k]
            a0 += g0 * scale
            a1 += g1 * scale
            a2 += g2 * scale
            a3 += g3 * scale
            j += 32
            k += 1
        }
        var out = SIMD4<Float>(laneSum(a0), laneSum(a1), laneSum(a2), laneSum(a3))
        if j < n {
            // The last, shorter group.
            var t = SIMD4<Float>()
            while j < n {
                t += SIMD4(x0[j], x1[j], x2[j], x3[j]) * Float(q[j])
                j += 1
            }
            out += t * d[k]
        }
        return out
    }

    /// ``dotInt8(_:_:_:_:)`` for the eight input rows x_k = x + k * ldx at once (batched
    /// generation): each eight int8 weights are converted once and multiplied by their group's
    /// scale, giving exactly the dequantized values of ``PackedWeights/dequantized()``, and serve
    /// eight fused multiply-adds. The conversion, not the arithmetic, bounds the int8 kernels
    /// (Tools/bench/README.md), so converting once for eight rows instead of once per four is what
    /// counts. Rows 0-3 come back in the first result, 4-7 in the second.
    @inline(__always)
    static func dotInt8Rows8(_ q: UnsafePointer<Int8>, _ d: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ ldx: Int,
                             _ n: Int) -> (SIMD4<Float>, SIMD4<Float>) {
        let (x0, x1, x2, x3) = (x, x + ldx, x + 2 * ldx, x + 3 * ldx)
        let (x4, x5, x6, x7) = (x + 4 * ldx, x + 5 * ldx, x + 6 * ldx, x + 7 * ldx)
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
        var a4 = SIMD8<Float>(), a5 = SIMD8<Float>(), a6 = SIMD8<Float>(), a7 = SIMD8<Float>()
        let raw = UnsafeRawPointer(q)
        var j = 0, k = 0
        while j + 32 <= n {
            prefetchAhead(raw + j)
            let scale = SIMD8<Float>(repeating: d[k])
            for u in 0..<4 {
                let c = j + 8 * u
                let w = int8Lanes(raw, c) * scale
                a0 = a0.addingProduct(w, load8(x0 + c))
                a1 = a1.addingProduct(w, load8(x1 + c))
                a2 = a2.addingProduct(w, load8(x2 + c))
                a3 = a3.addingProduct(w, load8(x3 + c))
                a4 = a4.addingProduct(w, load8(x4 + c))
                a5 = a5.addingProduct(w, load8(x5 + c))
                a6 = a6.addingProduct(w, load8(x6 + c))
                a7 = a7.addingProduct(w, load8(x7 + c))
            }
            j += 32
            k += 1
        }
        var lo = SIMD4<Float>(laneSum(a0), laneSum(a1), laneSum(a2), laneSum(a3))
        var hi = SIMD4<Float>(laneSum(a4), laneSum(a5), laneSum(a6), laneSum(a7))
        while j < n {
            // The last, shorter group.
            let w = Float(q[j]) * d[k]
            lo += SIMD4(x0[j], x1[j], x2[j], x3[j]) * w
            hi += SIMD4(x4[j], x5[j], x6[j], x7[j]) * w
            j += 1
        }
        return (lo, hi)
    }

    /// dot(w_r, x_k) for three weight rows w_r = w + r * ldw and four input rows x_k = x + k * ldx,
    /// over n floats, in twelve accumulators (with the three weight vectors and one input vector,
    /// all sixteen vector registers): each weight load serves four fused multiply-adds and each
    /// input load three, so the arithmetic, not the loads, sets the pace. One thread, tiny's
    /// shapes in cache, eight input rows: 70-74 GFLOP/s against 46-48 for one weight row and
    /// eight input rows with separate multiplies and adds (Tools/bench/README.md). The weights
    /// are prefetched ``batchedPrefetchBytes`` ahead along the block. When the caller makes
    /// `passes` passes over the same three rows (four input rows each; the later passes read
    /// them from L1), pass `pass` prefetches only its share of the stream ahead, so that memory
    /// stays busy through every pass instead of the first alone: gpt2 dense at batch 8,
    /// weights from memory, 186-214 -> 202-242 tokens/s in six alternating rounds (median
    /// 202 -> 223; docs/bench/stream-prefetch/).
    @inline(__always)
    static func dotRows3x4(_ w: UnsafePointer<Float>, _ ldw: Int, _ x: UnsafePointer<Float>, _ ldx: Int,
                           _ n: Int, pass: Int = 0, passes: Int = 1) -> (SIMD4<Float>, SIMD4<Float>, SIMD4<Float>) {
        let (w0, w1, w2) = (w, w + ldw, w + 2 * ldw)
        let (x0, x1, x2, x3) = (x, x + ldx, x + 2 * ldx, x + 3 * ldx)
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
        var b0 = SIMD8<Float>(), b1 = SIMD8<Float>(), b2 = SIMD8<Float>(), b3 = SIMD8<Float>()
        var c0 = SIMD8<Float>(), c1 = SIMD8<Float>(), c2 = SIMD8<Float>(), c3 = SIMD8<Float>()
        @inline(__always) func step(_ j: Int) {
            let u = load8(w0 + j), v = load8(w1 + j), s = load8(w2 + j)
            var t = load8(x0 + j)
            a0 = a0.addingProduct(u, t); b0 = b0.addingProduct(v, t); c0 = c0.addingProduct(s, t)
            t = load8(x1 + j)
            a1 = a1.addingProduct(u, t); b1 = b1.addingProduct(v, t); c1 = c1.addingProduct(s, t)
            t = load8(x2 + j)
            a2 = a2.addingProduct(u, t); b2 = b2.addingProduct(v, t); c2 = c2.addingProduct(s, t)
            t = load8(x3 + j)
            a3 = a3.addingProduct(u, t); b3 = b3.addingProduct(v, t); c3 = c3.addingProduct(s, t)
        }
        var j = 0
        while j + 16 <= n {
            // The three rows lie back to back (ldw == n in matVecRows), so a block's weights are
            // one stream, consumed at three cache lines per step: prefetch that stream, which runs
            // on into the next blocks' rows, a fixed distance ahead.
            // Pass p of P covers bytes [p, p + 1) x 12n / P of the block's 12n-byte stream:
            // 12 / P bytes of stream for each float of j, 192 / P bytes per step.
            if passes == 1 {
                let ahead = UnsafeRawPointer(w + 3 * j) + batchedPrefetchBytes
                factorlab_prefetch(ahead)
                factorlab_prefetch(ahead + 64)
                factorlab_prefetch(ahead + 128)
            } else {
                let ahead = UnsafeRawPointer(w) + batchedPrefetchBytes + (pass * 12 * n + 12 * j) / passes
                factorlab_prefetch(ahead)
                factorlab_prefetch(ahead + 64)
            }
            step(j)
            step(j + 8)
            j += 16
        }
        if j + 8 <= n {
            step(j)
            j += 8
        }
        var ra = SIMD4<Float>(laneSum(a0), laneSum(a1), laneSum(a2), laneSum(a3))
        var rb = SIMD4<Float>(laneSum(b0), laneSum(b1), laneSum(b2), laneSum(b3))
        var rc = SIMD4<Float>(laneSum(c0), laneSum(c1), laneSum(c2), laneSum(c3))
        while j < n {
            let xs = SIMD4(x0[j], x1[j], x2[j], x3[j])
            ra += xs * w0[j]
            rb += xs * w1[j]
            rc += xs * w2[j]
            j += 1
        }
        return (ra, rb, rc)
    }

    /// dot(w, x_k) for the four rows x_k = x + k * ldx, over n floats: each load of w serves four products.
    @inline(__always)
    static func dotRows4(_ w: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ ldx: Int, _ n: Int) -> SIMD4<Float> {
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
        let (x0, x1, x2, x3) = (x, x + ldx, x + 2 * ldx, x + 3 * ldx)
        var j = 0
        while j + 8 <= n {
            let wv = load8(w + j)
            a0 += wv * load8(x0 + j)
            a1 += wv * load8(x1 + j)
            a2 += wv * load8(x2 + j)
            a3 += wv * load8(x3 + j)
            j += 8
        }
        var out = SIMD4<Float>(laneSum(a0), laneSum(a1), laneSum(a2), laneSum(a3))
        while j < n {
            out += SIMD4(x0[j], x1[j], x2[j], x3[j]) * w[j]
            j += 1
        }
        return out
    }

    /// dot(bf16 row, x) over n: the bits widened to float32 in registers.
    @inline(__always)
    static func dotBF16(_ h: UnsafePointer<UInt16>, _ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var s0 = SIMD8<Float>(), s1 = SIMD8<Float>()
        var j = 0
        let raw = UnsafeRawPointer(h)
        while j + 16 <= n {
            prefetchAhead(raw + 2 * j)
            s0 += bf16Lanes(raw, 2 * j) * load8(x + j)
            s1 += bf16Lanes(raw, 2 * j + 16) * load8(x + j + 8)
            j += 16
        }
        var total = laneSum(s0 + s1)
        while j < n { total += Float(bitPattern: UInt32(h[j]) << 16) * x[j]; j += 1 }
        return total
    }

    /// ``dotBF16(_:_:_:)`` for the four input rows x_k = x + k * ldx at once: each eight bf16
    /// weights are widened once and serve four products.
    @inline(__always)
    static func dotBF16Rows4(_ h: UnsafePointer<UInt16>, _ x: UnsafePointer<Float>, _ ldx: Int, _ n: Int) -> SIMD4<Float> {
        let (x0, x1, x2, x3) = (x, x + ldx, x + 2 * ldx, x + 3 * ldx)
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
        let raw = UnsafeRawPointer(h)
        var j = 0
        while j + 8 <= n {
            if j & 31 == 0 { prefetchAhead(raw + 2 * j) }
            let w = bf16Lanes(raw, 2 * j)
            a0 += w * load8(x0 + j)
            a1 += w * load8(x1 + j)
            a2 += w * load8(x2 + j)
            a3 += w * load8(x3 + j)
            j += 8
        }
        var out = SIMD4<Float>(laneSum(a0), laneSum(a1), laneSum(a2), laneSum(a3))
        while j < n {
            out += SIMD4(x0[j], x1[j], x2[j], x3[j]) * Float(bitPattern: UInt32(h[j]) << 16)
            j += 1
        }
        return out
    }
}
