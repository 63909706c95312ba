import FactorlabAutograd
import FactorlabTensor
import FactorlabTestSupport
import XCTest

final class TapeTests: XCTestCase {
    func testParametersAccumulateGradientsAcrossBackwardPasses() throws {
        let w = Parameter("w", try Tensor(shape: [2], scalars: [1, 2]))
        let x = Variable(try Tensor(shape: [2], scalars: [3, 4]))
        for _ in 0..<2 {
            let tape = Tape()
            let loss = try tape.record { try (w.variable * x).sum() }
            try tape.backward(loss)
        }
        XCTAssertEqual(w.grad?.scalars, [6, 8], "two backward passes add up (gradient accumulation)")
        w.zeroGrad()
        XCTAssertNil(w.grad)
    }

    func testTiedParameterUsedTwiceGetsBothContributions() throws {
        let w = Parameter("w", try Tensor(shape: [1], scalars: [3]))
        let tape = Tape()
        let loss = try tape.record { try (w.variable * w.variable).sum() }
        try tape.backward(loss)
        XCTAssertEqual(w.grad?.scalars, [6])
    }

    /// GPT-2's tied table: one parameter read by an embedding lookup (whose gradient is added
    /// in place into the head's dense gradient, rows only) and by a linear head. The gradient
    /// equals central finite differences of the loss, and a repeated id adds twice.
    func testTiedEmbeddingAndHeadGradientMatchesFiniteDifferences() throws {
        var rng = RandomGenerator(seed: 5)
        let table = Parameter("wte", Tensor(shape: [5, 3]) { _ in rng.nextNormal() })
        let ids: [Int32] = [4, 1, 4]
        let probe = Tensor(shape: [3, 5]) { _ in rng.nextNormal() }
        func loss() throws -> Variable {
            let w = table.variable
            let h = try Variable.embedding(w, ids: ids).tanh()
            return try (Variable.linear(h, weight: w, bias: nil) * Variable(probe)).sum()
        }
        let tape = Tape()
        try tape.backward(try tape.record { try loss() })
        let analytic = table.grad!.scalars
        let base = table.value
        for i in 0..<base.count {
            var plus = base, minus = base
            plus.withUnsafeMutablePointer { $0[i] += 1e-2 }
            minus.withUnsafeMutablePointer { $0[i] -= 1e-2 }
            table.value = plus
            let lp = try Tape.withoutRecording { try loss() }.value.item
            table.value = minus
            let lm = try Tape.withoutRecording { try loss() }.value.item
            XCTAssertEqual(analytic[i], (lp - lm) / 2e-2, accuracy: 2e-3 * max(1, abs(analytic[i])), "element \(i)")
        }
        table.value = base
    }

    /// A three-layer chain x -> w1 -> tanh -> w2 (tied: read again at the end) -> w3: each
    /// parameter is reported once, when the walk passes its first use, with its final gradient.
    func testParameterReadyReportsEachFinishedGradientDuringBackward() throws {
        var rng = RandomGenerator(seed: 3)
        let w1 = Parameter("w1", Tensor(shape: [4, 4]) { _ in rng.nextNormal() })
        let w2 = Parameter("w2", Tensor(shape: [4, 4]) { _ in rng.nextNormal() })
        let w3 = Parameter("w3", Tensor(shape: [4, 4]) { _ in rng.nextNormal() })
        let x = Variable(Tensor(shape: [2, 4]) { _ in rng.nextNormal() })
        func loss() throws -> Variable {
            let h = try x.matmul(w1.variable).tanh()
            let g = try h.matmul(w2.variable).tanh()
            return try (g.matmul(w3.variable) + g.matmul(w2.variable)).sum()
        }
        let tape = Tape()
        let plain = try tape.record { try loss() }
        try tape.backward(plain)
        let expected = [w1, w2, w3].map { $0.grad!.scalars }
        for w in [w1, w2, w3] { w.zeroGrad() }

        let hooked = Tape()
        let l = try hooked.record { try loss() }
        var reported: [(String, [Float])] = []
        try hooked.backward(l) { p in reported.append((p.name, p.grad!.scalars)) }
        XCTAssertEqual(reported.map(\.0), ["w3", "w2", "w1"], "reverse order of first use; the tied w2 only after its first use")
        XCTAssertEqual(reported.map(\.1), [expected[2], expected[1], expected[0]], "reported gradients are final")
        XCTAssertEqual([w1, w2, w3].map { $0.grad!.scalars }, expected, "the hook changes nothing")
    }

    func testSecondBackwardIsRefused() throws {
        let tape = Tape()
        let x = tape.watch(Tensor(shape: [2], repeating: 1))
        let y = try tape.record { x.exp().sum() }
        try tape.backward(y)
        XCTAssertThrowsError(try tape.backward(y)) { e in XCTAssertTrue("\(e)".contains("backward called twice"), "\(e)") }
        XCTAssertThrowsError(try tape.record { x.exp() }) { e in XCTAssertTrue("\(e)".contains("already used"), "\(e)") }
    }

    func testNoGradModeRecordsNothing() throws {
        let w = Parameter("w", Tensor(shape: [3], repeating: 2))
        let outside = w.variable.exp()
        XCTAssertFalse(outside.requiresGrad, "outside record, operations are constants")
        let tape = Tape()
        try tape.record {
            let a = w.variable.exp()
            XCTAssertTrue(a.requiresGrad)
            let b = Tape.withoutRecording { w.variable.exp() }
            XCTAssertFalse(b.requiresGrad, "withoutRecording is the no-grad scope")
        }
        XCTAssertEqual(tape.operationCount, 1)
        let frozen = Parameter("f", Tensor(shape: [3], repeating: 1), requiresGrad: false)
        let t2 = Tape()
        let y = try t2.record { try (frozen.variable * w.variable).sum() }
        try t2.backward(y)
        XCTAssertNil(frozen.grad, "frozen parameters get no gradient")
    }

    func testBackwardOfALossFromAnotherTapeIsAnError() throws {
        let t1 = Tape(), t2 = Tape()
        let x = t1.watch(Tensor(shape: [1], repeating: 1))
        let y = try t1.record { x.exp() }
        XCTAssertThrowsError(try t2.backward(y)) { e in XCTAssertTrue("\(e)".contains("not recorded on this tape"), "\(e)") }
    }

    func testSavedTensorsAreReleasedAfterBackward() throws {
        let tape = Tape()
        let x = tape.watch(Tensor(shape: [1000], repeating: 0.5))
        weak var savedStorage: TensorStorage?
        let y: Variable = try tape.record {
            let e = x.exp()
            savedStorage = e.value.storage
            return e.sum()
        }
        XCTAssertNotNil(savedStorage, "exp keeps its output for backward")
        try tape.backward(y)
        XCTAssertNil(savedStorage, "released once its backward has run")
    }
}
