/// The nine GLUE tasks: their names, label sets, metrics and the files of the official
/// distribution (the layout `download_glue_data.py` writes: `CoLA/train.tsv`, `MNLI/dev_matched.tsv`, ...).
///
/// Label indices follow the Hugging Face `glue` dataset (`datasets.load_dataset("glue", ...)`), so a
/// classifier trained here agrees with HF checkpoints: MNLI is entailment/neutral/contradiction,
/// RTE and QNLI are entailment/not_entailment, WNLI is not_entailment/entailment.
///
/// See Also: ``GLUEDataset`` (loading), ``GLUEMetrics`` (scoring), ``GLUESubmission`` (test predictions).
public enum GLUETask: String, CaseIterable, Sendable, Codable {
    case cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli

    /// The official spelling, also the task's folder in the distribution: "CoLA", "SST-2", "STS-B".
    public var name: String {
        switch self {
        case .cola: return "CoLA"
        case .sst2: return "SST-2"
        case .mrpc: return "MRPC"
        case .stsb: return "STS-B"
        case .qqp: return "QQP"
        case .mnli: return "MNLI"
        case .qnli: return "QNLI"
        case .rte: return "RTE"
        case .wnli: return "WNLI"
        }
    }

    /// Class names in label-index order (HF `glue` names); empty for the regression task STS-B.
    public var labelNames: [String] {
        switch self {
        case .cola: return ["unacceptable", "acceptable"]
        case .sst2: return ["negative", "positive"]
        case .mrpc: return ["not_equivalent", "equivalent"]
        case .stsb: return []
        case .qqp: return ["not_duplicate", "duplicate"]
        case .mnli: return ["entailment", "neutral", "contradiction"]
        case .qnli, .rte: return ["entailment", "not_entailment"]
        case .wnli: return ["not_entailment", "entailment"]
        }
    }

    /// How each class is written in the TSV files and in submission files, in label-index order:
    /// "0"/"1" for the binary tasks whose files use digits, the class name for MNLI, QNLI and RTE.
    public var fileLabels: [String] {
        switch self {
        case .cola, .sst2, .mrpc, .qqp, .wnli: return ["0", "1"]
        case .stsb: return []
        case .mnli, .qnli, .rte: return labelNames
        }
    }

    /// Number of model outputs: the class count, or 1 for STS-B's score.
    public var outputCount: Int { isRegression ? 1 : labelNames.count }

    /// True when an example has two texts (everything but CoLA and SST-2).
    public var isPairTask: Bool { self != .cola && self != .sst2 }

    /// True for STS-B, whose target is a similarity score in [0, 5].
    public var isRegression: Bool { self == .stsb }

    /// The metrics GLUE reports for the task, in ``GLUEMetrics/compute(task:predictions:references:)``'s key names.
    public var metrics: [GLUEMetric] {
        switch self {
        case .cola: return [.matthewsCorrelation]
        case .mrpc, .qqp: return [.f1, .accuracy]
        case .stsb: return [.pearson, .spearmanr]
        case .sst2, .mnli, .qnli, .rte, .wnli: return [.accuracy]
        }
    }

    /// The splits the distribution has for this task (MNLI adds the mismatched dev and test sets).
    public var splits: [GLUESplit] {
        self == .mnli ? [.train, .dev, .devMismatched, .test, .testMismatched] : [.train, .dev, .test]
    }

    /// The file of `split` relative to the GLUE root, e.g. "MNLI/dev_matched.tsv".
    ///
    /// - Throws: ``GLUETaskError`` when the task has no such split (only MNLI has mismatched sets).
    public func fileName(_ split: GLUESplit) throws -> String {
        guard splits.contains(split) else { throw GLUETaskError.noSuchSplit(self, split) }
        let base: String
        switch (self, split) {
        case (.mnli, .dev): base = "dev_matched"
        case (.mnli, .devMismatched): base = "dev_mismatched"
        case (.mnli, .test): base = "test_matched"
        case (.mnli, .testMismatched): base = "test_mismatched"
        default: base = split.rawValue
        }
        return "\(name)/\(base).tsv"
    }

