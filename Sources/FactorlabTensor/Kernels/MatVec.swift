// y = W x for one input row: the product of batch-1 generation, which reads every weight once
// per token and so runs at the speed of memory, not of arithmetic. Each row of W [rows, cols]
// (row-major, as linear weights are stored) is streamed once through four independent 8-lane
// accumulators; the rows are split across the worker threads, each writing only its own outputs.
// Every kernel here prefetches its weights ahead of its reads: the hardware prefetcher alone
// stops at each 4 KB page and left gpt2's batch-1 products at about 0.8 of the read bandwidth
// (``streamPrefetchBytes``); the packed kernels (PackedWeights.swift), which spend more
// instructions per byte, prefetch ``weightPrefetchBytes`` ahead with ``prefetchAhead(_:)``.

import COpenBLAS

extension Kernels {
    /// y[r] = dot(W[r, :], x) for r in 0..<rows, or y[r] += that with `accumulate` (a bias
    /// already in y).
    public static func matVec(_ w: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                              rows: Int, cols: Int, accumulate: Bool) {
        let (sw, sx, sy) = (SendablePointer(w), SendablePointer(x), SendablePointer(y))
        Parallel.forRangeSpinning(rows, costPerItem: cols, piecesPerWorker: matVecPieces) { range in
            for r in range {
                let d = dot4(sw.p + r * cols, sx.p, cols, streaming: true)
                sy.p[r] = accumulate ? sy.p[r] + d : d
            }
        }
    }

    /// y[i, r] (+)= dot(W[r, :], x[i, :]) for a few input rows i < `inputRows` (x rows `ldx` apart,
    /// y rows `ldy` apart): each row of W is read from memory once for all input rows (batched
    /// generation, where sgemm with a handful of rows streams W poorly: 40 GFLOP/s at 8 rows
    /// against this kernel's 70, Tools/bench/README.md). Weight rows go three at a time against
    /// four input rows at a time (``dotRows3x4(_:_:_:_:_:pass:passes:)``); the workers split the
    /// weight rows in threes, so only the last three may be short. Input rows left over from the
    /// fours, and the weight rows left over from the threes, take the one- and four-row kernels.
    public static func matVecRows(_ w: UnsafePointer<Float>, _ x: UnsafePointer<Float>, ldx: Int, _ y: UnsafeMutablePointer<Float>,
                                  ldy: Int, rows: Int, cols: Int, inputRows: Int, accumulate: Bool) {
        blockMatVecRows(w, x, ldx: ldx, y, ldy: ldy, blocks: 1, rowsPerBlock: rows, cols: cols, xStride: 0, yStride: 0,
                        inputRows: inputRows, accumulate: accumulate)
    }

    /// ``matVecRows(_:_:ldx:_:ldy:rows:cols:inputRows:accumulate:)`` for a block-diagonal W
    /// [blocks, rowsPerBlock, cols] (row-major): for each block b, input row i and row o <
    /// rowsPerBlock, y[i * ldy + b * yStride + o] (+)= dot(W[b, o, :], x[i * ldx + b * xStride ..<
    /// + cols]). The few-rows product of Monarch and BTT factors in batched generation, where
    /// sgemm with a handful of rows per block streams each block poorly. The threes of weight
    /// rows of all blocks are split across the threads in one call, so small blocks still use
    /// both cores; only a block's last three may be short.
    public static func blockMatVecRows(_ w: UnsafePointer<Float>, _ x: UnsafePointer<Float>, ldx: Int,
                                       _ y: UnsafeMutablePointer<Float>, ldy: Int, blocks: Int, rowsPerBlock: Int, cols: Int,
                                       xStride: Int, yStride: Int, inputRows: Int, accumulate: Bool) {
        let (sw, sx, sy) = (SendablePointer(w), SendablePointer(x), SendablePointer(y))
        let triplesPerBlock = (rowsPerBlock + 2) / 3
        Parallel.forRangeSpinning(blocks * triplesPerBlock, costPerItem: 3 * cols * inputRows,
                                  piecesPerWorker: batchedPieces(weightBytes: blocks * rowsPerBlock * cols * 4)) { piece in
            // The piece's triples, block by block (one division per block, none per row).
            var t = piece.lowerBound
            while t < piece.upperBound {
                let b = t / triplesPerBlock, first = t - b * triplesPerBlock
                let last = Swift.min(triplesPerBlock, first + (piece.upperBound - t))
                rowsOfOneBlock(sw.p + b * rowsPerBlock * cols, sx.p + b * xStride, ldx: ldx, sy.p + b * yStride, ldy: ldy,
                               rows: rowsPerBlock, cols: cols, inputRows: inputRows, accumulate: accumulate, triples: first..<last)
                t += last - first
            }
        }
    }

