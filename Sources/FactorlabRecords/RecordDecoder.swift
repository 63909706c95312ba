import Foundation

/// A problem in a record: which key (with its parents, `model.n_embd`) and what is wrong. Readers
/// add the file and line.
public struct RecordError: Error, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable { case invalidJSON, missingKey, wrongType, invalidValue }
    public let kind: Kind
    public let key: String?
    public let problem: String

    public init(_ kind: Kind, key: String?, _ problem: String) {
        self.kind = kind
        self.key = key
        self.problem = problem
    }

    public var description: String { (key.map { "key \"\($0)\": " } ?? "") + problem }
}

/// Decodes records from JSON with errors that say what was expected and what was found, by key
/// (`key "seed": expected an integer, found 1.5`), rather than Foundation's coding-path dumps.
/// Integers must be whole numbers; numbers must be finite.
public enum RecordDecoder {
    /// Decodes one JSON object. Values come from Foundation's `JSONDecoder` (whose numbers
    /// round-trip exactly; JSONSerialization's can differ in the last bit); when it refuses the
    /// record, the record is read again here to say which key is wrong and how.
    public static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        do { return try JSONDecoder().decode(type, from: data) } catch let foundation {
            _ = try explain(type, data)
            throw RecordError(.invalidValue, key: nil, describe(foundation))
        }
    }

    /// Decodes through ``ValueDecoder``, whose errors name the key and the expectation.
    static func explain<T: Decodable>(_ type: T.Type, _ data: Data) throws -> T {
        let value: Any
        do { value = try JSONSerialization.jsonObject(with: data, options: []) } catch {
            let text = String(decoding: data.prefix(60), as: UTF8.self)
            throw RecordError(.invalidJSON, key: nil, "not valid JSON (starts \"\(text)\"); each record must be one JSON object")
        }
        guard value is [String: Any] else {
            throw RecordError(.invalidJSON, key: nil, "expected a JSON object, found \(describe(value))")
        }
        return try T(from: ValueDecoder(value: value, path: []))
    }

    static func describe(_ value: Any) -> String { JSONValues.describe(value) }
}

extension JSONValues {
    /// An untrusted JSON value as a short phrase for a message: a string's first 40 characters,
    /// never a whole array or object.
    public static func describe(_ value: Any) -> String {
        switch value {
        case let string as String: return "string \"\(string.prefix(40))\""
        case is NSNull: return "null"
        case is [Any]: return "an array"
        case is [String: Any]: return "an object"
        case let b where JSONValues.isBoolean(b): return "a boolean"
        case let number as NSNumber: return "number \(number)"
        default: return JSONValues.preview("\(type(of: value))", limit: 40)
        }
    }
}

extension RecordDecoder {
    static func keyPath(_ path: [CodingKey]) -> String? {
        path.isEmpty ? nil : path.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }

    static func expectation(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Bool.Type: return "a boolean"
        case is Int.Type, is Int64.Type, is Int32.Type, is UInt64.Type, is UInt32.Type, is UInt.Type: return "an integer"
        case is Double.Type, is Float.Type: return "a number"
        default: return "an object"
        }
    }
}

/// A Decoder over a JSONSerialization value.
private struct ValueDecoder: Decoder {
    let value: Any
    let path: [CodingKey]
    var codingPath: [CodingKey] { path }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func wrong(_ expected: String) -> RecordError {
        RecordError(.wrongType, key: RecordDecoder.keyPath(path), "expected \(expected), found \(RecordDecoder.describe(value))")
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard let object = value as? [String: Any] else { throw wrong("an object") }
        return KeyedDecodingContainer(KeyedContainer<Key>(object: object, path: path))
    }

    func unkeyedContainer() throws -> UnkeyedDecodingContainer {
        guard let array = value as? [Any] else { throw wrong("an array") }
        return UnkeyedContainer(array: array, path: path)
    }

    func singleValueContainer() throws -> SingleValueDecodingContainer { SingleValue(decoder: self) }

    // Scalars, with the messages the records promise.
    func string() throws -> String {
        guard let s = value as? String else { throw wrong("a string") }
        return s
    }

    func number() throws -> NSNumber {
        guard let n = JSONValues.number(value) else { throw wrong("a number") }
        guard n.doubleValue.isFinite else {
            throw RecordError(.invalidValue, key: RecordDecoder.keyPath(path), "expected a finite number, found \(n.doubleValue)")
        }
        return n
    }

