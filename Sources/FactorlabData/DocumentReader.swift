import Foundation

/// A document as read from a file: normalized UTF-8 text, or pre-tokenized ids.
enum Document {
    case text([UInt8])
    case tokens(TokenStream)
}

/// Reads the documents of one input file (see ``DataSource`` for what each kind holds).
enum DocumentReader {
    /// Calls `body` with each document of `file`, in order.
    ///
    /// - Throws: ``DataError`` naming the file (and line) for an unreadable file, invalid JSON, a
    ///   missing or non-string text field, or a bad token file.
    static func forEachDocument(in file: DataSource.File, textField: String, vocabularySize: Int?,
                                _ body: (Document) throws -> Void) throws {
        let url = URL(fileURLWithPath: file.path)
        if file.kind == .tokens {
            try body(.tokens(TokenStream(contentsOf: url, vocabularySize: vocabularySize)))
            return
        }
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .mappedIfSafe)
        } catch {
            throw DataError(.fileUnreadable, file: file.path, "cannot read: \(error.localizedDescription)")
        }
        switch file.kind {
        case .text, .tokens:
            try body(.text(TextNormalizer.decodeFile(data, path: file.path)))
        case .jsonLines:
            try forEachLine(data, path: file.path, textField: textField, body)
        case .json:
            let first = data.first { !$0.isJSONWhitespace && $0 != 0xEF && $0 != 0xBB && $0 != 0xBF }
            if first == UInt8(ascii: "[") {
                try forEachElement(data, path: file.path, textField: textField, body)
            } else {
                try forEachLine(data, path: file.path, textField: textField, body)
            }
        }
    }

    /// JSON lines: one object per non-blank line.
    private static func forEachLine(_ data: Data, path: String, textField: String, _ body: (Document) throws -> Void) throws {
        var lineNumber = 0
        var bytes = data[...]
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes = bytes.dropFirst(3) }
        for var line in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            if line.allSatisfy(\.isJSONWhitespace) { continue }
            let object: Any
            do {
                // Invalid UTF-8 is repaired first, so it shows up as U+FFFD in the text, not as a parse error.
                object = try JSONSerialization.jsonObject(with: Data(String(decoding: line, as: UTF8.self).utf8),
                                                          options: [.fragmentsAllowed])
            } catch {
                throw DataError(.invalidJSON, file: path, line: lineNumber, "not valid JSON: \(describe(error))")
            }
            try body(.text(text(of: object, field: textField, path: path, line: lineNumber, element: nil)))
        }
    }

    /// A `.json` file holding an array of objects.
    private static func forEachElement(_ data: Data, path: String, textField: String, _ body: (Document) throws -> Void) throws {
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: Data(TextNormalizer.normalize(data)), options: [])
        } catch {
            throw DataError(.invalidJSON, file: path, "not valid JSON: \(describe(error))")
        }
        guard let elements = parsed as? [Any] else {
            throw DataError(.invalidJSON, file: path, "expected a JSON array of objects")
        }
        for (index, element) in elements.enumerated() {
            try body(.text(text(of: element, field: textField, path: path, line: nil, element: index)))
        }
    }

    private static func text(of object: Any, field: String, path: String, line: Int?, element: Int?) throws -> [UInt8] {
        let place = element.map { "array element \($0) (0-based): " } ?? ""
        guard let dictionary = object as? [String: Any] else {
            throw DataError(.invalidJSON, file: path, line: line,
                            "\(place)expected a JSON object with a \(quoted(field)) field, found \(typeName(object))")
        }
        guard let value = dictionary[field] else {
            let present = dictionary.keys.sorted().map(quoted).joined(separator: ", ")
            throw DataError(.missingField, file: path, line: line,
                            "\(place)no field \(quoted(field)) in the JSON object (fields: \(present)); "
                                + "set DataSource.textField to the field that holds the text")
        }
        guard let string = value as? String else {
            throw DataError(.missingField, file: path, line: line,
                            "\(place)field \(quoted(field)) is \(typeName(value)), expected a string")
        }
        return TextNormalizer.normalize(string.utf8)
    }

    private static func typeName(_ value: Any) -> String {
        switch value {
        case is String: return "a string"
        case is [Any]: return "an array"
        case is [String: Any]: return "an object"
        case is NSNull: return "null"
        case is NSNumber: return "a number or boolean"
        default: return "\(type(of: value))"
        }
    }

    private static func describe(_ error: Error) -> String {
        (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? error.localizedDescription
    }

    static func quoted(_ text: String) -> String { "\"" + text + "\"" }
}

extension UInt8 {
    var isJSONWhitespace: Bool { self == 0x20 || self == 0x09 || self == 0x0A || self == 0x0D }
}