    /// The weight rows 3 x `triples` (clipped to `rows`) of one matrix against every input row:
    /// the body of ``blockMatVecRows(_:_:ldx:_:ldy:blocks:rowsPerBlock:cols:xStride:yStride:inputRows:accumulate:)``.
    @inline(__always)
    static func rowsOfOneBlock(_ w: UnsafePointer<Float>, _ x: UnsafePointer<Float>, ldx: Int, _ y: UnsafeMutablePointer<Float>,
                               ldy: Int, rows: Int, cols: Int, inputRows: Int, accumulate: Bool, triples: Range<Int>) {
        @inline(__always) func store(_ d: Float, input i: Int, row r: Int) {
            let out = y + i * ldy + r
            out.pointee = accumulate ? out.pointee + d : d
        }
        let end = Swift.min(rows, 3 * triples.upperBound)
        var r = 3 * triples.lowerBound
        while r + 3 <= end {
            let wr = w + r * cols
            var i = 0
            while i + 4 <= inputRows {
                let (d0, d1, d2) = dotRows3x4(wr, cols, x + i * ldx, ldx, cols, pass: i / 4, passes: inputRows / 4)
                for k in 0..<4 {
                    store(d0[k], input: i + k, row: r)
                    store(d1[k], input: i + k, row: r + 1)
                    store(d2[k], input: i + k, row: r + 2)
                }
                i += 4
            }
            while i < inputRows {
                for q in 0..<3 { store(dot4(wr + q * cols, x + i * ldx, cols), input: i, row: r + q) }
                i += 1
            }
            r += 3
        }
        while r < end {
            let wr = w + r * cols
            var i = 0
            while i + 4 <= inputRows {
                let d = dotRows4(wr, x + i * ldx, ldx, cols)
                for k in 0..<4 { store(d[k], input: i + k, row: r) }
                i += 4
            }
            while i < inputRows {
                store(dot4(wr, x + i * ldx, cols), input: i, row: r)
                i += 1
            }
            r += 1
        }
    }

    /// The block-diagonal product for one input row: for each block b and row o < rowsPerBlock,
    /// y[b * yStride + o] (+)= dot(W[b, o, :], x[b * xStride ..< b * xStride + cols]), W
    /// [blocks, rowsPerBlock, cols] row-major. All rows of all blocks are split across the worker
    /// threads, so small blocks still keep both cores streaming weights (Monarch and BTT
    /// factors in batch-1 generation).
    public static func blockMatVec(_ w: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                                   blocks: Int, rowsPerBlock: Int, cols: Int, xStride: Int, yStride: Int, accumulate: Bool) {
        let (sw, sx, sy) = (SendablePointer(w), SendablePointer(x), SendablePointer(y))
        Parallel.forRangeSpinning(blocks * rowsPerBlock, costPerItem: cols, piecesPerWorker: matVecPieces) { range in
            // Block and row within it, stepped along rather than divided out per row.
            var b = range.lowerBound / rowsPerBlock, o = range.lowerBound - b * rowsPerBlock
            for r in range {
                let d = dot4(sw.p + r * cols, sx.p + b * xStride, cols, streaming: true)
                let out = sy.p + b * yStride + o
                out.pointee = accumulate ? out.pointee + d : d
                o += 1
                if o == rowsPerBlock { o = 0; b += 1 }
            }
        }
    }

    /// Pieces per worker thread of a matrix-vector product (see ``Parallel/forRange(_:costPerItem:piecesPerWorker:_:)``).
    public static let matVecPieces = 8

