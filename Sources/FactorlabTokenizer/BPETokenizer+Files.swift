import FactorlabRandom
import Foundation

/// Reading and writing the two-file format OpenAI and Hugging Face ship: vocab.json + merges.txt.
extension BPETokenizer {
    /// Loads a tokenizer from a vocabulary and a merge list.
    ///
    /// - Parameters:
    ///   - vocabURL: vocab.json (GPT-2's encoder.json): a JSON object mapping each token, written
    ///     with ``ByteEncoder``'s characters, to its integer id. It must contain all 256 byte tokens.
    ///   - mergesURL: merges.txt (GPT-2's vocab.bpe): one merge per line, two tokens separated by one
    ///     space, in rank order. A first line starting with `#version` and blank lines are skipped;
    ///     CRLF line ends and a UTF-8 byte-order mark are accepted.
    ///   - specialTokens: tokens that `encode(_:allowSpecial: true)` maps to their single id (those
    ///     not in the vocabulary are ignored). Defaults to GPT-2's `<|endoftext|>`.
    /// - Throws: ``TokenizerError`` naming the file (and line) for a missing or unreadable file,
    ///   malformed JSON, a merge line that is not two tokens, or a merge token not in the vocabulary.
    public init(vocabURL: URL, mergesURL: URL, specialTokens: [String] = [BPETokenizer.endOfText]) throws {
        let vocabulary = try Self.readVocabulary(vocabURL)
        let merges = try Self.readMerges(mergesURL)
        let model = try BPEModel(vocabulary: vocabulary, merges: merges, specialTokens: specialTokens,
                                 vocabFile: vocabURL.path, mergesFile: mergesURL.path)
        self.init(model: model)
    }

    /// Loads `vocab.json` and `merges.txt` from a folder (as saved by Hugging Face or ``write(to:)``).
    public init(directory: URL, specialTokens: [String] = [BPETokenizer.endOfText]) throws {
        try self.init(vocabURL: directory.appendingPathComponent("vocab.json"),
                      mergesURL: directory.appendingPathComponent("merges.txt"),
                      specialTokens: specialTokens)
    }

    /// Writes `vocab.json` and `merges.txt` into `directory` (created if needed), in the format
    /// that Hugging Face `tokenizers` (`models.BPE.from_file`) and `transformers`
    /// (`GPT2TokenizerFast.from_pretrained`) load: vocab.json ordered by id, merges.txt starting
    /// with `#version: 0.2`. Identical tokenizers give byte-identical files.
    /// vocab.json and merges.txt exactly as ``write(to:)`` writes them.
    func serialized() -> (vocab: String, merges: String) {
        var json = "{"
        var first = true
        for (id, token) in model.tokens.enumerated() {
            guard let token else { continue }
            json += first ? "" : ","
            first = false
            json += Self.jsonString(token) + ":" + String(id)
        }
        json += "}"
        var merges = "#version: 0.2\n"
        for (left, right) in model.merges {
            // Both ids come from the vocabulary, so their texts exist.
            merges += (model.tokens[Int(left)] ?? "") + " " + (model.tokens[Int(right)] ?? "") + "\n"
        }
        return (json, merges)
    }

    /// FNV-1a of vocab.json and of merges.txt as written (`vocab-hash/merges-hash`): identical for
    /// identical tokenizers, recorded in checkpoints so a model is never paired with another
    /// tokenizer by mistake.
    public var fingerprint: String {
        let (json, merges) = serialized()
        var a = FNV1a64(), b = FNV1a64()
        a.update(Array(json.utf8))
        b.update(Array(merges.utf8))
        return a.hex + "/" + b.hex
    }

    public func write(to directory: URL) throws {
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw TokenizerError(.writeFailed, file: directory.path, "cannot create the folder: \(error.localizedDescription)")
        }
        let (json, merges) = serialized()
        for (name, text) in [("vocab.json", json), ("merges.txt", merges)] {
            let url = directory.appendingPathComponent(name)
            do {
                try Data(text.utf8).write(to: url, options: .atomic)
            } catch {
                throw TokenizerError(.writeFailed, file: url.path, "cannot write: \(error.localizedDescription)")
            }
        }
    }

    // MARK: Parsing

    static func readFile(_ url: URL, what: String) throws -> Data {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw TokenizerError(.fileUnreadable, file: url.path,
                                 "no such file; expected the \(what) (vocab.json and merges.txt, as shipped with GPT-2 "
                                     + "or written by BPETokenizer.write(to:))")
        }
        guard !isDirectory.boolValue else {
            throw TokenizerError(.fileUnreadable, file: url.path, "is a folder, expected the \(what)")
        }
        do {
            var data = try Data(contentsOf: url)
            if data.starts(with: [0xEF, 0xBB, 0xBF]) { data = data.dropFirst(3) }
            return data
        } catch {
            throw TokenizerError(.fileUnreadable, file: url.path, "cannot read the \(what): \(error.localizedDescription)")
        }
    }

    static func readVocabulary(_ url: URL) throws -> [String: Int] {
        let data = try readFile(url, what: "vocabulary")
        do {
            return try JSONDecoder().decode([String: Int].self, from: data)
        } catch let DecodingError.dataCorrupted(context) {
            let underlying = context.underlyingError.map { " (\(describe($0)))" } ?? ""
            throw TokenizerError(.malformedVocabulary, file: url.path,
                                 "malformed JSON: \(context.debugDescription)\(underlying)")
        } catch let DecodingError.typeMismatch(_, context) {
            let key = context.codingPath.last.map { " at token \(quoted($0.stringValue))" } ?? ""
            throw TokenizerError(.malformedVocabulary, file: url.path,
                                 "expected a JSON object mapping token strings to integer ids\(key): \(context.debugDescription)")
        } catch {
            throw TokenizerError(.malformedVocabulary, file: url.path,
                                 "expected a JSON object mapping token strings to integer ids: \(describe(error))")
        }
    }

    private static func describe(_ error: Error) -> String {
        (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(error)"
    }

    static func readMerges(_ url: URL) throws -> [(left: String, right: String, line: Int)] {
        let data = try readFile(url, what: "merge list")
        var merges: [(left: String, right: String, line: Int)] = []
        var lineNumber = 0
        for var lineBytes in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            if lineBytes.last == UInt8(ascii: "\r") { lineBytes = lineBytes.dropLast() }
            if lineBytes.isEmpty { continue }
            guard let line = String(bytes: lineBytes, encoding: .utf8) else {
                throw TokenizerError(.malformedMerge, file: url.path, line: lineNumber, "the line is not valid UTF-8")
            }
            if lineNumber == 1 && line.hasPrefix("#version") { continue }
            let parts = line.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw TokenizerError(.malformedMerge, file: url.path, line: lineNumber,
                                     "expected two tokens separated by one space, found \(quoted(line))")
            }
            merges.append((String(parts[0]), String(parts[1]), lineNumber))
        }
        return merges
    }

    /// A JSON string literal: `"`, `\` and control characters escaped, everything else as UTF-8.
    static func jsonString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                out += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count)
                    + String(scalar.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
