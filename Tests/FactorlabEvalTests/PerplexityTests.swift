import FactorlabAutograd
import FactorlabEval
import FactorlabGPT2
import FactorlabTensor
import Foundation
import XCTest

final class PerplexityTests: XCTestCase {
    /// Each token's negative log-likelihood computed one by one from explicit softmaxes.
    func nll(_ model: GPT2Model, context: [Int32], next: Int32) throws -> Double {
        let logits = try Tape.withoutRecording { try model.logits(context, batch: 1, seqLen: context.count) }.value
        let v = model.config.vocabSize
        let row = try logits.slice(axis: 1, (context.count - 1)..<context.count).reshaped([v]).scalars.map(Double.init)
        let m = row.max()!
        return m + Foundation.log(row.map { Foundation.exp($0 - m) }.reduce(0, +)) - row[Int(next)]
    }

    func testSlidingWindowScoresEveryTokenOnceWithItsWindowContext() throws {
        let model = try GPT2Model(GPT2Config(nLayer: 1, nHead: 2, nEmbd: 16, nPositions: 8, vocabSize: 11), seed: 3)
        var rng = RandomGenerator(seed: 4)
        let ids = (0..<29).map { _ in Int32(rng.next() % 11) }
        for stride in [3, 7, 8] {
            let r = try Perplexity.evaluate(model: model, ids: ids, bytes: 100, stride: stride)
            XCTAssertEqual(r.tokens, 28, "stride \(stride): every token after the first, once")
            // Reference: the same windows (stride capped at window - 1), token by token.
            let s = min(stride, 7)
            var total = 0.0, prevEnd = 0, begin = 0
            while true {
                let end = min(begin + 8, ids.count)
                for p in max(prevEnd, begin + 1)..<end { total += try nll(model, context: Array(ids[begin..<p]), next: ids[p]) }
                prevEnd = end
                if end == ids.count { break }
                begin += s
            }
            XCTAssertEqual(r.nll, total, accuracy: 1e-4 * total, "stride \(stride)")
            XCTAssertEqual(r.perplexity, Foundation.exp(total / 28), accuracy: 1e-4 * r.perplexity)
            XCTAssertEqual(r.bitsPerByte, total / 100 / Foundation.log(2.0), accuracy: 1e-6)
        }
        XCTAssertThrowsError(try Perplexity.evaluate(model: model, ids: ids, bytes: 1, stride: 9)) { e in
            XCTAssertTrue("\(e)".contains("stride 9 must be between 1 and the window 8"), "\(e)")
        }
    }

    /// A uniform model (all-zero weights give equal logits) has perplexity exactly the vocabulary size.
    func testUniformModelHasPerplexityEqualToVocabularySize() throws {
        let model = try GPT2Model(GPT2Config(nLayer: 1, nHead: 1, nEmbd: 4, nPositions: 6, vocabSize: 3))
        for p in model.parameters { p.value = Tensor(zeros: p.shape) }
        let r = try Perplexity.evaluate(model: model, ids: [0, 1, 2, 2, 1, 0, 1, 2, 0, 0], bytes: 10)
        XCTAssertEqual(r.perplexity, 3, accuracy: 1e-5)
        XCTAssertEqual(r.tokens, 9)
    }
}
