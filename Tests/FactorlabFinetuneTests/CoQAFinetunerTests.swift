import FactorlabAutograd
@testable import FactorlabFinetune
import FactorlabGPT2
import FactorlabTasks
import FactorlabTensor
import XCTest

final class CoQAFinetunerTests: XCTestCase {
    // a=0 b=1 ... z=25, space 26, newline 27, ':' 28, 'Q' 29, 'A' 30, eot 31
    let codec = CharCodec("abcdefghijklmnopqrstuvwxyz \n:QA")

    func testContextLongerThanTheModelIsARecipeError() throws {
        XCTAssertThrowsError(try CoQAFinetuner(model: try tinyModel(vocab: 32), codec: codec)) {
            XCTAssertEqual("\($0)", "max_length 512 exceeds the model's context of 64")
        }
    }

    func testLossIsOnAnswerTokensOnly() {
        let p = CoQAPromptBuilder.build(story: "ab", history: [], question: "c", answer: "d")
        XCTAssertEqual(p.prompt, "ab\n\nQ: c\nA:")
        XCTAssertEqual(p.target, " d\n")
        let row = CoQAFinetuner.row(prompt: p, storyID: "s", turnID: 1, codec: codec)
        // ids: a b \n \n Q : ␠ c \n A : | ␠ d \n   (prompt 11 tokens, target 3)
        XCTAssertEqual(row.inputs, [0, 1, 27, 27, 29, 28, 26, 2, 27, 30, 28, 26, 3])
        // Position 10 (the ':' of "A:") predicts the answer's first token; earlier targets are ignored.
        XCTAssertEqual(row.targets, [-100, -100, -100, -100, -100, -100, -100, -100, -100, -100, 26, 3, 27])
    }

    func testBatchPadsInputsWithEndOfTextAndTargetsWithIgnore() throws {
        var options = CoQAFinetuner.Options()
        options.maxLength = 64
        let ft = try CoQAFinetuner(model: try tinyModel(vocab: 32), codec: codec, options: options)
        let a = CoQATrainingRow(storyID: "s", turnID: 1, inputs: [1, 2, 3], targets: [-100, 3, 4])
        let b = CoQATrainingRow(storyID: "s", turnID: 2, inputs: [5], targets: [6])
        let (inputs, targets, t) = ft.batch([a, b])
        XCTAssertEqual(t, 3)
        XCTAssertEqual(inputs, [1, 2, 3, 5, 31, 31])
        XCTAssertEqual(targets, [-100, 3, 4, 6, -100, -100])
        // The loss over the padded batch equals the mean over the three real answer targets.
        let model = ft.model
        let loss = try Tape.withoutRecording { try model.loss(inputs, targets: targets, batch: 2, seqLen: 3).value.item }
        let logits = try Tape.withoutRecording { try model.logits(inputs, batch: 2, seqLen: 3).value.scalars }
        var manual = 0.0
        for (pos, target) in [(1, 3), (2, 4), (3, 6)] {
            let row = logits[(pos * 32)..<((pos + 1) * 32)].map(Double.init)
            let m = row.max()!
            manual += m + Foundation.log(row.map { Foundation.exp($0 - m) }.reduce(0, +)) - row[target]
        }
        XCTAssertEqual(Double(loss), manual / 3, accuracy: 1e-4)
    }

    /// A model whose language-model head is all zeros gives equal logits, so greedy decoding picks
    /// token 0 every time (ties go to the lowest id): what token 0 is decides where decoding stops.
    func zeroHeadModel() throws -> GPT2Model {
        let m = try tinyModel(vocab: 32)
        m.wte!.weight.value = Tensor(zeros: m.wte!.weight.value.shape)
        return m
    }

    func testGreedyDecodingStopsAtTheLengthLimit() throws {
        var options = CoQAFinetuner.Options()
        options.maxAnswerTokens = 4
        options.maxLength = 64
        let ft = try CoQAFinetuner(model: try zeroHeadModel(), codec: codec, options: options)  // token 0 is "a"
        XCTAssertEqual(try ft.answer(prompt: [1, 2, 3]), "aaaa")
    }

    func testGreedyDecodingStopsAtNewlineAndEndOfText() throws {
        var options = CoQAFinetuner.Options()
        options.maxAnswerTokens = 4
        options.maxLength = 64
        let newlineFirst = CharCodec("\nabcdefghijklmnopqrstuvwxyz :QA")  // token 0 is "\n"
        XCTAssertEqual(try CoQAFinetuner(model: try zeroHeadModel(), codec: newlineFirst, options: options).answer(prompt: [1, 2]), "")
        XCTAssertTrue(CoQAFinetuner.isStop(0, codec: newlineFirst))
        XCTAssertTrue(CoQAFinetuner.isStop(31, codec: codec))   // <|endoftext|>
        XCTAssertTrue(CoQAFinetuner.isStop(27, codec: codec))   // "\n"
        XCTAssertFalse(CoQAFinetuner.isStop(0, codec: codec))   // "a"
    }

    func testTrainingLowersAnswerLossAndWritesOfficialPredictions() throws {
        // Every answer is the story's last word: learnable from the prompt.
        let words = ["cat", "dog", "hen", "owl", "pig", "ram"]
        let stories = words.enumerated().map { i, w in
            CoQAStory(id: "s\(i)", source: "mctest", filename: "f", story: "the pet is a \(w)",
                      turns: [CoQATurn(turnID: 1, question: "what pet", answer: CoQAAnswer(inputText: w))])
        }
        var options = CoQAFinetuner.Options()
        options.maxLength = 60
        options.batchSize = 6
        options.epochs = 60
        options.lr = 1e-2
        options.maxAnswerTokens = 5
        let ft = try CoQAFinetuner(model: try tinyModel(vocab: 32, seed: 2), codec: codec, options: options)
        let dir = try temporaryDirectory()
        let summary = try ft.train(train: stories, dev: stories, runDirectory: dir)
        let first = try XCTUnwrap(summary.firstTrainLoss), last = try XCTUnwrap(summary.finalTrainLoss)
        XCTAssertLessThan(last, first * 0.3, "answer-token loss \(first) -> \(last)")
        XCTAssertEqual(summary.trainExamples, 6)
        let predictions = try CoQAPredictionsFile.read(dir.appendingPathComponent("predictions.json"))
        XCTAssertEqual(predictions.map(\.id), ["s0", "s1", "s2", "s3", "s4", "s5"])
        XCTAssertEqual(predictions.map(\.turnID), [1, 1, 1, 1, 1, 1])
        XCTAssertGreaterThan(try XCTUnwrap(summary.devF1), 50, "predictions: \(predictions.map(\.answer))")
    }
}
