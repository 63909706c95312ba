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
    /// Documents are tokenized in parallel (Dispatch, one document per task) and written in document order,
    /// so the result does not depend on the number of threads.
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
        var t0 = Date(); var tEncode = 0.0
        let files = try source.files(excluding: cacheDirectory)
        let inputs = CorpusMeta.Inputs(formatVersion: CorpusMeta.currentFormatVersion, files: files,
                                       textField: source.textField,
                                       tokenizer: try CorpusMeta.TokenizerFingerprint(tokenizer, endOfTextID: endOfText),
                                       split: split)
        print("files+fingerprint", Date().timeIntervalSince(t0)); t0 = Date()
        let metaURL = cacheDirectory.appendingPathComponent("meta.json")
        let trainURL = cacheDirectory.appendingPathComponent("train.bin")
        let validationURL = cacheDirectory.appendingPathComponent("val.bin")

        if let data = try? Data(contentsOf: metaURL), let meta = try? JSONDecoder().decode(CorpusMeta.self, from: data),
           meta.inputs == inputs,
           let train = try? TokenStream(contentsOf: trainURL, name: "train"), train.count == meta.trainTokens,
           let validation = try? TokenStream(contentsOf: validationURL, name: "validation"),
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
        var router = SplitRouter(split: split, endOfText: endOfText, train: trainWriter, validation: validationWriter)
        var pending: [[UInt8]] = []
        var pendingBytes = 0
        func tokenizePending() throws {
            let te = Date()
            let encoded = encodeInParallel(pending, tokenizer: tokenizer)
            tEncode += Date().timeIntervalSince(te)
            for tokens in encoded { try router.add(tokens) }
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
        print("read+encode+write", Date().timeIntervalSince(t0), "encode", tEncode); t0 = Date()
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
        print("finish", Date().timeIntervalSince(t0)); t0 = Date()
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

/// A pointer that several threads write through, each to its own index.
private struct SharedSlots<Element>: @unchecked Sendable {
    let base: UnsafeMutablePointer<Element>
}

/// The ids of each document, in order; documents are encoded concurrently.
private func encodeInParallel(_ documents: [[UInt8]], tokenizer: BPETokenizer) -> [[Int32]] {
    guard documents.count > 1 else {
        return documents.map { bytes in bytes.withUnsafeBufferPointer { tokenizer.encode(utf8: $0) } }
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
    DispatchQueue.concurrentPerform(iterations: documents.count) { k in
        let index = order[k]
        shared.base[index] = documents[index].withUnsafeBufferPointer { tokenizer.encode(utf8: $0) }
    }
    return Array(UnsafeBufferPointer(start: slots, count: documents.count))
}
