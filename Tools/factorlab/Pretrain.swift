import ArgumentParser
import FactorlabDistributed
import FactorlabTensor
import FactorlabTraining
import Foundation

/// The embedded default: a small GPT-2 on the bundled Shakespeare corpus, a few minutes on 2 cores.
let defaultRecipePath = "Recipes/shakespeare-tiny.yaml"

struct Pretrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Pretrain a (factorized) GPT-2 from a YAML recipe.",
        discussion: "Without a recipe, runs \(defaultRecipePath): a small GPT-2 on the bundled Shakespeare corpus.")

    @Argument(help: "Recipe file (YAML).")
    var recipe: String = defaultRecipePath

    @Option(name: .customLong("set"), help: "Override a recipe key, e.g. --set optimizer.lr=3e-4 (repeatable).")
    var overrides: [String] = []

    @Option(help: "Start from this checkpoint or Hugging Face folder instead of random weights.")
    var initFrom: String?

    @Flag(help: "Print one JSON object of results on stdout.")
    var json = false

    func run() throws {
        var sets = overrides
        if let initFrom { sets.append("model.init_from=\(initFrom)") }
        let r = try Recipe.load(URL(fileURLWithPath: recipe), overrides: sets)
        try runTraining(r, resume: false, json: json)
    }
}

struct Resume: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Continue a run from its newest checkpoint (exactly).")

    @Argument(help: "The run folder (Checkpoints/<run>).")
    var runDirectory: String

    @Option(name: .customLong("set"), help: "Override a recipe key of the saved recipe (e.g. training.max_steps=2000).")
    var overrides: [String] = []

    @Flag(help: "Print one JSON object of results on stdout.")
    var json = false

    func run() throws {
        let dir = URL(fileURLWithPath: runDirectory)
        guard let r = try Recipe.resuming(dir, overrides: overrides) else {
            throw ValidationError("\(dir.path) has no checkpoint (ckpt-*.h5) to resume from")
        }
        try runTraining(r, resume: true, json: json)
    }
}

/// Runs a recipe in this process, or as one rank of a data-parallel job when started by
/// `mpirun -np N factorlab pretrain ...` (each rank takes batch_size sequences per step, so the
/// job trains on N x batch_size; rank 0 prints, writes the records and saves checkpoints).
func runTraining(_ recipe: Recipe, resume: Bool, json: Bool) throws {
    let comm = try Communicator.world()
    if comm.usesMPI && BLAS.threads != Parallel.workers { BLAS.setThreads(Parallel.workers) }
    var options = Trainer.Options()
    options.resume = resume
    options.communicator = comm
    options.progress = { Console.progress($0) }
    options.log = { Console.note($0) }
    if let stop = ProcessInfo.processInfo.environment["FACTORLAB_STOP_AFTER_STEPS"].flatMap(Int.init) { options.stopAfter = stop }
    let trainer = Trainer(recipe: recipe, options: options)
    let s: TrainSummary
    do {
        if comm.isRoot {
            let ranks = comm.size > 1 ? " on \(comm.size) ranks (\(Parallel.workers) thread(s) each)" : ""
            let length = recipe.usesFLOPBudget ? String(format: "a budget of %.3g FLOPs", recipe.training.flopBudget!) : "\(recipe.totalSteps) steps"
            Console.note("run \(recipe.name): \(length), \(recipe.tokensPerStep * comm.size) tokens per step\(ranks) -> \(trainer.runDirectory.path)")
        }
        s = try trainer.run()
    } catch {
        guard comm.usesMPI else { throw error }
        // One rank failing alone would leave the others blocked in a collective: end the job.
        Console.endProgress()
        FileHandle.standardError.write(Data("factorlab rank \(comm.rank): error: \(error)\n".utf8))
        comm.abort(code: 1)
    }
    Console.endProgress()
    comm.finalize()
    guard comm.isRoot else { return }
    if json {
        var obj: [String: Any] = ["run": s.runDirectory.path, "steps": s.steps, "tokens": s.tokens, "parameters": s.parameters,
                                  "wall_s": s.wallSeconds, "tokens_per_s": s.tokensPerSecond, "flops": s.flops,
                                  "peak_memory_bytes": s.peakMemoryBytes]
        // A run resumed at its last step (stopped while measuring inference) trains no step in this
        // process and has no train loss of its own to print.
        if s.firstTrainLoss.isFinite { obj["first_train_loss"] = Double(s.firstTrainLoss) }
        if s.finalTrainLoss.isFinite { obj["final_train_loss"] = Double(s.finalTrainLoss) }
        if let v = s.firstValLoss { obj["first_val_loss"] = v }
        if let v = s.finalValLoss { obj["final_val_loss"] = v }
        if let v = s.bestValLoss { obj["best_val_loss"] = v }
        if let t = s.sample { obj["sample"] = t }
        try Console.printJSON(obj)
    } else {
        print("run:            \(s.runDirectory.path)")
        print("parameters:     \(s.parameters)")
        print("steps:          \(s.steps) (\(s.tokens) tokens, \(String(format: "%.0f", s.tokensPerSecond)) tokens/s, \(String(format: "%.1f", s.wallSeconds)) s)")
        if s.firstTrainLoss.isFinite && s.finalTrainLoss.isFinite { print(String(format: "train loss:     %.4f -> %.4f", s.firstTrainLoss, s.finalTrainLoss)) }
        if let a = s.firstValLoss, let b = s.finalValLoss { print(String(format: "val loss:       %.4f -> %.4f", a, b)) }
        if let best = s.bestValLoss { print(String(format: "best val loss:  %.4f", best)) }
        print(String(format: "peak memory:    %.0f MiB", Double(s.peakMemoryBytes) / 1_048_576))
        if let sample = s.sample { print("sample:\n\(sample)") }
    }
}
