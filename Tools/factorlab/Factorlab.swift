import ArgumentParser

/// `factorlab`: train, finetune, evaluate and benchmark dense and factorized GPT-2 models.
/// Results go to stdout (one JSON object with `--json`), progress to stderr.
@main
struct Factorlab: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "factorlab",
        abstract: "Dense and factorized (low-rank, butterfly, Monarch) GPT-2 on the CPU.",
        subcommands: [Pretrain.self, Resume.self, Generate.self, Evaluate.self, Tokenize.self, ImportHF.self,
                      ExportHF.self, Factorize.self, Report.self, Bench.self])
}
