import FactorlabAutograd
import FactorlabDistributed
import FactorlabTensor
import XCTest

/// The bucketing logic of data-parallel gradient averaging, on a single process (the reduction is
/// the identity there; the multi-rank reduction is tested end to end under mpirun in the CLI tests).
final class GradientAveragerTests: XCTestCase {
    func testBucketsFillInReadyOrderAndTheScaledSumReplacesEachGradient() throws {
        let a = Parameter("a", Tensor(shape: [3], repeating: 0)), b = Parameter("b", Tensor(shape: [5], repeating: 0))
        let c = Parameter("c", Tensor(shape: [2], repeating: 0))
        a.grad = try Tensor(shape: [3], scalars: [1, 2, 3])
        b.grad = try Tensor(shape: [5], scalars: [4, 5, 6, 7, 8])
        c.grad = try Tensor(shape: [2], scalars: [9, 10])
        // 6 floats per bucket, filled in ready order: c (2) + a (3) = 5; b (5) does not fit and opens a second.
        let averager = GradientAverager(communicator: .single, bucketBytes: 6 * 4)
        for step in 0..<2 {
            averager.begin()
            for p in [c, a, b] { averager.parameterReady(p) }
            try averager.finish(scale: 0.5)
            XCTAssertEqual(averager.lastBucketCount, 2, "c+a share a bucket (5 floats), b needs the next (step \(step))")
            XCTAssertEqual(averager.lastBytes, 10 * 4)
        }
        XCTAssertEqual(a.grad?.scalars, [0.25, 0.5, 0.75], "scaled twice over two steps")
        XCTAssertEqual(b.grad?.scalars, [1, 1.25, 1.5, 1.75, 2])
        XCTAssertEqual(c.grad?.scalars, [2.25, 2.5])
    }

    func testAParameterLargerThanABucketGetsItsOwn() throws {
        let big = Parameter("big", Tensor(shape: [10], repeating: 0))
        big.grad = Tensor(shape: [10], repeating: 2)
        let averager = GradientAverager(communicator: .single, bucketBytes: 4)
        averager.begin()
        averager.parameterReady(big)
        try averager.finish(scale: 0.25)
        XCTAssertEqual(averager.lastBucketCount, 1)
        XCTAssertEqual(big.grad?.scalars, [Float](repeating: 0.5, count: 10))
    }
}
