import FactorlabRecords
import Foundation
import Yams

/// Typed, path-aware reading of a YAML recipe. Every error names the recipe file, the key's full
/// dotted path, its line, and what was expected; keys nobody asked for are rejected as unknown.
public final class RecipeReader {
    let file: String
    let path: String
    let mapping: Node.Mapping
    let line: Int?
    private var consumed: Set<String> = []

    init(file: String, path: String, mapping: Node.Mapping, line: Int?) {
        self.file = file
        self.path = path
        self.mapping = mapping
        self.line = line
    }

    /// Parses YAML text, applies `overrides` (`a.b.c=value`, the value read as YAML), and returns
    /// a reader of the root mapping.
    public static func parse(_ text: String, file: String, overrides: [String] = []) throws -> RecipeReader {
        var root: Node
        try RecipeTextLimits.check(text, file: file)
        for o in overrides { try RecipeTextLimits.check(o, file: "--set \(o.prefix(40))") }
        do {
            root = try Yams.compose(yaml: text) ?? Node.mapping(Node.Mapping([]))
        } catch {
            throw TrainingError.recipe("\(file): not valid YAML: \(JSONValues.preview("\(error)", limit: 300))")
        }
        guard case .mapping = root else { throw TrainingError.recipe("\(file): the recipe must be a mapping of sections (model:, data:, ...)") }
        for o in overrides {
            guard let eq = o.firstIndex(of: "="), eq != o.startIndex else {
                throw TrainingError.recipe("--set \(o): expected KEY.PATH=VALUE, e.g. optimizer.lr=3e-4")
            }
            let keys = o[..<eq].split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard keys.allSatisfy({ !$0.isEmpty }) else {
                throw TrainingError.recipe("--set \(o.prefix(80)): the key path has an empty part; expected KEY.PATH=VALUE, e.g. optimizer.lr=3e-4")
            }
            let valueText = String(o[o.index(after: eq)...])
            let value = (try? Yams.compose(yaml: valueText)) ?? nil ?? Node(valueText)
            root = try set(root, keys: keys[...], value: value, whole: String(o[..<eq]))
        }
        guard case .mapping(let m) = root else {
            throw TrainingError.recipe("\(file): the recipe must be a mapping of sections (model:, data:, ...)")
        }
        return RecipeReader(file: file, path: "", mapping: m, line: 1)
    }

    static func set(_ node: Node, keys: ArraySlice<String>, value: Node, whole: String) throws -> Node {
        guard let key = keys.first else { return value }
        guard case .mapping(var m) = node else {
            throw TrainingError.recipe("--set \(whole): '\(key)' is inside a value that is not a section")
        }
        let child = m[Node(key)] ?? Node.mapping(Node.Mapping([]))
        m[Node(key)] = try set(child, keys: keys.dropFirst(), value: value, whole: whole)
        return .mapping(m)
    }

