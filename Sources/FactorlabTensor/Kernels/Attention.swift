import Foundation

// Fused causal self-attention, forward and backward.
//
// Input is the packed projection qkv [B, T, 3C] (queries, keys, values side by side, as GPT-2's
// c_attn produces); output is [B, T, C] with heads side by side. Heads are addressed in place
// through BLAS leading dimensions (lda = 3C), so no tensor is permuted or copied per head.
// Per (batch, head), with Q, K, V of shape [T, hd] and scale = 1/sqrt(hd):
//   S = scale * Q K^T;  P = softmax over j <= i (causal), 0 above the diagonal;  O = P V.
//
// Causal blocking: rows go in blocks of `rowBlock` queries, and a block's GEMMs only reach the
// keys it can see (0 ..< end of the block), so the masked upper triangle is never multiplied:
// about half the FLOPs of the full square at long T.
//
// Memory grows as T, not T^2 (the flash-attention scheme, on the CPU): the probabilities are
// never kept. Forward computes one block of rows at a time in a per-thread buffer of
// rowBlock x T floats and keeps only each row's softmax statistics (its maximum m and the
// reciprocal inv of its sum, 2 floats per query row). It multiplies the unnormalised
// exponentials E = exp(S - m) by V and scales each output row by inv afterwards (a row of hd
// values instead of a row of keys). Backward recomputes S by the same GEMM, and one pass per
// row turns S and dP = dO V^T into P = exp(S - m) * inv (for dV) and
// dS = scale * P * (dP - D) (for dQ and dK), where D = rowsum(P * dP) = dO . O is taken from
// the forward output (hd values, as flash attention does; with dropout too, since the mask
// multiplies both P and dP). Backward walks the blocks last to first, so the last block (which
// sees every key) writes dK and dV and the earlier ones add into them.

extension Kernels {
    public struct AttentionSaved {
        /// Attention dropout probability and the key its mask derives from.
        public let dropout: Float
        public let key: UInt64
        /// Each query row's softmax maximum and reciprocal sum, [B, H, T, 2].
        public let rowStats: Tensor
        /// The forward output [B, T, C] (backward's D = dO . O per query row and head). The
        /// output projection keeps this tensor anyway, so holding it costs no memory.
        public let output: Tensor
    }

    /// The attention-dropout multiplier of probability (b, h, i, j): 0 or 1/(1-p), a pure
    /// function of the key and the position, so backward regenerates it instead of storing it.
    @inline(__always)
    static func dropoutScale(key: UInt64, index: Int, p: Float) -> Float {
        SeededHash.dropoutScale(key: key, index: index, p: p, scale: 1 / (1 - p))
    }

    /// Validates the shape of a packed qkv tensor and returns (B, T, C, head size).
    static func attentionDims(_ qkv: Tensor, heads: Int) throws -> (Int, Int, Int, Int) {
        guard qkv.rank == 3, qkv.shape[2] % 3 == 0 else {
            throw TensorError("attention", "qkv must be [B, T, 3C], got \(describe(qkv.shape))")
        }
        let c = qkv.shape[2] / 3
        guard heads > 0, c % heads == 0 else {
            throw TensorError("attention", "\(heads) heads do not divide the model width \(c) (qkv \(describe(qkv.shape)))")
        }
        return (qkv.shape[0], qkv.shape[1], c, c / heads)
    }

    /// Runs `body(b, h, scratch)` for every (batch, head) pair on the worker threads, with
    /// OpenBLAS limited to one thread so the workers' GEMMs do not oversubscribe the cores.
    /// Each worker gets its own scratch buffer of `scratchCount` floats. Public for the bench's
    /// GEMM-only replica of the kernels (`KernelBench.attentionGEMMs`).
    public static func forEachHead(batch: Int, heads: Int, scratchCount: Int,
                            _ body: (Int, Int, UnsafeMutablePointer<Float>) -> Void) {
        let pairs = batch * heads
        let workers = Swift.min(Parallel.workers, pairs)
        let scratch = Tensor(uninitializedShape: [workers, Swift.max(scratchCount, 1)])
        let s = SendablePointer(scratch.storage.base)
        BLAS.withThreads(1) {
            Parallel.onWorkers(workers) { w in
                let buf = s.p + w * Swift.max(scratchCount, 1)
                var pair = w
                while pair < pairs {
                    body(pair / heads, pair % heads, buf)
                    pair += workers
                }
            }
        }
        withExtendedLifetime(scratch) {}
    }

