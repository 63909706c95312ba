import FactorlabGPT2
import FactorlabTensor
import FactorlabRecords
import FactorlabTokenizer
import Foundation

/// Opening a model from the places users keep them: a Factorlab checkpoint (`.h5`), a run folder
/// (its newest checkpoint), or a Hugging Face folder (config.json + model.safetensors).
public enum ModelFiles {
    public struct Loaded {
        public let model: GPT2Model
        /// Where the weights came from (the file actually read).
        public let source: URL
        /// Checkpoint contents when loaded from one (recipe, progress, projection).
        public let checkpoint: CheckpointContents?
        /// A folder with vocab.json and merges.txt found beside the model, if any.
        public let tokenizerDirectory: URL?

        /// Refuses a quantized model (`factorlab quantize`) for `purpose` (training, finetuning,
        /// projection): its weights are inference-only.
        public func requireFloatWeights(for purpose: String) throws {
            let format = model.weightFormat
            guard format == .float32 else {
                throw GPT2Error.modelFile(file: source.path, message: "holds \(format) weights (factorlab quantize): quantized models are for inference only (eval, generate, bench); \(purpose) needs the float32 checkpoint it was made from")
            }
        }
    }

    public static func load(_ path: String) throws -> Loaded {
        let url = URL(fileURLWithPath: path)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw GPT2Error.modelFile(file: url.path, message: "no such file or folder (expected a .h5 checkpoint, a run folder or a Hugging Face folder)")
        }
        if !isDir.boolValue {
            let (model, contents) = try Checkpoint.loadModel(url)
            return Loaded(model: model, source: url, checkpoint: contents, tokenizerDirectory: tokenizerBeside(url.deletingLastPathComponent()))
        }
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("config.json").path) {
            return Loaded(model: try GPT2Model.loadHuggingFace(url), source: url, checkpoint: nil, tokenizerDirectory: tokenizerBeside(url))
        }
        if let latest = try CheckpointFiles.latest(in: url) {
            let (model, contents) = try Checkpoint.loadModel(latest)
            return Loaded(model: model, source: latest, checkpoint: contents, tokenizerDirectory: tokenizerBeside(url))
        }
        throw GPT2Error.modelFile(file: url.path, message: "folder has neither config.json (Hugging Face) nor checkpoints (ckpt-*.h5)")
    }

    /// `dir` itself or `dir/tokenizer` when it holds vocab.json and merges.txt.
    public static func tokenizerBeside(_ dir: URL) -> URL? {
        for candidate in [dir, dir.appendingPathComponent("tokenizer")] {
            let fm = FileManager.default
            if fm.fileExists(atPath: candidate.appendingPathComponent("vocab.json").path),
               fm.fileExists(atPath: candidate.appendingPathComponent("merges.txt").path) {
                return candidate
            }
        }
        return nil
    }

    /// Copies vocab.json and merges.txt from `source` into `destination` (created if needed),
    /// replacing older copies; nothing to do when both are the same folder. The source is read
    /// and checked as a tokenizer first, and each file is written to a temporary name and renamed
    /// over the old one, so a failure never leaves the destination without a tokenizer.
    public static func copyTokenizer(from source: URL, to destination: URL) throws {
        guard source.standardizedFileURL != destination.standardizedFileURL else { return }
        _ = try BPETokenizer(directory: source)
        let fm = FileManager.default
        do { try fm.createDirectory(at: destination, withIntermediateDirectories: true) } catch {
            throw GPT2Error.modelFile(file: destination.path, message: "cannot create the tokenizer folder: \(FileSystemReason.of(error, path: destination.path))")
        }
        for f in ["vocab.json", "merges.txt"] {
            let dest = destination.appendingPathComponent(f)
            do {
                try FileReading.contents(of: source.appendingPathComponent(f)).write(to: dest, options: .atomic)
            } catch let e as FileReading.Failure {
                throw GPT2Error.modelFile(file: e.file, message: e.reason)
            } catch {
                throw GPT2Error.modelFile(file: dest.path, message: "cannot write: \(FileSystemReason.of(error, path: dest.path))")
            }
        }
    }

    /// The tokenizer from `explicit` or found beside the model; an error says how to provide one.
    public static func tokenizer(_ explicit: String?, for loaded: Loaded) throws -> BPETokenizer {
        guard let dir = explicit.map({ URL(fileURLWithPath: $0) }) ?? loaded.tokenizerDirectory else {
            throw GPT2Error.input("no tokenizer found beside \(loaded.source.path); pass --tokenizer DIR (a folder with vocab.json and merges.txt)")
        }
        let tok = try BPETokenizer(directory: dir)
        if let recorded = loaded.checkpoint?.tokenizerFingerprint, recorded != tok.fingerprint {
            throw GPT2Error.input("\(loaded.source.path) was trained with another tokenizer than the one in \(dir.path) (fingerprint \(recorded), found \(tok.fingerprint)); pass --tokenizer with the run's own tokenizer folder")
        }
        guard tok.vocabularySize <= loaded.model.config.vocabSize else {
            throw GPT2Error.input("tokenizer in \(dir.path) has \(tok.vocabularySize) tokens, more than the model's vocabulary of \(loaded.model.config.vocabSize)")
        }
        return tok
    }
}
