import Foundation
import XCTest
import FactorlabTokenizer
@testable import FactorlabData

final class TokenCorpusTests: XCTestCase {
    static let smallTexts = ["the cat sat on the mat. ", "the dog sat on the log. ", "a bird in the hand. "]

    func smallTokenizer() throws -> BPETokenizer {
        try BPETokenizer.train(texts: Self.smallTexts, vocabularySize: 300)
    }

    /// The pieces between `<|endoftext|>` separators of a split, decoded.
    func decodedDocuments(_ stream: TokenStream, _ tokenizer: BPETokenizer) throws -> [String] {
        let eot = try XCTUnwrap(tokenizer.endOfTextID)
        let ids = stream.array.map { Int32($0) }
        XCTAssertEqual(ids.first, eot, "every split starts with the separator")
        return try ids.split(separator: eot, omittingEmptySubsequences: false).dropFirst().map { try tokenizer.decode(Array($0)) }
    }

    func modificationTime(_ url: URL) throws -> Int64 {
        try XCTUnwrap(FileSystem.status(url.path)).modificationTime
    }

    func testCacheIsReusedAndInvalidated() throws {
        let folder = try makeTemporaryFolder(self)
        let data = folder.appendingPathComponent("data")
        for i in 0..<4 { try writeFile(data, "doc\(i).txt", "the cat \(i) sat on the mat.") }
        let cache = folder.appendingPathComponent("cache")
        let tokenizer = try smallTokenizer()
        let source = DataSource(paths: [data])

        let first = try TokenCorpus.prepare(source: source, tokenizer: tokenizer, cacheDirectory: cache, split: .everyKthDocument(k: 2))
        XCTAssertFalse(first.reusedCache)
        let meta = try XCTUnwrap(first.meta)
        XCTAssertEqual(meta.documentCount, 4)
        XCTAssertEqual(meta.trainDocuments, 2)
        XCTAssertEqual(meta.validationDocuments, 2)
        XCTAssertEqual(meta.trainTokens, first.train.count)
        XCTAssertEqual(meta.inputs.files.map { URL(fileURLWithPath: $0.path).lastPathComponent },
                       ["doc0.txt", "doc1.txt", "doc2.txt", "doc3.txt"])
        XCTAssertEqual(meta.inputs.tokenizer.vocabularySize, tokenizer.vocabularySize)
        XCTAssertEqual(meta.inputs.tokenizer.endOfTextID, tokenizer.endOfTextID)
        let trainBin = cache.appendingPathComponent("train.bin")
        let metaJSON = cache.appendingPathComponent("meta.json")
        let trainTime = try modificationTime(trainBin)
        let metaBytes = try Data(contentsOf: metaJSON)
        XCTAssertEqual(try Data(contentsOf: trainBin).count, 2 * first.train.count)

        // Same inputs: nothing is tokenized or written.
        let second = try TokenCorpus.prepare(source: source, tokenizer: tokenizer, cacheDirectory: cache, split: .everyKthDocument(k: 2))
        XCTAssertTrue(second.reusedCache)
        XCTAssertEqual(second.meta, meta)
        XCTAssertEqual(second.train.array, first.train.array)
        XCTAssertEqual(second.validation.array, first.validation.array)
        XCTAssertEqual(try modificationTime(trainBin), trainTime)
        XCTAssertEqual(try Data(contentsOf: metaJSON), metaBytes)
        // No temporary files left behind.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: cache.path).sorted(), ["meta.json", "train.bin", "val.bin"])

        // A changed split, a different tokenizer, and a changed file each re-tokenize.
        let tail = try TokenCorpus.prepare(source: source, tokenizer: tokenizer, cacheDirectory: cache, split: .tail(fraction: 0.5))
        XCTAssertFalse(tail.reusedCache)
        let otherTokenizer = try BPETokenizer.train(texts: ["the cat, the cat, the hat"], vocabularySize: 290)
        let retrained = try TokenCorpus.prepare(source: source, tokenizer: otherTokenizer, cacheDirectory: cache, split: .tail(fraction: 0.5))
        XCTAssertFalse(retrained.reusedCache)
        XCTAssertNotEqual(retrained.meta?.inputs.tokenizer, tail.meta?.inputs.tokenizer)
        XCTAssertTrue(try TokenCorpus.prepare(source: source, tokenizer: otherTokenizer, cacheDirectory: cache,
                                              split: .tail(fraction: 0.5)).reusedCache)
        try writeFile(data, "doc3.txt", "the cat 3 sat on the mat, and the dog too.")
        let edited = try TokenCorpus.prepare(source: source, tokenizer: otherTokenizer, cacheDirectory: cache, split: .tail(fraction: 0.5))
        XCTAssertFalse(edited.reusedCache)
        XCTAssertGreaterThan(try XCTUnwrap(edited.meta).textBytes, try XCTUnwrap(retrained.meta).textBytes)
        // A new file in the folder also counts as a change.
        try writeFile(data, "doc4.txt", "more")
        let added = try TokenCorpus.prepare(source: source, tokenizer: otherTokenizer, cacheDirectory: cache, split: .tail(fraction: 0.5))
        XCTAssertFalse(added.reusedCache)
        XCTAssertEqual(added.meta?.documentCount, 5)
        // A damaged cache file (wrong length) is not trusted.
        try writeFile(cache, "val.bin", [1, 0])
        XCTAssertFalse(try TokenCorpus.prepare(source: source, tokenizer: otherTokenizer, cacheDirectory: cache,
                                               split: .tail(fraction: 0.5)).reusedCache)
        // open(directory:) reads what prepare wrote.
        let opened = try TokenCorpus.open(directory: cache, vocabularySize: otherTokenizer.vocabularySize)
        XCTAssertEqual(opened.train.array, added.train.array)
        XCTAssertEqual(opened.meta?.inputs, added.meta?.inputs)
    }

