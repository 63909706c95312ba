import ArgumentParser
import FactorlabEval
import FactorlabGPT2
import FactorlabTensor
import FactorlabCheckpoint
import Foundation

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Continue a prompt with a model (checkpoint, run folder or Hugging Face folder).",
        discussion: "A prompt longer than the model's context is truncated from the left (the most recent tokens are kept) with a warning.")

    @Option(help: "A .h5 checkpoint, a run folder, or a Hugging Face GPT-2 folder.")
    var model: String
    @Option(help: "Text to continue.")
    var prompt: String
    @Option(help: "Tokenizer folder (vocab.json + merges.txt); default: found beside the model.")
    var tokenizer: String?
    @Option(help: "Number of tokens to generate.")
    var maxTokens: Int = 100
    @Option(help: "Sampling temperature; 0 is greedy.")
    var temperature: Float = 0.8
    @Option(help: "Keep the k most likely tokens (0: all).")
    var topK: Int = 40
    @Option(help: "Nucleus sampling threshold (1: off).")
    var topP: Float = 1
    @Option(help: "Random seed.")
    var seed: UInt64 = 0
    @Flag(help: "Print one JSON object on stdout.")
    var json = false

    func validate() throws {
        guard (0...(1 << 20)).contains(maxTokens) else { throw ValidationError("--max-tokens must be between 0 and \(1 << 20), got \(maxTokens)") }
        guard temperature.isFinite && temperature >= 0 && temperature <= 100 else {
            throw ValidationError("--temperature must be between 0 (greedy) and 100, got \(temperature)")
        }
        guard topK >= 0 else { throw ValidationError("--top-k must be 0 (all tokens) or more, got \(topK)") }
        guard topP > 0 && topP <= 1 else { throw ValidationError("--top-p must be in (0, 1], got \(topP)") }
    }

    func run() throws {
        let loaded = try ModelFiles.load(model)
        let tok = try ModelFiles.tokenizer(tokenizer, for: loaded)
        var ids = tok.encode(prompt, allowSpecial: true)
        if ids.isEmpty, let eot = tok.endOfTextID { ids = [eot] }
        var rng = RandomGenerator(seed: seed)
        let start = Date()
        var streamed: [Int32] = []
        var printedBytes = 0
        if !json { FileHandle.standardOutput.write(Data(prompt.utf8)) }
        let out = try loaded.model.generate(prompt: ids, maxNewTokens: maxTokens,
                                            sampling: Sampling(temperature: temperature, topK: topK, topP: topP),
                                            rng: &rng, stopToken: tok.endOfTextID,
                                            onWarning: { Console.warn($0) },
                                            onToken: { id in
                                                guard !json, id != tok.endOfTextID else { return }
                                                streamed.append(id)
                                                // Print whole UTF-8 characters as they complete.
                                                if let bytes = try? tok.decodeBytes(streamed), let text = String(validating: bytes[printedBytes...], as: UTF8.self) {
                                                    FileHandle.standardOutput.write(Data(text.utf8))
                                                    printedBytes = bytes.count
                                                }
                                            })
        let seconds = Date().timeIntervalSince(start)
        let text = try tok.decode(out.filter { $0 != tok.endOfTextID })
        if json {
            try Console.printJSON(["prompt": prompt, "completion": text, "tokens": out.count,
                               "tokens_per_s": Double(out.count) / max(seconds, 1e-9)])
        } else {
            print("")
            Console.note(String(format: "%d tokens in %.2f s (%.1f tokens/s)", out.count, seconds, Double(out.count) / max(seconds, 1e-9)))
        }
    }
}