    /// Query rows per causal block (see the file comment). 64 was fastest or within 5% of the
    /// fastest at every T from 128 to 1024 in two runs of `factorlab bench --suite attention
    /// --attention-row-blocks 32,64,128,256` on OpenBLAS's AVX-512 kernels
    /// (docs/bench/attention-fused/): a small block keeps its scratch (2 x 64 x T floats) in
    /// cache and wastes less of the masked diagonal, a larger one gives sgemm longer panels.
    public static let attentionRowBlock = 64

    /// Rows r0 ..< r0 + rows of S = scale Q K^T against the keys 0 ..< r0 + rows, into `s`
    /// (row i at s + (i - r0) * t): one GEMM, the same in forward and backward, so backward's
    /// recomputed scores are forward's bit for bit.
    @inline(__always)
    static func scoreBlock(q: UnsafePointer<Float>, k: UnsafePointer<Float>, ld: Int, t: Int, hd: Int, scale: Float,
                           r0: Int, rows: Int, s: UnsafeMutablePointer<Float>) {
        BLAS.sgemm(transA: false, transB: true, m: rows, n: r0 + rows, k: hd, alpha: scale,
                   a: q + r0 * ld, lda: ld, b: k, ldb: ld, c: s, ldc: t)
    }

    /// Rows r0 ..< r0 + rows of E = exp(S - m) for one (batch, head), unnormalised, written to
    /// `e` (row i at e + (i - r0) * t, zero from column i + 1 to the block's last key), with each
    /// row's maximum m and reciprocal sum inv in `stats` (row i at stats + 2 * i). The softmax
    /// is E * inv, as backward recomputes it. One pass for the maximum and one for the
    /// exponentials and their sum.
    @inline(__always)
    static func exponentialBlock(q: UnsafePointer<Float>, k: UnsafePointer<Float>, ld: Int, t: Int, hd: Int, scale: Float,
                                 r0: Int, rows: Int, e: UnsafeMutablePointer<Float>, stats: UnsafeMutablePointer<Float>) {
        let keys = r0 + rows
        scoreBlock(q: q, k: k, ld: ld, t: t, hd: hd, scale: scale, r0: r0, rows: rows, s: e)
        for i in r0..<keys {
            let row = e + (i - r0) * t, n = i + 1
            var m = rowMax(UnsafePointer(row), n)
            if m == -.infinity { m = 0 } // an all -inf row: exp gives zeros, the sum guard keeps NaN out
            let sum = expShiftedInPlace(row, n, shift: m)
            (stats[2 * i], stats[2 * i + 1]) = (m, sum > 0 ? 1 / sum : 0)
            (row + n).update(repeating: 0, count: keys - n)
        }
    }

