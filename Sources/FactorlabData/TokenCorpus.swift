import Dispatch
import Foundation
import FactorlabTokenizer

/// A tokenized corpus split into training and validation token streams, cached on disk as
/// nanoGPT-style `train.bin` and `val.bin` (uint16 little-endian) plus `meta.json`.
///
/// Layout of the token stream: every document is preceded by `<|endoftext|>` — the first one too —
/// as llm.c's `fineweb.py` and `tinyshakespeare.py` write it (nanoGPT's `openwebtext/prepare.py`
/// appends it after each document instead; either way exactly one separator lies between
/// neighbours). So each split starts with the separator, and the model always sees a document
/// start after it. Documents are encoded with special tokens off: a literal `<|endoftext|>` in the
/// text is ordinary text, only the separators are the special id. Empty documents are skipped.
/// Token files (`.bin`) in the source are copied verbatim, with no separator added (nanoGPT's
/// files already contain theirs).
///
/// ```swift
/// let tokenizer = try BPETokenizer(directory: URL(fileURLWithPath: "gpt2"))
/// let corpus = try TokenCorpus.prepare(source: DataSource(paths: [URL(fileURLWithPath: "corpora/shakespeare")]),
///                                      tokenizer: tokenizer, cacheDirectory: runFolder.appendingPathComponent("data"))
/// var loader = try ShuffledLoader(tokens: corpus.train, batch: 8, seqLen: 256, seed: 1)
/// ```
public struct TokenCorpus: Sendable {
    /// The training tokens (`train.bin`).
    public let train: TokenStream
    /// The validation tokens (`val.bin`; empty with a tail fraction of 0).
    public let validation: TokenStream
    /// What the cache was made from (nil for a folder opened with ``open(directory:vocabularySize:)`` that has no meta.json).
    public let meta: CorpusMeta?
    /// The folder holding train.bin, val.bin and meta.json.
    public let directory: URL
    /// True when ``prepare(source:tokenizer:cacheDirectory:split:)`` found a matching cache and tokenized nothing.
    public let reusedCache: Bool

    /// Bytes of text tokenized per batch of documents handed to the worker threads; bounds memory.
    static let textBytesPerRound = 32 << 20

