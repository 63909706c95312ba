import FactorlabAutograd
import FactorlabCheckpoint
@testable import FactorlabFinetune
import FactorlabGPT2
import FactorlabTasks
import FactorlabTensor
import XCTest

final class GLUEFinetunerTests: XCTestCase {
    let codec = CharCodec("abcdefghijklmnopqrstuvwxyz \n")  // eot = 28

    /// SST-2-style rows: random words over "abcdefgh"; label 1 when the sentence contains a "z".
    func syntheticSST2(rows: Int, seed: UInt64, header: Bool = true) -> String {
        var rng = RandomGenerator(state: seed)
        var text = header ? "sentence\tlabel\n" : ""
        for i in 0..<rows {
            var chars = (0..<(6 + Int(rng.next() % 8))).map { _ in Character(UnicodeScalar(UInt8(97 + rng.next() % 8))) }
            let label = i % 2
            if label == 1 { chars[Int(rng.next() % UInt64(chars.count))] = "z" }
            text += String(chars) + "\t\(label)\n"
        }
        return text
    }

    func dataset(_ text: String, split: GLUESplit = .train) throws -> GLUEDataset {
        try GLUEDataset(task: .sst2, split: split, contents: Data(text.utf8), fileName: "SST-2/\(split.rawValue).tsv")
    }

    func testClassifierCopiesTheTransformerAndAddsAFreshHead() throws {
        let base = try tinyModel(vocab: 29, seed: 7)
        let clf = try ClassifierModel.make(from: base, numLabels: 3, padTokenID: 28, seed: 5)
        XCTAssertEqual(clf.config.numLabels, 3)
        XCTAssertEqual(clf.config.padTokenID, 28)
        XCTAssertEqual(clf.score?.weight.value.shape, [3, 32])
        let baseParams = Dictionary(uniqueKeysWithValues: base.namedParameters.map { ($0.0, $0.1.value.scalars) })
        for (name, p) in clf.namedParameters where name != "score.weight" {
            XCTAssertEqual(p.value.scalars, baseParams[name], name)
        }
        // Own storage: changing the classifier leaves the base model alone.
        clf.wte!.weight.value = Tensor(shape: clf.wte!.weight.value.shape, generator: { _ in 0 })
        XCTAssertEqual(base.wte!.weight.value.scalars, baseParams["wte.weight"])
    }

