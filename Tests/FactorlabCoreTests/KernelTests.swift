import FactorlabTensor
import Foundation
import FactorlabTestSupport
import XCTest

/// Forward kernels against straightforward Double-precision references.
final class KernelTests: XCTestCase {
    var rng = RandomGenerator(seed: 11)

    func testVectorExpAndTanhAccuracy() {
        var worstExp: Double = 0, worstTanh: Double = 0
        var x: Float = -87
        while x < 88 {
            let e = Double(fexp(x)), ref = Foundation.exp(Double(x))
            worstExp = max(worstExp, abs(e - ref) / ref)
            let t = Double(ftanh(x / 8)), tref = Foundation.tanh(Double(x / 8))
            worstTanh = max(worstTanh, abs(t - tref))
            x += 0.0137
        }
        XCTAssertLessThan(worstExp, 3e-7, "exp relative error")
        XCTAssertLessThan(worstTanh, 5e-7, "tanh absolute error")
        XCTAssertEqual(fexp(-100), 0)
        XCTAssertEqual(fexp(100), .infinity)
        XCTAssertTrue(fexp(.nan).isNaN)
    }

    /// The 8-lane fexp used by the row reductions gives the scalar fexp's bits in every lane,
    /// including the clamped ends, infinities and NaN.
    func testEightLaneExpEqualsScalarExpBitForBit() {
        var values: [Float] = [-.infinity, -1000, -100, -87.31, -87.3, -87.29, -1e-30, 0, 1e-30, 88.3, 88.376, 88.38, 88.7, 88.71,
                               100, .infinity, .nan, -.nan, .leastNonzeroMagnitude, .greatestFiniteMagnitude]
        var x: Float = -90
        while x < 90 { values.append(x); x += 0.00731 }
        while values.count % 8 != 0 { values.append(1) }
        for i in stride(from: 0, to: values.count, by: 8) {
            let lanes = fexp(SIMD8<Float>(values[i..<i + 8]))
            for k in 0..<8 {
                let scalar = fexp(values[i + k])
                XCTAssertTrue(lanes[k].bitPattern == scalar.bitPattern || (lanes[k].isNaN && scalar.isNaN),
                              "fexp(\(values[i + k])): lane \(lanes[k]) vs scalar \(scalar)")
            }
        }
    }

    func testGELUMatchesFormula() throws {
        let x = Tensor(shape: [1000]) { Float($0 - 500) / 60 }
        let y = Kernels.geluForward(x)
        let ref = x.scalars.map { v -> Float in
            let d = Double(v)
            return Float(0.5 * d * (1 + Foundation.tanh(0.7978845608028654 * (d + 0.044715 * d * d * d))))
        }
        assertClose(y, try Tensor(shape: [1000], scalars: ref), rtol: 1e-6, atol: 2e-6, "gelu")
    }

    func testSoftmaxAndLogSoftmax() throws {
        let x = Tensor.randomNormal([7, 37], std: 5, using: &rng)
        let y = Kernels.softmaxForward(x), ly = Kernels.logSoftmaxForward(x)
        for i in 0..<7 {
            let row = (0..<37).map { Double(x[i, $0]) }
            let m = row.max()!
            let z = row.map { Foundation.exp($0 - m) }.reduce(0, +)
            for j in 0..<37 {
                XCTAssertEqual(Double(y[i, j]), Foundation.exp(row[j] - m) / z, accuracy: 1e-6)
                XCTAssertEqual(Double(ly[i, j]), row[j] - m - Foundation.log(z), accuracy: 1e-5)
            }
        }
    }

    func testLayerNorm() throws {
        let x = Tensor.randomNormal([6, 33], mean: 3, std: 2, using: &rng)
        let w = Tensor.randomNormal([33], using: &rng), b = Tensor.randomNormal([33], using: &rng)
        let (y, mean, rstd) = Kernels.layerNormForward(x, weight: w, bias: b, eps: 1e-5)
        for i in 0..<6 {
            let row = (0..<33).map { Double(x[i, $0]) }
            let m = row.reduce(0, +) / 33
            let v = row.map { ($0 - m) * ($0 - m) }.reduce(0, +) / 33
            XCTAssertEqual(Double(mean[i]), m, accuracy: 1e-5)
            XCTAssertEqual(Double(rstd[i]), 1 / (v + 1e-5).squareRoot(), accuracy: 1e-5)
            for j in 0..<33 {
                XCTAssertEqual(Double(y[i, j]), (row[j] - m) / (v + 1e-5).squareRoot() * Double(w[j]) + Double(b[j]), accuracy: 2e-5)
            }
        }
    }

