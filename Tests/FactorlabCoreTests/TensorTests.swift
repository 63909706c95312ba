import FactorlabTensor
import FactorlabTestSupport
import XCTest

final class TensorTests: XCTestCase {
    func testConstructionAndIndexing() throws {
        let x = try Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(x.count, 6)
        XCTAssertEqual(x[1, 2], 6)
        XCTAssertEqual(Tensor(zeros: [3]).scalars, [0, 0, 0])
        XCTAssertEqual(Tensor(2.5).item, 2.5)
        XCTAssertThrowsError(try Tensor(shape: [2, 2], scalars: [1, 2, 3])) { e in
            XCTAssertTrue("\(e)".contains("[2, 2]") && "\(e)".contains("3 scalars"), "\(e)")
        }
    }

    func testReshapeIsAViewAndCopyOnWrite() throws {
        let x = try Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        var y = try x.reshaped([3, -1])
        XCTAssertEqual(y.shape, [3, 2])
        XCTAssertTrue(y.storage === x.storage, "reshape of a contiguous tensor must not copy")
        y.withUnsafeMutablePointer { $0[0] = 100 }
        XCTAssertEqual(x[0, 0], 1, "mutating a view must not change the original (copy-on-write)")
        XCTAssertEqual(y[0, 0], 100)
        XCTAssertThrowsError(try x.reshaped([4, 2])) { e in
            XCTAssertTrue("\(e)".hasPrefix("reshape:") && "\(e)".contains("[2, 3]") && "\(e)".contains("[4, 2]"), "\(e)")
        }
    }

    func testPermuteSliceConcatenate() throws {
        let x = Tensor(shape: [2, 3, 4]) { Float($0) }
        let p = try x.permuted([2, 0, 1])
        XCTAssertEqual(p.shape, [4, 2, 3])
        XCTAssertFalse(p.isContiguous)
        XCTAssertEqual(p[3, 1, 2], x[1, 2, 3])
        let c = p.contiguous()
        XCTAssertTrue(c.isContiguous)
        XCTAssertEqual(c[3, 1, 2], x[1, 2, 3])
        let s = try x.slice(axis: 1, 1..<3)
        XCTAssertEqual(s.shape, [2, 2, 4])
        XCTAssertEqual(s[1, 0, 2], x[1, 1, 2])
        let cat = try Tensor.concatenate([s, try x.slice(axis: 1, 0..<1)], axis: 1)
        XCTAssertEqual(cat.shape, [2, 3, 4])
        XCTAssertEqual(cat[0, 2, 1], x[0, 0, 1])
        XCTAssertEqual(cat[1, 0, 3], x[1, 1, 3])
        XCTAssertThrowsError(try x.slice(axis: 3, 0..<1)) { e in XCTAssertTrue("\(e)".contains("axis 3 out of range"), "\(e)") }
        XCTAssertThrowsError(try x.permuted([0, 0, 1])) { e in XCTAssertTrue("\(e)".contains("permute"), "\(e)") }
    }

    func testBroadcastingArithmetic() throws {
        let a = Tensor(shape: [2, 3]) { Float($0) }
        let bias = try Tensor(shape: [3], scalars: [10, 20, 30])
        XCTAssertEqual(try (a + bias).scalars, [10, 21, 32, 13, 24, 35])
        let col = try Tensor(shape: [2, 1], scalars: [2, 3])
        XCTAssertEqual(try (a * col).scalars, [0, 2, 4, 9, 12, 15])
        // General path: a non-contiguous left operand broadcast against a column.
        let at = a.transposed() // [3, 2]
        let row = try Tensor(shape: [1, 2], scalars: [1, -1])
        XCTAssertEqual(try (at * row).scalars, [0, -3, 1, -4, 2, -5])
        XCTAssertEqual(try (a - Tensor(1)).scalars, [-1, 0, 1, 2, 3, 4])
        XCTAssertThrowsError(try a + Tensor(zeros: [2])) { e in
            XCTAssertEqual("\(e)", "add: shapes [2, 3] and [2] do not broadcast (axis 1: 3 vs 2)")
        }
    }

