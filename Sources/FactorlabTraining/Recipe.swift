import FactorlabCheckpoint
import FactorlabGPT2
import FactorlabLayers
import FactorlabOptim
import Foundation

/// A complete description of a pretraining run, read from a YAML file in `Recipes/`.
///
/// ```yaml
/// name: shakespeare-dense
/// seed: 1337
/// model: {preset: tiny, linear: {mlp: monarch:4, attn: monarch:4@2-3, head: tied}, dropout: 0.0}
/// data: {paths: [Recipes/corpora/shakespeare], split: tail, val_fraction: 0.05, loader: shuffled}
/// tokenizer: {path: Checkpoints/tokenizers/shakespeare-4096, vocab_size: 4096}
/// optimizer: {lr: 1e-3, weight_decay: 0.1, beta2: 0.95, no_decay: [.bias, ln_, wte, wpe]}
/// schedule: {kind: cosine, warmup_steps: 50, min_lr: 1e-4}
/// training: {batch_size: 8, seq_len: 128, grad_accum: 1, max_steps: 600, grad_clip: 1.0}
/// eval: {interval: 100, batches: 10, sample_tokens: 64, prompt: "ROMEO:"}
/// checkpoint: {interval: 200, keep_last: 2, keep_best: true}
/// ```
/// Relative paths are resolved against the current directory. Every key can be overridden with
/// `--set section.key=value`; unknown keys and wrong types are errors that name the key.
public struct Recipe: Sendable {
    public struct Model: Sendable {
        public var preset: String?
        public var nLayer: Int?, nHead: Int?, nEmbd: Int?, nPositions: Int?, nInner: Int?
        /// Per-layer MLP kinds (`dense`, `monarch:4`, `monarch:4@6-11`, ...): both MLP projections.
        public var mlp = "dense"
        /// Kinds per site (`model.linear`), in the order written: a site group (`mlp`, `attn`,
        /// `mlp.c_fc`, `mlp.c_proj`, `attn.c_attn`, `attn.c_proj`) or `head`, and its value
        /// (``LinearPlan``). Applied after `mlp`.
        public var linear: [(site: String, spec: String)] = []
        public var dropout: Float = 0
        /// A checkpoint (.h5) or Hugging Face folder to start from instead of random weights.
        public var initFrom: String?
    }
    public struct Data: Sendable {
        public var paths: [String] = []
        public var jsonlField = "text"
        /// How validation text is held out.
        public enum Split: String, CaseIterable, Sendable {
            /// The last val_fraction of the token stream.
            case tail
            /// Every k-th document.
            case documents
        }
        /// The order training windows are read in.
        public enum Loader: String, CaseIterable, Sendable {
            /// In order, as llm.c does.
            case sequential
            /// A seeded permutation of windows per epoch.
            case shuffled
        }
        public var split = Split.tail
        public var valFraction: Double = 0.1
        public var valEvery: Int = 10
        /// `sequential` (llm.c) or `shuffled` (seeded permutation of windows per epoch).
        public var loader = Loader.shuffled
    }
    public struct Tokenizer: Sendable {
        /// A folder with vocab.json and merges.txt; trained from the training data if missing.
        public var path: String?
        /// Vocabulary size when training one.
        public var vocabSize = 4096
    }
    public struct Training: Sendable {
        public var batchSize = 8
        public var seqLen = 128
        public var gradAccum = 1
        /// Optimizer steps. 0 evaluates the initial model only (the step-0 validation loss is
        /// recorded): the zero-shot arm of an experiment, e.g. a projected model.
        public var maxSteps: Int?
        /// Alternatively, a budget of training tokens (steps = budget / tokens per step).
        public var tokenBudget: Int?
        /// Or a budget of training FLOPs (the model's training FLOPs per token x tokens per step
        /// gives the steps), so that models of different cost train with equal compute. Compute
        /// is cumulative: a run started from a checkpoint (init_from) spends only what is left.
        /// Precedence when several are set: max_steps, token_budget, flop_budget.
        public var flopBudget: Double?
        public var gradClip: Double? = 1.0
    }
    public struct Eval: Sendable {
        public var interval = 100
        public var batches = 20
        public var sampleTokens = 64
        /// Measure the finished model's inference cost and record it in run.json (`inference`).
        public var measureInference = true
        public var prompt = "\n"
    }
    public struct Checkpointing: Sendable {
        /// Output folder; default Checkpoints/<name>.
        public var dir: String?
        public var interval = 500
        public var keepLast = 2
        /// Steps whose checkpoints are also written and never pruned (e.g. log-spaced steps of a
        /// long run, to study the model along training).
        public var keepSteps: [Int] = []
        public var keepBest = true
    }