    func testCausalAttentionMatchesNaive() throws {
        let (b, t, c, heads) = (2, 9, 12, 3)
        let qkv = Tensor.randomNormal([b, t, 3 * c], using: &rng)
        let out = try Kernels.attentionForward(qkv: qkv, heads: heads, rowBlock: 4).out // blocks of 4, 4 and 1 rows
        let probs = try Kernels.attentionProbabilities(qkv: qkv, heads: heads, rowBlock: 4)
        let hd = c / heads
        for bi in 0..<b { for h in 0..<heads { for i in 0..<t {
            var scores = [Double]()
            for j in 0...i {
                var s: Double = 0
                for d in 0..<hd { s += Double(qkv[bi, i, h * hd + d]) * Double(qkv[bi, j, c + h * hd + d]) }
                scores.append(s / Double(hd).squareRoot())
            }
            let m = scores.max()!
            let e = scores.map { Foundation.exp($0 - m) }
            let z = e.reduce(0, +)
            for j in 0..<t {
                XCTAssertEqual(Double(probs[bi, h, i, j]), j <= i ? e[j] / z : 0, accuracy: 1e-6)
            }
            for d in 0..<hd {
                var o: Double = 0
                for j in 0...i { o += e[j] / z * Double(qkv[bi, j, 2 * c + h * hd + d]) }
                XCTAssertEqual(Double(out[bi, i, h * hd + d]), o, accuracy: 1e-5)
            }
        } } }
        XCTAssertThrowsError(try Kernels.attentionForward(qkv: qkv, heads: 5)) { e in
            XCTAssertTrue("\(e)".contains("5 heads do not divide the model width 12"), "\(e)")
        }
    }

    /// Causal blocking: blocks of 4 and 1 query rows (T = 13: a partial last block) give the
    /// single-block results (gradient-checked elsewhere) to rounding, forward and backward, with
    /// and without attention dropout. (The naive test above runs blocks of 4 rows.)
    func testCausalBlocksAgreeWithOneBlock() throws {
        let (b, t, c, heads) = (2, 13, 12, 3)
        let qkv = Tensor.randomNormal([b, t, 3 * c], using: &rng)
        let dout = Tensor.randomNormal([b, t, c], using: &rng)
        for drop: Float in [0, 0.25] {
            let whole = try Kernels.attentionForward(qkv: qkv, heads: heads, dropout: drop, key: 3, rowBlock: t)
            let wholeGrad = try Kernels.attentionBackward(qkv: qkv, heads: heads, saved: whole.saved, dout: dout, rowBlock: t)
            for block in [4, 1] {
                let part = try Kernels.attentionForward(qkv: qkv, heads: heads, dropout: drop, key: 3, rowBlock: block)
                assertClose(part.out, whole.out, rtol: 0, atol: 1e-6, "out, block \(block), dropout \(drop)")
                assertClose(try Kernels.attentionProbabilities(qkv: qkv, heads: heads, rowBlock: block),
                            try Kernels.attentionProbabilities(qkv: qkv, heads: heads, rowBlock: t), rtol: 0, atol: 1e-7, "probs, block \(block)")
                let grad = try Kernels.attentionBackward(qkv: qkv, heads: heads, saved: part.saved, dout: dout, rowBlock: block)
                assertClose(grad, wholeGrad, rtol: 0, atol: 1e-5, "dqkv, block \(block), dropout \(drop)")
            }
        }
    }

