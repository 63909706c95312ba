import FactorlabCheckpoint
import FactorlabData
import FactorlabEval
import FactorlabGPT2
import FactorlabSafetensors
import FactorlabTasks
import FactorlabTokenizer
import FactorlabTraining
import Foundation

// One executable, one fuzz target per reader of untrusted input, chosen by FACTORLAB_FUZZ_TARGET.
// Each target hands the fuzzer's bytes to the reader as the file it reads; any thrown error is a
// correct answer to bad input. A crash, a hang or a runaway allocation is a finding.

/// Readers that take a file get it here (one folder per process).
let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("factorlab-fuzz-\(getpid())")
try? FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)

func file(_ name: String, _ bytes: Data) -> URL {
    let url = scratch.appendingPathComponent(name)
    try? bytes.write(to: url)
    return url
}

/// A byte-level tokenizer (the 256 bytes and <|endoftext|>) for the corpus reader.
let byteTokenizer = try! BPETokenizer.train(texts: ["a"], vocabularySize: 257)

let targets: [String: (Data) -> Void] = [
    "safetensors": { d in _ = try? SafetensorsFile(bytes: Array(d)) },
    "hf-config": { d in _ = try? GPT2Config.huggingFace(file("config.json", d)) },
    "model-config": { d in _ = try? GPT2Config(json: String(decoding: d, as: UTF8.self), source: "fuzz") },
    "checkpoint": { d in _ = try? Checkpoint.read(file("ckpt.h5", d)) },
    "tokenizer": { d in
        // vocab.json, then a NUL byte, then merges.txt.
        let cut = d.firstIndex(of: 0) ?? d.endIndex
        _ = file("vocab.json", Data(d[..<cut]))
        _ = file("merges.txt", cut < d.endIndex ? Data(d[d.index(after: cut)...]) : Data())
        _ = try? BPETokenizer(directory: scratch)
    },
    "recipe": { d in _ = try? Recipe.parse(String(decoding: d, as: UTF8.self), file: "fuzz.yaml") },
    "glue-tsv": { d in _ = try? GLUEDataset(task: .mnli, split: .train, contents: d, fileName: "fuzz.tsv") },
    "coqa": { d in _ = try? CoQADataset.parse(d, fileName: "fuzz.json") },
    "jsonl": { d in
        _ = try? Lambada.load(file("fuzz.jsonl", d))
        let source = DataSource(paths: [file("corpus.jsonl", d)])
        _ = try? TokenCorpus.prepare(source: source, tokenizer: byteTokenizer, cacheDirectory: scratch.appendingPathComponent("cache"),
                                     split: .tail(fraction: 0.1))
        try? FileManager.default.removeItem(at: scratch.appendingPathComponent("cache"))
    },
    "bin": { d in
        if let s = try? TokenStream(contentsOf: file("fuzz.bin", d), vocabularySize: 50257) { _ = s.count }
    },
]

let target: (Data) -> Void = {
    let name = ProcessInfo.processInfo.environment["FACTORLAB_FUZZ_TARGET"] ?? ""
    guard let t = targets[name] else {
        FileHandle.standardError.write(Data("set FACTORLAB_FUZZ_TARGET to one of: \(targets.keys.sorted().joined(separator: ", "))\n".utf8))
        exit(2)
    }
    return t
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    target(data.map { Data(bytes: $0, count: size) } ?? Data())
    return 0
}

// libFuzzer's own main is linked in too (it calls the function above); this one hands it the
// command line, so SwiftPM's renamed entry point works with -sanitize=fuzzer.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

var argc = CommandLine.argc
var argv = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv, fuzzOne))
