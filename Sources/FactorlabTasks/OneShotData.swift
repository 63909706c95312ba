import FactorlabRecords
import Foundation

/// Readers for the distribution formats of the GPT-2 paper's one-shot evaluations: CNN/Daily Mail
/// (`.story` files, or CSV / JSONL with `article` and `highlights`), WMT14 En-Fr (newstest2014 SGM
/// pairs or plain parallel text) and Natural Questions open (JSONL with `question` and `answer`).
/// Bad files are errors that name the file, the line and what was expected.
public enum OneShotData {
    public struct Failure: Error, CustomStringConvertible, Equatable {
        public let file: String
        public let line: Int?
        public let message: String
        public var description: String { line.map { "\(file):\($0): \(message)" } ?? "\(file): \(message)" }
    }

    public struct Summary: Equatable, Sendable {
        public var article: String, highlights: [String]
        public init(article: String, highlights: [String]) { (self.article, self.highlights) = (article, highlights) }
    }
    public struct Pair: Equatable, Sendable {
        public var source: String, target: String
        public init(source: String, target: String) { (self.source, self.target) = (source, target) }
    }
    public struct Question: Equatable, Sendable {
        public var question: String, answers: [String]
        public init(question: String, answers: [String]) { (self.question, self.answers) = (question, answers) }
    }

    static func text(_ url: URL) throws -> String {
        let data: Data
        do { data = try FileReading.contents(of: url) } catch let e as FileReading.Failure { throw Failure(file: e.file, line: nil, message: e.reason) }
        guard let s = String(data: data, encoding: .utf8) else {
            // Name the first line that is not UTF-8.
            var line = 1
            for piece in data.split(separator: 0x0A, omittingEmptySubsequences: false) {
                if String(data: Data(piece), encoding: .utf8) == nil { break }
                line += 1
            }
            throw Failure(file: url.path, line: line, message: "not valid UTF-8")
        }
        return s
    }

    static func isDirectory(_ url: URL) -> Bool {
        var d: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &d) && d.boolValue
    }

    static func files(in dir: URL, suffix: String) throws -> [URL] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.filter { $0.hasSuffix(suffix) }.sorted().map { dir.appendingPathComponent($0) }
    }

    // MARK: - CNN / Daily Mail

    /// A `.story` file, a folder of them (sorted by name), a `.csv` with `article` and `highlights`
    /// columns (as Hugging Face's cnn_dailymail CSV export), or a `.jsonl` with those fields.
    public static func summaries(_ url: URL) throws -> [Summary] {
        if isDirectory(url) {
            let stories = try files(in: url, suffix: ".story")
            guard !stories.isEmpty else { throw Failure(file: url.path, line: nil, message: "folder has no .story files") }
            return try stories.map { try story($0) }
        }
        switch url.pathExtension.lowercased() {
        case "story": return [try story(url)]
        case "csv": return try summariesCSV(url)
        case "jsonl", "json": return try jsonLines(url) { obj, line in
            guard let a = obj["article"] as? String, let h = obj["highlights"] as? String else {
                throw Failure(file: url.path, line: line, message: "expected string fields \"article\" and \"highlights\"")
            }
            return Summary(article: a, highlights: h.split(separator: "\n").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
        }
        default: throw Failure(file: url.path, line: nil, message: "expected a .story file, a folder of them, a .csv or a .jsonl")
        }
    }

    /// The article (lines before the first `@highlight`, joined by spaces) and its highlights (the
    /// first non-empty line after each `@highlight`).
    public static func story(_ url: URL) throws -> Summary {
        var article: [String] = [], highlights: [String] = []
        var expectHighlight = false, seenHighlight = false
        for raw in try text(url).split(separator: "\n", omittingEmptySubsequences: false) {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty { continue }
            if line == "@highlight" { expectHighlight = true; seenHighlight = true; continue }
            if expectHighlight { highlights.append(line); expectHighlight = false } else if !seenHighlight { article.append(line) }
        }
        guard !article.isEmpty else { throw Failure(file: url.path, line: nil, message: "has no article text before its first @highlight") }
        guard !highlights.isEmpty else { throw Failure(file: url.path, line: nil, message: "has no @highlight followed by a sentence") }
        return Summary(article: article.joined(separator: " "), highlights: highlights)
    }

    static func summariesCSV(_ url: URL) throws -> [Summary] {
        let rows = try CSV.parse(try text(url), file: url.path)
        guard let header = rows.first else { throw Failure(file: url.path, line: 1, message: "empty file (expected a header with article and highlights)") }
        guard let a = header.fields.firstIndex(of: "article"), let h = header.fields.firstIndex(of: "highlights") else {
            throw Failure(file: url.path, line: 1, message: "header \(header.fields.prefix(6)) has no \"article\" and \"highlights\" columns")
        }
        return try rows.dropFirst().map { row in
            guard row.fields.count == header.fields.count else {
                throw Failure(file: url.path, line: row.line, message: "has \(row.fields.count) fields, the header has \(header.fields.count)")
            }
            return Summary(article: row.fields[a], highlights: row.fields[h].split(separator: "\n").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
        }
    }

    // MARK: - WMT14 En-Fr

    /// A folder with `…-src.en.sgm` and `…-ref.fr.sgm` (newstest2014), or with plain parallel
    /// files `….en` and `….fr` (one sentence per line): the source and reference of every segment.
    public static func translations(_ url: URL, source: String = "en", target: String = "fr") throws -> [Pair] {
        guard isDirectory(url) else { throw Failure(file: url.path, line: nil, message: "expected a folder with the source and reference files") }
        let sgmSrc = try files(in: url, suffix: "src.\(source).sgm"), sgmRef = try files(in: url, suffix: "ref.\(target).sgm")
        let src: [String], ref: [String], srcFile: URL, refFile: URL
        if let s = sgmSrc.first, let r = sgmRef.first {
            (srcFile, refFile) = (s, r)
            (src, ref) = (try segments(s), try segments(r))
        } else {
            let plainSrc = try files(in: url, suffix: ".\(source)"), plainRef = try files(in: url, suffix: ".\(target)")
            guard let s = plainSrc.first, let r = plainRef.first else {
                throw Failure(file: url.path, line: nil, message: "has neither *src.\(source).sgm + *ref.\(target).sgm nor *.\(source) + *.\(target) files")
            }
            (srcFile, refFile) = (s, r)
            src = try ScoredLines.lines(of: s)
            ref = try ScoredLines.lines(of: r)
        }
        guard src.count == ref.count else {
            throw Failure(file: refFile.path, line: nil, message: "has \(ref.count) segments, the source \(srcFile.lastPathComponent) has \(src.count)")
        }
        return zip(src, ref).map { Pair(source: $0, target: $1) }
    }

    /// The text of every `<seg id="N">…</seg>` of an SGM file, in order; ids must count 1, 2, … within
    /// each document.
    public static func segments(_ url: URL) throws -> [String] {
        var out: [String] = []
        var expected = 1
        for (i, raw) in try text(url).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.lowercased().hasPrefix("<doc") { expected = 1; continue }
            guard line.lowercased().hasPrefix("<seg") else { continue }
            guard let open = line.firstIndex(of: ">"), let close = line.range(of: "</seg>", options: [.caseInsensitive, .backwards]),
                  open < close.lowerBound else {
                throw Failure(file: url.path, line: i + 1, message: "expected <seg id=\"N\">text</seg> on one line")
            }
            let attributes = String(line[..<open])
            if let r = attributes.range(of: #"id\s*=\s*"?(\d+)"#, options: .regularExpression) {
                let id = Int(attributes[r].filter(\.isNumber)) ?? -1
                guard id == expected else { throw Failure(file: url.path, line: i + 1, message: "segment id \(id), expected \(expected)") }
            }
            expected += 1
            out.append(String(line[line.index(after: open)..<close.lowerBound]).trimmingCharacters(in: .whitespaces))
        }
        guard !out.isEmpty else { throw Failure(file: url.path, line: nil, message: "has no <seg> lines") }
        return out
    }

    // MARK: - Natural Questions (open)

    /// NQ-open JSONL: `{"question": "...", "answer": ["...", ...]}` per line.
    public static func questions(_ url: URL) throws -> [Question] {
        try jsonLines(url) { obj, line in
            guard let q = obj["question"] as? String else { throw Failure(file: url.path, line: line, message: "expected a string field \"question\"") }
            guard let a = obj["answer"] as? [String], !a.isEmpty else {
                throw Failure(file: url.path, line: line, message: "expected \"answer\" to be a non-empty list of strings")
            }
            return Question(question: q, answers: a)
        }
    }

    static func jsonLines<T>(_ url: URL, _ make: ([String: Any], Int) throws -> T) throws -> [T] {
        var out: [T] = []
        for (i, raw) in try text(url).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty { continue }
            guard let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                throw Failure(file: url.path, line: i + 1, message: "not a JSON object")
            }
            out.append(try make(obj, i + 1))
        }
        guard !out.isEmpty else { throw Failure(file: url.path, line: nil, message: "has no examples") }
        return out
    }
}