    func testAttentionDropoutIsSeededAndUnbiased() throws {
        // V = 1 everywhere, so each output is the sum of the kept, rescaled probabilities of its row:
        // exactly 1 without dropout, 1 on average with it.
        var qkv = Tensor.randomNormal([4, 64, 3 * 8], using: &rng)
        qkv.withUnsafeMutablePointer { p in for r in 0..<(4 * 64) { for j in 16..<24 { p[r * 24 + j] = 1 } } }
        let plain = try Kernels.attentionForward(qkv: qkv, heads: 2).out
        let a = try Kernels.attentionForward(qkv: qkv, heads: 2, dropout: 0.2, key: 5).out
        let b = try Kernels.attentionForward(qkv: qkv, heads: 2, dropout: 0.2, key: 5).out
        let c = try Kernels.attentionForward(qkv: qkv, heads: 2, dropout: 0.2, key: 6).out
        XCTAssertEqual(plain.mean(), 1, accuracy: 1e-5)
        XCTAssertEqual(a.scalars, b.scalars, "same key, same mask")
        XCTAssertNotEqual(a.scalars, c.scalars)
        XCTAssertNotEqual(a.scalars, plain.scalars)
        XCTAssertEqual(Double(a.mean()), 1, accuracy: 0.05, "inverted dropout keeps the expectation")
    }

    func testCrossEntropyWithIgnoreIndex() throws {
        let logits = Tensor.randomNormal([5, 8], std: 3, using: &rng)
        let targets: [Int32] = [3, -100, 0, 7, 2]
        let (loss, counted) = try Kernels.crossEntropyForward(logits: logits, targets: targets)
        XCTAssertEqual(counted, 4)
        var ref: Double = 0
        for (i, t) in targets.enumerated() where t >= 0 {
            let row = (0..<8).map { Double(logits[i, $0]) }
            let m = row.max()!
            ref += m + Foundation.log(row.map { Foundation.exp($0 - m) }.reduce(0, +)) - row[Int(t)]
        }
        XCTAssertEqual(Double(loss), ref / 4, accuracy: 1e-6)
        XCTAssertThrowsError(try Kernels.crossEntropyForward(logits: logits, targets: [0, 1, 2, 3, 8])) { e in
            XCTAssertTrue("\(e)".contains("target 8 at position 4 is outside the 8 classes"), "\(e)")
        }
    }

    /// The one-sweep backward (with the forward's log-sum-exp) against a Double reference of
    /// (softmax - onehot) * dloss / counted, including an ignored row and a row with a -inf logit.
    /// exp(x - lse) in float carries the rounding of lse itself (|lse| x 2^-24 in the exponent,
    /// as in PyTorch's log-softmax backward) plus fexp's 3e-7, and the result is a float: the
    /// bound below is that error budget, not a fit.
    func testCrossEntropyBackwardFromTheSavedLogSumExp() throws {
        var logits = Tensor.randomNormal([4, 300], std: 4, using: &rng)
        logits.withUnsafeMutablePointer { $0[2 * 300 + 17] = -.infinity }
        let targets: [Int32] = [5, -100, 299, 0]
        let (_, counted, lse) = try Kernels.crossEntropyForwardKeepingLogSumExp(logits: logits, targets: targets)
        let d = Kernels.crossEntropyBackward(logits: logits, targets: targets, counted: counted, dloss: 2, logSumExp: lse)
        for (i, t) in targets.enumerated() {
            let row = (0..<300).map { Double(logits[i, $0]) }
            let m = row.max()!, sum = row.map { Foundation.exp($0 - m) }.reduce(0, +)
            for j in 0..<300 {
                var want = t < 0 ? 0 : Foundation.exp(row[j] - m) / sum * 2 / Double(counted)
                if Int(t) == j { want -= 2 / Double(counted) }
                let softmaxPart = t < 0 ? 0 : Foundation.exp(row[j] - m) / sum * 2 / Double(counted)
                // ... plus the float rounding of scale = dloss / counted and of the result (2 ulp).
                let bound = softmaxPart * ((Double(abs(lse[i])) + 1) * 0x1p-24 * 2 + 3e-7) + abs(want) * 0x1p-23 + 1e-12
                XCTAssertEqual(Double(d[i, j]), want, accuracy: bound, "row \(i) column \(j)")
            }
        }
        XCTAssertEqual(d[2, 17], 0, "exp(-inf) contributes nothing")
    }

