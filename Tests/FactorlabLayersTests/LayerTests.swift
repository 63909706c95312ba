import FactorlabAutograd
import FactorlabLayers
import FactorlabTensor
import FactorlabTestSupport
import XCTest

final class LayerTests: XCTestCase {
    var rng = RandomGenerator(seed: 21)
    func randn(_ shape: [Int], std: Float = 1) -> Tensor { Tensor.randomNormal(shape, std: std, using: &rng) }

    func testKindSpecsParse() throws {
        XCTAssertEqual(try LinearKind(spec: "dense"), .dense)
        XCTAssertEqual(try LinearKind(spec: "lowrank:64"), .lowRank(rank: 64))
        XCTAssertEqual(try LinearKind(spec: "butterfly"), .butterfly(nblocks: 1))
        XCTAssertEqual(try LinearKind(spec: "monarch:4"), .monarch(nblocks: 4))
        XCTAssertEqual(LinearKind.monarch(nblocks: 4).description, "monarch:4")
        XCTAssertThrowsError(try LinearKind(spec: "monarch")) { e in XCTAssertTrue("\(e)".contains("monarch:NBLOCKS"), "\(e)") }
        XCTAssertThrowsError(try LinearKind(spec: "fft")) { e in XCTAssertTrue("\(e)".contains("unknown kind"), "\(e)") }
    }

    func testMonarchShapesAndCountsAtGPT2Width() throws {
        let up = try MonarchLinear(inFeatures: 768, outFeatures: 3072, nblocks: 4, rng: &rng)
        XCTAssertEqual(up.blkdiag1.shape, [4, 192, 192])
        XCTAssertEqual(up.blkdiag2.shape, [4, 768, 192])
        let down = try MonarchLinear(inFeatures: 3072, outFeatures: 768, nblocks: 4, rng: &rng)
        XCTAssertEqual(down.blkdiag1.shape, [4, 192, 768])
        XCTAssertEqual(down.blkdiag2.shape, [4, 192, 192])
        XCTAssertEqual(up.macsPerToken, 737_280)
        XCTAssertEqual(down.macsPerToken, 737_280)
        XCTAssertEqual(up.parameterCount, 737_280 + 3072)
        XCTAssertEqual(Double(up.macsPerToken) / Double(768 * 3072), 0.3125)
        let lr = try LowRankLinear(inFeatures: 768, outFeatures: 3072, rank: 192, rng: &rng)
        XCTAssertEqual(lr.macsPerToken, 192 * (768 + 3072))
        let bf = try ButterflyLinear(inFeatures: 768, outFeatures: 3072, rng: &rng)
        XCTAssertEqual(bf.twiddle.shape, [3, 1, 10, 512, 2, 2]) // n = 1024, ceil(3072/1024) = 3 stacked
        XCTAssertEqual(bf.macsPerToken, 3 * 2 * 1024 * 10)
        XCTAssertEqual(bf.twiddle.value.count, bf.macsPerToken)
    }

    func testBadConfigurationsNameTheConstraint() {
        XCTAssertThrowsError(try MonarchLinear(inFeatures: 10, outFeatures: 12, nblocks: 4, rng: &rng)) { e in
            XCTAssertEqual("\(e)", "monarch:4 10->12: nblocks 4 must divide both in_features 10 and out_features 12")
        }
        XCTAssertThrowsError(try LowRankLinear(inFeatures: 8, outFeatures: 16, rank: 9, rng: &rng)) { e in
            XCTAssertEqual("\(e)", "lowrank 8->16: rank 9 must be between 1 and min(in, out) = 8")
        }
        let layer = DenseLinear(inFeatures: 4, outFeatures: 2, rng: &rng)
        XCTAssertThrowsError(try layer(Variable(Tensor(zeros: [3, 5])))) { e in
            XCTAssertTrue("\(e)".contains("input [3, 5] does not end in the layer's 4 input features"), "\(e)")
        }
    }