    func testSplitByEveryKthDocument() throws {
        let folder = try makeTemporaryFolder(self)
        let lines = (0..<5).map { "{\"text\": \"the cat \($0)\"}" }.joined(separator: "\n")
        let source = DataSource(paths: [try writeFile(folder, "docs.jsonl", lines)])
        let tokenizer = try smallTokenizer()
        let corpus = try TokenCorpus.prepare(source: source, tokenizer: tokenizer, cacheDirectory: folder.appendingPathComponent("c"),
                                             split: .everyKthDocument(k: 2))
        XCTAssertEqual(try decodedDocuments(corpus.train, tokenizer), ["the cat 0", "the cat 2", "the cat 4"])
        XCTAssertEqual(try decodedDocuments(corpus.validation, tokenizer), ["the cat 1", "the cat 3"])
    }

    func testSplitByDocumentFractionIsSeededAndComplete() throws {
        let folder = try makeTemporaryFolder(self)
        let lines = (0..<200).map { "{\"text\": \"doc \($0)\"}" }.joined(separator: "\n")
        let source = DataSource(paths: [try writeFile(folder, "docs.jsonl", lines)])
        let tokenizer = try smallTokenizer()
        let split = CorpusSplit.documentFraction(fraction: 0.25, seed: 3)
        let corpus = try TokenCorpus.prepare(source: source, tokenizer: tokenizer, cacheDirectory: folder.appendingPathComponent("c"),
                                             split: split)
        let train = try decodedDocuments(corpus.train, tokenizer)
        let validation = try decodedDocuments(corpus.validation, tokenizer)
        let expectedValidation = (0..<200).filter { split.isValidation(document: $0) == true }.map { "doc \($0)" }
        XCTAssertEqual(validation, expectedValidation)
        XCTAssertEqual(Set(train).union(validation), Set((0..<200).map { "doc \($0)" }))
        XCTAssertEqual(train.count + validation.count, 200)
        XCTAssertTrue((30...70).contains(validation.count), "\(validation.count) of 200 with fraction 0.25")
        XCTAssertEqual(corpus.meta?.validationDocuments, validation.count)
        // Another seed picks other documents.
        let other = (0..<200).filter { CorpusSplit.documentFraction(fraction: 0.25, seed: 4).isValidation(document: $0) == true }
        XCTAssertNotEqual(other.map { "doc \($0)" }, expectedValidation)
    }