    func testReductions() throws {
        let x = Tensor(shape: [2, 3, 4]) { Float($0) }
        XCTAssertEqual(x.sum(), 276)
        let s = try x.sum(axes: [0, 2])
        XCTAssertEqual(s.shape, [3])
        let expected: [Float] = [6 + 54, 22 + 70, 38 + 86] // rows 0..3 + 12..15, 4..7 + 16..19, 8..11 + 20..23
        XCTAssertEqual(s.scalars, expected)
        XCTAssertEqual(try x.sum(toShape: [3, 1]).scalars, s.scalars)
        XCTAssertEqual(try x.mean(axes: [-1], keepDims: true).shape, [2, 3, 1])
        let (m, idx) = try x.max(axis: 1)
        XCTAssertEqual(m.shape, [2, 4])
        XCTAssertEqual(m[1, 2], 22)
        XCTAssertEqual(idx[0], 2)
    }

    func testMatmulUsesTransposedViewsCorrectly() throws {
        var rng = RandomGenerator(seed: 1)
        let a = Tensor.randomNormal([5, 7], using: &rng), b = Tensor.randomNormal([7, 3], using: &rng)
        func naive(_ a: Tensor, _ b: Tensor) -> [Float] {
            var out = [Float](repeating: 0, count: a.shape[0] * b.shape[1])
            for i in 0..<a.shape[0] { for j in 0..<b.shape[1] {
                var s: Double = 0
                for k in 0..<a.shape[1] { s += Double(a[i, k]) * Double(b[k, j]) }
                out[i * b.shape[1] + j] = Float(s)
            } }
            return out
        }
        let expected = try Tensor(shape: [5, 3], scalars: naive(a, b))
        assertClose(try a.matmul(b), expected, "plain")
        // The same product from transposed storage: both operands are views with swapped strides.
        let at = a.transposed().contiguous().transposed(), bt = b.transposed().contiguous().transposed()
        XCTAssertFalse(at.isContiguous)
        assertClose(try at.matmul(bt), expected, "transposed views")
        // Batched, and 3-D by 2-D.
        let a3 = Tensor.randomNormal([2, 5, 7], using: &rng)
        let b3 = Tensor.randomNormal([2, 7, 3], using: &rng)
        let y3 = try a3.matmul(b3)
        for i in 0..<2 {
            let ai = try a3.slice(axis: 0, i..<(i + 1)).reshaped([5, 7]), bi = try b3.slice(axis: 0, i..<(i + 1)).reshaped([7, 3])
            assertClose(try y3.slice(axis: 0, i..<(i + 1)).reshaped([5, 3]), try Tensor(shape: [5, 3], scalars: naive(ai, bi)), "batch \(i)")
        }
        assertClose(try a3.matmul(b), try Tensor(shape: [2, 5, 3], scalars: naive(try a3.reshaped([10, 7]), b)), "3-D x 2-D")
        XCTAssertThrowsError(try a.matmul(a)) { e in
            XCTAssertEqual("\(e)", "matmul: inner dimensions differ: [5, 7] x [5, 7]")
        }
    }

    func testRandomGeneratorIsReproducible() {
        var r1 = RandomGenerator(seed: 42), r2 = RandomGenerator(seed: 42)
        XCTAssertEqual((0..<5).map { _ in r1.next() }, (0..<5).map { _ in r2.next() })
        let saved = r1.state
        let a = r1.nextNormal()
        var r3 = RandomGenerator(state: saved)
        XCTAssertEqual(a, r3.nextNormal())
        // Moments of 20k normal samples: mean within 0.03, std within 0.03 (about 4 sigma).
        var r = RandomGenerator(seed: 3)
        let x = Tensor.randomNormal([20_000], using: &r)
        XCTAssertEqual(x.mean(), 0, accuracy: 0.03)
        XCTAssertEqual((x.squared().mean()).squareRoot(), 1, accuracy: 0.03)
    }
}