    /// Each layer's output equals x W^T + b with W its own dense equivalent.
    func testEveryLayerEqualsItsDenseMatrix() throws {
        let configs: [(LinearKind, Int, Int)] = [(.dense, 12, 20), (.lowRank(rank: 3), 12, 20), (.monarch(nblocks: 4), 16, 32),
                                                 (.monarch(nblocks: 2), 32, 8), (.monarch(nblocks: 4), 16, 16),
                                                 (.butterfly(nblocks: 1), 12, 20), (.butterfly(nblocks: 2), 16, 16),
                                                 (.butterfly(nblocks: 1), 40, 12), (.btt(rank: 1, normalized: false), 12, 20),
                                                 (.btt(rank: 2, normalized: false), 16, 36), (.btt(rank: 3, normalized: true), 36, 16)]
        for (kind, n, m) in configs {
            let layer = try makeLinear(kind, inFeatures: n, outFeatures: m, std: 0.3, rng: &rng)
            layer.bias?.value = randn([m])
            let x = randn([3, 2, n])
            let y = try layer(Variable(x)).value
            let w = try layer.denseMatrix()
            XCTAssertEqual(w.shape, [m, n], "\(kind)")
            let ref = try x.matmul(w.transposed()) + layer.bias!.value
            assertClose(y, ref, rtol: 1e-4, atol: 1e-5, "\(kind) \(n)->\(m)")
            // One row (batch-1 generation) takes the matrix-vector path; a dense product (and low
            // rank's two) of up to 8 rows the few-row streaming path (batched generation); more rows the GEMMs.
            for rows in [1, 2, 5, 8, 9, 13] {
                let xs = randn([rows, n])
                assertClose(try layer(Variable(xs)).value, try xs.matmul(w.transposed()) + layer.bias!.value, rtol: 1e-4, atol: 1e-5,
                            "\(kind) \(n)->\(m), \(rows) rows")
            }
        }
    }

    func testGradientsOfEveryLayerAndFactor() throws {
        let tol = 1e-2 // see GradientCheck for the argument
        let x = randn([3, 12])
        var r = try GradientCheck.check([x, randn([20, 12]), randn([20])]) { try Variable.linear($0[0], weight: $0[1], bias: $0[2]) }
        XCTAssertLessThan(r.worst, tol, "dense \(r)")
        r = try GradientCheck.check([x, randn([20, 3]), randn([3, 12])]) { v in
            try Variable.linear(try Variable.linear(v[0], weight: v[2], bias: nil), weight: v[1], bias: nil)
        }
        XCTAssertLessThan(r.worst, tol, "lowrank \(r)")
        for (n, m, k) in [(16, 16, 4), (8, 32, 4), (32, 8, 2), (12, 18, 3)] {
            let (s1, s2) = try MonarchLinear.factorShapes(inFeatures: n, outFeatures: m, nblocks: k)
            r = try GradientCheck.check([randn([2, 3, n]), randn(s1, std: 0.5), randn(s2, std: 0.5)]) { v in
                try MonarchLinear.multiply(v[0], v[1], v[2], outFeatures: m)
            }
            XCTAssertLessThan(r.worst, tol, "monarch \(n)->\(m) k\(k) \(r)")
            // With the bias added inside the last permutation's pass.
            r = try GradientCheck.check([randn([2, 3, n]), randn(s1, std: 0.5), randn(s2, std: 0.5), randn([m])]) { v in
                try MonarchLinear.multiply(v[0], v[1], v[2], outFeatures: m, bias: v[3])
            }
            XCTAssertLessThan(r.worst, tol, "monarch with bias \(n)->\(m) k\(k) \(r)")
        }
        for (n, m, nb) in [(16, 16, 1), (12, 20, 2), (20, 6, 1)] {
            let shape = try ButterflyLinear.twiddleShape(inFeatures: n, outFeatures: m, nblocks: nb)
            let layer = try ButterflyLinear(inFeatures: n, outFeatures: m, nblocks: nb, rng: &rng)
            r = try GradientCheck.check([randn([3, n]), randn(shape, std: 0.6)]) { v in
                try ButterflyLinear.multiply(v[0], v[1], inFeatures: n, outFeatures: m, n: layer.n, strides: layer.strides)
            }
            XCTAssertLessThan(r.worst, tol, "butterfly \(n)->\(m) nb\(nb) \(r)")
        }
    }

    func testGradientsOfBlockTensorTrain() throws {
        let tol = 1e-2 // see GradientCheck for the argument
        for (n, m, r) in [(12, 20, 1), (16, 36, 2), (36, 16, 3), (6, 6, 2)] {
            let (c1, c2) = try BTTLinear.coreShapes(inFeatures: n, outFeatures: m, rank: r)
            var res = try GradientCheck.check([randn([2, 3, n]), randn(c1, std: 0.5), randn(c2, std: 0.5), randn([m])]) { v in
                try BTTLinear.multiply(v[0], v[1], v[2], inFeatures: n, outFeatures: m, rank: r, bias: v[3])
            }
            XCTAssertLessThan(res.worst, tol, "btt \(n)->\(m) r\(r) \(res)")
            // The normalized cores, with the cap active (rms 2 against max_rms <= 1) and inactive.
            for std: Float in [2, 0.05] {
                res = try GradientCheck.check([randn(c1, std: std), randn([1], std: 1)]) { v in
                    BTTLinear.capRMS(v[0], gamma: v[1], maxRMS: 0.5)
                }
                XCTAssertLessThan(res.worst, tol, "btt-norm cap, core std \(std) \(res)")
            }
        }
        // A whole normalized product, through both capped cores (core1 capped, core2 not).
        let (c1, c2) = try BTTLinear.coreShapes(inFeatures: 16, outFeatures: 36, rank: 2)
        let res = try GradientCheck.check([randn([4, 16]), randn(c1, std: 3), randn(c2, std: 0.05), randn([1]), randn([1])]) { v in
            try BTTLinear.multiply(v[0], BTTLinear.capRMS(v[1], gamma: v[3], maxRMS: 0.5), BTTLinear.capRMS(v[2], gamma: v[4], maxRMS: 0.5),
                                   inFeatures: 16, outFeatures: 36, rank: 2)
        }
        XCTAssertLessThan(res.worst, tol, "btt-norm layer \(res)")
    }

