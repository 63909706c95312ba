import FactorlabAutograd
import FactorlabLayers
import FactorlabTensor
import FactorlabTestSupport
import XCTest

final class ProjectionTests: XCTestCase {
    var rng = RandomGenerator(seed: 33)
    func randn(_ shape: [Int], std: Float = 1) -> Tensor { Tensor.randomNormal(shape, std: std, using: &rng) }

    func testLowRankRecoversAnExactlyLowRankMatrix() throws {
        let w = try randn([24, 5]).matmul(randn([5, 16]))
        let r = try Projection.lowRank(weight: w, bias: nil, rank: 5)
        XCTAssertLessThan(r.relativeError, 1e-5)
        assertClose(try r.layer.denseMatrix(), w, rtol: 1e-4, atol: 1e-4, "rank-5 recovery")
    }

    func testMonarchRecoversAnExactlyMonarchMatrix() throws {
        for (n, m, k) in [(16, 16, 4), (8, 32, 4), (32, 8, 2), (12, 18, 3), (64, 64, 8)] {
            let truth = try MonarchLinear(inFeatures: n, outFeatures: m, nblocks: k, bias: false, std: 0.5, rng: &rng)
            let w = try truth.denseMatrix()
            let r = try Projection.monarch(weight: w, bias: nil, nblocks: k)
            XCTAssertLessThan(r.relativeError, 1e-5, "monarch \(n)->\(m) k\(k)")
        }
    }

    func testBlockTensorTrainRecoversAnExactlyBTTMatrix() throws {
        for (n, m, r, norm) in [(12, 20, 1, false), (16, 36, 2, false), (36, 16, 3, true), (64, 64, 4, false)] {
            let truth = try BTTLinear(inFeatures: n, outFeatures: m, rank: r, bias: false, std: 0.5, rng: &rng)
            let w = try truth.denseMatrix()
            let res = try Projection.btt(weight: w, bias: nil, rank: r, normalized: norm)
            XCTAssertLessThan(res.relativeError, 1e-5, "btt \(n)->\(m) r\(r)")
            XCTAssertEqual(res.layer.kind, .btt(rank: r, normalized: norm))
        }
        // Rank 1 is a Monarch-like class: BTT of rank r can only get closer as r grows.
        let w = randn([36, 16])
        let errors = try [1, 2, 4].map { try Projection.btt(weight: w, bias: nil, rank: $0).relativeError }
        XCTAssertTrue(errors[0] > errors[1] && errors[1] > errors[2], "\(errors)")
    }

    /// Optimality spot check: small random perturbations of the projected factors never reduce
    /// the Frobenius error (the projections are exact minimizers).
    func testProjectionsAreNotBeatenByPerturbations() throws {
        let w = randn([16, 16])
        let results = [try Projection.lowRank(weight: w, bias: nil, rank: 4),
                       try Projection.monarch(weight: w, bias: nil, nblocks: 4),
                       try Projection.btt(weight: w, bias: nil, rank: 2)]
        for res in results {
            XCTAssertGreaterThan(res.relativeError, 0.1, "a random matrix is far from either class")
            for trial in 0..<20 {
                let params = res.layer.parameters
                let saved = params.map(\.value)
                for p in params { p.value = try p.value + randn(p.shape, std: 1e-3) }
                let perturbed = try relativeError(w, try res.layer.denseMatrix())
                XCTAssertGreaterThanOrEqual(perturbed, res.relativeError - 1e-6, "\(res.layer.kind) trial \(trial)")
                for (p, v) in zip(params, saved) { p.value = v }
            }
        }
    }

    func relativeError(_ w: Tensor, _ approx: Tensor) throws -> Double {
        Double((try (w - approx).squared().sum() / w.squared().sum()).squareRoot())
    }

    func testButterflyRecoversARandomButterflyMatrix() throws {
        for n in [8, 32, 64] {
            let truth = try ButterflyLinear(inFeatures: n, outFeatures: n, bias: false, std: 0.2, rng: &rng)
            // Random (not rotation) twiddles, so the target is a generic butterfly.
            truth.twiddle.value = randn(truth.twiddle.shape)
            let w = try truth.denseMatrix()
            let r = try Projection.butterfly(weight: w, bias: nil)
            XCTAssertLessThan(r.relativeError, 1e-4, "butterfly \(n): hierarchical start is exact on butterflies")
        }
    }

    func testButterflyFitOfADenseMatrixReportsErrorAndImproves() throws {
        let w = randn([24, 20])
        let noRefine = try Projection.butterfly(weight: w, bias: nil, iterations: 0)
        let fitted = try Projection.butterfly(weight: w, bias: nil, iterations: 200)
        XCTAssertEqual(fitted.iterations, 200)
        XCTAssertLessThan(fitted.relativeError, noRefine.relativeError, "Adam refinement lowers the error")
        XCTAssertLessThan(fitted.relativeError, 1, "better than the zero matrix")
        let layer = try XCTUnwrap(fitted.layer as? ButterflyLinear)
        XCTAssertEqual(layer.twiddle.shape, [1, 1, 5, 16, 2, 2])
    }

    func testProjectionOfNonFiniteMatrixIsRefused() throws {
        var w = randn([4, 4])
        w.withUnsafeMutablePointer { $0[6] = .nan }
        XCTAssertThrowsError(try Projection.monarch(weight: w, bias: nil, nblocks: 2, name: "h.0.mlp.c_fc")) { e in
            XCTAssertEqual("\(e)", "h.0.mlp.c_fc (monarch:2 projection): weight has a non-finite value nan at [1, 2]; cannot project a matrix with NaN or inf")
        }
        XCTAssertThrowsError(try Projection.lowRank(weight: randn([4, 4]), bias: nil, rank: 5)) { e in
            XCTAssertTrue("\(e)".contains("rank 5 must be between 1 and min(in, out) = 4"), "\(e)")
        }
    }
}