    func integer() throws -> Int {
        guard JSONValues.number(value) != nil else { throw wrong("an integer") }
        let d = try number().doubleValue
        guard let i = Int(exactly: d) else {
            throw RecordError(.wrongType, key: RecordDecoder.keyPath(path), "expected an integer, found \(d)")
        }
        return i
    }

    func bool() throws -> Bool {
        guard JSONValues.isBoolean(value), let b = value as? Bool else { throw wrong("a boolean") }
        return b
    }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        switch type {
        case is String.Type: return try string() as! T
        case is Double.Type: return try number().doubleValue as! T
        case is Float.Type: return Float(try number().doubleValue) as! T
        case is Int.Type: return try integer() as! T
        case is Int64.Type: return Int64(try integer()) as! T
        case is Int32.Type:
            guard let v = Int32(exactly: try integer()) else {
                throw RecordError(.invalidValue, key: RecordDecoder.keyPath(path), "expected a 32-bit integer, found \(value)")
            }
            return v as! T
        case is UInt64.Type:
            // Not through Double: 64-bit values (random-generator states) must stay exact.
            let n = try number()
            guard n.doubleValue >= 0, n.doubleValue == n.doubleValue.rounded() else { throw wrong("a non-negative integer") }
            return n.uint64Value as! T
        case is Bool.Type: return try bool() as! T
        default: return try T(from: self)
        }
    }
}

private struct KeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let object: [String: Any]
    let path: [CodingKey]
    var codingPath: [CodingKey] { path }
    var allKeys: [Key] { object.keys.compactMap { Key(stringValue: $0) } }

    func contains(_ key: Key) -> Bool { object[key.stringValue] != nil }

    func child(_ key: Key, expecting type: Any.Type) throws -> ValueDecoder {
        guard let v = object[key.stringValue], !(v is NSNull) else {
            throw RecordError(.missingKey, key: RecordDecoder.keyPath(path + [key]), "missing (expected \(RecordDecoder.expectation(type)))")
        }
        return ValueDecoder(value: v, path: path + [key])
    }

    func decodeNil(forKey key: Key) throws -> Bool { object[key.stringValue] == nil || object[key.stringValue] is NSNull }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try child(key, expecting: type).decode(type) }
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try child(key, expecting: type).bool() }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try child(key, expecting: type).string() }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try child(key, expecting: type).number().doubleValue }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try child(key, expecting: type).integer() }

    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        try decodeNil(forKey: key) ? nil : decode(type, forKey: key)
    }
    func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? { try decodeNil(forKey: key) ? nil : decode(type, forKey: key) }
    func decodeIfPresent(_ type: Double.Type, forKey key: Key) throws -> Double? { try decodeNil(forKey: key) ? nil : decode(type, forKey: key) }
    func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? { try decodeNil(forKey: key) ? nil : decode(type, forKey: key) }
    func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? { try decodeNil(forKey: key) ? nil : decode(type, forKey: key) }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try child(key, expecting: [String: Any].self).container(keyedBy: type)
    }
    func nestedUnkeyedContainer(forKey key: Key) throws -> UnkeyedDecodingContainer {
        try child(key, expecting: [Any].self).unkeyedContainer()
    }
    func superDecoder() throws -> Decoder { ValueDecoder(value: object, path: path) }
    func superDecoder(forKey key: Key) throws -> Decoder { try child(key, expecting: Any.self) }
}

private struct UnkeyedContainer: UnkeyedDecodingContainer {
    let array: [Any]
    let path: [CodingKey]
    var currentIndex = 0
    var codingPath: [CodingKey] { path }
    var count: Int? { array.count }
    var isAtEnd: Bool { currentIndex >= array.count }

    struct Index: CodingKey {
        var intValue: Int?
        var stringValue: String { "[\(intValue ?? 0)]" }
        init(_ i: Int) { intValue = i }
        init?(stringValue: String) { nil }
        init?(intValue: Int) { self.intValue = intValue }
    }

    init(array: [Any], path: [CodingKey]) {
        self.array = array
        self.path = path
    }

    mutating func next() throws -> ValueDecoder {
        guard !isAtEnd else {
            throw RecordError(.missingKey, key: RecordDecoder.keyPath(path), "has only \(array.count) elements")
        }
        defer { currentIndex += 1 }
        return ValueDecoder(value: array[currentIndex], path: path + [Index(currentIndex)])
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd, array[currentIndex] is NSNull else { return false }
        currentIndex += 1
        return true
    }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try next().decode(type) }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try next().container(keyedBy: type)
    }
    mutating func nestedUnkeyedContainer() throws -> UnkeyedDecodingContainer { try next().unkeyedContainer() }
    mutating func superDecoder() throws -> Decoder { try next() }
}

