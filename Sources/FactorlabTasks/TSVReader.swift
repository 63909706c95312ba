import Foundation

/// One non-empty line of a TSV file split into fields.
struct TSVRow {
    /// 1-based line number in the file.
    let line: Int
    let fields: [String]
}

/// Splits GLUE-style TSV bytes into rows: fields separated by tab, no quoting (a `"` is an
/// ordinary character, as GLUE's loaders read with `quoting=csv.QUOTE_NONE`), lines ending in
/// LF or CRLF, an optional UTF-8 byte-order mark at the start. Empty lines are skipped (as
/// Python's `csv.DictReader` does) but still counted in line numbers.
///
/// Works on bytes rather than `String`, where "\r\n" is a single `Character` and a split on
/// "\n" would keep CRLF lines whole.
enum TSVReader {
    static func rows(_ data: Data, file: String) throws -> [TSVRow] {
        var bytes = [UInt8](data)
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
        var rows: [TSVRow] = []
        var lineNumber = 0
        var start = 0
        while start < bytes.count {
            lineNumber += 1
            var end = start
            while end < bytes.count && bytes[end] != 0x0A { end += 1 }
            let next = end + 1
            if end > start && bytes[end - 1] == 0x0D { end -= 1 }
            if end > start {
                guard let text = String(validating: bytes[start..<end], as: UTF8.self) else {
                    throw GLUEDataError(.invalidUTF8, file: file, line: lineNumber, "the line is not valid UTF-8")
                }
                rows.append(TSVRow(line: lineNumber, fields: text.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)))
            }
            start = next
        }
        return rows
    }
}
