import Foundation

/// Typed access to one parsed JSON object, throwing ``StudyDataError``s that name the file, line and key.
struct JSONFields {
    let object: [String: Any]
    let file: String
    let line: Int?
    /// Prefix for nested keys, e.g. `model.`.
    let prefix: String

    init(object: [String: Any], file: String, line: Int? = nil, prefix: String = "") {
        self.object = object
        self.file = file
        self.line = line
        self.prefix = prefix
    }

    /// Parses `data` as one JSON object.
    static func parse(_ data: Data, file: String, line: Int? = nil) throws -> JSONFields {
        let value: Any
        do {
            value = try JSONSerialization.jsonObject(with: data, options: [])
        } catch {
            let text = String(decoding: data.prefix(60), as: UTF8.self)
            throw StudyDataError(.invalidJSON, file: file, line: line,
                                 "not valid JSON (starts \"\(text)\"); each record must be one JSON object")
        }
        guard let object = value as? [String: Any] else {
            throw StudyDataError(.invalidJSON, file: file, line: line, "expected a JSON object, found \(describe(value))")
        }
        return JSONFields(object: object, file: file, line: line)
    }

    func error(_ kind: StudyDataError.Kind, _ key: String, _ problem: String) -> StudyDataError {
        StudyDataError(kind, file: file, line: line, key: prefix + key, problem)
    }

    /// The raw value, nil when the key is absent or null.
    func raw(_ key: String) -> Any? {
        guard let value = object[key], !(value is NSNull) else { return nil }
        return value
    }

    func optionalDouble(_ key: String) throws -> Double? {
        guard let value = raw(key) else { return nil }
        guard let number = value as? NSNumber else {
            throw error(.wrongType, key, "expected a number, found \(Self.describe(value))")
        }
        let double = number.doubleValue
        guard double.isFinite else { throw error(.invalidValue, key, "expected a finite number, found \(double)") }
        return double
    }

    func double(_ key: String) throws -> Double {
        guard let value = try optionalDouble(key) else { throw missing(key, "a number") }
        return value
    }

    func optionalInt(_ key: String) throws -> Int? {
        guard let double = try optionalDouble(key) else { return nil }
        guard let int = Int(exactly: double) else {
            throw error(.wrongType, key, "expected an integer, found \(double)")
        }
        return int
    }

    func int(_ key: String) throws -> Int {
        guard let value = try optionalInt(key) else { throw missing(key, "an integer") }
        return value
    }

    func optionalString(_ key: String) throws -> String? {
        guard let value = raw(key) else { return nil }
        guard let string = value as? String else {
            throw error(.wrongType, key, "expected a string, found \(Self.describe(value))")
        }
        return string
    }

    func string(_ key: String) throws -> String {
        guard let value = try optionalString(key) else { throw missing(key, "a string") }
        return value
    }

    func optionalObject(_ key: String) throws -> JSONFields? {
        guard let value = raw(key) else { return nil }
        guard let nested = value as? [String: Any] else {
            throw error(.wrongType, key, "expected an object, found \(Self.describe(value))")
        }
        return JSONFields(object: nested, file: file, line: line, prefix: prefix + key + ".")
    }

    func object(_ key: String) throws -> JSONFields {
        guard let value = try optionalObject(key) else { throw missing(key, "an object") }
        return value
    }

    /// Checks a number read with `read` against `isValid`, naming the requirement on failure.
    func check<T>(_ key: String, _ value: T, _ requirement: String, _ isValid: (T) -> Bool) throws -> T {
        guard isValid(value) else { throw error(.invalidValue, key, "must be \(requirement), found \(value)") }
        return value
    }

    private func missing(_ key: String, _ what: String) -> StudyDataError {
        error(.missingKey, key, "missing (expected \(what))")
    }

    static func describe(_ value: Any) -> String {
        switch value {
        case let string as String: return "string \"\(string.prefix(40))\""
        case is NSNull: return "null"
        case is [Any]: return "an array"
        case is [String: Any]: return "an object"
        case let number as NSNumber: return "number \(number)"
        case is Bool: return "a boolean"
        default: return "\(type(of: value))"
        }
    }
}