    public var name: String
    /// An experiment-arm label recorded in run.json (e.g. "scratch", "projected").
    public var arm: String?
    public var seed: UInt64 = 1337
    public var model = Model()
    public var data = Data()
    public var tokenizer = Tokenizer()
    public var optimizer = AdamW.Hyperparameters(lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1)
    /// Learning-rate multipliers of structured factors (optimizer.structured_lr: none or fan-in;
    /// see ``StructuredLRRule``), recorded in run.json.
    public var structuredLR = StructuredLRRule.none
    /// Parameters whose name contains any of these get no weight decay (optimizer.no_decay).
    public var noDecay = [".bias", "ln_", "wte", "wpe"]
    public var schedule = LRSchedule(peak: 1e-3, warmupSteps: 100, totalSteps: 1000, decay: .cosine, floor: 1e-4)
    public var training = Training()
    public var eval = Eval()
    public var checkpoint = Checkpointing()
    /// The YAML text after overrides were applied, stored in checkpoints.
    public var text: String = ""

    public init(name: String) { self.name = name }

    /// Reads a recipe file, applying `--set` overrides.
    public static func load(_ url: URL, overrides: [String] = []) throws -> Recipe {
        let text = try RecipeText.read(url)
        return try parse(text, file: url.path, overrides: overrides, defaultName: url.deletingPathExtension().lastPathComponent)
    }

    public static func parse(_ text: String, file: String, overrides: [String] = [], defaultName: String = "run") throws -> Recipe {
        let root = try RecipeReader.parse(text, file: file, overrides: overrides)
        var r = Recipe(name: try root.string("name") ?? defaultName)
        if let s = try root.int("seed") { r.seed = UInt64(truncatingIfNeeded: s) }
        r.arm = try root.string("arm")
        if let m = try root.section("model") {
            r.model.preset = try m.string("preset")
            r.model.nLayer = try m.int("n_layer"); r.model.nHead = try m.int("n_head"); r.model.nEmbd = try m.int("n_embd")
            r.model.nPositions = try m.int("n_positions"); r.model.nInner = try m.int("n_inner")
            r.model.mlp = try m.string("mlp") ?? r.model.mlp
            r.model.linear = try m.linearEntries("linear")
            r.model.dropout = Float(try m.double("dropout") ?? 0)
            r.model.initFrom = try m.string("init_from")
            try m.finish(allowed: ["preset", "n_layer", "n_head", "n_embd", "n_positions", "n_inner", "mlp", "linear", "dropout", "init_from"])
        }
        if let d = try root.section("data") {
            r.data.paths = try d.strings("paths") ?? []
            r.data.jsonlField = try d.string("jsonl_field") ?? r.data.jsonlField
            r.data.split = try d.choice("split", Data.Split.self) ?? r.data.split
            r.data.valFraction = try d.double("val_fraction") ?? r.data.valFraction
            r.data.valEvery = try d.int("val_every") ?? r.data.valEvery
            r.data.loader = try d.choice("loader", Data.Loader.self) ?? r.data.loader
            try d.finish(allowed: ["paths", "jsonl_field", "split", "val_fraction", "val_every", "loader"])
        }
        if let t = try root.section("tokenizer") {
            r.tokenizer.path = try t.string("path")
            r.tokenizer.vocabSize = try t.int("vocab_size") ?? r.tokenizer.vocabSize
            try t.finish(allowed: ["path", "vocab_size"])
        }
        if let o = try root.section("optimizer") {
            if let v = try o.double("lr") { r.optimizer.lr = Float(v) }
            if let v = try o.double("beta1") { r.optimizer.beta1 = Float(v) }
            if let v = try o.double("beta2") { r.optimizer.beta2 = Float(v) }
            if let v = try o.double("eps") { r.optimizer.eps = Float(v) }
            if let v = try o.double("weight_decay") { r.optimizer.weightDecay = Float(v) }
            r.noDecay = try o.strings("no_decay") ?? r.noDecay
            r.structuredLR = try o.choice("structured_lr", StructuredLRRule.self) ?? r.structuredLR
            try o.finish(allowed: ["lr", "beta1", "beta2", "eps", "weight_decay", "no_decay", "structured_lr"])
        }
        r.schedule.peak = r.optimizer.lr
        if let s = try root.section("schedule") {
            r.schedule.decay = try s.choice("kind", LRSchedule.Decay.self) ?? r.schedule.decay
            r.schedule.warmupSteps = try s.int("warmup_steps") ?? r.schedule.warmupSteps
            if let v = try s.double("min_lr") { r.schedule.floor = Float(v) }
            try s.finish(allowed: ["kind", "warmup_steps", "min_lr"])
        }
        if let t = try root.section("training") {
            r.training.batchSize = try t.int("batch_size") ?? r.training.batchSize
            r.training.seqLen = try t.int("seq_len") ?? r.training.seqLen
            r.training.gradAccum = try t.int("grad_accum") ?? r.training.gradAccum
            r.training.maxSteps = try t.int("max_steps")
            r.training.tokenBudget = try t.int("token_budget")
            r.training.flopBudget = try t.double("flop_budget")
            r.training.gradClip = try t.double("grad_clip") ?? r.training.gradClip
            try t.finish(allowed: ["batch_size", "seq_len", "grad_accum", "max_steps", "token_budget", "flop_budget", "grad_clip"])
        }
        if let e = try root.section("eval") {
            r.eval.interval = try e.int("interval") ?? r.eval.interval
            r.eval.batches = try e.int("batches") ?? r.eval.batches
            r.eval.sampleTokens = try e.int("sample_tokens") ?? r.eval.sampleTokens
            r.eval.measureInference = try e.bool("measure_inference") ?? r.eval.measureInference
            r.eval.prompt = try e.string("prompt") ?? r.eval.prompt
            try e.finish(allowed: ["interval", "batches", "sample_tokens", "prompt", "measure_inference"])
        }
        if let c = try root.section("checkpoint") {
            r.checkpoint.dir = try c.string("dir")
            r.checkpoint.interval = try c.int("interval") ?? r.checkpoint.interval
            r.checkpoint.keepLast = try c.int("keep_last") ?? r.checkpoint.keepLast
            r.checkpoint.keepBest = try c.bool("keep_best") ?? r.checkpoint.keepBest
            if let steps = try c.strings("keep_steps") {
                r.checkpoint.keepSteps = try steps.map { text in
                    guard let n = Int(text), n >= 1, n <= Recipe.maxSteps else {
                        throw TrainingError.recipe("\(file): checkpoint.keep_steps must list step numbers from 1 to \(Recipe.maxSteps), got '\(text.prefix(20))'")
                    }
                    return n
                }
            }
            try c.finish(allowed: ["dir", "interval", "keep_last", "keep_best", "keep_steps"])
        }
        try root.finish(allowed: ["name", "arm", "seed", "model", "data", "tokenizer", "optimizer", "schedule", "training", "eval", "checkpoint"])
        r.text = RecipeText.recording(text, overrides: overrides)
        try r.validate(file: file)
        return r
    }

