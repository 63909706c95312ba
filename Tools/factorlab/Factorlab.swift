import ArgumentParser
import FactorlabTensor
import Foundation

/// `factorlab`: train, finetune, evaluate and benchmark dense and factorized GPT-2 models.
/// Results go to stdout (one JSON object with `--json`), progress to stderr.
@main
struct Factorlab: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "factorlab",
        abstract: "Dense and factorized (low-rank, butterfly, Monarch) GPT-2 on the CPU.",
        subcommands: [Pretrain.self, Resume.self, Finetune.self, Generate.self, Evaluate.self, Tokenize.self, ImportHF.self,
                      ExportHF.self, Factorize.self, Quantize.self, Score.self, Serve.self, Profile.self, Report.self, Bench.self, SweepCommand.self])

    /// Process-wide settings the library leaves to its executable: OpenBLAS's idle threads sleep
    /// (below), and large tensor blocks stay in the heap between steps (``ProcessTuning``).
    /// Every failure exits with status 1 (usage errors included) after its message on stderr;
    /// `--help` and `--version` exit 0.
    static func main() {
        BLASThreads.sleepWhenIdle()
        ProcessTuning.keepLargeBlocksInHeap()
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            guard exitCode(for: error) != .success else { exit(withError: error) }
            FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
            Foundation.exit(1)
        }
    }
}

/// OpenBLAS's worker threads spin for a while after each product, waiting for the next one; in a
/// training step that time belongs to Factorlab's own element-wise kernels, which then run on
/// cores the spinning threads contend for. OpenBLAS reads OPENBLAS_THREAD_TIMEOUT only when it is
/// loaded, so the executable sets it to the shortest wait (2^4 cycles) and re-executes itself once
/// (measured on the default recipe: 16% more tokens/s, half the system time). A value the user
/// set is left alone.
enum BLASThreads {
    static func sleepWhenIdle() {
        #if os(Linux)
        guard getenv("OPENBLAS_THREAD_TIMEOUT") == nil else { return }
        setenv("OPENBLAS_THREAD_TIMEOUT", "4", 1)
        let args = CommandLine.arguments
        var cargs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) }
        cargs.append(nil)
        execv("/proc/self/exe", &cargs)
        // execv returns only on failure: carry on with the default OpenBLAS behaviour.
        for p in cargs { free(p) }
        #endif
    }
}
