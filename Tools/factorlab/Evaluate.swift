import ArgumentParser
import FactorlabCheckpoint
import FactorlabData
import FactorlabEval
import FactorlabFinetune
import FactorlabTasks
import FactorlabTraining
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
        --suite SUITE.yaml --models A B C --baseline A runs every task of the suite for every model and prints one table: each \
        metric, each model, the difference from the baseline with a 95% paired-bootstrap interval over the same examples, \
        parameters and latency per token. A model may be written LABEL=PATH.
        """)

    @Option(help: "A .h5 checkpoint, a run folder, or a Hugging Face GPT-2 folder.")
    var model: String?
    @Option(help: "A suite file (YAML: tasks with their data and options); use with --models and --baseline.")
    var suite: String?
    @Option(parsing: .upToNextOption, help: "Suite: the models to compare (paths, or LABEL=PATH).")
    var models: [String] = []
    @Option(help: "Suite: the model (label or path) the others are compared with (default: the first).")
    var baseline: String?
    @Flag(help: "Suite: print the table as Markdown (the default is the same table as text).")
    var markdown = false
    @Option(help: "Task: perplexity, lambada (JSONL with a text field), cbt (CBT text format or JSONL), glue-TASK, coqa, coqa-zeroshot, cnndm, wmt14-en-fr or nq.")
    var task: String = "perplexity"
    @Option(help: "Evaluation data (a text file for perplexity).")
    var data: String?
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
        if let suite { return try runSuite(suite) }
        guard let model else { throw ValidationError("--model is required (or --suite with --models)") }
        guard let data else { throw ValidationError("--data is required") }
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
                                          "accuracy": r.accuracy, "target_perplexity": r.perplexity, "target_tokens": r.targetTokens,
                                          "harness_perplexity": r.harnessPerplexity,
                                          "per_example": r.perExample.map { ["log_likelihood": -$0.nll, "tokens": $0.tokens, "greedy": $0.correct] as [String: Any] }]
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
        guard let model, let data else { throw ValidationError("--model and --data are required") }
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

extension Evaluate {
    /// `--suite`: every task for every model, then the table against the baseline.
    func runSuite(_ path: String) throws {
        guard model == nil && data == nil else { throw ValidationError("--suite takes --models, not --model/--data") }
        guard !models.isEmpty else { throw ValidationError("--suite needs --models A B ...") }
        let spec = try EvalSuite.load(URL(fileURLWithPath: path))
        let entries = models.map { m -> (label: String, path: String) in
            if let eq = m.firstIndex(of: "="), !FileManager.default.fileExists(atPath: m) {
                return (String(m[..<eq]), String(m[m.index(after: eq)...]))
            }
            return (URL(fileURLWithPath: m).lastPathComponent, m)
        }
        let labels = entries.map(\.label)
        guard Set(labels).count == labels.count else { throw ValidationError("--models: two models have the label \(labels); name them LABEL=PATH") }
        let base = baseline ?? entries[0].label
        guard let baseIndex = entries.firstIndex(where: { $0.label == base || $0.path == base }) else {
            throw ValidationError("--baseline \(base) is none of --models (\(labels.joined(separator: ", ")))")
        }
        var rows: [SuiteTable.Model] = []
        for (label, path) in entries {
            let loaded = try ModelFiles.load(path)
            let tok = try ModelFiles.tokenizer(tokenizer, for: loaded)
            var cells: [String: SuiteTable.Cell] = [:]
            for t in spec.tasks {
                if t.task.hasPrefix("glue-") {
                    cells[t.name] = try glueCell(t, path: path, loaded: loaded)
                    continue
                }
                let samples = try EvalSuite.score(t, model: loaded.model, tokenizer: tok, batch: batch) {
                    Console.progress("\(label) \(t.name): \($0)/\($1)")
                }
                cells[t.name] = .scored(samples)
            }
            Console.progress("\(label): latency")
            let latency = try InferenceMeasurement.measure(loaded.model).latencyMsPerToken
            Console.endProgress()
            rows.append(SuiteTable.Model(label: label, parameters: loaded.model.parameterCount, latencyMs: latency, cells: cells))
        }
        let table = SuiteTable(suite: spec, models: rows, baseline: baseIndex)
        if json { return try Console.printJSON(table.json) }
        print(markdown ? table.markdown : table.text)
    }

    /// A GLUE task: the model's finetuned head scores dev; a model without that head says so.
    func glueCell(_ t: EvalSuite.Task, path: String, loaded: ModelFiles.Loaded) throws -> SuiteTable.Cell {
        guard let g = GLUETask(rawValue: String(t.task.dropFirst(5))) else {
            throw ValidationError("\(t.name): unknown GLUE task \(t.task)")
        }
        guard loaded.model.config.numLabels == g.outputCount else { return .unavailable("no \(g.name) head") }
        let recipe = try FinetuneRecipe.evaluation(task: t.task, model: path, data: t.data, tokenizer: tokenizer,
                                                   maxExamples: t.maxExamples, maxLength: maxLength, outputDir: out)
        let result = try FinetuneRun.run(recipe, evalOnly: true, hooks: .init(progress: { Console.progress($0) }, log: { _ in }))
        return .scored((result.dev ?? [:]).keys.sorted().map { MetricSample(name: $0, value: result.dev![$0]!, higherIsBetter: true) })
    }
}