    func testEmbeddingGatherAndScatter() throws {
        let table = Tensor(shape: [4, 3]) { Float($0) }
        let out = try Kernels.embeddingForward(table: table, ids: [2, 0, 2])
        XCTAssertEqual(out.scalars, [6, 7, 8, 0, 1, 2, 6, 7, 8])
        var d = Tensor(zeros: [4, 3])
        try Kernels.embeddingBackward(ids: [2, 0, 2], dout: Tensor(shape: [3, 3], repeating: 1), into: &d)
        XCTAssertEqual(d.scalars, [1, 1, 1, 0, 0, 0, 2, 2, 2, 0, 0, 0])
        try Kernels.embeddingBackward(ids: [3], dout: Tensor(shape: [1, 3], repeating: 0.5), into: &d)
        XCTAssertEqual(d.scalars, [1, 1, 1, 0, 0, 0, 2, 2, 2, 0.5, 0.5, 0.5], "adds into an existing gradient, touched rows only")
        XCTAssertThrowsError(try Kernels.embeddingBackward(ids: [4], dout: Tensor(shape: [1, 3], repeating: 1), into: &d)) { e in
            XCTAssertTrue("\(e)".contains("id 4 at position 0 is outside the table's 4 rows"), "\(e)")
        }
        XCTAssertThrowsError(try Kernels.embeddingForward(table: table, ids: [1, 4])) { e in
            XCTAssertTrue("\(e)".contains("id 4 at position 1 is outside the table's 4 rows"), "\(e)")
        }
    }

    func testDropoutIsSeededAndUnbiased() {
        let x = Tensor(shape: [100_000], repeating: 1)
        let (y1, m1) = Kernels.dropoutForward(x, p: 0.25, key: 99)
        let (y2, _) = Kernels.dropoutForward(x, p: 0.25, key: 99)
        let (y3, _) = Kernels.dropoutForward(x, p: 0.25, key: 100)
        XCTAssertEqual(y1.scalars, y2.scalars, "same key, same mask")
        XCTAssertNotEqual(y1.scalars, y3.scalars, "different key, different mask")
        let kept = m1.scalars.filter { $0 > 0 }.count
        XCTAssertEqual(Double(kept) / 100_000, 0.75, accuracy: 0.01)
        XCTAssertEqual(Double(y1.mean()), 1, accuracy: 0.015, "inverted dropout keeps the mean")
        XCTAssertEqual(Set(m1.scalars), [0, Float(1) / 0.75])
    }

    /// The bandwidth kernel reads every element: its sum is exact on small integers, with a tail
    /// that does not fill a 32-float block.
    func testStreamReadSumsEveryElement() {
        for count in [0, 1, 31, 32, 33, 1000, 4099] {
            let t = Tensor(shape: [count]) { Float($0 % 7) }
            let expected = (0..<count).reduce(Float(0)) { $0 + Float($1 % 7) }
            XCTAssertEqual(Kernels.streamRead(t.unsafeBase, count), expected, "count \(count)")
        }
    }

    /// The matrix-vector product (batch-1 linear layers) against a Double reference, with and
    /// without a bias already in y, for lengths around the 32- and 8-float blocks.
    /// The spinning pool runs every index of every call exactly once: many calls in a row (the
    /// workers alternate between spinning and sleeping), calls from several threads at once (all
    /// but one fall back to Dispatch) and a call from inside a piece.
    func testSpinningRangesCoverEveryIndexOnce() {
        let count = 10_000
        let hits = Tensor(zeros: [count])
        let h = SendablePointer(hits.unsafeBase)
        for call in 0..<2_000 {
            if call == 1_000 { usleep(300_000) } // past the spin: the workers sleep, and must wake
            Parallel.forRangeSpinning(count, costPerItem: 64, piecesPerWorker: 8) { range in
                for i in range { h.p[i] += 1 }
            }
        }
        XCTAssertEqual(hits.scalars.min(), 2_000)
        XCTAssertEqual(hits.scalars.max(), 2_000)

        let callers = 4, perCaller = 300
        let counts = Tensor(zeros: [callers, count])
        let c = SendablePointer(counts.unsafeBase)
        DispatchQueue.concurrentPerform(iterations: callers) { caller in
            for _ in 0..<perCaller {
                Parallel.forRangeSpinning(count, costPerItem: 64, piecesPerWorker: 8) { range in
                    for i in range { c.p[caller * count + i] += 1 }
                }
            }
        }
        XCTAssertEqual(counts.scalars.min(), Float(perCaller))
        XCTAssertEqual(counts.scalars.max(), Float(perCaller))

        let nested = Tensor(zeros: [64, 1024])
        let n = SendablePointer(nested.unsafeBase)
        Parallel.forRangeSpinning(64, costPerItem: 1 << 16, piecesPerWorker: 8) { outer in
            for row in outer {
                Parallel.forRangeSpinning(1024, costPerItem: 64, piecesPerWorker: 8) { inner in
                    for j in inner { n.p[row * 1024 + j] += 1 }
                }
            }
        }
        XCTAssertEqual(nested.scalars.min(), 1)
        XCTAssertEqual(nested.scalars.max(), 1)
    }