    func testSplitByTailFraction() throws {
        let folder = try makeTemporaryFolder(self)
        let data = folder.appendingPathComponent("data")
        for i in 0..<3 { try writeFile(data, "d\(i).txt", Self.smallTexts[i]) }
        let tokenizer = try smallTokenizer()
        let source = DataSource(paths: [data])
        let whole = try TokenCorpus.prepare(source: source, tokenizer: tokenizer, cacheDirectory: folder.appendingPathComponent("all"),
                                            split: .tail(fraction: 0))
        XCTAssertEqual(whole.validation.count, 0)
        // The stream is each document preceded by <|endoftext|>, encoded without special tokens.
        let eot = try XCTUnwrap(tokenizer.endOfTextID)
        let expected = Self.smallTexts.flatMap { [eot] + tokenizer.encode($0) }
        XCTAssertEqual(whole.train.array.map { Int32($0) }, expected)

        let split = try TokenCorpus.prepare(source: source, tokenizer: tokenizer, cacheDirectory: folder.appendingPathComponent("tail"),
                                            split: .tail(fraction: 0.3))
        let n = expected.count
        let tail = Int((Double(n) * 0.3).rounded())
        XCTAssertEqual(split.validation.count, tail)
        XCTAssertEqual(split.train.count, n - tail)
        XCTAssertEqual((split.train.array + split.validation.array).map { Int32($0) }, expected)
        XCTAssertEqual(split.meta?.trainTokens, n - tail)
        XCTAssertEqual(split.meta?.validationTokens, tail)
        // The loaders name the split that is too small.
        let error = expectDataError { _ = try SequentialLoader(tokens: split.validation, batch: 4, seqLen: 8) }
        XCTAssertEqual(error?.message.hasPrefix("the validation split has \(tail) tokens, fewer than the B*T+1 = 33"), true)

        XCTAssertEqual(expectDataError {
            _ = try TokenCorpus.prepare(source: source, tokenizer: tokenizer, cacheDirectory: folder, split: .tail(fraction: 1))
        }?.kind, .invalidArgument)
    }

    func testTokenFilesAreCopiedVerbatimAndValidated() throws {
        let folder = try makeTemporaryFolder(self)
        let data = folder.appendingPathComponent("data")
        try writeFile(data, "a.txt", "the cat")
        try TokenStream([1, 2, 3]).write(to: data.appendingPathComponent("b.bin"))
        let tokenizer = try smallTokenizer()
        let eot = try XCTUnwrap(tokenizer.endOfTextID)
        let corpus = try TokenCorpus.prepare(source: DataSource(paths: [data]), tokenizer: tokenizer,
                                             cacheDirectory: data.appendingPathComponent("cache"), split: .tail(fraction: 0))
        XCTAssertEqual(corpus.train.array.map { Int32($0) }, [eot] + tokenizer.encode("the cat") + [1, 2, 3])
        // The cache folder inside the source folder was not read back as input.
        XCTAssertEqual(corpus.meta?.inputs.files.count, 2)
        XCTAssertTrue(try TokenCorpus.prepare(source: DataSource(paths: [data]), tokenizer: tokenizer,
                                              cacheDirectory: data.appendingPathComponent("cache"), split: .tail(fraction: 0)).reusedCache)

        try TokenStream([1, 300, 3]).write(to: data.appendingPathComponent("b.bin"))
        let error = expectDataError {
            _ = try TokenCorpus.prepare(source: DataSource(paths: [data]), tokenizer: tokenizer,
                                        cacheDirectory: folder.appendingPathComponent("c2"), split: .tail(fraction: 0))
        }
        XCTAssertEqual(error?.kind, .tokenOutOfRange)
        XCTAssertEqual(error?.file, data.appendingPathComponent("b.bin").path)
        XCTAssertEqual(error?.offset, 2)
        // The failed prepare left no cache and no temporary files.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("c2").path), [])
    }

    func testEmptyCorpusAndTokenizerWithoutEndOfText() throws {
        let folder = try makeTemporaryFolder(self)
        let data = folder.appendingPathComponent("data")
        try writeFile(data, "empty.txt", [0xEF, 0xBB, 0xBF])
        try writeFile(data, "blank.jsonl", "\n\n")
        let error = expectDataError {
            _ = try TokenCorpus.prepare(source: DataSource(paths: [data]), tokenizer: try self.smallTokenizer(),
                                        cacheDirectory: folder.appendingPathComponent("c"))
        }
        XCTAssertEqual(error?.kind, .emptyCorpus)
        let plain = try BPETokenizer.train(texts: Self.smallTexts, vocabularySize: 280, specialTokens: [])
        XCTAssertEqual(expectDataError {
            _ = try TokenCorpus.prepare(source: DataSource(paths: [data]), tokenizer: plain, cacheDirectory: folder.appendingPathComponent("c"))
        }?.kind, .unsupportedTokenizer)
    }