    /// With `dropout` > 0, attention probabilities are dropped (inverted dropout) with a mask
    /// derived from `key`, as in GPT-2's attn_dropout. `rowBlock` is the causal block size
    /// (tests vary it; results agree to rounding).
    public static func attentionForward(qkv: Tensor, heads: Int, dropout: Float = 0, key: UInt64 = 0,
                                        rowBlock: Int = attentionRowBlock) throws -> (out: Tensor, saved: AttentionSaved) {
        let (b, t, c, hd) = try attentionDims(qkv, heads: heads)
        let x = qkv.contiguous()
        let out = Tensor(uninitializedShape: [b, t, c])
        let scale = 1 / Float(hd).squareRoot()
        let blk = Swift.max(1, Swift.min(rowBlock, t))
        let stats = Tensor(uninitializedShape: [b, heads, t, 2])
        let sx = SendablePointer(x.storage.base + x.offset), so = SendablePointer(out.storage.base)
        let sst = SendablePointer(stats.storage.base)
        forEachHead(batch: b, heads: heads, scratchCount: blk * t) { bi, h, e in
            let q = sx.p + bi * t * 3 * c + h * hd, k = q + c, v = q + 2 * c
            let base = (bi * heads + h) * t * t
            let rowStats = sst.p + (bi * heads + h) * t * 2
            var r0 = 0
            while r0 < t {
                let rows = Swift.min(blk, t - r0), keys = r0 + rows
                exponentialBlock(q: q, k: k, ld: 3 * c, t: t, hd: hd, scale: scale, r0: r0, rows: rows, e: e, stats: rowStats)
                if dropout > 0 {
                    for i in r0..<keys {
                        let o = (i - r0) * t
                        for j in 0...i { e[o + j] *= dropoutScale(key: key, index: base + i * t + j, p: dropout) }
                    }
                }
                let o = so.p + (bi * t + r0) * c + h * hd
                BLAS.sgemm(transA: false, transB: false, m: rows, n: hd, k: keys,
                           a: e, lda: t, b: v, ldb: 3 * c, c: o, ldc: c)
                for i in 0..<rows {
                    let inv = rowStats[2 * (r0 + i) + 1], row = o + i * c
                    for d in 0..<hd { row[d] *= inv }
                }
                r0 = keys
            }
        }
        withExtendedLifetime(x) {}
        return (out, AttentionSaved(dropout: dropout, key: key, rowStats: stats, output: out))
    }

    /// The probabilities P [B, H, T, T] (before dropout) that ``attentionForward`` uses, for tests
    /// and inspection; training never forms them.
    public static func attentionProbabilities(qkv: Tensor, heads: Int, rowBlock: Int = attentionRowBlock) throws -> Tensor {
        let (b, t, c, hd) = try attentionDims(qkv, heads: heads)
        let x = qkv.contiguous()
        let probs = Tensor(zeros: [b, heads, t, t])
        let blk = Swift.max(1, Swift.min(rowBlock, t))
        let sx = SendablePointer(x.storage.base + x.offset), sp = SendablePointer(probs.storage.base)
        forEachHead(batch: b, heads: heads, scratchCount: 2 * t) { bi, h, stats in
            let q = sx.p + bi * t * 3 * c + h * hd, rows = sp.p + (bi * heads + h) * t * t
            var r0 = 0
            while r0 < t {
                let n = Swift.min(blk, t - r0)
                exponentialBlock(q: q, k: q + c, ld: 3 * c, t: t, hd: hd, scale: 1 / Float(hd).squareRoot(), r0: r0, rows: n,
                                 e: rows + r0 * t, stats: stats)
                r0 += n
            }
            for i in 0..<t {
                let inv = stats[2 * i + 1]
                for j in 0...i { rows[i * t + j] *= inv }
            }
        }
        withExtendedLifetime(x) {}
        return probs
    }