    /// Tokenizes `source` into `cacheDirectory`, or reuses what an identical earlier call wrote.
    ///
    /// The cache is reused when `cacheDirectory/meta.json` records the same inputs: the same files
    /// in the same order with the same sizes and modification times (nanoseconds), the same text
    /// field, the same tokenizer (vocab.json and merges.txt hashes) and the same split; and
    /// train.bin and val.bin have the recorded lengths. Anything else re-tokenizes. Files are
    /// written to temporary names and renamed, meta.json last, so an interrupted prepare leaves no
    /// cache that looks valid.
    ///
    /// Documents are tokenized in parallel, one document at a time per worker thread, and written
    /// in document order, so the result does not depend on the number of threads. Each worker has
    /// its own copy of the tokenizer (loaded from the files written for the fingerprint): copies
    /// made with `let` share one piece cache behind one lock, which made two threads slower than one.
    /// Corpora under 2 MB of text are tokenized on the calling thread.
    ///
    /// - Throws: ``DataError``: `.unsupportedTokenizer` if the vocabulary has more than 65,536 ids
    ///   (they do not fit uint16; no uint32 variant is written) or no `<|endoftext|>`;
    ///   `.emptyCorpus` if there are no files or no tokens; the file errors of ``DataSource`` and
    ///   of reading each file; `.writeFailed`.
    public static func prepare(source: DataSource, tokenizer: BPETokenizer, cacheDirectory: URL,
                               split: CorpusSplit = .default) throws -> TokenCorpus {
        try split.validate()
        guard tokenizer.vocabularySize <= 65536 else {
            throw DataError(.unsupportedTokenizer,
                            "the vocabulary has \(tokenizer.vocabularySize) ids; token files store uint16 ids, so at most 65,536")
        }
        guard let endOfText = tokenizer.endOfTextID else {
            throw DataError(.unsupportedTokenizer,
                            "the tokenizer has no \(BPETokenizer.endOfText) token to separate documents; "
                                + "train or load it with specialTokens: [\"\(BPETokenizer.endOfText)\"]")
        }
        let files = try source.files(excluding: cacheDirectory)
        let tokenizerFolder = FileManager.default.temporaryDirectory
            .appendingPathComponent("factorlab-tokenizer-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: tokenizerFolder) }
        let fingerprint = try CorpusMeta.TokenizerFingerprint(tokenizer, endOfTextID: endOfText, writingTo: tokenizerFolder)
        let inputs = CorpusMeta.Inputs(formatVersion: CorpusMeta.currentFormatVersion, files: files,
                                       textField: source.textField, tokenizer: fingerprint, split: split)
        let metaURL = cacheDirectory.appendingPathComponent("meta.json")
        let trainURL = cacheDirectory.appendingPathComponent("train.bin")
        let validationURL = cacheDirectory.appendingPathComponent("val.bin")

        if let data = try? Data(contentsOf: metaURL), let meta = try? JSONDecoder().decode(CorpusMeta.self, from: data),
           meta.inputs == inputs,
           let train = try? TokenStream(contentsOf: trainURL, vocabularySize: tokenizer.vocabularySize, name: "train"),
           train.count == meta.trainTokens,
           let validation = try? TokenStream(contentsOf: validationURL, vocabularySize: tokenizer.vocabularySize, name: "validation"),
           validation.count == meta.validationTokens {
            return TokenCorpus(train: train, validation: validation, meta: meta, directory: cacheDirectory, reusedCache: true)
        }

        do {
            try FileManager.default.createDirectory(at: cacheDirectory, withIntermediateDirectories: true)
        } catch {
            throw DataError(.writeFailed, file: cacheDirectory.path, "cannot create the cache folder: \(error.localizedDescription)")
        }
        // The old meta goes first: from here until the new one is written there is no valid cache.
        if FileManager.default.fileExists(atPath: metaURL.path) {
            do {
                try FileManager.default.removeItem(at: metaURL)
            } catch {
                throw DataError(.writeFailed, file: metaURL.path, "cannot remove the stale cache description: \(error.localizedDescription)")
            }
        }

        let trainWriter = try TokenFileWriter(url: trainURL)
        let validationWriter: TokenFileWriter
        do {
            validationWriter = try TokenFileWriter(url: validationURL)
        } catch {
            trainWriter.abandon()
            throw error
        }
        defer {
            trainWriter.abandon()  // no-ops once finished
            validationWriter.abandon()
        }
        let textBytes = files.filter { $0.kind != .tokens }.reduce(Int64(0)) { $0 + $1.size }
        let tokenizers = [tokenizer] + workerTokenizers(like: tokenizer, from: tokenizerFolder, textBytes: textBytes)
        var router = SplitRouter(split: split, endOfText: endOfText, train: trainWriter, validation: validationWriter)
        var pending: [[UInt8]] = []
        var pendingBytes = 0
        func tokenizePending() throws {
            for tokens in encodeInParallel(pending, tokenizers: tokenizers) { try router.add(tokens) }
            pending.removeAll()
            pendingBytes = 0
        }
        for file in files {
            try DocumentReader.forEachDocument(in: file, textField: source.textField,
                                               vocabularySize: tokenizer.vocabularySize) { document in
                switch document {
                case let .text(bytes):
                    guard !bytes.isEmpty else { return }
                    pending.append(bytes)
                    pendingBytes += bytes.count
                    router.textBytes += bytes.count
                    if pendingBytes >= textBytesPerRound { try tokenizePending() }
                case let .tokens(stream):
                    guard stream.count > 0 else { return }
                    try tokenizePending()
                    try router.add(stream)
                }
            }
        }
        try tokenizePending()
        guard trainWriter.count + validationWriter.count > 0 else {
            throw DataError(.emptyCorpus, "the \(files.count) input file(s) hold no text (first: \(files[0].path))")
        }
        if case let .tail(fraction) = split {
            let tail = Int((Double(trainWriter.count) * fraction).rounded())
            if tail > 0 { try trainWriter.moveTail(tail, to: validationWriter) }
        }
        let meta = CorpusMeta(inputs: inputs, tokenType: "uint16", documentCount: router.documents,
                              trainDocuments: router.trainDocuments, validationDocuments: router.documents - router.trainDocuments,
                              trainTokens: trainWriter.count, validationTokens: validationWriter.count,
                              textBytes: router.textBytes)
        try trainWriter.finish()
        try validationWriter.finish()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let metaData: Data
        do {
            metaData = try encoder.encode(meta)
        } catch {
            throw DataError(.writeFailed, file: metaURL.path, "cannot encode: \(error)")
        }
        try FileSystem.writeAtomically(metaData, to: metaURL)
        return TokenCorpus(train: try TokenStream(contentsOf: trainURL, name: "train"),
                           validation: try TokenStream(contentsOf: validationURL, name: "validation"),
                           meta: meta, directory: cacheDirectory, reusedCache: false)
    }

    /// Opens a folder prepared earlier, by ``prepare(source:tokenizer:cacheDirectory:split:)`` or by
    /// nanoGPT's `prepare.py` (`train.bin` and `val.bin`; meta.json optional).
    ///
    /// - Parameter vocabularySize: when given, every id is checked to be below it.
    /// - Throws: ``DataError`` for a missing or malformed token file or an id out of range.
    public static func open(directory: URL, vocabularySize: Int? = nil) throws -> TokenCorpus {
        let meta = (try? Data(contentsOf: directory.appendingPathComponent("meta.json")))
            .flatMap { try? JSONDecoder().decode(CorpusMeta.self, from: $0) }
        let train = try TokenStream(contentsOf: directory.appendingPathComponent("train.bin"), vocabularySize: vocabularySize)
        let validation = try TokenStream(contentsOf: directory.appendingPathComponent("val.bin"), vocabularySize: vocabularySize)
        return TokenCorpus(train: train, validation: validation, meta: meta, directory: directory, reusedCache: true)
    }
}

/// Sends each document's tokens to the training or validation file.
private struct SplitRouter {
    let split: CorpusSplit
    let endOfText: Int32
    let train: TokenFileWriter
    let validation: TokenFileWriter
    var documents = 0
    var trainDocuments = 0
    var textBytes = 0

