import FactorlabAutograd
import FactorlabTensor
import FactorlabTestSupport
import XCTest

/// Every differentiable operation against central finite differences (see GradientCheck for
/// the tolerance argument: 1e-2 on the normalized error, with h = 1e-2 in Float32).
final class GradientCheckTests: XCTestCase {
    var rng = RandomGenerator(seed: 5)
    let tolerance = 1e-2

    func randn(_ shape: [Int], std: Float = 1) -> Tensor { Tensor.randomNormal(shape, std: std, using: &rng) }

    func check(_ name: String, _ inputs: [Tensor], file: StaticString = #filePath, line: UInt = #line,
               _ f: ([Variable]) throws -> Variable) throws {
        let r = try GradientCheck.check(inputs, f)
        XCTAssertLessThan(r.worst, tolerance, "\(name): \(r)", file: file, line: line)
    }

    func testArithmeticWithBroadcasting() throws {
        let a = randn([3, 4]), bias = randn([4]), col = randn([3, 1])
        try check("add", [a, bias]) { try $0[0] + $0[1] }
        try check("sub", [col, a]) { try $0[0] - $0[1] }
        try check("mul", [a, col]) { try $0[0] * $0[1] }
        let pos = randn([3, 4]).map { abs($0) + 0.5 }
        try check("div", [a, pos]) { try $0[0] / $0[1] }
        try check("div broadcast", [a, try Tensor(shape: [1, 4], scalars: [1.5, -2, 0.7, 3])]) { try $0[0] / $0[1] }
        try check("scalar ops", [a]) { -(($0[0] * 3 + 1) / 2 - 0.5) }
    }

    func testUnaryFunctions() throws {
        let x = randn([2, 5]), pos = randn([2, 5]).map { abs($0) + 0.3 }
        try check("exp", [x]) { $0[0].exp() }
        try check("log", [pos]) { $0[0].log() }
        try check("tanh", [x]) { $0[0].tanh() }
        try check("sqrt", [pos]) { $0[0].sqrt() }
        try check("square", [x]) { $0[0].squared() }
        let away = x.map { $0 > 0 ? $0 + 0.1 : $0 - 0.1 } // keep the kink at 0 out of reach of the step
        try check("relu", [away]) { $0[0].relu() }
        try check("gelu", [randn([4, 7], std: 2)]) { $0[0].gelu() }
    }

    func testReductions() throws {
        let x = randn([2, 3, 4])
        try check("sum", [x]) { $0[0].sum() }
        try check("mean", [x]) { $0[0].mean() }
        try check("sum axes", [x]) { try $0[0].sum(axes: [0, 2]) }
        try check("mean keepDims", [x]) { try $0[0].mean(axes: [1], keepDims: true) }
    }

    func testMatmulIncludingTransposedInputs() throws {
        try check("matmul 2d", [randn([3, 4]), randn([4, 5])]) { try $0[0].matmul($0[1]) }
        try check("matmul 3d", [randn([2, 3, 4]), randn([2, 4, 5])]) { try $0[0].matmul($0[1]) }
        try check("matmul 3d x 2d", [randn([2, 3, 4]), randn([4, 5])]) { try $0[0].matmul($0[1]) }
        // Non-contiguous operands: transposed views reach BLAS with a transpose flag.
        try check("matmul of transposed views", [randn([4, 3]), randn([5, 4])]) {
            try $0[0].transposed().matmul($0[1].transposed())
        }
    }

    func testShapeOperations() throws {
        let x = randn([2, 3, 4])
        try check("reshape", [x]) { try $0[0].reshaped([6, 4]) * $0[0].reshaped([6, 4]) }
        try check("permute", [x]) { try $0[0].permuted([2, 0, 1]).matmul(try $0[0].permuted([2, 1, 0])).slice(axis: 1, 0..<1) }
        try check("slice", [x]) { try $0[0].slice(axis: 2, 1..<3) }
        try check("concatenate", [x, randn([2, 1, 4])]) { try Variable.concatenate([$0[0], $0[1], $0[0]], axis: 1) }
        // A non-contiguous input to an element-wise op.
        try check("transpose then add", [randn([3, 4]), randn([4, 3])]) { try $0[0].transposed() + $0[1] }
    }

    func testReusedTensorAccumulatesGradients() throws {
        let x = randn([3, 3])
        try check("x*x + x @ x + x", [x]) { v in try v[0] * v[0] + v[0].matmul(v[0]) + v[0] }
        // And the exact value for one simple case: d/dx sum(x * x + x) = 2x + 1.
        let tape = Tape()
        let w = tape.watch(x)
        let y = try tape.record { try (w * w + w).sum() }
        let g = try tape.backward(y)[w]!
        assertClose(g, x * 2 + 1, rtol: 1e-6, atol: 1e-6, "exact gradient")
    }