    /// The name GLUE's submission server expects for predictions on `split` (a test split):
    /// "SST-2.tsv", "MNLI-m.tsv", "MNLI-mm.tsv".
    public func submissionFileName(_ split: GLUESplit = .test) throws -> String {
        guard split.isTest, splits.contains(split) else { throw GLUETaskError.notATestSplit(self, split) }
        switch split {
        case .testMismatched: return "MNLI-mm.tsv"
        default: return self == .mnli ? "MNLI-m.tsv" : "\(name).tsv"
        }
    }

    /// Parses a task name as users write it: case, "-", "_" and spaces are ignored, so "sst2",
    /// "sst-2" and "SST-2" all name SST-2. "mnli-m", "mnli-mm", "mnli_matched" and
    /// "mnli_mismatched" name MNLI (use ``parseWithSplit(_:)`` to keep which dev set was meant).
    ///
    /// - Throws: ``GLUETaskError/unknownName(_:)`` listing the valid names.
    public init(parsing name: String) throws {
        self = try Self.parseWithSplit(name).task
    }

    /// Parses a task name and the dev split it implies: ``GLUESplit/devMismatched`` for
    /// "mnli-mm"/"mnli_mismatched", ``GLUESplit/dev`` otherwise.
    public static func parseWithSplit(_ name: String) throws -> (task: GLUETask, devSplit: GLUESplit) {
        let key = String(name.lowercased().filter { $0 != "-" && $0 != "_" && $0 != " " })
        switch key {
        case "cola": return (.cola, .dev)
        case "sst2", "sst": return (.sst2, .dev)
        case "mrpc": return (.mrpc, .dev)
        case "stsb", "sts": return (.stsb, .dev)
        case "qqp": return (.qqp, .dev)
        case "mnli", "mnlim", "mnlimatched": return (.mnli, .dev)
        case "mnlimm", "mnlimismatched": return (.mnli, .devMismatched)
        case "qnli": return (.qnli, .dev)
        case "rte": return (.rte, .dev)
        case "wnli": return (.wnli, .dev)
        default: throw GLUETaskError.unknownName(name)
        }
    }

    /// The names ``init(parsing:)`` accepts, as listed in its error message.
    public static let validNames = "cola, sst2, mrpc, stsb, qqp, mnli (or mnli-m, mnli-mm), qnli, rte, wnli"
}

/// A split of a GLUE task. For MNLI, ``dev`` and ``test`` are the matched sets
/// (`dev_matched.tsv`, `test_matched.tsv`); the mismatched ones exist only for MNLI.
public enum GLUESplit: String, CaseIterable, Sendable, Codable {
    case train, dev, test
    case devMismatched = "dev_mismatched"
    case testMismatched = "test_mismatched"

    /// True for the unlabeled test splits.
    public var isTest: Bool { self == .test || self == .testMismatched }
}

/// A metric GLUE reports; the raw value is the key in ``GLUEMetrics``' results (HF `evaluate` names).
public enum GLUEMetric: String, CaseIterable, Sendable {
    case matthewsCorrelation = "matthews_correlation"
    case accuracy
    case f1
    case pearson
    case spearmanr
}

/// A misuse of the task API: an unknown task name, a split the task lacks, or predictions that do
/// not fit the task.
public enum GLUETaskError: Error, Equatable, CustomStringConvertible {
    case unknownName(String)
    case noSuchSplit(GLUETask, GLUESplit)
    case notATestSplit(GLUETask, GLUESplit)
    case invalidPredictions(String)

    public var description: String {
        switch self {
        case .unknownName(let name):
            return "unknown GLUE task \"\(name)\"; valid names: \(GLUETask.validNames) (case, '-' and '_' are ignored)"
        case .noSuchSplit(let task, let split):
            return "\(task.name) has no \(split.rawValue) split; its splits are "
                + task.splits.map(\.rawValue).joined(separator: ", ")
        case .notATestSplit(let task, let split):
            return "submission files are for test splits; \(task.name) \(split.rawValue) is not one"
        case .invalidPredictions(let message):
            return message
        }
    }
}