    func testBlockTensorTrainShapesFollowTheAuthorsSplit() throws {
        XCTAssertTrue(BTTLinear.split(768) == (16, 48) && BTTLinear.split(3072) == (32, 96) && BTTLinear.split(2304) == (48, 48))
        XCTAssertTrue(BTTLinear.split(50257) == (29, 1733) && BTTLinear.split(7) == (1, 7) && BTTLinear.split(1) == (1, 1))
        let (c1, c2) = try BTTLinear.coreShapes(inFeatures: 768, outFeatures: 3072, rank: 1)
        XCTAssertEqual(c1, [48, 32, 16])
        XCTAssertEqual(c2, [32, 96, 48])
        XCTAssertEqual(try LinearKind.btt(rank: 1, normalized: false).parameterCount(inFeatures: 768, outFeatures: 3072, bias: false),
                       768 * 32 + 3072 * 48)
        XCTAssertEqual(try LinearKind(spec: "btt:4"), .btt(rank: 4, normalized: false))
        XCTAssertEqual(try LinearKind(spec: "btt:2:4"), .btt(rank: 4, normalized: false))
        XCTAssertEqual(try LinearKind(spec: "btt-norm:2"), .btt(rank: 2, normalized: true))
        XCTAssertEqual(LinearKind.btt(rank: 2, normalized: true).description, "btt-norm:2")
        XCTAssertThrowsError(try LinearKind(spec: "btt:3:4")) { e in XCTAssertTrue("\(e)".contains("2 cores"), "\(e)") }
        // Rank beyond min(m0, n1) = 16 would be a dense layer with more parameters.
        XCTAssertThrowsError(try LinearKind.btt(rank: 17, normalized: false).parameterCount(inFeatures: 768, outFeatures: 3072)) { e in
            XCTAssertTrue("\(e)".contains("rank 17 must be between 1 and min(m0, n1) = 16 for in 768 = 16 x 48 and out 3072 = 32 x 96"), "\(e)")
        }
    }

    /// Vectorized stages (stride >= 16) against the dense equivalent and a gradient check on a
    /// slice of a larger layer.
    func testWideButterflyUsesVectorStagesCorrectly() throws {
        let layer = try ButterflyLinear(inFeatures: 64, outFeatures: 64, nblocks: 2, bias: false, std: 0.2, rng: &rng)
        let x = randn([5, 64])
        let y = try layer(Variable(x)).value
        assertClose(y, try x.matmul(try layer.denseMatrix().transposed()), rtol: 1e-4, atol: 1e-5, "butterfly 64")
        let tape = Tape()
        let xv = tape.watch(x)
        let out = try tape.record { try layer(xv).squared().sum() }
        let g = try tape.backward(out)
        // d/dx sum(y^2) = 2 y W
        assertClose(g[xv]!, try (y * 2).matmul(layer.denseMatrix()), rtol: 1e-4, atol: 1e-4, "butterfly 64 dx")
        XCTAssertNotNil(layer.twiddle.grad)
    }

    /// With unit-variance inputs, every kind's outputs have the variance of the dense layer
    /// (in * std^2) at init, within 15% (sampling spread at these sizes is a few percent).
    func testInitKeepsDenseOutputVariance() throws {
        let x = randn([256, 256])
        let std: Float = 0.02
        let expected = 256 * std * std
        for kind in [LinearKind.dense, .lowRank(rank: 32), .monarch(nblocks: 4), .butterfly(nblocks: 1), .butterfly(nblocks: 2),
                     .btt(rank: 1, normalized: false), .btt(rank: 4, normalized: false), .btt(rank: 2, normalized: true)] {
            var variances: [Float] = []
            for seed in 0..<4 {
                var g = RandomGenerator(seed: UInt64(100 + seed))
                let layer = try makeLinear(kind, inFeatures: 256, outFeatures: 512, std: std, rng: &g)
                variances.append(try layer(Variable(x)).value.squared().mean())
            }
            let mean = variances.reduce(0, +) / 4
            XCTAssertEqual(mean / expected, 1, accuracy: 0.15, "\(kind): output variance \(mean) vs dense \(expected)")
        }
    }
}
