import FactorlabEval
import FactorlabGPT2
import FactorlabTensor
import FactorlabTokenizer
import Foundation
import XCTest

/// LAMBADA and CBT scoring against values worked out by hand: the model is made a unigram model
/// (ln_f's scale is zero, so every position's hidden state is ln_f's bias e_0, and the logits are
/// the first column s of the tied embedding), so log p(token k) = s_k - logsumexp(s) at every
/// position, whatever the context.
final class ClozeTests: XCTestCase {
    var tokenizer: BPETokenizer!
    var model: GPT2Model!
    var scores: [Double] = []

    override func setUpWithError() throws {
        tokenizer = try BPETokenizer.train(texts: ["the cat sat on the mat. the dog sat on the log. a cat and a dog."],
                                           vocabularySize: 270)
        model = try GPT2Model(GPT2Config(nLayer: 1, nHead: 1, nEmbd: 4, nPositions: 64, vocabSize: tokenizer.vocabularySize))
        var rng = RandomGenerator(seed: 1)
        scores = (0..<tokenizer.vocabularySize).map { _ in Double(rng.nextNormal()) }
        // Make " cat" the likeliest token by far.
        let cat = tokenizer.encode(" cat")
        XCTAssertEqual(cat.count, 1)
        scores[Int(cat[0])] = 9
        let v = tokenizer.vocabularySize
        model.wte!.weight.value = Tensor(shape: [v, 4]) { i in i % 4 == 0 ? Float(self.scores[i / 4]) : 0 }
        model.lnF.weight.value = Tensor(zeros: [4])
        model.lnF.bias.value = try Tensor(shape: [4], scalars: [1, 0, 0, 0])
    }

    func logProb(_ t: Int32) -> Double {
        let m = scores.max()!
        return Double(Float(scores[Int(t)])) - (m + Foundation.log(scores.map { Foundation.exp(Double(Float($0)) - m) }.reduce(0, +)))
    }

    func testLambadaAccuracyAndTargetPerplexity() throws {
        let texts = ["the dog sat on the cat", "the cat sat on the mat", "a dog and a cat"]
        let r = try Lambada.evaluate(model: model, tokenizer: tokenizer, texts: texts)
        XCTAssertEqual(r.examples, 3)
        // Only passages ending in " cat" (the argmax token) are greedy-correct, if " mat" is one token or not.
        XCTAssertEqual(r.correct, 2)
        var nll = 0.0, n = 0
        for t in texts {
            let target = tokenizer.encode(Lambada.split(t)!.target)
            for id in target { nll -= logProb(id); n += 1 }
        }
        XCTAssertEqual(r.targetTokens, n)
        XCTAssertEqual(r.perplexity, Foundation.exp(nll / Double(n)), accuracy: 1e-4 * r.perplexity)
        XCTAssertEqual(Lambada.split("a b  c")!.target, " c")
    }

    func testClozeChoosesTheMostLikelyCompletion() throws {
        let examples = [ClozeTest.Example(context: "the dog sat.", query: "the XXXXX sat", candidates: ["dog", "cat", "mat"], answer: "cat"),
                        ClozeTest.Example(context: "x", query: "on the XXXXX", candidates: ["log", "mat"], answer: "log")]
        let r = try ClozeTest.evaluate(model: model, tokenizer: tokenizer, examples: examples)
        // Expected by hand: the candidate maximizing the sum of unigram log-probabilities of the completed query.
        var expectedCorrect = 0
        for e in examples {
            let best = e.candidates.max { a, b in
                let sa = tokenizer.encode(" " + e.query.replacingOccurrences(of: "XXXXX", with: a)).map(logProb).reduce(0, +)
                let sb = tokenizer.encode(" " + e.query.replacingOccurrences(of: "XXXXX", with: b)).map(logProb).reduce(0, +)
                return sa < sb
            }
            if best == e.answer { expectedCorrect += 1 }
        }
        XCTAssertEqual(r.correct, expectedCorrect)
        XCTAssertEqual(r.correct, 1, "' cat' wins the first example; the second is decided by the random unigram scores of log vs mat")
    }

    func testCBTFileFormatAndErrors() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cbt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let good = dir.appendingPathComponent("cbt.txt")
        try "1 The cat sat .\n2 It was warm .\n21 The XXXXX slept .\tcat\t\tcat|dog|mat\n\n1 A dog ran .\n21 The XXXXX ran .\tdog\t\tcat|dog\n"
            .write(to: good, atomically: true, encoding: .utf8)
        let ex = try ClozeTest.load(good)
        XCTAssertEqual(ex.count, 2)
        XCTAssertEqual(ex[0], ClozeTest.Example(context: "The cat sat . It was warm .", query: "The XXXXX slept .",
                                                candidates: ["cat", "dog", "mat"], answer: "cat"))
        let bad = dir.appendingPathComponent("bad.txt")
        try "1 A .\n21 The XXXXX ran .\tbird\t\tcat|dog\n".write(to: bad, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try ClozeTest.load(bad)) { e in
            XCTAssertTrue("\(e)".contains("bad.txt:2: the answer 'bird' is not among the candidates"), "\(e)")
        }
    }
}