    private mutating func writer() -> TokenFileWriter {
        let toValidation = split.isValidation(document: documents) ?? false
        documents += 1
        if !toValidation { trainDocuments += 1 }
        return toValidation ? validation : train
    }

    mutating func add(_ tokens: [Int32]) throws {
        let writer = writer()
        try writer.append([endOfText])
        try writer.append(tokens)
    }

    mutating func add(_ stream: TokenStream) throws {
        try writer().append(stream)
    }
}

/// Independent copies of `tokenizer` for worker threads (none for small corpora or one processor).
private func workerTokenizers(like tokenizer: BPETokenizer, from folder: URL, textBytes: Int64) -> [BPETokenizer] {
    let workers = min(ProcessInfo.processInfo.activeProcessorCount, 8)
    guard workers > 1, textBytes >= 2 << 20 else { return [] }
    let specials = tokenizer.specialTokens.sorted { $0.value < $1.value }.map(\.key)
    var copies: [BPETokenizer] = []
    for _ in 1..<workers {
        guard let copy = try? BPETokenizer(directory: folder, specialTokens: specials),
              copy.vocabularySize == tokenizer.vocabularySize, copy.mergeCount == tokenizer.mergeCount,
              copy.specialTokens == tokenizer.specialTokens else { return [] }
        copies.append(copy)
    }
    return copies
}

/// Hands out indices 0..<count to worker threads.
private final class WorkCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var nextIndex = 0
    private let count: Int

    init(count: Int) { self.count = count }

    func next() -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard nextIndex < count else { return nil }
        nextIndex += 1
        return nextIndex - 1
    }
}

/// A pointer that several threads write through, each to its own index.
private struct SharedSlots<Element>: @unchecked Sendable {
    let base: UnsafeMutablePointer<Element>
}

/// The ids of each document, in order; with several tokenizers, documents are encoded concurrently,
/// worker w using `tokenizers[w]`.
private func encodeInParallel(_ documents: [[UInt8]], tokenizers: [BPETokenizer]) -> [[Int32]] {
    let workers = min(tokenizers.count, documents.count)
    guard workers > 1 else {
        return documents.map { bytes in bytes.withUnsafeBufferPointer { tokenizers[0].encode(utf8: $0) } }
    }
    let slots = UnsafeMutablePointer<[Int32]>.allocate(capacity: documents.count)
    slots.initialize(repeating: [], count: documents.count)
    defer {
        slots.deinitialize(count: documents.count)
        slots.deallocate()
    }
    let shared = SharedSlots(base: slots)
    // Longest documents first, so one long document does not finish last on its own.
    let order = documents.indices.sorted { documents[$0].count > documents[$1].count }
    let counter = WorkCounter(count: documents.count)
    DispatchQueue.concurrentPerform(iterations: workers) { worker in
        while let k = counter.next() {
            let index = order[k]
            shared.base[index] = documents[index].withUnsafeBufferPointer { tokenizers[worker].encode(utf8: $0) }
        }
    }
    return Array(UnsafeBufferPointer(start: slots, count: documents.count))
}