    /// Range checks that name the key.
    /// The largest per-rank batch, micro-batch count and token count per step a recipe may ask
    /// for: far above what fits this machine, small enough that no product of them overflows.
    static let maxBatch = 1 << 16, maxGradAccum = 1 << 16, maxTokensPerStep = 1 << 40, maxSteps = 1 << 40

    func validate(file: String) throws {
        func check(_ ok: Bool, _ key: String, _ what: String) throws {
            if !ok { throw TrainingError.recipe("\(file): \(key) \(what)") }
        }
        func finite(_ v: Double?, _ key: String, _ range: ClosedRange<Double>, _ what: String) throws {
            guard let v else { return }
            try check(v.isFinite && range.contains(v), key, "must be \(what), got \(v)")
        }
        try check(RunName.isValid(name), "name", "must be 1-100 characters of letters, digits, '.', '_' and '-' (it names the run folder), got '\(name.prefix(40))'")
        if let arm { try check(RunName.isValid(arm), "arm", "must be 1-100 characters of letters, digits, '.', '_' and '-'") }
        try check(training.batchSize >= 1 && training.batchSize <= Recipe.maxBatch, "training.batch_size", "must be between 1 and \(Recipe.maxBatch)")
        try check(training.seqLen >= 2 && training.seqLen <= GPT2Config.limits[3].max, "training.seq_len", "must be between 2 and \(GPT2Config.limits[3].max)")
        try check(training.gradAccum >= 1 && training.gradAccum <= Recipe.maxGradAccum, "training.grad_accum", "must be between 1 and \(Recipe.maxGradAccum)")
        try check(training.batchSize * training.seqLen * training.gradAccum <= Recipe.maxTokensPerStep, "training.batch_size",
                  "x seq_len x grad_accum must be at most \(Recipe.maxTokensPerStep) tokens per step")
        try check(training.maxSteps != nil || training.tokenBudget != nil || training.flopBudget != nil,
                  "training.max_steps", "(or training.token_budget or training.flop_budget) must be set")
        try finite(training.flopBudget, "training.flop_budget", 1...1e30, "positive and finite (at most 1e30 FLOPs)")
        try check((training.maxSteps ?? 0) >= 0 && (training.maxSteps ?? 0) <= Recipe.maxSteps, "training.max_steps",
                  "must be between 0 (only evaluate the initial model) and \(Recipe.maxSteps)")
        try check((training.tokenBudget ?? 1) >= 1, "training.token_budget", "must be at least 1 token")
        try finite(training.gradClip, "training.grad_clip", Double.leastNonzeroMagnitude...1e30, "a positive finite norm")
        try finite(Double(optimizer.lr), "optimizer.lr", Double.leastNonzeroMagnitude...Double(Float.greatestFiniteMagnitude), "positive and finite")
        try finite(Double(optimizer.beta1), "optimizer.beta1", 0...0.999_999_9, "in [0, 1)")
        try finite(Double(optimizer.beta2), "optimizer.beta2", 0...0.999_999_9, "in [0, 1)")
        try finite(Double(optimizer.eps), "optimizer.eps", Double.leastNonzeroMagnitude...1, "positive and at most 1")
        try finite(Double(optimizer.weightDecay), "optimizer.weight_decay", 0...1, "in [0, 1]")
        try check(schedule.warmupSteps >= 0 && schedule.warmupSteps <= Recipe.maxSteps, "schedule.warmup_steps", "must be between 0 and \(Recipe.maxSteps)")
        try finite(Double(schedule.floor), "schedule.min_lr", 0...Double(optimizer.lr), "between 0 and optimizer.lr (\(optimizer.lr))")
        try check(data.valFraction > 0 && data.valFraction < 1, "data.val_fraction", "must be between 0 and 1")
        try check(data.valEvery >= 2 && data.valEvery <= 1 << 30, "data.val_every", "must be between 2 and \(1 << 30)")
        try check(model.dropout >= 0 && model.dropout < 1, "model.dropout", "must be in [0, 1)")
        try check(tokenizer.vocabSize >= 257 && tokenizer.vocabSize <= 65536, "tokenizer.vocab_size",
                  "must be between 257 (the 256 bytes and <|endoftext|>) and 65536 (token files hold 16-bit ids)")
        try check(eval.interval >= 1 && checkpoint.interval >= 1, "eval.interval", "and checkpoint.interval must be at least 1")
        try check(eval.batches >= 1 && eval.batches <= 1 << 20, "eval.batches", "must be between 1 and \(1 << 20)")
        try check(eval.sampleTokens >= 0 && eval.sampleTokens <= 1 << 20, "eval.sample_tokens", "must be between 0 and \(1 << 20)")
        try check(checkpoint.keepLast >= 1 && checkpoint.keepLast <= 1 << 20, "checkpoint.keep_last", "must be at least 1")
        try check(!data.paths.isEmpty || model.initFrom != nil, "data.paths", "must list at least one file or folder")
    }

