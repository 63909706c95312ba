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

    /// A quantized model (int8 and bf16) saves its packed tensors under /packed and /scales and
    /// reads back bit for bit; the float tensors stay in /params; tampered packed data is refused
    /// with the dataset named; training from it is refused.
    func testQuantizedCheckpointsRoundTripAndAreInferenceOnly() throws {
        for format in [WeightFormat.int8, .bf16] {
            let model = try smallModel()
            let record = try model.quantize(format)
            let url = dir.appendingPathComponent("\(format).h5")
            try Checkpoint.save(model: model, quantization: record.json, to: url)
            let c = try Checkpoint.read(url)
            XCTAssertEqual(c.weightFormat, format)
            XCTAssertEqual(c.quantization, record.json)
            for (name, p) in model.namedParameters {
                let q = try XCTUnwrap(c.model.namedParameters.first { $0.0 == name }?.1, name)
                XCTAssertEqual(q.value.scalars, p.value.scalars, name)
                XCTAssertEqual(q.packed?.int8Values, p.packed?.int8Values, name)
                XCTAssertEqual(q.packed?.scales, p.packed?.scales, name)
                XCTAssertEqual(q.packed?.bf16Bits, p.packed?.bf16Bits, name)
                XCTAssertEqual(q.packed == nil, !GPT2Model.isPackable(name, shape: p.shape), name)
            }
            let file = try HDF5File(readingFrom: url)
            XCTAssertTrue(try file.isDataset("/packed/h.0.mlp.c_fc.weight"))
            XCTAssertEqual(try file.elementType(of: "/packed/h.0.mlp.c_fc.weight"), format == .int8 ? .int8 : .uint16)
            XCTAssertFalse(try file.isDataset("/params/h.0.mlp.c_fc.weight"))
            XCTAssertTrue(try file.isDataset("/params/h.0.mlp.c_fc.bias"))
            try file.close()
            let loaded = try ModelFiles.load(url.path)
            XCTAssertThrowsError(try loaded.requireFloatWeights(for: "training")) {
                XCTAssertTrue("\($0)".contains("quantized models are for inference only"), "\($0)")
            }
        }
        // A negative scale in an otherwise valid file: the quantized checkpoint copied dataset by
        // dataset with one scale changed.
        let model = try smallModel()
        try model.quantize(.int8)
        let good = dir.appendingPathComponent("good.h5"), url = dir.appendingPathComponent("tampered.h5")
        try Checkpoint.save(model: model, to: good)
        let source = try HDF5File(readingFrom: good), copy = try HDF5File(creating: url)
        for a in ["format", "model_config", "weights"] { try copy.setAttribute(a, .string(try source.stringAttribute(a))) }
        try copy.setAttribute("format_version", .int64(try source.int64Attribute("format_version")))
        for g in ["/params", "/packed", "/scales"] { try copy.createGroup(g) }
        for ds in try source.datasetPaths(under: "/") {
            let shape = try source.shape(of: ds)
            switch try source.elementType(of: ds) {
            case .int8: try copy.write(try source.read(ds, as: Int8.self), shape: shape, to: ds)
            case .float32:
                var values = try source.read(ds, as: Float.self)
                if ds == "/scales/h.0.attn.c_proj.weight" { values[3] = -1 }
                try copy.write(values, shape: shape, to: ds)
            default: XCTFail("unexpected dataset type in \(ds)")
            }
            if ds.hasPrefix("/packed/") {
                try copy.setAttribute("format", .string(try source.stringAttribute("format", of: ds)), on: ds)
                try copy.setAttribute("row_length", .int64(try source.int64Attribute("row_length", of: ds)), on: ds)
            }
        }
        try source.close()
        try copy.close()
        XCTAssertNoThrow(try Checkpoint.read(good))
        XCTAssertThrowsError(try Checkpoint.read(url)) {
            XCTAssertTrue("\($0)".contains("/packed/h.0.attn.c_proj.weight") && "\($0)".contains("expected a finite value >= 0"), "\($0)")
        }
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