    func full(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func where_(_ node: Node?) -> String {
        if let l = node?.mark?.line { return "\(file):\(l)" }
        return file
    }

    func node(_ key: String) -> Node? {
        consumed.insert(key)
        guard let n = mapping[Node(key)] else { return nil }
        if n.null != nil { return nil }
        return n
    }

    func mismatch(_ key: String, _ n: Node, _ expected: String) -> TrainingError {
        .recipe("\(where_(n)): \(full(key)) must be \(expected), got \(RecipeReader.describe(n))")
    }

    /// A node as a short phrase: a scalar's text (cut to 40 characters), never a whole subtree.
    static func describe(_ n: Node) -> String {
        switch n {
        case .scalar(let s): return "'\(s.string.count > 40 ? String(s.string.prefix(40)) + "…" : s.string)'"
        case .mapping: return "a section"
        case .sequence: return "a list"
        }
    }

    public func string(_ key: String) throws -> String? {
        guard let n = node(key) else { return nil }
        guard case .scalar(let s) = n else { throw mismatch(key, n, "a string") }
        return s.string
    }

    public func double(_ key: String) throws -> Double? {
        guard let n = node(key) else { return nil }
        guard let v = n.float ?? n.int.map(Double.init) ?? n.string.flatMap(Double.init) else { throw mismatch(key, n, "a number") }
        guard v.isFinite, Float(v).isFinite else { throw mismatch(key, n, "a finite number (within float range)") }
        return v
    }

    public func int(_ key: String) throws -> Int? {
        guard let n = node(key) else { return nil }
        if let v = n.int { return v }
        if let d = n.float ?? n.string.flatMap(Double.init), d == d.rounded(), abs(d) < 9e15 { return Int(d) }
        throw mismatch(key, n, "an integer")
    }

    public func bool(_ key: String) throws -> Bool? {
        guard let n = node(key) else { return nil }
        guard let v = n.bool else { throw mismatch(key, n, "true or false") }
        return v
    }

    public func strings(_ key: String) throws -> [String]? {
        guard let n = node(key) else { return nil }
        switch n {
        case .scalar(let s): return [s.string]
        case .sequence(let seq):
            return try seq.map { item in
                guard case .scalar(let s) = item else { throw mismatch(key, item, "a list of strings") }
                return s.string
            }
        default: throw mismatch(key, n, "a string or a list of strings")
        }
    }

    /// `model.linear`: a spec string (`mlp=monarch:4,attn=monarch:4`) or a section of site:
    /// spec entries, in the order written; empty when absent.
    public func linearEntries(_ key: String) throws -> [(site: String, spec: String)] {
        guard let n = node(key) else { return [] }
        switch n {
        case .scalar(let s):
            // One string: a whole LinearPlan spec (site "" means the spec's own entries).
            return [("", s.string)]
        case .mapping(let m):
            return try m.map { k, v in
                guard let site = k.string else { throw mismatch(key, k, "a section of site: kind entries") }
                guard case .scalar(let s) = v else { throw mismatch("\(key).\(site)", v, "a kind such as monarch:4 or lowrank:64@0-5") }
                return (site, s.string)
            }
        case .sequence: throw mismatch(key, n, "a spec string or a section of site: kind entries")
        }
    }

    /// A nested section, or nil when absent.
    public func section(_ key: String) throws -> RecipeReader? {
        guard let n = node(key) else { return nil }
        guard case .mapping(let m) = n else { throw mismatch(key, n, "a section (a mapping of keys)") }
        return RecipeReader(file: file, path: full(key), mapping: m, line: n.mark?.line)
    }

    /// Rejects keys that were never read, naming them and the keys this section accepts.
    public func finish(allowed: [String]) throws {
        for (k, v) in mapping {
            guard let key = k.string else { continue }
            if !allowed.contains(key) {
                throw TrainingError.recipe("\(where_(v)): unknown key \(full(key)); \(path.isEmpty ? "sections" : "keys of \(path)") are: \(allowed.joined(separator: ", "))")
            }
        }
    }

    /// Checks a value against allowed choices.
    public func choice(_ key: String, _ value: String?, _ options: [String]) throws -> String? {
        guard let value else { return nil }
        guard options.contains(value) else {
            throw TrainingError.recipe("\(where_(mapping[Node(key)])): \(full(key)) must be one of \(options.joined(separator: ", ")), got '\(value)'")
        }
        return value
    }

    /// An enum-valued key: one of the type's raw values.
    public func choice<T: RawRepresentable & CaseIterable>(_ key: String, _ type: T.Type) throws -> T? where T.RawValue == String {
        try choice(key, try string(key), T.allCases.map(\.rawValue)).flatMap(T.init(rawValue:))
    }
}

/// The recipe text a run records: the file as written, plus a trailer line with the command-line
/// overrides (`# overrides: key=value ...`), so the run can be rebuilt exactly. Written and read
/// here only.
public enum RecipeText {
    static let trailer = "\n# overrides: "

    /// `text` with its overrides recorded: separated by spaces, or as a JSON array when a value
    /// holds a space.
    public static func recording(_ text: String, overrides: [String]) -> String {
        guard !overrides.isEmpty else { return text }
        if overrides.contains(where: { $0.contains(where: \.isWhitespace) }), let json = try? JSONEncoder().encode(overrides) {
            return text + trailer + String(decoding: json, as: UTF8.self) + "\n"
        }
        return text + trailer + overrides.joined(separator: " ") + "\n"
    }

    /// A recipe file's text; errors say why it cannot be read (missing, a folder, permission,
    /// not UTF-8).
    public static func read(_ url: URL) throws -> String {
        let data: Data
        do { data = try FileReading.contents(of: url) } catch let e as FileReading.Failure {
            throw TrainingError.recipe("\(e.file): cannot read the recipe: \(e.reason)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw TrainingError.recipe("\(url.path): the recipe is not UTF-8 text")
        }
        return text
    }

    /// The file text and the overrides of a recorded recipe.
    public static func split(_ recorded: String) -> (text: String, overrides: [String]) {
        let parts = recorded.components(separatedBy: trailer)
        guard parts.count > 1 else { return (recorded, []) }
        let tail = parts[1].trimmingCharacters(in: .whitespacesAndNewlines)
        if tail.hasPrefix("["), let list = try? JSONDecoder().decode([String].self, from: Data(tail.utf8)) { return (parts[0], list) }
        // Recipes recorded before the JSON form: overrides separated by spaces.
        return (parts[0], tail.split(separator: " ").map(String.init))
    }
}

/// Bounds checked on recipe text before the YAML parser sees it: the parser recurses once per
/// nesting level (deep nesting overflows the stack) and expands aliases into copies (an alias
/// bomb). Recipes need neither, so the text is limited in size and depth, and anchors and
/// aliases (`&name`, `*name`) are refused.
public enum RecipeTextLimits {
    public static let maxBytes = 1 << 20
    public static let maxDepth = 32

