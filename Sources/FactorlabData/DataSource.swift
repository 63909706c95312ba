import Foundation

/// Where training text comes from: a list of files and folders, each file read according to its
/// extension.
///
/// | extension | kind | documents |
/// | --- | --- | --- |
/// | `.txt`, `.text`, `.md` (and any other extension when the file is named explicitly) | ``FileKind/text`` | the whole file is one document |
/// | `.jsonl` | ``FileKind/jsonLines`` | one document per non-blank line: the string field ``textField`` of a JSON object |
/// | `.json` | ``FileKind/json`` | a JSON array of objects (one document each), or, if the file does not start with `[`, JSON lines |
/// | `.bin` | ``FileKind/tokens`` | pre-tokenized uint16 little-endian ids (nanoGPT's `prepare.py` format, or llm.c's with its 1024-byte header), taken verbatim |
///
/// Folders are read recursively, depth first, entries sorted by name at each level (so `a/z.txt`
/// comes before `b.txt`). In folders only files with the extensions above are read; hidden
/// entries (names starting with `.`) are skipped, as are other files (a `README` or `.csv` in a
/// data folder is ignored, not guessed at). Name a file explicitly to read it as text whatever
/// its extension. Symbolic links are followed, each folder visited once.
///
/// ```swift
/// let source = DataSource(paths: [URL(fileURLWithPath: "corpora/shakespeare"), URL(fileURLWithPath: "extra.jsonl")])
/// let files = try source.files()
/// ```
public struct DataSource: Sendable, Equatable {
    /// How a file's contents become documents; see the table above.
    public enum FileKind: String, Codable, Sendable {
        case text
        case jsonLines
        case json
        case tokens
    }

    /// One input file, with what identifies its contents for the token cache.
    public struct File: Codable, Equatable, Sendable {
        /// The file's path as found (folders expanded, not resolved further).
        public var path: String
        public var kind: FileKind
        /// Size in bytes.
        public var size: Int64
        /// Modification time, nanoseconds since 1970.
        public var modificationTime: Int64
    }

    /// Files and folders to read, in order.
    public var paths: [URL]
    /// The JSON field holding the text in `.jsonl` / `.json` files.
    public var textField: String

    public init(paths: [URL], textField: String = "text") {
        self.paths = paths
        self.textField = textField
    }

    /// Extensions read when found in a folder, and the kind each gives.
    public static let kindsByExtension: [String: FileKind] = [
        "txt": .text, "text": .text, "md": .text, "jsonl": .jsonLines, "json": .json, "bin": .tokens,
    ]

    /// The kind of a file named `path` (any unknown extension is plain text).
    public static func kind(of path: String) -> FileKind {
        kindsByExtension[URL(fileURLWithPath: path).pathExtension.lowercased()] ?? .text
    }

    /// The input files in reading order.
    ///
    /// - Parameter excluded: a folder whose contents are never read (the token cache, so that its
    ///   `train.bin` is not taken for input when it lies inside a source folder).
    /// - Throws: ``DataError`` `.fileUnreadable` for a path that does not exist or is neither a
    ///   regular file nor a folder; `.emptyCorpus` when no file is found at all.
    public func files(excluding excluded: URL? = nil) throws -> [File] {
        let excludedPath = excluded.map { $0.standardizedFileURL.path }
        var found: [File] = []
        var visited = Set<[UInt64]>()
        for url in paths {
            let path = url.path
            guard let status = FileSystem.status(path) else {
                throw DataError(.fileUnreadable, file: path, "no such file or folder")
            }
            if status.isDirectory {
                try collect(folder: path, excluded: excludedPath, visited: &visited, into: &found)
            } else if status.isRegular {
                found.append(File(path: path, kind: Self.kind(of: path), size: status.size,
                                  modificationTime: status.modificationTime))
            } else {
                throw DataError(.fileUnreadable, file: path, "is neither a regular file nor a folder")
            }
        }
        guard !found.isEmpty else {
            let extensions = Self.kindsByExtension.keys.sorted().map { "." + $0 }.joined(separator: ", ")
            throw DataError(.emptyCorpus, "no input files in \(paths.map(\.path)); folders are searched for \(extensions)")
        }
        return found
    }

    private func collect(folder: String, excluded: String?, visited: inout Set<[UInt64]>, into found: inout [File]) throws {
        guard let identity = FileSystem.status(folder)?.identity, visited.insert(identity).inserted else { return }
        if let excluded, URL(fileURLWithPath: folder).standardizedFileURL.path == excluded { return }
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: folder)
        } catch {
            throw DataError(.fileUnreadable, file: folder, "cannot list the folder: \(error.localizedDescription)")
        }
        for name in names.sorted() where !name.hasPrefix(".") {
            let path = (folder as NSString).appendingPathComponent(name)
            guard let status = FileSystem.status(path) else { continue }  // a dangling link
            if status.isDirectory {
                try collect(folder: path, excluded: excluded, visited: &visited, into: &found)
            } else if status.isRegular, let kind = Self.kindsByExtension[URL(fileURLWithPath: name).pathExtension.lowercased()] {
                found.append(File(path: path, kind: kind, size: status.size, modificationTime: status.modificationTime))
            }
        }
    }
}
