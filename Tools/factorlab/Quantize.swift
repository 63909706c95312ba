import ArgumentParser
import FactorlabCheckpoint
import FactorlabGPT2
import FactorlabTensor
import Foundation

struct Quantize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Store a model's weights in bf16 or int8 (group-wise scales) for inference.",
        discussion: """
        Packs every weight of every linear layer and the token embedding (biases, LayerNorms and the position embedding stay
        float32) and writes a checkpoint that eval and generate read; training, finetuning and factorize refuse it.
        int8: groups of 32 along each row, d = max|w| / 127, q = round(w / d) (ties away from zero), 1.125 bytes per weight.
        bf16: round to nearest even, 2 bytes per weight. Example: quantize --model run/best.h5 --weights int8 --out run/int8.h5
        """)

    @Option(help: "A .h5 checkpoint, run folder or Hugging Face folder (float32).")
    var model: String
    @Option(help: "bf16 or int8.")
    var weights: String
    @Option(help: "Output checkpoint (.h5); never the source file.")
    var out: String
    @Flag(help: "Print one JSON object of results on stdout.")
    var json = false

    func run() throws {
        guard let format = WeightFormat(rawValue: weights), format != .float32 else {
            throw ValidationError("--weights must be bf16 or int8, got '\(weights)'")
        }
        let loaded = try ModelFiles.load(model)
        let target = URL(fileURLWithPath: out)
        guard target.standardizedFileURL.resolvingSymlinksInPath() != loaded.source.standardizedFileURL.resolvingSymlinksInPath() else {
            throw ValidationError("--out \(out) is the source model itself; write the quantized model to another file")
        }
        let record = try loaded.model.quantize(format)
        try Checkpoint.save(model: loaded.model, progress: loaded.checkpoint?.progress, projection: loaded.checkpoint?.projection,
                            tokenizer: loaded.checkpoint?.tokenizerFingerprint, quantization: record.json, to: target)
        if let tok = loaded.tokenizerDirectory {
            try ModelFiles.copyTokenizer(from: tok, to: target.deletingLastPathComponent().appendingPathComponent("tokenizer"))
        }
        if json { try Console.printRecord(record); return }
        print("wrote \(out): \(format) weights, \(record.weightBytes) bytes of parameters (float32: \(record.float32Bytes), "
              + String(format: "%.2fx smaller)", Double(record.float32Bytes) / Double(max(record.weightBytes, 1))))
        for t in record.tensors {
            print(String(format: "  %@  relative error %.2e", t.name as NSString, t.relativeError))
        }
        if !record.folded.isEmpty { print("  folded btt-norm scales into the cores of \(record.folded.joined(separator: ", "))") }
    }
}
