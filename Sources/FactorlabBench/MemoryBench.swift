import FactorlabTensor
import Foundation

/// This machine's memory read bandwidth, the ceiling of batch-1 generation (which reads every
/// weight once per token): a buffer far larger than the caches is read with `Kernels.streamRead`
/// on one thread and on all workers, each worker reading its own contiguous part.
public enum MemoryBench {
    /// Figures `memory.read_gbps_1_thread`, `memory.read_gbps_all_threads` (and the thread count).
    public static func run(megabytes: Int = 512, repeats: Int, progress: (String) -> Void) -> [BenchFigure] {
        let count = megabytes << 18  // floats
        let buffer = Tensor(shape: [count], repeating: 1)  // touched, so the pages exist
        let base = SendablePointer(buffer.unsafeBase)
        var out: [BenchFigure] = []
        for threads in [1, Parallel.workers] {
            progress("memory read, \(threads) thread(s)")
            let sink = SinkBox()
            let m = Measurement.of(repeats: repeats) {
                let per = (count + threads - 1) / threads
                Parallel.onWorkers(threads) { w in
                    let lo = w * per, hi = min(count, lo + per)
                    if lo < hi { sink.add(Kernels.streamRead(base.p + lo, hi - lo)) }
                }
            }
            let gbps = Double(count * 4) / m.median / 1e9
            out.append(BenchFigure(threads == 1 ? "memory.read_gbps_1_thread" : "memory.read_gbps_all_threads", gbps, "GB/s"))
            if threads > 1 { out.append(BenchFigure("memory.threads", Double(threads), "")) }
            if sink.value.isNaN { out.append(BenchFigure("memory.checksum", Double(sink.value), "")) }
        }
        withExtendedLifetime(buffer) {}
        return out
    }

    /// Keeps the sums alive (and the reads with them), behind a lock.
    final class SinkBox: @unchecked Sendable {
        private let lock = NSLock()
        private(set) var value: Float = 0
        func add(_ x: Float) { lock.lock(); value += x; lock.unlock() }
    }
}
