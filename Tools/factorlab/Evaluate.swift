import ArgumentParser
import FactorlabCheckpoint
import FactorlabData
import FactorlabEval
import FactorlabFinetune
import FactorlabTasks
import Foundation

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate a model: perplexity (sliding window), LAMBADA, CBT cloze, GLUE dev, CoQA (finetuned or zero-shot), CNN/DM, WMT14 En-Fr, NQ.",
        discussion: """
        glue-TASK (cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli) scores the dev split with the model's \
        sequence-classification head (from factorlab finetune); a model without one gets a fresh, untrained \
        head and chance-level scores, with a warning. --data is the GLUE root (SST-2/dev.tsv, ...), the task's \
        folder, or a dev TSV file. coqa answers every dev question generatively (greedy, with the conversation \
        history) and reports the official EM and F1; --data is coqa-dev-v1.0.json or its folder.
        The GPT-2 paper's generation tasks on an unfinetuned model (--shots K examples from the start of the data): \
        coqa-zeroshot (coqa-dev-v1.0.json; F1), cnndm (.story files, or CSV/JSONL with article and highlights; \
        TL;DR:, top-k 2, 3 sentences; ROUGE), wmt14-en-fr (a folder with newstest2014 SGM or plain .en/.fr files; BLEU), \
        nq (NQ-open JSONL; exact match).
        """)

    @Option(help: "A .h5 checkpoint, a run folder, or a Hugging Face GPT-2 folder.")
    var model: String
    @Option(help: "Task: perplexity, lambada (JSONL with a text field), cbt (CBT text format or JSONL), glue-TASK, coqa, coqa-zeroshot, cnndm, wmt14-en-fr or nq.")
    var task: String = "perplexity"
    @Option(help: "Evaluation data (a text file for perplexity).")
    var data: String
    @Option(help: "Sliding-window stride in tokens (default and maximum: the context length - 1, windows overlapping by one token).")
    var stride: Int?
    @Option(help: "Tokenizer folder; default: found beside the model.")
    var tokenizer: String?
    @Flag(help: "Zero every MLP's output (c_proj weights and bias) before evaluating: the reference of normalized projection damage, (NLL_projected - NLL_dense) / (NLL_ablated - NLL_dense).")
    var ablateMlp = false
    @Option(help: "GLUE/CoQA: score at most this many dev examples (a seeded subset).")
    var maxExamples: Int?
    @Option(help: "GLUE/CoQA: longest input in tokens (default 128, at most the model's context).")
    var maxLength: Int?
    @Option(help: "CoQA: folder for the predictions file (default Checkpoints/eval/coqa).")
    var out: String?
    @Option(help: "Generation tasks: examples in the prompt, taken from the start of the data (default 0).")
    var shots: Int = 0
    @Option(help: "Generation tasks: rows generated together (default 8).")
    var batch: Int = 8
    @Flag(help: "Print one JSON object of metrics on stdout.")
    var json = false

    func run() throws {
        if task.hasPrefix("glue-") || task == "coqa" {
            guard !ablateMlp else { throw ValidationError("--ablate-mlp applies to perplexity, lambada and cbt") }
            return try runTask()
        }
        let loaded = try ModelFiles.load(model)
        let tok = try ModelFiles.tokenizer(tokenizer, for: loaded)
        if ablateMlp { try loaded.model.ablateMLP() }
        if let oneShot = OneShot.Task(rawValue: task) {
            guard (1...256).contains(batch) else { throw ValidationError("--batch must be between 1 and 256, got \(batch)") }
            let examples = try OneShot.examples(oneShot, data: URL(fileURLWithPath: data), shots: shots, maxExamples: maxExamples)
            let r = try OneShot.run(oneShot, model: loaded.model, tokenizer: tok, examples: examples, shots: shots, batch: batch) {
                Console.progress("\(task): \($0)/\($1) examples")
            }
            Console.endProgress()
            if json {
                var obj: [String: Any] = ["task": task, "model": loaded.source.path, "shots": shots, "examples": r.examples,
                                          "sequences_per_s": r.sequencesPerSecond, "predictions": r.predictions, "per_example": r.perExample]
                for (k, v) in r.metrics { obj[k] = v }
                try Console.printJSON(obj)
            } else {
                print("\(task) (\(shots)-shot, \(r.examples) examples, \(String(format: "%.1f", r.sequencesPerSecond)) sequences/s): "
                      + r.metrics.keys.sorted().map { "\($0) \(String(format: "%.2f", r.metrics[$0]!))" }.joined(separator: ", "))
            }
            return
        }
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
                                          "words": PerplexityResult.harnessWordCount(text),
                                          "word_perplexity": r.wordPerplexity(words: PerplexityResult.harnessWordCount(text)),
                                          "stride": min(stride ?? loaded.model.config.nPositions, loaded.model.config.nPositions - 1)]
            if json { try Console.printJSON(metrics) } else {
                print(String(format: "perplexity %.4f (%.4f nats/token over %d tokens, %.4f bits/byte, word perplexity %.4f, %d windows)",
                             r.perplexity, r.nllPerToken, r.tokens, r.bitsPerByte,
                             r.wordPerplexity(words: PerplexityResult.harnessWordCount(text)), r.windows))
            }
        case "lambada":
            let texts = try Lambada.load(URL(fileURLWithPath: data))
            let r = try Lambada.evaluate(model: loaded.model, tokenizer: tok, texts: texts) { Console.progress("lambada: \($0)/\($1)") }
            Console.endProgress()
            let metrics: [String: Any] = ["task": "lambada", "model": loaded.source.path, "examples": r.examples,
                                          "accuracy": r.accuracy, "target_perplexity": r.perplexity, "target_tokens": r.targetTokens]
            if json { try Console.printJSON(metrics) } else {
                print(String(format: "LAMBADA accuracy %.4f (%d/%d), last-word perplexity %.3f", r.accuracy, r.correct, r.examples, r.perplexity))
            }
        case "cbt":
            let examples = try ClozeTest.load(URL(fileURLWithPath: data))
            let r = try ClozeTest.evaluate(model: loaded.model, tokenizer: tok, examples: examples) { Console.progress("cbt: \($0)/\($1)") }
            Console.endProgress()
            let metrics: [String: Any] = ["task": "cbt", "model": loaded.source.path, "examples": r.examples, "accuracy": r.accuracy]
            if json { try Console.printJSON(metrics) } else { print(String(format: "CBT accuracy %.4f (%d/%d)", r.accuracy, r.correct, r.examples)) }
        default:
            throw ValidationError("unknown task '\(task)'; available: perplexity, lambada, cbt, glue-TASK (e.g. glue-sst2), coqa, coqa-zeroshot, cnndm, wmt14-en-fr, nq")
        }
    }

    /// GLUE and CoQA through the finetuning code's evaluation (no training).
    func runTask() throws {
        let recipe: FinetuneRecipe
        do {
            recipe = try FinetuneRecipe.evaluation(task: task, model: model, data: data, tokenizer: tokenizer, maxExamples: maxExamples,
                                                   maxLength: maxLength, outputDir: out)
        } catch let e as FinetuneError { throw ValidationError("\(e)") }
        let result = try FinetuneRun.run(recipe, evalOnly: true, hooks: .init(progress: { Console.progress($0) }, log: { Console.note($0) }))
        Console.endProgress()
        if result.head?.hasPrefix("fresh") == true {
            Console.note("warning: \(model) has no \(task) head; the scores are those of an untrained head (chance level). Finetune first: factorlab finetune Recipes/\(task).yaml --init-from \(model)")
        }
        if json { return try Console.printRecord(result) }
        if let dev = result.dev {
            print("\(task) dev: " + dev.keys.sorted().map { "\($0) \(String(format: "%.4f", dev[$0]!))" }.joined(separator: ", "))
        } else {
            print(String(format: "CoQA dev: EM %.2f, F1 %.2f over %d stories", result.devEM ?? .nan, result.devF1 ?? .nan, result.devStories ?? 0))
        }
    }
}