    /// The weight-decay rule: decay unless the name contains a `no_decay` pattern.
    public func decays(_ name: String) -> Bool { !noDecay.contains { name.contains($0) } }

    /// Tokens per optimizer step.
    public var tokensPerStep: Int { training.batchSize * training.seqLen * training.gradAccum }

    /// Number of optimizer steps: max_steps, or the token budget divided by tokens per step.
    public var totalSteps: Int {
        training.maxSteps ?? max(1, (training.tokenBudget ?? 0) / tokensPerStep)
    }

    /// Whether the length of the run is a FLOP budget (steps known only with the model).
    public var usesFLOPBudget: Bool { training.maxSteps == nil && training.tokenBudget == nil && training.flopBudget != nil }

    /// Number of optimizer steps for a model costing `flopsPerStep`, `stepsDone` steps in and
    /// `flopsSoFar` spent (including the compute behind an init_from checkpoint): with a FLOP
    /// budget, the steps done plus what the rest of the budget buys (rounded to nearest);
    /// otherwise ``totalSteps``.
    public func totalSteps(flopsPerStep: Double, stepsDone: Int, flopsSoFar: Double) -> Int {
        guard usesFLOPBudget, let budget = training.flopBudget else { return totalSteps }
        let remaining = ((budget - flopsSoFar) / flopsPerStep).rounded()
        // Validated budgets and costs keep this far inside Int; a checkpoint's odd FLOP count cannot overflow it.
        guard remaining.isFinite, remaining > 0 else { return stepsDone }
        return stepsDone + Int(min(remaining, Double(Recipe.maxSteps)))
    }