    /// Pieces per worker of the batched product: ``matVecPieces``, but none under
    /// ``batchedPieceBytes`` of weights. Each piece's stream starts cold (its first
    /// ``batchedPrefetchBytes`` are not prefetched, and the threads' pieces interleave), and a
    /// 256 x 256 weight cut into 16 pieces gives pieces of 16 KB.
    static func batchedPieces(weightBytes: Int) -> Int {
        Swift.max(1, Swift.min(matVecPieces, weightBytes / (Parallel.workers * batchedPieceBytes)))
    }

    static let batchedPieceBytes = 64 << 10

    /// How far ahead of their reads the packed kernels prefetch the weights, in bytes. A C copy of
    /// the int8 row kernel over gpt2's 36,864 rows of 768, one thread, measured 5.3, 6.5 and
    /// 7.3 G weights/s with no prefetch, 512 and 2048 bytes ahead (read bandwidth 10.3 GB/s).
    static let weightPrefetchBytes = 2048

    /// How far ahead along a block of adjacent weight rows the batched float32 kernel
    /// (``dotRows3x4(_:_:_:_:_:)``) prefetches. With eight input rows and weights from memory,
    /// compute and reads must overlap: one thread, 81,920 x 256 (84 MB), 24 GFLOP/s prefetching
    /// each row 2 KB ahead, 40-49 prefetching the block's stream 4-8 KB ahead, 17 with none.
    static let batchedPrefetchBytes = 8192

    /// Prefetches the cache line `weightPrefetchBytes` past `p` (which may lie past the data's end).
    @inline(__always)
    static func prefetchAhead(_ p: UnsafeRawPointer) {
        factorlab_prefetch(p + weightPrefetchBytes)
    }

    /// How far ahead of its reads a float32 stream prefetches (``dot4(_:_:_:streaming:)``,
    /// ``streamRead(_:_:)``). gpt2's batch-1 products on two threads, weights from memory (a C
    /// copy of the kernel over gpt2's 49 matrices, six alternating rounds, 2026-12-04, Xeon with
    /// 260 MB of L3): 20.6 GB/s (median) with the hardware prefetcher alone, 24.9 prefetching
    /// 2 KB ahead and 24.7 at 4 KB; the read kernel itself went from 23.3 to 26.9 GB/s at 4 KB.
    /// In the whole model (`factorlab bench --suite memory,model --models gpt2`, three alternating
    /// rounds, 2026-12-06, Xeon with 300 MB of L3): gpt2 dense 32.5-39.1 -> 43.8-48.7 tokens/s,
    /// monarch:4 52.3-55.5 -> 64.4-67.8 (docs/bench/stream-prefetch/).
    public static let streamPrefetchBytes = 4096

    /// dot(a, b) over n floats with four accumulators (so the loads, not the add latency, set the pace).
    /// With `streaming` (a weight row read from memory, once), each 128 bytes of `a` read, the
    /// two cache lines ``streamPrefetchBytes`` further on are prefetched (a prefetch never faults,
    /// so past the data's end is harmless). The flag is a constant at every call, so the
    /// inlined loop has no branch; the sums are the same either way.
    @inline(__always)
    static func dot4(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int, streaming: Bool = false) -> Float {
        var s0 = SIMD8<Float>(), s1 = SIMD8<Float>(), s2 = SIMD8<Float>(), s3 = SIMD8<Float>()
        let ahead = UnsafeRawPointer(a) + streamPrefetchBytes
        var j = 0
        while j + 32 <= n {
            if streaming {
                factorlab_prefetch(ahead + 4 * j)
                factorlab_prefetch(ahead + 4 * j + 64)
            }
            s0 += load8(a + j) * load8(b + j)
            s1 += load8(a + j + 8) * load8(b + j + 8)
            s2 += load8(a + j + 16) * load8(b + j + 16)
            s3 += load8(a + j + 24) * load8(b + j + 24)
            j += 32
        }
        while j + 8 <= n {
            s0 += load8(a + j) * load8(b + j)
            j += 8
        }
        var total = laneSum((s0 + s1) + (s2 + s3))
        while j < n { total += a[j] * b[j]; j += 1 }
        return total
    }
}