    /// Gradient with respect to qkv, given the forward input (the probabilities are recomputed
    /// block by block; see the file comment).
    public static func attentionBackward(qkv: Tensor, heads: Int, saved: AttentionSaved, dout: Tensor,
                                         rowBlock: Int = attentionRowBlock) throws -> Tensor {
        let (b, t, c, hd) = try attentionDims(qkv, heads: heads)
        guard dout.shape == [b, t, c] else {
            throw TensorError("attention backward", "dout \(describe(dout.shape)) does not match [\(b), \(t), \(c)]")
        }
        guard saved.rowStats.shape == [b, heads, t, 2], saved.output.shape == [b, t, c] else {
            throw TensorError("attention backward", "saved row statistics \(describe(saved.rowStats.shape)) and output \(describe(saved.output.shape)) do not match [\(b), \(heads), \(t), 2] and [\(b), \(t), \(c)]")
        }
        let x = qkv.contiguous(), dy = dout.contiguous(), stats = saved.rowStats.contiguous(), y = saved.output.contiguous()
        let dqkv = Tensor(uninitializedShape: qkv.shape)
        let scale = 1 / Float(hd).squareRoot()
        let blk = Swift.max(1, Swift.min(rowBlock, t))
        let sx = SendablePointer(x.storage.base + x.offset), sdy = SendablePointer(dy.storage.base + dy.offset)
        let sdq = SendablePointer(dqkv.storage.base), sst = SendablePointer(stats.storage.base + stats.offset)
        let sy = SendablePointer(y.storage.base + y.offset)
        let drop = saved.dropout, key = saved.key
        forEachHead(batch: b, heads: heads, scratchCount: 2 * blk * t) { bi, h, scratch in
            let p = scratch, dP = scratch + blk * t
            let q = sx.p + bi * t * 3 * c + h * hd, k = q + c, v = q + 2 * c
            let dq = sdq.p + bi * t * 3 * c + h * hd, dk = dq + c, dv = dq + 2 * c
            let dO = sdy.p + bi * t * c + h * hd, o = sy.p + bi * t * c + h * hd
            let base = (bi * heads + h) * t * t
            let rowStats = sst.p + (bi * heads + h) * t * 2
            var r0 = ((t - 1) / blk) * blk // the last block first
            while r0 >= 0 {
                let rows = Swift.min(blk, t - r0), keys = r0 + rows
                let beta: Float = keys == t ? 0 : 1 // the last block covers every key and initializes dK, dV
                // S = scale Q K^T and dP = dO V^T for these rows (dP with respect to the
                // probabilities forward multiplied V by, after dropout).
                scoreBlock(q: q, k: k, ld: 3 * c, t: t, hd: hd, scale: scale, r0: r0, rows: rows, s: p)
                BLAS.sgemm(transA: false, transB: true, m: rows, n: keys, k: hd,
                           a: dO + r0 * c, lda: c, b: v, ldb: 3 * c, c: dP, ldc: t)
                for i in r0..<keys {
                    let pr = p + (i - r0) * t, dr = dP + (i - r0) * t, n = i + 1
                    let (m, inv) = (rowStats[2 * i], rowStats[2 * i + 1])
                    let dot = rowDot(UnsafePointer(dO + i * c), UnsafePointer(o + i * c), hd)
                    if drop > 0 {
                        // P' = P * mask for dV, dS = scale * P * (dP' * mask - D).
                        for j in 0..<n {
                            let pj = fexp(pr[j] - m) * inv, mask = dropoutScale(key: key, index: base + i * t + j, p: drop)
                            dr[j] = scale * pj * (dr[j] * mask - dot)
                            pr[j] = pj * mask
                        }
                    } else {
                        probabilityAndScoreGradient(pr, dr, n, max: m, inverseSum: inv, dot: dot, scale: scale)
                    }
                    (pr + n).update(repeating: 0, count: keys - n)
                    (dr + n).update(repeating: 0, count: keys - n)
                }
                // dV += P'^T dO, dQ = dS K (these rows only), dK += dS^T Q
                BLAS.sgemm(transA: true, transB: false, m: keys, n: hd, k: rows,
                           a: p, lda: t, b: dO + r0 * c, ldb: c, beta: beta, c: dv, ldc: 3 * c)
                BLAS.sgemm(transA: false, transB: false, m: rows, n: hd, k: keys,
                           a: dP, lda: t, b: k, ldb: 3 * c, c: dq + r0 * 3 * c, ldc: 3 * c)
                BLAS.sgemm(transA: true, transB: false, m: keys, n: hd, k: rows,
                           a: dP, lda: t, b: q + r0 * 3 * c, ldb: 3 * c, beta: beta, c: dk, ldc: 3 * c)
                r0 -= blk
            }
        }
        withExtendedLifetime((x, dy, stats, y)) {}
        return dqkv
    }