    /// The model configuration for a vocabulary size (the tokenizer's).
    public func modelConfig(vocabSize: Int) throws -> GPT2Config {
        var c = try model.preset.map { try GPT2Config.preset($0) } ?? GPT2Config(nLayer: 4, nHead: 4, nEmbd: 256, nPositions: 256, vocabSize: vocabSize)
        if let v = model.nLayer { c.nLayer = v }
        if let v = model.nHead { c.nHead = v }
        if let v = model.nEmbd { c.nEmbd = v; c.nInner = 4 * v }
        if let v = model.nPositions { c.nPositions = v }
        if let v = model.nInner { c.nInner = v }
        c.vocabSize = vocabSize
        c.embdDropout = model.dropout; c.attnDropout = model.dropout; c.residDropout = model.dropout
        do { c.linear = try LinearPlan.parse(model.mlp, layers: c.nLayer) } catch {
            throw TrainingError.recipe("model.mlp: \(error)")
        }
        for (site, written) in model.linear {
            do {
                let spec = try Recipe.resolvingWidthRanks(written, nEmbd: c.nEmbd)
                if site.isEmpty { try c.linear.apply(spec, layers: c.nLayer) } else { try c.linear.set(site, spec, layers: c.nLayer) }
            } catch {
                throw TrainingError.recipe("model.linear\(site.isEmpty ? "" : ".\(site)"): \(error)")
            }
        }
        guard training.seqLen <= c.nPositions else {
            throw TrainingError.recipe("training.seq_len \(training.seqLen) exceeds the model's context n_positions \(c.nPositions)")
        }
        do { try c.validate() } catch { throw TrainingError.recipe("model: \(error)") }
        return c
    }
}

extension Recipe {
    /// The family a run records (run.json): the linear spec as the recipe wrote it when it sizes a
    /// rank by the width (`mlp=lowrank:d/4`: one family across widths), else the resolved spec.
    public func familyLabel(resolved: String) -> String {
        guard model.linear.contains(where: { $0.spec.contains("d/") }) else { return resolved }
        return model.linear.map { $0.site.isEmpty ? $0.spec : "\($0.site)=\($0.spec)" }.joined(separator: ",")
    }

    /// A linear spec with every `d/K` written in place of a number replaced by the model width
    /// divided by K (`mlp=lowrank:d/4` at width 192 is `mlp=lowrank:48`), so one sweep axis value
    /// means the same relative size at every width. K must divide the width.
    public static func resolvingWidthRanks(_ spec: String, nEmbd: Int) throws -> String {
        var out = ""
        var rest = Substring(spec)
        while let r = rest.firstMatch(of: /([:=])d\/([0-9]{1,7})/) {
            out += rest[..<r.range.lowerBound] + r.output.1
            guard let k = Int(r.output.2), k > 0, nEmbd % k == 0 else {
                throw TrainingError.recipe("'\(spec.prefix(60))': d/\(r.output.2) needs a divisor of the width \(nEmbd)")
            }
            out += String(nEmbd / k)
            rest = rest[r.range.upperBound...]
        }
        return out + rest
    }
}

extension Recipe {
    /// The recipe to continue the run in `runDirectory`: the one its newest checkpoint recorded
    /// (with the overrides it was started with), then `overrides`, writing into the same folder.
    /// Returns nil when the folder has no checkpoint; throws when the checkpoint has no recipe.
    public static func resuming(_ runDirectory: URL, overrides: [String] = []) throws -> Recipe? {
        guard let latest = try CheckpointFiles.latest(in: runDirectory) else { return nil }
        guard let recorded = try Checkpoint.recipe(of: latest) else {
            throw TrainingError.resume("\(latest.path) does not record its recipe; start a new run with factorlab pretrain")
        }
        let (text, saved) = RecipeText.split(recorded)
        // The folder is where the run is now (it may have moved); one entry, not one per resume.
        let kept = saved.filter { !$0.hasPrefix("checkpoint.dir=") }
        return try parse(text, file: latest.path, overrides: kept + overrides + ["checkpoint.dir=\(runDirectory.path)"],
                         defaultName: runDirectory.lastPathComponent)
    }
}

/// Names of runs and arms: they name folders, so they cannot hold a path.
public enum RunName {
    /// 1-100 characters of letters, digits, `.`, `_` and `-`, not `.` or `..`.
    public static func isValid(_ name: String) -> Bool {
        guard (1...100).contains(name.count), name != ".", name != ".." else { return false }
        return name.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) && $0.isASCII || "._-".unicodeScalars.contains($0) }
    }
}
