import ArgumentParser
import FactorlabEval
import FactorlabGPT2
import FactorlabCheckpoint
import FactorlabBench
import Foundation

struct Profile: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time a forward pass per component and count FLOPs: where the compute goes (attention : MLP).",
        discussion: "Random weights are fine for timing. Example: factorlab profile --model gpt2 --mlp monarch:4 --batch 1 --seq 1024")

    @Option(help: "A preset (gpt2, gpt2-medium, gpt2-large, gpt2-xl, nano, micro, tiny, mini, small) or a model path.")
    var model: String = "gpt2"
    @Option(help: "MLP kinds for a preset (dense, monarch:4, lowrank:R, butterfly, btt:R, or per-layer KIND@LAYERS).")
    var mlp: String = "dense"
    @Option(help: "Kinds of every linear layer for a preset, e.g. 'mlp=monarch:4,attn=monarch:4,head=lowrank:256' (applied after --mlp).")
    var linear: String?
    @Option(help: "Batch size.")
    var batch: Int = 1
    @Option(parsing: .upToNextOption, help: "Sequence length(s).")
    var seq: [Int] = [1024]
    @Option(help: "Timed repetitions (after one warm-up).")
    var repeats: Int = 3
    @Flag(help: "Also time a training step: forward, backward, gradient norm and AdamW, operation by operation.")
    var train = false
    @Flag(help: "Print one JSON object on stdout.")
    var json = false

    func validate() throws {
        guard (1...4096).contains(batch) else { throw ValidationError("--batch must be between 1 and 4096, got \(batch)") }
        guard !seq.isEmpty, seq.allSatisfy({ (1...(1 << 20)).contains($0) }) else {
            throw ValidationError("--seq must list lengths between 1 and \(1 << 20), got \(seq)")
        }
        guard (1...10_000).contains(repeats) else { throw ValidationError("--repeats must be between 1 and 10000, got \(repeats)") }
    }

    func run() throws {
        let m: GPT2Model
        if GPT2Config.presets.contains(where: { $0.name == model }) {
            var config = try GPT2Config.preset(model)
            config.linear = try LinearPlan.parse(mlp, layers: config.nLayer)
            if let linear { try config.linear.apply(linear, layers: config.nLayer) }
            try config.validate()
            config.embdDropout = 0; config.attnDropout = 0; config.residDropout = 0
            Console.progress("profile: building \(model) (\(config.linearSpec))")
            m = try GPT2Model(config)
        } else {
            guard linear == nil, mlp == "dense" else {
                throw ValidationError("--mlp and --linear choose the kinds of a preset; a model file has its own (project it with factorlab factorize)")
            }
            m = try ModelFiles.load(model).model
        }
        var results: [String: Any] = ["model": model, "mlp": m.config.mlpSpec, "linear": m.config.linearSpec, "parameters": m.parameterCount, "batch": batch]
        var rows: [[String: Any]] = []
        for t in seq {
            Console.progress("profile: \(model) T=\(t)")
            let r = try Profiler.run(model: m, batch: batch, seqLen: t, repeats: repeats, trainStep: train)
            var row: [String: Any] = ["seq": t, "forward_ms": r.totalSeconds * 1e3,
                                      "attention_time_pct": r.attentionTimeShare, "mlp_time_pct": 100 - r.attentionTimeShare,
                                      "attention_flop_pct": r.attentionFLOPShare, "mlp_flop_pct": 100 - r.attentionFLOPShare,
                                      "forward_gflops": r.components.reduce(0) { $0 + $1.flops } / r.totalSeconds / 1e9]
            for comp in r.components {
                row["\(comp.name)_ms"] = comp.seconds * 1e3
                row["\(comp.name)_gflop"] = comp.flops / 1e9
            }
            if let s = r.trainStepSeconds, let f = r.trainStepFLOPs {
                row["train_step_ms"] = s * 1e3
                row["train_step_gflops"] = f / s / 1e9
                row["grad_norm_ms"] = (r.gradNormSeconds ?? 0) * 1e3
                row["adamw_ms"] = (r.optimizerSeconds ?? 0) * 1e3
                row["train_operations"] = r.trainOperations.map {
                    ["operation": $0.name, "calls": $0.count, "forward_ms": $0.forwardSeconds * 1e3, "backward_ms": $0.backwardSeconds * 1e3] as [String: Any]
                }
            }
            rows.append(row)
            if !json {
                Console.endProgress()
                print("\(model) (\(m.config.linearSpec)), batch \(batch), T \(t): forward \(String(format: "%.1f", r.totalSeconds * 1e3)) ms")
                print("  component             time ms   time %    GFLOP   FLOP %")
                let totalFlops = r.components.reduce(0) { $0 + $1.flops }
                for comp in r.components {
                    print("  " + comp.name.padding(toLength: 20, withPad: " ", startingAt: 0) + String(format: "%8.2f %7.1f %8.3f %7.1f", comp.seconds * 1e3,
                                 100 * comp.seconds / r.totalSeconds, comp.flops / 1e9, 100 * comp.flops / totalFlops))
                }
                print(String(format: "  attention : MLP   time %.0f:%.0f   FLOPs %.0f:%.0f", r.attentionTimeShare, 100 - r.attentionTimeShare,
                             r.attentionFLOPShare, 100 - r.attentionFLOPShare))
                if let s = r.trainStepSeconds {
                    let norm = (r.gradNormSeconds ?? 0) * 1e3, adam = (r.optimizerSeconds ?? 0) * 1e3
                    print(String(format: "  training step: forward+backward %.1f ms, gradient norm %.1f ms, AdamW %.1f ms", s * 1e3, norm, adam))
                    print("  operation           calls  forward ms  backward ms  % of step")
                    let step = s * 1e3 + norm + adam
                    for op in r.trainOperations {
                        let total = (op.forwardSeconds + op.backwardSeconds) * 1e3
                        print("  " + op.name.padding(toLength: 18, withPad: " ", startingAt: 0)
                              + String(format: "%6d %11.2f %12.2f %10.1f", op.count, op.forwardSeconds * 1e3, op.backwardSeconds * 1e3, 100 * total / step))
                    }
                    print("  " + "gradient norm".padding(toLength: 18, withPad: " ", startingAt: 0) + String(format: "%6d %11.2f", 1, norm) + String(repeating: " ", count: 13) + String(format: "%10.1f", 100 * norm / step))
                    print("  " + "AdamW".padding(toLength: 18, withPad: " ", startingAt: 0) + String(format: "%6d %11.2f", 1, adam) + String(repeating: " ", count: 13) + String(format: "%10.1f", 100 * adam / step))
                }
            }
        }
        Console.endProgress()
        results["runs"] = rows
        if json { try Console.printJSON(results) }
    }
}