    /// Inside `Parallel.onSpinningPool`, the Dispatch loops (`forRange`, `onWorkers`) run on the
    /// spinning pool and still cover every index exactly once, nested calls included.
    func testLoopsInTheSpinningScopeCoverEveryIndexOnce() {
        let count = 10_000
        let hits = Tensor(zeros: [2, count])
        let h = SendablePointer(hits.unsafeBase)
        let nested = Tensor(zeros: [64, 1024])
        let n = SendablePointer(nested.unsafeBase)
        Parallel.onSpinningPool {
            XCTAssertTrue(Parallel.prefersSpinningPool)
            for _ in 0..<500 {
                Parallel.forRange(count, costPerItem: 64) { range in for i in range { h.p[i] += 1 } }
                Parallel.onWorkers(3) { w in
                    for i in stride(from: w, to: count, by: 3) { h.p[count + i] += 1 }
                }
            }
            Parallel.forRange(64, costPerItem: 1 << 16) { outer in
                for row in outer {
                    Parallel.forRange(1024, costPerItem: 64) { inner in for j in inner { n.p[row * 1024 + j] += 1 } }
                }
            }
        }
        XCTAssertFalse(Parallel.prefersSpinningPool)
        XCTAssertEqual(nested.scalars.min(), 1)
        XCTAssertEqual(nested.scalars.max(), 1)
        XCTAssertEqual(Array(hits.scalars[0..<count]).min(), 500)
        XCTAssertEqual(Array(hits.scalars[0..<count]).max(), 500)
        XCTAssertEqual(Array(hits.scalars[count...]).min(), 500)
        XCTAssertEqual(Array(hits.scalars[count...]).max(), 500)
    }

    /// rowArgmax picks what the scalar scan `x[j] > best` picks: the first maximum, NaNs never
    /// winning except in x[0], -0 tying with +0; over lengths around the 8-lane blocks.
    func testRowArgmaxMatchesTheScalarScan() {
        func scan(_ x: [Float]) -> Int {
            var best = 0
            for j in 1..<Swift.max(x.count, 1) where x[j] > x[best] { best = j }
            return best
        }
        var rng = RandomGenerator(seed: 11)
        for n in [1, 2, 7, 8, 9, 15, 16, 17, 31, 64, 100, 8192] {
            for trial in 0..<40 {
                // Few distinct values, so ties are common.
                var x = (0..<n).map { _ in Float(Int(rng.nextUniform() * 5)) - 2 }
                switch trial % 5 {
                case 1: x[Int(rng.nextUniform() * Float(n)) % n] = .nan
                case 2: x[0] = .nan
                case 3: x = x.map { $0 == 0 ? -0.0 : $0 }; x[n - 1] = 0
                case 4: x = x.map { _ in -.infinity }
                default: break
                }
                let got = x.withUnsafeBufferPointer { rowArgmax($0.baseAddress!, n) }
                XCTAssertEqual(got, scan(x), "n \(n) trial \(trial): \(x.prefix(20))")
            }
        }
    }