private struct SingleValue: SingleValueDecodingContainer {
    let decoder: ValueDecoder
    var codingPath: [CodingKey] { decoder.path }
    func decodeNil() -> Bool { decoder.value is NSNull }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try decoder.decode(type) }
}

/// Facts about values JSONSerialization returns that Foundation does not expose portably.
public enum JSONValues {
    /// The class JSONSerialization uses for `true` and `false` (on Linux, integers 0 and 1 also
    /// answer `is Bool`, so that test cannot tell `true` from `1`).
    private static let booleanType: Any.Type = {
        let parsed = try? JSONSerialization.jsonObject(with: Data("[true]".utf8)) as? [Any]
        return type(of: parsed?.first ?? NSNull())
    }()

    /// Whether `value` is a JSON `true` or `false`.
    public static func isBoolean(_ value: Any) -> Bool { type(of: value) == booleanType }

    /// A number that is not a boolean, or nil.
    public static func number(_ value: Any) -> NSNumber? {
        guard let n = value as? NSNumber, !isBoolean(value), !(value is String) else { return nil }
        return n
    }

    /// `text` cut to `limit` characters with an ellipsis, for error messages about untrusted input.
    public static func preview(_ text: String, limit: Int = 80) -> String {
        text.count <= limit ? text : String(text.prefix(limit)) + "…"
    }
}

/// Reading a whole file with an error that says why it failed and names the file.
public enum FileReading {
    public struct Failure: Error, CustomStringConvertible {
        public let file: String
        public let reason: String
        public var description: String { "\(file): \(reason)" }
    }

    /// The file's bytes; errors: no such file, a folder, permission denied, or the system's reason.
    public static func contents(of url: URL) throws -> Data {
        let path = url.path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw Failure(file: path, reason: "no such file")
        }
        guard !isDirectory.boolValue else { throw Failure(file: path, reason: "is a folder, not a file") }
        guard FileManager.default.isReadableFile(atPath: path) else { throw Failure(file: path, reason: "permission denied") }
        do { return try Data(contentsOf: url, options: .mappedIfSafe) } catch {
            throw Failure(file: path, reason: "cannot be read (\((error as NSError).localizedDescription))")
        }
    }
}

extension RecordDecoder {
    /// Foundation's `DecodingError` as one short line: the key path and what was wrong.
    public static func describe(_ error: Error) -> String {
        func path(_ c: DecodingError.Context) -> String {
            c.codingPath.isEmpty ? "" : "key \"\(c.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: "."))\": "
        }
        switch error as? DecodingError {
        case .typeMismatch(let type, let c)?: return path(c) + "expected \(expectation(type))"
        case .valueNotFound(let type, let c)?: return path(c) + "missing (expected \(expectation(type)))"
        case .keyNotFound(let key, let c)?: return path(c) + "key \"\(key.stringValue)\" is missing"
        case .dataCorrupted(let c)?: return path(c) + JSONValues.preview(c.debugDescription, limit: 120)
        default: return JSONValues.preview("\(error)", limit: 160)
        }
    }
}

/// Why a file-system call failed, in words (not Foundation's error dump).
public enum FileSystemReason {
    public static func of(_ error: Error, path: String) -> String {
        let ns = error as NSError
        let posix = (ns.userInfo[NSUnderlyingErrorKey] as? NSError).flatMap { $0.domain == NSPOSIXErrorDomain ? $0.code : nil }
            ?? (ns.domain == NSPOSIXErrorDomain ? ns.code : nil)
        switch posix {
        case Int(EACCES)?, Int(EPERM)?: return "permission denied"
        case Int(ENOENT)?: return "a folder on the path does not exist"
        case Int(ENOTDIR)?: return "a part of the path is a file, not a folder"
        case Int(EEXIST)?: return "a file is in the way"
        case Int(ENOSPC)?: return "the disk is full"
        case Int(EROFS)?: return "the file system is read-only"
        default:
            switch ns.code {
            case NSFileWriteNoPermissionError, NSFileReadNoPermissionError: return "permission denied"
            case NSFileWriteOutOfSpaceError: return "the disk is full"
            case NSFileWriteFileExistsError: return "a part of the path is a file, not a folder (a file is in the way)"
            case NSFileWriteVolumeReadOnlyError: return "the file system is read-only"
            case NSFileNoSuchFileError, NSFileReadNoSuchFileError: return "no such file or folder"
            default: return JSONValues.preview(ns.localizedDescription, limit: 120)
            }
        }
    }
}