    /// One row of attention's backward pass, in place: s (scores) becomes P = exp(s - m) * inv
    /// and g (dP) becomes dS = scale * P * (g - dot), for the row's first n keys.
    @inline(__always)
    static func probabilityAndScoreGradient(_ s: UnsafeMutablePointer<Float>, _ g: UnsafeMutablePointer<Float>, _ n: Int,
                                            max m: Float, inverseSum inv: Float, dot: Float, scale: Float) {
        let mv = SIMD8<Float>(repeating: m), iv = SIMD8<Float>(repeating: inv)
        let dv = SIMD8<Float>(repeating: dot), sv = SIMD8<Float>(repeating: scale)
        var j = 0
        while j + 8 <= n {
            let pj = fexp(load8(s + j) - mv) * iv
            store8(pj, s + j)
            store8(sv * pj * (load8(g + j) - dv), g + j)
            j += 8
        }
        while j < n {
            let pj = fexp(s[j] - m) * inv
            s[j] = pj
            g[j] = scale * pj * (g[j] - dot)
            j += 1
        }
    }
}

// Attention over a key/value cache, for generation (no backward).
//
// The cache of one layer holds keys and values [rows, capacity, C] (heads side by side, like
// qkv). Input row b of qkv [B, T, 3C] continues cache row `rows[b]`, whose first `past[b]`
// positions are filled: its T new keys and values are written at positions past[b] ..< past[b]+T,
// and query t attends to positions 0 ... past[b]+t. Rows may have different lengths (batched
// generation of prompts of different sizes); each (row, head) pair is two GEMMs over its own
// filled prefix, so padding is never multiplied.

/// Cached attention over several new tokens (prefill) runs its (row, head) pairs on Dispatch's
/// worker threads above this many multiply-adds per product; below it, waking the workers costs
/// more than the products (Tools/bench/README.md). One new token per row uses the spinning pool.
let cachedAttentionParallelMACs = 1 << 18

extension Kernels {
    /// Attention of one query q [hd] over `count` cached keys and values (rows `ld` apart):
    /// scores = scale * K q, their softmax P, out = P V. The operations of the GEMM path for one
    /// row, so the results agree to rounding (KVCacheTests compares cached steps with full forwards).
    @inline(__always)
    static func decodeHead(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, ld: Int, hd: Int,
                           count: Int, scale: Float, scores: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>) {
        // Four keys per pass, so each load of q serves four of them.
        var j = 0
        while j + 4 <= count {
            let d = scale * dotRows4(q, k + j * ld, ld, hd)
            for u in 0..<4 { scores[j + u] = d[u] }
            j += 4
        }
        while j < count { scores[j] = scale * dot4(q, k + j * ld, hd); j += 1 }
        softmaxRowInPlace(scores, count)
        // out = sum_j p_j v_j, 32 columns at a time in registers across all keys.
        var i = 0
        while i + 32 <= hd {
            var o0 = SIMD8<Float>(), o1 = SIMD8<Float>(), o2 = SIMD8<Float>(), o3 = SIMD8<Float>()
            for j in 0..<count {
                let pj = SIMD8<Float>(repeating: scores[j]), vj = v + j * ld + i
                o0 = o0.addingProduct(pj, load8(vj))
                o1 = o1.addingProduct(pj, load8(vj + 8))
                o2 = o2.addingProduct(pj, load8(vj + 16))
                o3 = o3.addingProduct(pj, load8(vj + 24))
            }
            store8(o0, out + i); store8(o1, out + i + 8); store8(o2, out + i + 16); store8(o3, out + i + 24)
            i += 32
        }
        if i < hd {
            (out + i).update(repeating: 0, count: hd - i)
            for j in 0..<count {
                let pj = scores[j], vj = v + j * ld
                for c in i..<hd { out[c] += pj * vj[c] }
            }
        }
    }