/// RFC 4180 CSV: fields separated by commas, optionally quoted with `"` (a doubled `""` inside
/// is a quote), quoted fields may span lines; CRLF or LF line ends.
enum CSV {
    struct Row { var fields: [String]; var line: Int }

    static func parse(_ text: String, file: String) throws -> [CSV.Row] {
        var rows: [Row] = [], fields: [String] = [], field = String.UnicodeScalarView()
        var inQuotes = false, afterQuote = false, line = 1, rowLine = 1
        let scalars = Array(text.unicodeScalars)
        var i = 0
        func endField() { fields.append(String(field)); field = String.UnicodeScalarView(); afterQuote = false }
        while i < scalars.count {
            let c = scalars[i]
            if inQuotes {
                if c == "\"" {
                    if i + 1 < scalars.count && scalars[i + 1] == "\"" { field.append("\""); i += 1 } else { inQuotes = false; afterQuote = true }
                } else {
                    if c == "\n" { line += 1 }
                    field.append(c)
                }
            } else if c == "\"" {
                guard field.isEmpty && !afterQuote else {
                    throw OneShotData.Failure(file: file, line: line, message: "a quote inside an unquoted field (quote the whole field and double inner quotes)")
                }
                inQuotes = true
            } else if c == "," {
                endField()
            } else if c == "\n" || c == "\r" {
                if c == "\r" && i + 1 < scalars.count && scalars[i + 1] == "\n" { i += 1 }
                endField()
                rows.append(Row(fields: fields, line: rowLine))
                fields = []
                line += 1
                rowLine = line
            } else {
                guard !afterQuote else { throw OneShotData.Failure(file: file, line: line, message: "text after a closing quote") }
                field.append(c)
            }
            i += 1
        }
        guard !inQuotes else { throw OneShotData.Failure(file: file, line: rowLine, message: "a quoted field is never closed") }
        if !field.isEmpty || !fields.isEmpty || afterQuote { endField(); rows.append(Row(fields: fields, line: rowLine)) }
        return rows
    }
}
