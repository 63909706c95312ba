import ArgumentParser
import FactorlabFinetune
import Foundation

/// `factorlab finetune RECIPE`: GLUE classification/regression or generative CoQA from any model.
struct Finetune: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Finetune a (factorized) GPT-2 on a GLUE task or CoQA from a YAML recipe.",
        discussion: """
        Recipes: Recipes/glue-<task>.yaml (the nine GLUE tasks), Recipes/coqa.yaml, Recipes/attribution-*.yaml.
        The model (model.init_from or --init-from) can be a checkpoint, a run folder or a Hugging Face folder.
        With --eval-only, scores the dev split(s) of the model as it is (an untrained head when it has none).
        """)

    @Argument(help: "Recipe file (YAML).")
    var recipe: String

    @Option(name: .customLong("set"), help: "Override a recipe key, e.g. --set optimizer.lr=5e-5 (repeatable).")
    var overrides: [String] = []

    @Option(help: "The model to start from (sets model.init_from).")
    var initFrom: String?

    @Flag(help: "Only score the dev split(s) with the model as loaded; no training.")
    var evalOnly = false

    @Flag(help: "Print one JSON object of results on stdout.")
    var json = false

    func run() throws {
        var sets = overrides
        if let initFrom { sets.append("model.init_from=\(initFrom)") }
        let r = try FinetuneRecipe.load(URL(fileURLWithPath: recipe), overrides: sets)
        Console.note("finetune \(r.name)\(evalOnly ? " (eval only)" : ""): model \(r.initFrom) -> \(r.runDirectory.path)")
        let result = try FinetuneRun.run(r, evalOnly: evalOnly,
                                         hooks: .init(progress: { Console.progress($0) }, log: { Console.note($0) }))
        Console.endProgress()
        if json {
            try Console.printRecord(result)
            return
        }
        for line in result.textLines { print(line) }
    }
}
