import ArgumentParser
import FactorlabData
import FactorlabEval
import Foundation

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate a model zero-shot: perplexity (sliding window), LAMBADA last-word accuracy, CBT cloze.")

    @Option(help: "A .h5 checkpoint, a run folder, or a Hugging Face GPT-2 folder.")
    var model: String
    @Option(help: "Task: perplexity, lambada (JSONL with a text field) or cbt (CBT text format or JSONL).")
    var task: String = "perplexity"
    @Option(help: "Evaluation data (a text file for perplexity).")
    var data: String
    @Option(help: "Sliding-window stride in tokens (default and maximum: the context length - 1, windows overlapping by one token).")
    var stride: Int?
    @Option(help: "Tokenizer folder; default: found beside the model.")
    var tokenizer: String?
    @Flag(help: "Print one JSON object of metrics on stdout.")
    var json = false

    func run() throws {
        let loaded = try ModelFiles.load(model)
        let tok = try ModelFiles.tokenizer(tokenizer, for: loaded)
        switch task {
        case "perplexity":
            guard let bytes = FileManager.default.contents(atPath: data) else { throw ValidationError("cannot read --data \(data)") }
            let text = TextNormalizer.normalizedString(bytes)
            let ids = tok.encode(text)
            let r = try Perplexity.evaluate(model: loaded.model, ids: ids, bytes: text.utf8.count, stride: stride) { done, total in
                Console.progress("perplexity: \(done)/\(total) tokens")
            }
            Console.endProgress()
            let metrics: [String: Any] = ["task": "perplexity", "model": loaded.source.path, "tokens": r.tokens, "bytes": r.bytes,
                                          "windows": r.windows, "nll_per_token": r.nllPerToken, "perplexity": r.perplexity,
                                          "bits_per_byte": r.bitsPerByte, "byte_perplexity": r.bytePerplexity,
                                          "stride": min(stride ?? loaded.model.config.nPositions, loaded.model.config.nPositions - 1)]
            if json { Console.printJSON(metrics) } else {
                print(String(format: "perplexity %.4f (%.4f nats/token over %d tokens, %.4f bits/byte, %d windows)",
                             r.perplexity, r.nllPerToken, r.tokens, r.bitsPerByte, r.windows))
            }
        case "lambada":
            let texts = try Lambada.load(URL(fileURLWithPath: data))
            let r = try Lambada.evaluate(model: loaded.model, tokenizer: tok, texts: texts) { Console.progress("lambada: \($0)/\($1)") }
            Console.endProgress()
            let metrics: [String: Any] = ["task": "lambada", "model": loaded.source.path, "examples": r.examples,
                                          "accuracy": r.accuracy, "target_perplexity": r.perplexity, "target_tokens": r.targetTokens]
            if json { Console.printJSON(metrics) } else {
                print(String(format: "LAMBADA accuracy %.4f (%d/%d), last-word perplexity %.3f", r.accuracy, r.correct, r.examples, r.perplexity))
            }
        case "cbt":
            let examples = try ClozeTest.load(URL(fileURLWithPath: data))
            let r = try ClozeTest.evaluate(model: loaded.model, tokenizer: tok, examples: examples) { Console.progress("cbt: \($0)/\($1)") }
            Console.endProgress()
            let metrics: [String: Any] = ["task": "cbt", "model": loaded.source.path, "examples": r.examples, "accuracy": r.accuracy]
            if json { Console.printJSON(metrics) } else { print(String(format: "CBT accuracy %.4f (%d/%d)", r.accuracy, r.correct, r.examples)) }
        default:
            throw ValidationError("unknown task '\(task)'; available: perplexity, lambada, cbt")
        }
    }
}