    /// Appends the new keys and values to the cache and returns the attention output [B, T, C].
    /// The caller has checked that every `past[b] + T` fits the capacity.
    public static func cachedAttention(qkv: Tensor, heads: Int, keys: Tensor, values: Tensor,
                                       rows: [Int], past: [Int]) throws -> Tensor {
        let (batch, seqLen, c, hd) = try attentionDims(qkv, heads: heads)
        let capacity = keys.shape[1]
        guard keys.rank == 3, keys.shape == values.shape, keys.shape[2] == c, rows.count == batch, past.count == batch,
              zip(rows, past).allSatisfy({ $0 >= 0 && $0 < keys.shape[0] && $1 >= 0 && $1 + seqLen <= capacity }) else {
            throw TensorError("cached attention", "cache \(describe(keys.shape)) cannot take \(batch) rows of \(seqLen) new positions at \(past)")
        }
        let q = qkv.contiguous()
        let qp = q.unsafeBase, kc = keys.unsafeBase, vc = values.unsafeBase
        for b in 0..<batch {
            for t in 0..<seqLen {
                let src = qp + (b * seqLen + t) * 3 * c
                let slot = rows[b] * capacity + past[b] + t
                (kc + slot * c).update(from: src + c, count: c)
                (vc + slot * c).update(from: src + 2 * c, count: c)
            }
        }
        let out = Tensor(uninitializedShape: [batch, seqLen, c])
        let longest = (past.max() ?? 0) + seqLen
        let scale = 1 / Float(hd).squareRoot()
        let (sq, sk, sv, so) = (SendablePointer(qp), SendablePointer(kc), SendablePointer(vc), SendablePointer(out.unsafeBase))
        let perHead: (Int, Int, UnsafeMutablePointer<Float>) -> Void = { b, h, scores in
            let total = past[b] + seqLen
            let kp = sk.p + rows[b] * capacity * c + h * hd, vp = sv.p + rows[b] * capacity * c + h * hd
            if seqLen == 1 {
                // One new token (generation's steps): dot products and a weighted sum of the
                // cached rows, with none of a GEMM call's set-up for one row.
                decodeHead(q: sq.p + b * 3 * c + h * hd, k: kp, v: vp, ld: c, hd: hd, count: total, scale: scale, scores: scores,
                           out: so.p + b * c + h * hd)
                return
            }
            BLAS.sgemm(transA: false, transB: true, m: seqLen, n: total, k: hd, alpha: scale,
                       a: sq.p + b * seqLen * 3 * c + h * hd, lda: 3 * c, b: kp, ldb: c, c: scores, ldc: total)
            for t in 0..<seqLen {
                let row = scores + t * total, visible = past[b] + t + 1
                softmaxRowInPlace(row, visible)
                (row + visible).update(repeating: 0, count: total - visible)
            }
            BLAS.sgemm(transA: false, transB: false, m: seqLen, n: hd, k: total, a: scores, lda: total, b: vp, ldb: c,
                       c: so.p + b * seqLen * c + h * hd, ldc: c)
        }
        // Generation's steps (one new token per row) split their (row, head) pairs on the
        // spinning pool, like the matrix-vector products around them: its workers are awake
        // between those calls, where Dispatch's would first have to wake (and would compete with
        // a spinning worker for the cores). Several new tokens (prefill) run on Dispatch's
        // workers, but only above cachedAttentionParallelMACs.
        if seqLen == 1 {
            Parallel.forRangeSpinning(batch * heads, costPerItem: 2 * longest * hd, piecesPerWorker: 4) { pairs in
                withUnsafeTemporaryAllocation(of: Float.self, capacity: longest) { scores in
                    for pair in pairs { perHead(pair / heads, pair % heads, scores.baseAddress!) }
                }
            }
        } else if batch * heads * seqLen * longest * hd < cachedAttentionParallelMACs {
            // A short prefill: one thread, OpenBLAS's too (its workers would wait for the core
            // that the spinning pool's worker holds between generation's products).
            let scores = Tensor(uninitializedShape: [seqLen * longest])
            BLAS.withThreads(1) {
                for b in 0..<batch { for h in 0..<heads { perHead(b, h, scores.unsafeBase) } }
            }
        } else {
            forEachHead(batch: batch, heads: heads, scratchCount: seqLen * longest, perHead)
        }
        withExtendedLifetime((q, keys, values)) {}
        return out
    }
}
