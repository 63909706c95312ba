import ArgumentParser
import FactorlabData
import FactorlabTokenizer
import Foundation

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Encode a file with a byte-level BPE tokenizer, or train a new vocabulary.",
        discussion: """
            Encode:  factorlab tokenize --tokenizer DIR --input FILE [--json]
            Train:   factorlab tokenize --train CORPUS... --vocab-size 8192 --out DIR
            """)

    @Option(help: "Tokenizer folder (vocab.json + merges.txt) to encode with.")
    var tokenizer: String?
    @Option(help: "Text file to encode.")
    var input: String?
    @Flag(help: "Treat <|endoftext|> in the input as the special token.")
    var allowSpecial = false
    @Option(parsing: .upToNextOption, help: "Files or folders to train a vocabulary on.")
    var train: [String] = []
    @Option(help: "Vocabulary size to train (bytes, merges and <|endoftext|>).")
    var vocabSize: Int = 8192
    @Option(help: "Output folder for a trained vocabulary.")
    var out: String?
    @Flag(help: "Print JSON on stdout (the ids as an array when encoding).")
    var json = false

    func validate() throws {
        guard (257...65536).contains(vocabSize) else {
            throw ValidationError("--vocab-size must be between 257 (the 256 bytes and <|endoftext|>) and 65536, got \(vocabSize)")
        }
    }

    func run() throws {
        if !train.isEmpty {
            guard let out else { throw ValidationError("--train needs --out DIR for the vocab.json and merges.txt it writes") }
            let files = try DataSource(paths: train.map { URL(fileURLWithPath: $0) }).files().filter { $0.kind == .text }
            guard !files.isEmpty else { throw ValidationError("no text files found in \(train.joined(separator: ", "))") }
            let texts = try files.map { TextNormalizer.normalizedString(try Data(contentsOf: URL(fileURLWithPath: $0.path))) }
            let start = Date()
            let tok = try BPETokenizer.train(texts: texts, vocabularySize: vocabSize)
            try tok.write(to: URL(fileURLWithPath: out))
            let result: [String: Any] = ["out": out, "vocab_size": tok.vocabularySize, "merges": tok.mergeCount,
                                         "files": files.count, "bytes": texts.reduce(0) { $0 + $1.utf8.count },
                                         "seconds": Date().timeIntervalSince(start)]
            if json { try Console.printJSON(result) } else { print("wrote \(out)/vocab.json and merges.txt (\(tok.vocabularySize) tokens, \(files.count) files)") }
            return
        }
        guard let tokenizer, let input else {
            throw ValidationError("give --tokenizer DIR and --input FILE to encode, or --train CORPUS --out DIR to train")
        }
        let tok = try BPETokenizer(directory: URL(fileURLWithPath: tokenizer))
        guard let data = FileManager.default.contents(atPath: input) else { throw ValidationError("cannot read \(input)") }
        let ids = tok.encode(TextNormalizer.normalizedString(data), allowSpecial: allowSpecial)
        if json {
            let text = "[" + ids.map(String.init).joined(separator: ",") + "]"
            print(text)
        } else {
            print(ids.map(String.init).joined(separator: " "))
            Console.note("\(ids.count) tokens from \(data.count) bytes")
        }
    }
}
