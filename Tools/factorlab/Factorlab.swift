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
    /// and its kernels match the CPU (``OpenBLASSettings``), and large tensor blocks stay in the
    /// heap between steps (``ProcessTuning``).
    /// Every failure exits with status 1 (usage errors included) after its message on stderr;
    /// `--help` and `--version` exit 0.
    static func main() {
        OpenBLASSettings.applyByReexecuting()
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

/// Settings OpenBLAS reads only when it is loaded, so the executable sets them and re-executes
/// itself once (a value the user set is left alone):
/// - OPENBLAS_THREAD_TIMEOUT: OpenBLAS's worker threads spin for a while after each product,
///   waiting for the next one; in a training step that time belongs to Factorlab's own
///   element-wise kernels, which then run on cores the spinning threads contend for. The shortest
///   wait (2^4 cycles) measured 16% more tokens/s on the default recipe, half the system time.
/// - OPENBLAS_CORETYPE: a DYNAMIC_ARCH OpenBLAS that does not recognise the CPU falls back to
///   its Prescott (SSE3) kernels; on a Sapphire Rapids Xeon, Debian 12's OpenBLAS 0.3.21 did, and
///   sgemm 2048^3 ran at 61 GFLOP/s against 278 with the AVX-512 kernels the CPU's flags allow
///   (``BLAS/betterCoreType(loaded:cpuFlags:)``). FACTORLAB_BLAS_CORE_FALLBACK then records what
///   OpenBLAS had chosen, for the bench header.
enum OpenBLASSettings {
    static func applyByReexecuting() {
        #if os(Linux)
        var changed = false
        if getenv("OPENBLAS_THREAD_TIMEOUT") == nil {
            setenv("OPENBLAS_THREAD_TIMEOUT", "4", 1)
            changed = true
        }
        if getenv("OPENBLAS_CORETYPE") == nil,
           let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) {
            let loaded = BLAS.coreName
            if let better = BLAS.betterCoreType(loaded: loaded, cpuFlags: BLAS.cpuFlags(cpuinfo: cpuinfo)) {
                setenv("OPENBLAS_CORETYPE", better, 1)
                setenv("FACTORLAB_BLAS_CORE_FALLBACK", loaded, 1)
                changed = true
            }
        }
        guard changed else { return }
        let args = CommandLine.arguments
        var cargs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) }
        cargs.append(nil)
        execv("/proc/self/exe", &cargs)
        // execv returns only on failure: carry on with the default OpenBLAS behaviour.
        for p in cargs { free(p) }
        #endif
    }
}
