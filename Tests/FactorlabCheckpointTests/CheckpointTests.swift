import FactorlabAutograd
import FactorlabCheckpoint
import FactorlabGPT2
import FactorlabHDF5
import FactorlabOptim
import FactorlabTensor
import FactorlabTestSupport
import FactorlabTraining
import XCTest

final class CheckpointTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("factorlab-ckpt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func smallModel(mlp: String = "monarch:2@1") throws -> GPT2Model {
        var config = GPT2Config(nLayer: 2, nHead: 2, nEmbd: 16, nPositions: 8, vocabSize: 30)
        config.mlp = try GPT2Config.mlpKinds(mlp, layers: 2)
        return try GPT2Model(config, seed: 11)
    }

    /// Takes two optimizer steps so that moments are non-zero.
    func trained(_ model: GPT2Model) throws -> AdamW {
        let opt = AdamW(model.namedParameters, hyper: .init(lr: 1e-2))
        let step = OptimizerStep(optimizer: opt, schedule: LRSchedule(peak: 1e-2, totalSteps: 10, decay: .constant))
        let ids: [Int32] = [1, 2, 3, 4, 5, 6, 7, 8], targets: [Int32] = [2, 3, 4, 5, 6, 7, 8, 9]
        for s in 0..<2 { _ = try step.run(step: s, model: model, microBatches: [TokenBatch(inputs: ids, targets: targets, batch: 1, seqLen: 8)], dropoutKey: nil) }
        return opt
    }

    func testRoundTripOfEveryParameterAndOptimizerTensor() throws {
        let model = try smallModel()
        let opt = try trained(model)
        let progress = TrainingProgress(step: 2, tokensSeen: 16, loaderState: "{\"position\":16}", rngStates: ["dropout": 42],
                                        bestValLoss: 3.25, lastValLoss: 3.5, flops: 1e6, wallSeconds: 1.5)
        let url = dir.appendingPathComponent("ckpt.h5")
        try Checkpoint.save(model: model, optimizer: opt, progress: progress, recipe: "model:\n  preset: nano\n", to: url)
        let c = try Checkpoint.read(url)
        XCTAssertEqual(c.config, model.config)
        XCTAssertEqual(c.progress, progress)
        XCTAssertEqual(c.recipe, "model:\n  preset: nano\n")
        XCTAssertEqual(c.optimizerStep, 2)
        XCTAssertEqual(c.optimizerHyper, opt.hyper)
        for (name, p) in model.namedParameters { XCTAssertEqual(c.parameters[name]?.scalars, p.value.scalars, name) }
        for (i, e) in opt.parameters.enumerated() {
            XCTAssertEqual(c.m[e.name]?.scalars, opt.m[i].scalars, "m \(e.name)")
            XCTAssertEqual(c.v[e.name]?.scalars, opt.v[i].scalars, "v \(e.name)")
        }
        XCTAssertTrue(c.parameters.keys.contains("h.1.mlp.c_fc.monarch.blkdiag1"))
        // Restoring into a fresh model and optimizer gives the same state.
        let (fresh, _) = try Checkpoint.loadModel(url)
        let opt2 = AdamW(fresh.namedParameters, hyper: opt.hyper)
        try Checkpoint.restore(opt2, from: c, file: url.path)
        XCTAssertEqual(opt2.step, 2)
        XCTAssertEqual(opt2.m.map(\.scalars), opt.m.map(\.scalars))
    }

    func testLayoutIsReadableByTheHDF5Tools() throws {
        let url = dir.appendingPathComponent("layout.h5")
        try Checkpoint.save(model: try smallModel(), optimizer: try trained(try smallModel()), to: url)
        let h5ls = Process()
        h5ls.executableURL = URL(fileURLWithPath: "/usr/bin/h5ls")
        h5ls.arguments = ["-r", url.path]
        let pipe = Pipe()
        h5ls.standardOutput = pipe
        try h5ls.run()
        h5ls.waitUntilExit()
        // h5ls pads names into columns; compare with runs of spaces folded to one.
        let listing = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .split(separator: "\n").map { $0.split(separator: " ").joined(separator: " ") }.joined(separator: "\n")
        XCTAssertEqual(h5ls.terminationStatus, 0)
        XCTAssertTrue(listing.contains("/params/h.0.attn.c_attn.weight Dataset {48, 16}"), listing)
        XCTAssertTrue(listing.contains("/params/h.1.mlp.c_fc.monarch.blkdiag1 Dataset {2, 8, 8}"), listing)
        XCTAssertTrue(listing.contains("/optimizer/m/wte.weight Dataset {30, 16}"), listing)
        let file = try HDF5File(readingFrom: url)
        XCTAssertEqual(try file.stringAttribute("orientation", of: "/params/h.0.mlp.c_fc.weight"), "[out, in]")
        XCTAssertEqual(try file.stringAttribute("format"), "factorlab-checkpoint")
        try file.close()
    }

    func testBadFilesGiveClearErrors() throws {
        let url = dir.appendingPathComponent("a.h5")
        try Checkpoint.save(model: try smallModel(), to: url)
        // Another HDF5 file (no format attribute).
        let other = dir.appendingPathComponent("other.h5")
        try HDF5File.writeAtomically(to: other) { try $0.write(Tensor(zeros: [2]), to: "/x") }
        XCTAssertThrowsError(try Checkpoint.read(other)) { e in XCTAssertTrue("\(e)".contains("not a Factorlab checkpoint"), "\(e)") }
        // Not HDF5 at all.
        let text = dir.appendingPathComponent("text.h5")
        try "hello".write(to: text, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Checkpoint.read(text)) { e in XCTAssertTrue("\(e)".contains("\(text.path)"), "\(e)") }
        // A newer format version.
        let newer = dir.appendingPathComponent("newer.h5")
        try HDF5File.writeAtomically(to: newer) { f in
            try f.setAttribute("format", .string("factorlab-checkpoint"))
            try f.setAttribute("format_version", .int64(99))
        }
        XCTAssertThrowsError(try Checkpoint.read(newer)) { e in XCTAssertTrue("\(e)".contains("format version 99 is newer"), "\(e)") }
        // A checkpoint whose tensors do not match its config.
        let mismatched = dir.appendingPathComponent("mismatch.h5")
        let model = try smallModel(mlp: "dense")
        try HDF5File.writeAtomically(to: mismatched) { f in
            try f.setAttribute("format", .string("factorlab-checkpoint"))
            try f.setAttribute("format_version", .int64(1))
            var cfg = model.config
            cfg.nInner = 32
            try f.setAttribute("model_config", .string(cfg.jsonString))
            for (name, p) in model.namedParameters { try f.write(p.value, to: "/params/\(name)") }
        }
        XCTAssertThrowsError(try Checkpoint.read(mismatched)) { e in
            XCTAssertTrue("\(e)".contains("dataset /params/h.0.mlp.c_fc.weight has shape [64, 16], the model config needs [32, 16]"), "\(e)")
        }
        // A truncated file.
        let truncated = dir.appendingPathComponent("trunc.h5")
        let bytes = try Data(contentsOf: url)
        try bytes.prefix(bytes.count / 2).write(to: truncated)
        XCTAssertThrowsError(try Checkpoint.read(truncated)) { e in XCTAssertTrue("\(e)".contains(truncated.path), "\(e)") }
    }

    func testFlippedByteInAParameterIsDetected() throws {
        let model = try smallModel(mlp: "dense")
        // A recognisable value pattern in one parameter so the test can find its bytes.
        let marker = Tensor(shape: model.wte!.weight.shape) { Float($0) * 0.001 + 7 }
        model.wte!.weight.value = marker
        let url = dir.appendingPathComponent("flip.h5")
        try Checkpoint.save(model: model, to: url)
        var bytes = [UInt8](try Data(contentsOf: url))
        let pattern = withUnsafeBytes(of: Float(7.1).bitPattern.littleEndian) { Array($0) }
        guard let at = (0..<(bytes.count - 4)).first(where: { Array(bytes[$0..<($0 + 4)]) == pattern }) else {
            return XCTFail("marker bytes not found")
        }
        bytes[at] ^= 0x01
        try Data(bytes).write(to: url)
        XCTAssertThrowsError(try Checkpoint.read(url)) { e in
            XCTAssertTrue("\(e)".contains("/params/wte.weight"), "the error names the dataset: \(e)")
        }
    }
}