    func testMatVecMatchesADoubleReference() {
        var rng = RandomGenerator(seed: 3)
        for (rows, cols) in [(1, 1), (3, 7), (5, 32), (17, 33), (64, 100), (300, 768)] {
            let w = Tensor.randomNormal([rows, cols], using: &rng), x = Tensor.randomNormal([cols], using: &rng)
            let bias = Tensor.randomNormal([rows], using: &rng)
            let plain = Tensor(zeros: [rows]), biased = bias.contiguousCopy()
            Kernels.matVec(w.unsafeBase, x.unsafeBase, plain.unsafeBase, rows: rows, cols: cols, accumulate: false)
            Kernels.matVec(w.unsafeBase, x.unsafeBase, biased.unsafeBase, rows: rows, cols: cols, accumulate: true)
            for r in 0..<rows {
                var exact = 0.0, magnitude = 0.0
                for c in 0..<cols {
                    exact += Double(w.scalar(at: r * cols + c)) * Double(x.scalar(at: c))
                    magnitude += abs(Double(w.scalar(at: r * cols + c)) * Double(x.scalar(at: c)))
                }
                let bound = 1e-6 * magnitude + 1e-7   // float rounding of a sum of `cols` products
                XCTAssertEqual(Double(plain.scalar(at: r)), exact, accuracy: bound, "\(rows)x\(cols) row \(r)")
                XCTAssertEqual(Double(biased.scalar(at: r)), exact + Double(bias.scalar(at: r)), accuracy: bound + 1e-6, "bias, row \(r)")
            }
        }
    }

    /// The few-rows product (batched generation): 1 to 9, 12, 13 and 16 input rows (one to four
    /// passes of four, and the rest), with and without accumulation, against a double reference.
    func testMatVecRowsMatchesADoubleReference() throws {
        var rng = RandomGenerator(seed: 4)
        for (rows, cols) in [(3, 7), (17, 33), (64, 100)] {
            let w = Tensor.randomNormal([rows, cols], using: &rng)
            for inputRows in Array(1...9) + [12, 13, 16] {
                let x = Tensor.randomNormal([inputRows, cols], using: &rng)
                for accumulate in [false, true] {
                    let y = Tensor(shape: [inputRows, rows], repeating: 0.25)
                    Kernels.matVecRows(w.unsafeBase, x.unsafeBase, ldx: cols, y.unsafeBase, ldy: rows, rows: rows, cols: cols,
                                       inputRows: inputRows, accumulate: accumulate)
                    for i in 0..<inputRows {
                        for r in 0..<rows {
                            var exact = accumulate ? 0.25 : 0, magnitude = 0.0
                            for c in 0..<cols {
                                let p = Double(w.scalar(at: r * cols + c)) * Double(x.scalar(at: i * cols + c))
                                exact += p
                                magnitude += abs(p)
                            }
                            XCTAssertEqual(Double(y.scalar(at: i * rows + r)), exact, accuracy: 1e-6 * magnitude + 1e-6,
                                           "\(rows)x\(cols), \(inputRows) rows, accumulate \(accumulate), (\(i), \(r))")
                        }
                    }
                }
            }
        }
    }

