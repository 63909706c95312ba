import Foundation

/// Test-set predictions in the format of GLUE's submission server: a header `index\tprediction`,
/// then one `id\tprediction` line per test row in file order, LF line ends. Classification tasks
/// write the label as the task's files do (``GLUETask/fileLabels``: "0"/"1", or
/// "entailment"/"neutral"/...); STS-B writes the score with three decimals. Files are named as
/// the server expects: `CoLA.tsv`, `SST-2.tsv`, `MNLI-m.tsv`, `MNLI-mm.tsv` (``GLUETask/submissionFileName(_:)``).
public enum GLUESubmission {
    /// The file text for class predictions, one per id.
    public static func text(task: GLUETask, ids: [String], labels: [Int]) throws -> String {
        guard !task.isRegression else {
            throw GLUETaskError.invalidPredictions("\(task.name) is a regression task; pass scores")
        }
        guard ids.count == labels.count else {
            throw GLUETaskError.invalidPredictions("\(task.name): \(labels.count) predictions for \(ids.count) test rows")
        }
        var out = "index\tprediction\n"
        for (id, label) in zip(ids, labels) {
            guard task.fileLabels.indices.contains(label) else {
                throw GLUETaskError.invalidPredictions("\(task.name): predicted label \(label) for row \(id) is outside 0..<\(task.outputCount)")
            }
            out += "\(id)\t\(task.fileLabels[label])\n"
        }
        return out
    }

    /// The file text for STS-B score predictions, one per id, written as "%.3f".
    public static func text(task: GLUETask, ids: [String], scores: [Double]) throws -> String {
        guard task.isRegression else {
            throw GLUETaskError.invalidPredictions("\(task.name) is a classification task; pass labels")
        }
        guard ids.count == scores.count else {
            throw GLUETaskError.invalidPredictions("\(task.name): \(scores.count) predictions for \(ids.count) test rows")
        }
        var out = "index\tprediction\n"
        for (id, score) in zip(ids, scores) {
            guard score.isFinite else {
                throw GLUETaskError.invalidPredictions("\(task.name): predicted score \(score) for row \(id) is not finite")
            }
            out += "\(id)\t\(String(format: "%.3f", score))\n"
        }
        return out
    }

    /// Writes class predictions for the test rows `examples` (in their order) into `directory`
    /// under the server's file name; returns the file's URL.
    @discardableResult
    public static func write(task: GLUETask, split: GLUESplit = .test, examples: [GLUEExample], labels: [Int],
                             to directory: URL) throws -> URL {
        let url = directory.appendingPathComponent(try task.submissionFileName(split))
        try Data(text(task: task, ids: examples.map(\.id), labels: labels).utf8).write(to: url, options: .atomic)
        return url
    }

    /// Writes STS-B score predictions for the test rows `examples` into `directory` as `STS-B.tsv`.
    @discardableResult
    public static func write(task: GLUETask, split: GLUESplit = .test, examples: [GLUEExample], scores: [Double],
                             to directory: URL) throws -> URL {
        let url = directory.appendingPathComponent(try task.submissionFileName(split))
        try Data(text(task: task, ids: examples.map(\.id), scores: scores).utf8).write(to: url, options: .atomic)
        return url
    }
}
