import FactorlabAutograd
import FactorlabLayers
import FactorlabTensor
import FactorlabTestSupport
import XCTest

/// Data-aware projection: the whitened closed form against numpy, never worse than data-free on
/// the calibration objective, exact on matrices already in the class.
final class DataAwareProjectionTests: XCTestCase {
    var rng = RandomGenerator(seed: 44)
    func randn(_ shape: [Int], std: Float = 1) -> Tensor { Tensor.randomNormal(shape, std: std, using: &rng) }

    func statistics(_ x: Tensor) -> InputStatistics {
        let s = InputStatistics(features: x.shape.last!)
        // Streamed in two pieces, as calibration batches arrive.
        let half = x.shape[0] / 2
        s.add(try! x.slice(axis: 0, 0..<half).contiguous())
        s.add(try! x.slice(axis: 0, half..<x.shape[0]).contiguous())
        return s
    }

    func testWhitenedLowRankMatchesTheNumpyReference() throws {
        let fx = try Fixture("whitened_lowrank", bundle: .module, script: "Tools/reference/make_projection_fixtures.py")
        let r = try DataAwareProjection.project(weight: fx["w"], bias: nil, to: .lowRank(rank: 3), statistics: statistics(fx["x"]))
        assertClose(try r.layer.denseMatrix(), fx["w_projected"], rtol: 1e-3, atol: 2e-4, "W'")
        XCTAssertEqual(r.outputError, Double(fx["output_error"].item), accuracy: 1e-5, "the closed form's minimum")
        XCTAssertLessThan(r.outputError, r.dataFreeOutputError, "whitening lowers the output error")
        XCTAssertGreaterThan(r.weightError, r.dataFreeWeightError, "and the plain SVD stays the best in weight error")
    }

    /// Over random W and correlated X, for every kind: the data-aware output error is at most the
    /// data-free one (the data-free projection is the start, and the best iterate is kept).
    func testDataAwareIsNeverWorseThanDataFreeOnTheCalibrationObjective() throws {
        for trial in 0..<4 {
            let w = randn([24, 16]), mix = randn([16, 16]), x = try randn([64, 16]).matmul(mix)
            let stats = statistics(x)
            for kind in [LinearKind.lowRank(rank: 4), .monarch(nblocks: 4), .btt(rank: 2, normalized: false), .butterfly(nblocks: 1)] {
                let r = try DataAwareProjection.project(weight: w, bias: randn([24]), to: kind, statistics: stats, iterations: 60)
                XCTAssertLessThanOrEqual(r.outputError, r.dataFreeOutputError + 1e-6, "\(kind) trial \(trial)")
                XCTAssertEqual(r.layer.kind, kind)
            }
        }
    }

    func testExactRecoveryWhenTheWeightIsAlreadyInTheClass() throws {
        let x = randn([80, 16]), stats = statistics(x)
        let low = try randn([20, 3]).matmul(randn([3, 16]))
        XCTAssertLessThan(try DataAwareProjection.project(weight: low, bias: nil, to: .lowRank(rank: 3), statistics: stats).outputError, 1e-5)
        let monarch = try MonarchLinear(inFeatures: 16, outFeatures: 20, nblocks: 4, bias: false, std: 0.5, rng: &rng).denseMatrix()
        XCTAssertLessThan(try DataAwareProjection.project(weight: monarch, bias: nil, to: .monarch(nblocks: 4), statistics: stats).outputError, 1e-5)
        let btt = try BTTLinear(inFeatures: 16, outFeatures: 20, rank: 2, bias: false, std: 0.5, rng: &rng).denseMatrix()
        XCTAssertLessThan(try DataAwareProjection.project(weight: btt, bias: nil, to: .btt(rank: 2, normalized: false), statistics: stats).outputError, 1e-5)
    }

    func testTooFewCalibrationTokensOrNoneAreErrors() throws {
        let w = randn([8, 8])
        let few = statistics(randn([2, 8]))
        XCTAssertThrowsError(try DataAwareProjection.project(weight: w, bias: nil, to: .lowRank(rank: 4), statistics: few)) { e in
            XCTAssertTrue("\(e)".contains("2 calibration tokens are fewer than the rank 4 asked"), "\(e)")
        }
        XCTAssertThrowsError(try DataAwareProjection.project(weight: w, bias: nil, to: .lowRank(rank: 4), statistics: InputStatistics(features: 8))) { e in
            XCTAssertTrue("\(e)".contains("no calibration rows"), "\(e)")
        }
    }
}