    /// Throws a message naming `file`, the line and the limit.
    public static func check(_ text: String, file: String) throws {
        func fail(_ line: Int, _ message: String) -> TrainingError { .recipe("\(file):\(line): \(message)") }
        guard text.utf8.count <= maxBytes else {
            throw TrainingError.recipe("\(file): the recipe is \(text.utf8.count) bytes; recipes are limited to \(maxBytes)")
        }
        let space = UInt8(ascii: " "), tab = UInt8(0x09)
        func isBlank(_ c: UInt8) -> Bool { c == space || c == tab }
        var indents: [Int] = []        // block nesting: indentation of each open level
        var blockScalarIndent: Int?    // inside a `|` or `>` scalar started at this indentation
        var flow = 0                   // open [ and { (flow collections may span lines)
        var quote: UInt8? = nil        // an open quoted scalar (may span lines)
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = index + 1
            var chars = Array(raw.utf8)
            if chars.last == 0x0D { chars.removeLast() }
            var i = 0
            while i < chars.count && isBlank(chars[i]) { i += 1 }
            if quote == nil && flow == 0 {
                if i == chars.count || chars[i] == UInt8(ascii: "#") { continue }
                if let b = blockScalarIndent { if i > b { continue } else { blockScalarIndent = nil } }
                while let last = indents.last, last >= i { indents.removeLast() }
                indents.append(i)
            }
            // Each `- ` that opens a block line opens one more (sequence) level.
            var sequenceLevels = 0
            while quote == nil && flow == 0 && i + 1 < chars.count && chars[i] == UInt8(ascii: "-") && isBlank(chars[i + 1]) {
                sequenceLevels += 1
                i += 2
                while i < chars.count && isBlank(chars[i]) { i += 1 }
            }
            var maxFlow = flow
            // A node starts at the line's first character, after "key: " or "? ", and, inside a
            // flow collection, after "[", "{" and ",".
            var atNodeStart = true
            var valueStart: Int? = nil
            while i < chars.count {
                let c = chars[i]
                if let q = quote {
                    if q == UInt8(ascii: "\"") && c == UInt8(ascii: "\\") { i += 2; continue }
                    if c == q {
                        if q == UInt8(ascii: "'") && i + 1 < chars.count && chars[i + 1] == q { i += 2; continue }
                        quote = nil
                    }
                    i += 1
                    atNodeStart = false
                    continue
                }
                if c == UInt8(ascii: "#") && (i == 0 || isBlank(chars[i - 1])) { break }
                if isBlank(c) { i += 1; continue }
                if atNodeStart {
                    switch c {
                    case UInt8(ascii: "\""), UInt8(ascii: "'"): quote = c
                    case UInt8(ascii: "*"), UInt8(ascii: "&"):
                        let sign = c == UInt8(ascii: "*") ? "*" : "&"
                        throw fail(line, "anchors and aliases (\(sign)name) are not allowed in recipes; write the value out, or quote a string that starts with \(sign)")
                    default: break
                    }
                }
                switch c {
                case UInt8(ascii: "["), UInt8(ascii: "{"):
                    if atNodeStart || flow > 0 { flow += 1; maxFlow = max(maxFlow, flow) }
                case UInt8(ascii: "]"), UInt8(ascii: "}"):
                    if flow > 0 { flow -= 1 }
                default: break
                }
                let next = i + 1 < chars.count ? chars[i + 1] : space
                let separatorFollows = isBlank(next) || i + 1 == chars.count
                if (c == UInt8(ascii: ":") || c == UInt8(ascii: "?")) && separatorFollows {
                    atNodeStart = true
                    if c == UInt8(ascii: ":") && flow == 0 { valueStart = i + 1 }
                } else {
                    atNodeStart = flow > 0 && [UInt8(ascii: "["), UInt8(ascii: "{"), UInt8(ascii: ",")].contains(c)
                }
                i += 1
            }
            let depth = indents.count + sequenceLevels + maxFlow
            guard depth <= maxDepth else { throw fail(line, "nesting depth \(depth) exceeds the limit of \(maxDepth)") }
            // A block scalar header (`key: |`, `|-`, `>+2`, with an optional comment) opens literal lines.
            if quote == nil && flow == 0, let v = valueStart {
                var header = String(decoding: chars[v...], as: UTF8.self)
                if let hash = header.range(of: " #") { header = String(header[..<hash.lowerBound]) }
                header = header.trimmingCharacters(in: .whitespaces)
                if let first = header.first, first == "|" || first == ">",
                   header.dropFirst().allSatisfy({ "+-0123456789".contains($0) }) {
                    blockScalarIndent = indents.last
                }
            }
        }
    }
}