    /// A real Milton file (CRLF line ends and a byte-order mark) through the whole pipeline.
    func testMiltonEndToEnd() throws {
        let milton = try corpusFolder("milton")
        let files = try FileManager.default.contentsOfDirectory(atPath: milton.path).sorted()
            .map { milton.appendingPathComponent($0) }
        // Pick a file that has both quirks.
        let file = try XCTUnwrap(files.first { url in
            let bytes = (try? Data(contentsOf: url)) ?? Data()
            return bytes.starts(with: [0xEF, 0xBB, 0xBF]) && bytes.contains(0x0D) && bytes.count < 400_000
        }, "no Milton file with CRLF and a BOM under \(milton.path)")
        let raw = try Data(contentsOf: file)
        var expected = String(decoding: raw.dropFirst(3), as: UTF8.self)
        expected = expected.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
        XCTAssertFalse(expected.contains("\r"))
        XCTAssertFalse(expected.hasPrefix("\u{FEFF}"))

        let tokenizer = try BPETokenizer.train(texts: [expected], vocabularySize: 512)
        let folder = try makeTemporaryFolder(self)
        let corpus = try TokenCorpus.prepare(source: DataSource(paths: [file]), tokenizer: tokenizer,
                                             cacheDirectory: folder, split: .tail(fraction: 0.1))
        let eot = try XCTUnwrap(tokenizer.endOfTextID)
        let ids = (corpus.train.array + corpus.validation.array).map { Int32($0) }
        XCTAssertEqual(ids.first, eot)
        XCTAssertEqual(try tokenizer.decode(Array(ids.dropFirst())), expected)
        XCTAssertEqual(ids.filter { $0 == eot }.count, 1)
        XCTAssertLessThan(Double(ids.count), Double(expected.utf8.count) / 1.5, "a 512-token vocabulary should compress by over 1.5×")
        // And into batches: the first batch is the first tokens of the file.
        var loader = try SequentialLoader(tokens: corpus.train, batch: 4, seqLen: 64)
        let batch = loader.next()
        XCTAssertEqual(batch.inputs, Array(ids[0..<256]))
        XCTAssertEqual(batch.targets, Array(ids[1...256]))
        var eval = try EvalLoader(tokens: corpus.validation, batch: 2, seqLen: 64).makeIterator()
        XCTAssertEqual(eval.next()?.inputs, Array(ids[corpus.train.count..<corpus.train.count + 128]))
    }

    /// Above 2 MB of text, documents are encoded by several threads, each with its own tokenizer
    /// copy; the result must equal encoding them one by one in order.
    func testParallelTokenizationMatchesSerial() throws {
        let shakespeare = try corpusFolder("shakespeare")
        let all = try DataSource(paths: [shakespeare]).files()
        var chosen: [URL] = []
        var bytes: Int64 = 0
        for file in all where bytes < 3_000_000 {
            chosen.append(URL(fileURLWithPath: file.path))
            bytes += file.size
        }
        let texts = try chosen.map { TextNormalizer.normalize(try Data(contentsOf: $0)) }
        let tokenizer = try BPETokenizer.train(texts: texts.prefix(3).map { String(decoding: $0, as: UTF8.self) }, vocabularySize: 1000)
        let eot = try XCTUnwrap(tokenizer.endOfTextID)
        let expected = texts.flatMap { text in [eot] + text.withUnsafeBufferPointer { tokenizer.encode(utf8: $0) } }
        let corpus = try TokenCorpus.prepare(source: DataSource(paths: chosen), tokenizer: tokenizer,
                                             cacheDirectory: try makeTemporaryFolder(self), split: .tail(fraction: 0.05))
        XCTAssertEqual(corpus.meta?.documentCount, chosen.count)
        XCTAssertEqual(corpus.train.count + corpus.validation.count, expected.count)
        XCTAssertTrue((corpus.train.array + corpus.validation.array).map { Int32($0) } == expected)
    }

}
