import Foundation

/// The examples of one split of one GLUE task, read from the official TSV file.
///
/// Columns are found by their header names where the file has a header (every file but CoLA's
/// train and dev, which are four unnamed columns: source, label, original mark, sentence):
///
/// | task  | id column | texts                     | target (train/dev) |
/// |-------|-----------|---------------------------|--------------------|
/// | CoLA  | `index` (test) | sentence (column 4)  | label (column 2)   |
/// | SST-2 | `index` (test) | `sentence`           | `label`            |
/// | MRPC  | `index` (test) | `#1 String`, `#2 String` | `Quality`      |
/// | STS-B | `index`   | `sentence1`, `sentence2`  | `score` (last)     |
/// | QQP   | `id`      | `question1`, `question2`  | `is_duplicate`     |
/// | MNLI  | `index`   | `sentence1`, `sentence2`  | `gold_label` (last)|
/// | QNLI  | `index`   | `question`, `sentence`    | `label`            |
/// | RTE, WNLI | `index` | `sentence1`, `sentence2` | `label`           |
///
/// Every row must have as many fields as the header (4 for header-less CoLA), with one
/// documented exception: QQP rows with the wrong number of fields are skipped and counted in
/// ``skippedMalformedRows``, as GLUE's reference loaders (`QqpProcessor`, HF `glue`) skip them.
/// Any other wrong row, a label outside the task's set, or an STS-B score that is not a number in
/// [0, 5] throws a ``GLUEDataError`` naming the file, line and problem. Empty lines are skipped.
public struct GLUEDataset: Sendable {
    public let task: GLUETask
    public let split: GLUESplit
    /// The path the rows were read from (or the name given with in-memory contents).
    public let file: String
    public let examples: [GLUEExample]
    /// QQP only: rows skipped for having the wrong number of fields.
    public let skippedMalformedRows: Int
    /// The 1-based line numbers of the skipped rows.
    public let skippedLines: [Int]

    /// Reads `task`'s `split` from a GLUE root folder laid out as the official distribution
    /// (`root/SST-2/train.tsv`, `root/MNLI/dev_matched.tsv`, ...).
    public init(task: GLUETask, split: GLUESplit, root: URL) throws {
        let file = root.appendingPathComponent(try task.fileName(split))
        try self.init(task: task, split: split, file: file)
    }

    /// Reads `task`'s `split` from an explicit file.
    public init(task: GLUETask, split: GLUESplit, file: URL) throws {
        let path = file.path
        guard FileManager.default.fileExists(atPath: path) else {
            throw GLUEDataError(.missingFile, file: path, line: nil,
                                "file not found; expected the official GLUE layout (\(try task.fileName(split))), "
                                + "e.g. from download_glue_data.py")
        }
        let data: Data
        do { data = try Data(contentsOf: file) } catch {
            throw GLUEDataError(.unreadableFile, file: path, line: nil, "cannot read the file: \(error.localizedDescription)")
        }
        try self.init(task: task, split: split, contents: data, fileName: path)
    }

    /// Parses TSV bytes already in memory; `fileName` is used in error messages.
    public init(task: GLUETask, split: GLUESplit, contents: Data, fileName: String) throws {
        self.task = task
        self.split = split
        self.file = fileName
        let rows = try TSVReader.rows(contents, file: fileName)
        let parser = try RowParser(task: task, split: split, rows: rows, file: fileName)
        var examples: [GLUEExample] = []
        var skipped: [Int] = []
        for row in rows.dropFirst(parser.hasHeader ? 1 : 0) {
            if row.fields.count != parser.columnCount {
                if task == .qqp { skipped.append(row.line); continue }
                throw GLUEDataError(.columnCount, file: fileName, line: row.line,
                                    "expected \(parser.columnCount) tab-separated columns (\(parser.columnNames)), "
                                    + "found \(row.fields.count)")
            }
            examples.append(try parser.example(row, position: examples.count))
        }
        self.examples = examples
        self.skippedMalformedRows = skipped.count
        self.skippedLines = skipped
    }
}

/// Finds the columns of one file and turns its rows into examples.
private struct RowParser {
    let task: GLUETask
    let split: GLUESplit
    let file: String
    let hasHeader: Bool
    let columnCount: Int
    /// The header's names joined for messages.
    let columnNames: String
    var idColumn: Int?
    var textAColumn = 0
    var textBColumn: Int?
    var targetColumn: Int?

    init(task: GLUETask, split: GLUESplit, rows: [TSVRow], file: String) throws {
        self.task = task
        self.split = split
        self.file = file
        if task == .cola && !split.isTest {
            // CoLA train/dev: no header; source, label, original acceptability mark, sentence.
            hasHeader = false
            columnCount = 4
            columnNames = "source, label, original mark, sentence"
            textAColumn = 3
            targetColumn = 1
            return
        }
        guard let header = rows.first else {
            throw GLUEDataError(.missingHeader, file: file, line: nil, "the file is empty; expected a header line")
        }
        hasHeader = true
        columnCount = header.fields.count
        columnNames = header.fields.joined(separator: ", ")
        func column(_ name: String) throws -> Int {
            guard let index = header.fields.firstIndex(of: name) else {
                throw GLUEDataError(.missingColumn, file: file, line: header.line,
                                    "the header has no column \"\(name)\" (it has: \(header.fields.joined(separator: ", ")))")
            }
            return index
        }
        let names: (id: String?, a: String, b: String?, target: String)
        switch task {
        case .cola: names = ("index", "sentence", nil, "label")
        case .sst2: names = (split.isTest ? "index" : nil, "sentence", nil, "label")
        case .mrpc: names = (split.isTest ? "index" : nil, "#1 String", "#2 String", "Quality")
        case .stsb: names = ("index", "sentence1", "sentence2", "score")
        case .qqp: names = ("id", "question1", "question2", "is_duplicate")
        case .mnli: names = ("index", "sentence1", "sentence2", "gold_label")
        case .qnli: names = ("index", "question", "sentence", "label")
        case .rte, .wnli: names = ("index", "sentence1", "sentence2", "label")
        }
        idColumn = try names.id.map(column)
        textAColumn = try column(names.a)
        textBColumn = try names.b.map(column)
        targetColumn = split.isTest ? nil : try column(names.target)
    }

    func example(_ row: TSVRow, position: Int) throws -> GLUEExample {
        let fields = row.fields
        var example = GLUEExample(id: idColumn.map { fields[$0] } ?? String(position), textA: fields[textAColumn],
                                  textB: textBColumn.map { fields[$0] }, line: row.line)
        guard let targetColumn else { return example }
        let raw = fields[targetColumn]
        if task.isRegression {
            guard let score = Double(raw), score.isFinite else {
                throw GLUEDataError(.badScore, file: file, line: row.line, "score \"\(raw)\" is not a number")
            }
            guard (0...5).contains(score) else {
                throw GLUEDataError(.badScore, file: file, line: row.line, "score \(raw) is outside [0, 5]")
            }
            example.score = score
        } else {
            guard let label = task.fileLabels.firstIndex(of: raw) else {
                throw GLUEDataError(.unknownLabel, file: file, line: row.line,
                                    "label \"\(raw)\" is not one of \(task.fileLabels.joined(separator: ", ")) (\(task.name))")
            }
            example.label = label
        }
        return example
    }
}