    func testLinearLayerNormSoftmaxEmbedding() throws {
        try check("linear", [randn([2, 3, 5]), randn([4, 5]), randn([4])]) {
            try Variable.linear($0[0], weight: $0[1], bias: $0[2])
        }
        try check("linear no bias", [randn([3, 5]), randn([4, 5])]) { try Variable.linear($0[0], weight: $0[1], bias: nil) }
        try check("layerNorm", [randn([3, 6], std: 2), randn([6]), randn([6])]) {
            try Variable.layerNorm($0[0], weight: $0[1], bias: $0[2])
        }
        try check("softmax", [randn([3, 7], std: 2)]) { $0[0].softmax() }
        try check("logSoftmax", [randn([3, 7], std: 2)]) { $0[0].logSoftmax() }
        try check("embedding with repeated ids", [randn([5, 3])]) {
            try Variable.embedding($0[0], ids: [1, 4, 1, 0, 1], shape: [5])
        }
        try check("dropout", [randn([4, 8])]) { $0[0].dropout(0.3, key: 17) }
    }

    func testAttentionAndCrossEntropy() throws {
        try check("causal attention", [randn([2, 5, 12])]) { try Variable.causalSelfAttention($0[0], heads: 2) }
        try check("causal attention with dropout", [randn([2, 5, 12])]) {
            try Variable.causalSelfAttention($0[0], heads: 2, dropout: 0.3, key: 77)
        }
        try check("cross entropy", [randn([6, 5], std: 2)]) {
            try Variable.crossEntropy(logits: $0[0], targets: [0, 4, -100, 2, 2, 1])
        }
        try check("cross entropy [B, T, V]", [randn([2, 3, 4], std: 2)]) {
            try Variable.crossEntropy(logits: $0[0], targets: [0, 3, 1, 2, -100, 3])
        }
        // V = 13: one 8-lane vector and a 5-element tail per row.
        try check("fused head + cross entropy", [randn([2, 3, 4]), randn([13, 4], std: 0.7)]) {
            try Variable.linearCrossEntropy($0[0], weight: $0[1], targets: [12, 3, -100, 0, 7, 7])
        }
    }

    /// The fused head + loss against the two operations it replaces: same loss, same gradients
    /// for the input and the weight (up to rounding), a repeated target, an ignored row.
    func testFusedHeadCrossEntropyEqualsLinearThenCrossEntropy() throws {
        let x = randn([5, 6]), w = randn([21, 6], std: 0.8)
        let targets: [Int32] = [20, 0, -100, 9, 9]
        func run(_ fused: Bool) throws -> (Float, [Float], [Float]) {
            let tape = Tape()
            let xv = tape.watch(x), wv = tape.watch(w)
            let loss = try tape.record {
                fused ? try Variable.linearCrossEntropy(xv, weight: wv, targets: targets)
                      : try Variable.crossEntropy(logits: Variable.linear(xv, weight: wv, bias: nil), targets: targets)
            }
            let g = try tape.backward(loss, seed: Tensor(2.5))
            return (loss.value.item, g[xv]!.scalars, g[wv]!.scalars)
        }
        let (fl, fx, fw) = try run(true), (pl, px, pw) = try run(false)
        XCTAssertEqual(fl, pl, accuracy: 1e-6)
        for (a, b) in zip(fx, px) { XCTAssertEqual(a, b, accuracy: 1e-6) }
        for (a, b) in zip(fw, pw) { XCTAssertEqual(a, b, accuracy: 1e-6) }
        let plain = try Tape.withoutRecording { try Variable.linearCrossEntropy(Variable(x), weight: Variable(w), targets: targets) }
        XCTAssertEqual(plain.value.item, fl, accuracy: 1e-6, "no-grad mode computes the same loss")
        XCTAssertThrowsError(try Variable.linearCrossEntropy(Variable(x), weight: Variable(w), targets: [0, 1])) { e in
            XCTAssertTrue("\(e)".contains("2 targets for 5 input rows"), "\(e)")
        }
        XCTAssertThrowsError(try Variable.linearCrossEntropy(Variable(x), weight: Variable(w), targets: [0, 1, 2, 3, 21])) { e in
            XCTAssertTrue("\(e)".contains("target 21 at position 4 is outside the 21 classes"), "\(e)")
        }
    }
}

final class GradientCheckSelfTests: XCTestCase {
    /// The checker must flag a wrong backward: here d(x^2)/dx is recorded as x instead of 2x.
    func testAWrongGradientIsCaught() throws {
        var rng = RandomGenerator(seed: 9)
        let x = Tensor.randomNormal([4], using: &rng)
        let r = try GradientCheck.check([x]) { v in
            Variable.record(v[0].value.squared(), inputs: [v[0]], name: "bad-square") { g in [try g * x] }
        }
        XCTAssertGreaterThan(r.worst, 0.3, "a factor-of-two error must be visible: \(r)")
    }
}