    func testFinetuningLearnsATokenPresenceTaskAndLowersTheLoss() throws {
        let train = try dataset(syntheticSST2(rows: 256, seed: 1))
        let dev = try dataset(syntheticSST2(rows: 128, seed: 2), split: .dev)
        let model = try ClassifierModel.make(from: try tinyModel(vocab: 29, seed: 3), numLabels: 2, padTokenID: 28, seed: 4)
        var options = GLUEFinetuner.Options()
        options.epochs = 6
        options.batchSize = 16
        options.lr = 3e-3
        options.warmupRatio = 0.05
        let ft = try GLUEFinetuner(task: .sst2, model: model, encoder: try GLUEEncoder(codec: codec, maxLength: 32), options: options)
        let dir = try temporaryDirectory()
        let s = try ft.train(train: train.examples, dev: [LabelledSplit(dev)], runDirectory: dir)
        XCTAssertEqual(s.steps, 6 * 16)
        XCTAssertLessThan(s.epochDev.last!["loss"]!, s.initialDev["loss"]! * 0.7, "dev loss \(s.initialDev) -> \(s.epochDev)")
        XCTAssertGreaterThan(s.bestDev["accuracy"]!, 0.85, "dev accuracy after finetuning: \(s.epochDev)")
        XCTAssertLessThan(s.initialDev["accuracy"]!, 0.7, "an untrained head should be near chance: \(s.initialDev)")
        // Records: a row per step plus one per evaluation, summary.json, best.h5 loadable with its head.
        let lines = try String(contentsOf: dir.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 6 * 16 + 6 + 1)
        XCTAssertTrue(lines.last!.contains("\"dev_accuracy\""))
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("summary.json"))) as! [String: Any]
        XCTAssertEqual(summary["steps"] as? Int, 96)
        XCTAssertEqual(summary["primary_metric"] as? String, "accuracy")
        let (best, _) = try Checkpoint.loadModel(dir.appendingPathComponent("best.h5"))
        XCTAssertEqual(best.config.numLabels, 2)
        let reloaded = try GLUEFinetuner(task: .sst2, model: best, encoder: ft.encoder)
        XCTAssertEqual(try reloaded.evaluate(LabelledSplit(dev)).metrics["accuracy"]!, s.bestDev["accuracy"]!, accuracy: 1e-12)
    }

    func testSubmissionFileHasOneLabelPerTestRow() throws {
        let model = try ClassifierModel.make(from: try tinyModel(vocab: 29), numLabels: 2, padTokenID: 28, seed: 4)
        let ft = try GLUEFinetuner(task: .sst2, model: model, encoder: try GLUEEncoder(codec: codec, maxLength: 16))
        let test = try GLUEDataset(task: .sst2, split: .test, contents: Data("index\tsentence\n0\tabc\n1\tzzz\n2\thead\n".utf8),
                                   fileName: "SST-2/test.tsv")
        let (labels, _) = try ft.predict(test.examples)
        let dir = try temporaryDirectory()
        let url = try ft.writeSubmission(test, to: dir)
        XCTAssertEqual(url.lastPathComponent, "SST-2.tsv")
        XCTAssertEqual(try String(contentsOf: url, encoding: .utf8),
                       "index\tprediction\n0\t\(labels[0])\n1\t\(labels[1])\n2\t\(labels[2])\n")
    }

    func testSTSBUsesMeanSquaredErrorOnOneOutput() throws {
        let model = try ClassifierModel.make(from: try tinyModel(vocab: 29), numLabels: 1, padTokenID: 28, seed: 4)
        let encoder = try GLUEEncoder(codec: codec, maxLength: 16)
        let ft = try GLUEFinetuner(task: .stsb, model: model, encoder: encoder)
        let dev = try GLUEDataset(task: .stsb, split: .dev, contents: Data("""
            index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore
            0\tmain-captions\tMSRvid\t2012test\t0000\tnone\tnone\ta man\ta dog\t5.000
            1\tmain-captions\tMSRvid\t2012test\t0001\tnone\tnone\tone cat\ttwo cats\t1.500
            2\tmain-captions\tMSRvid\t2012test\t0002\tnone\tnone\tbig\tsmall\t0.250

            """.utf8), fileName: "STS-B/dev.tsv")
        let out = try ft.outputs(dev.examples)
        XCTAssertEqual(out.map(\.count), [1, 1, 1])
        let rows = dev.examples.map { encoder.encode(textA: $0.textA, textB: $0.textB) }
        let loss = try ft.loss(rows: rows, examples: dev.examples, dropoutKey: nil).value.item
        let gold = [5.0, 1.5, 0.25]
        let mse = zip(out.map { Double($0[0]) }, gold).map { ($0 - $1) * ($0 - $1) }.reduce(0, +) / 3
        XCTAssertEqual(Double(loss), mse, accuracy: 1e-5)
        let e = try ft.evaluate(LabelledSplit(dev))
        XCTAssertEqual(e.loss, mse, accuracy: 1e-5)
        XCTAssertEqual(Set(e.metrics.keys), ["pearson", "spearmanr"])
        XCTAssertEqual(e.predictedScores.count, 3)
        XCTAssertEqual(ft.primaryMetric, "pearson")
    }

    func testMNLIScoresBothDevSplits() throws {
        let model = try ClassifierModel.make(from: try tinyModel(vocab: 29), numLabels: 3, padTokenID: 28, seed: 4)
        let ft = try GLUEFinetuner(task: .mnli, model: model, encoder: try GLUEEncoder(codec: codec, maxLength: 16))
        let header = "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label\n"
        func row(_ i: Int, _ a: String, _ b: String, _ label: String) -> String {
            "\(i)\t1\t1n\tfiction\t( x )\t( y )\t(ROOT x)\t(ROOT y)\t\(a)\t\(b)\t\(label)\t\(label)\n"
        }
        let matched = try GLUEDataset(task: .mnli, split: .dev, contents: Data((header + row(0, "ab", "cd", "entailment")
            + row(1, "ef", "gh", "neutral") + row(2, "ij", "kl", "contradiction")).utf8), fileName: "MNLI/dev_matched.tsv")
        let mismatched = try GLUEDataset(task: .mnli, split: .devMismatched, contents: Data((header + row(0, "mn", "op", "neutral")
            + row(1, "qr", "st", "neutral")).utf8), fileName: "MNLI/dev_mismatched.tsv")
        let m = try ft.evaluateDev([LabelledSplit(matched), LabelledSplit(mismatched)])
        XCTAssertEqual(Set(m.keys), ["accuracy_matched", "loss_matched", "accuracy_mismatched", "loss_mismatched"])
        let pm = try ft.predict(matched.examples).labels, pmm = try ft.predict(mismatched.examples).labels
        XCTAssertEqual(m["accuracy_matched"]!, Double(zip(pm, [0, 1, 2]).filter { $0 == $1 }.count) / 3, accuracy: 1e-12)
        XCTAssertEqual(m["accuracy_mismatched"]!, Double(pmm.filter { $0 == 1 }.count) / 2, accuracy: 1e-12)
        XCTAssertEqual(ft.primaryMetric, "accuracy_matched")
    }

    func testHeadSizeMustMatchTheTask() throws {
        let model = try ClassifierModel.make(from: try tinyModel(vocab: 29), numLabels: 2, padTokenID: 28, seed: 4)
        XCTAssertThrowsError(try GLUEFinetuner(task: .mnli, model: model, encoder: try GLUEEncoder(codec: codec, maxLength: 16))) {
            XCTAssertEqual("\($0)", "MNLI needs a head of 3 outputs; the model has 2")
        }
    }

    func testSubsampleIsSeededAndKeepsOrder() {
        let a = FinetuneRun.subsample(Array(0..<100), 10, seed: 9)
        XCTAssertEqual(a, FinetuneRun.subsample(Array(0..<100), 10, seed: 9))
        XCTAssertEqual(a.count, 10)
        XCTAssertEqual(a, a.sorted())
        XCTAssertEqual(FinetuneRun.subsample([1, 2, 3], nil, seed: 1), [1, 2, 3])
        XCTAssertEqual(FinetuneRun.subsample([1, 2, 3], 5, seed: 1), [1, 2, 3])
    }
}