    /// The block-diagonal few-rows product (Monarch and BTT factors in batched generation): input
    /// rows strided past the blocks' columns (ldx > blocks x cols, as for a padded row), outputs
    /// strided likewise, against a double reference, with and without accumulation.
    func testBlockMatVecRowsMatchesADoubleReference() throws {
        var rng = RandomGenerator(seed: 5)
        for (blocks, rowsPerBlock, cols) in [(1, 5, 9), (3, 7, 16), (4, 24, 40)] {
            let w = Tensor.randomNormal([blocks, rowsPerBlock, cols], using: &rng)
            let ldx = blocks * cols + 3, ldy = blocks * rowsPerBlock + 2
            for inputRows in [2, 5, 8, 16] {
                let x = Tensor.randomNormal([inputRows, ldx], using: &rng)
                for accumulate in [false, true] {
                    let y = Tensor(shape: [inputRows, ldy], repeating: 0.5)
                    Kernels.blockMatVecRows(w.unsafeBase, x.unsafeBase, ldx: ldx, y.unsafeBase, ldy: ldy, blocks: blocks,
                                            rowsPerBlock: rowsPerBlock, cols: cols, xStride: cols, yStride: rowsPerBlock,
                                            inputRows: inputRows, accumulate: accumulate)
                    for i in 0..<inputRows {
                        for b in 0..<blocks {
                            for o in 0..<rowsPerBlock {
                                var exact = accumulate ? 0.5 : 0, magnitude = 0.0
                                for c in 0..<cols {
                                    let p = Double(w.scalar(at: (b * rowsPerBlock + o) * cols + c)) * Double(x.scalar(at: i * ldx + b * cols + c))
                                    exact += p
                                    magnitude += abs(p)
                                }
                                XCTAssertEqual(Double(y.scalar(at: i * ldy + b * rowsPerBlock + o)), exact, accuracy: 1e-6 * magnitude + 1e-6,
                                               "\(blocks) blocks of \(rowsPerBlock)x\(cols), \(inputRows) rows, accumulate \(accumulate), (\(i), \(b), \(o))")
                            }
                        }
                        // The padding columns of each output row are never written.
                        for pad in (blocks * rowsPerBlock)..<ldy {
                            XCTAssertEqual(y.scalar(at: i * ldy + pad), 0.5, "padding (\(i), \(pad))")
                        }
                    }
                }
            }
        }
    }

    /// One new token per row over cached keys and values (generation's step): rows of the cache
    /// at different lengths (1 to 14 keys, so four-key passes and leftovers), head sizes that take
    /// the 32-column value sums, the leftover columns or both, against a double reference that
    /// also checks the new key and value were appended.
    func testOneTokenCachedAttentionMatchesADoubleReference() throws {
        var rng = RandomGenerator(seed: 8)
        for (heads, hd) in [(2, 64), (3, 40), (2, 8)] {
            let c = heads * hd, capacity = 20
            let rows = [2, 0, 1], past = [0, 5, 13]
            let qkv = Tensor.randomNormal([3, 1, 3 * c], using: &rng)
            let keys = Tensor.randomNormal([3, capacity, c], using: &rng), values = Tensor.randomNormal([3, capacity, c], using: &rng)
            let (k0, v0) = (keys.scalars, values.scalars)
            let out = try Kernels.cachedAttention(qkv: qkv, heads: heads, keys: keys, values: values, rows: rows, past: past)
            XCTAssertEqual(out.shape, [3, 1, c])
            let q = qkv.scalars, o = out.scalars, (k1, v1) = (keys.scalars, values.scalars)
            for b in 0..<3 {
                let base = rows[b] * capacity * c
                // The new key and value sit at position past[b] of the row; nothing else moved.
                for e in 0..<c {
                    XCTAssertEqual(k1[base + past[b] * c + e], q[b * 3 * c + c + e])
                    XCTAssertEqual(v1[base + past[b] * c + e], q[b * 3 * c + 2 * c + e])
                }
                XCTAssertEqual(Array(k1[base..<(base + past[b] * c)]), Array(k0[base..<(base + past[b] * c)]))
                for h in 0..<heads {
                    let count = past[b] + 1
                    func key(_ j: Int, _ e: Int) -> Double {
                        Double(j == past[b] ? q[b * 3 * c + c + h * hd + e] : k0[base + j * c + h * hd + e])
                    }
                    func value(_ j: Int, _ e: Int) -> Double {
                        Double(j == past[b] ? q[b * 3 * c + 2 * c + h * hd + e] : v0[base + j * c + h * hd + e])
                    }
                    let scores = (0..<count).map { j in
                        (0..<hd).reduce(0.0) { $0 + Double(q[b * 3 * c + h * hd + $1]) * key(j, $1) } / Double(hd).squareRoot()
                    }
                    let top = scores.max()!, weights = scores.map { Foundation.exp($0 - top) }, total = weights.reduce(0, +)
                    for e in 0..<hd {
                        let exact = (0..<count).reduce(0.0) { $0 + weights[$1] / total * value($1, e) }
                        XCTAssertEqual(Double(o[b * c + h * hd + e]), exact, accuracy: 1e-5,
                                       "heads \(heads) x \(hd), row \(b), head \(h), column \(e)")
                    }
                }
            }
        }
    }
}
