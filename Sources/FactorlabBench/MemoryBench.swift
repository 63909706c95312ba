import FactorlabTensor
import Foundation

/// This machine's memory read bandwidth, the ceiling of batch-1 generation (which reads every
/// weight once per token): a buffer far larger than the caches is read with `Kernels.streamRead`
/// on one thread and on all workers, each worker reading its own contiguous part.
///
/// The other ceiling is the matrix-vector kernel's own speed: a kernel that spends more
/// instructions per byte than memory delivers (the int8 one converts every weight to float32)
/// cannot reach the bandwidth however the weights stream. ``kernelRates(repeats:progress:)``
/// measures it with the weights in cache, so that the model bench can say which of the two
/// holds generation back.
public enum MemoryBench {
    /// The matrix of the in-cache kernel measurement: [rows, cols], one gpt2-width row per output.
    /// 1024 x 768 is 0.8 MB in int8, 1.6 MB in bf16 and 3.1 MB in float32: in the caches of any
    /// machine this runs on, so repeated products never wait on memory.
    static let inCacheShape = (rows: 1024, cols: 768)

    /// Bytes of weights per second that batch-1's matrix-vector kernel (`Kernels.matVec`,
    /// `Kernels.packedMatMul`) consumes on all workers when the weights are already in cache, for
    /// float32, bf16 and int8.
    public static func kernelRates(repeats: Int, progress: (String) -> Void) throws -> [WeightFormat: Double] {
        try inCacheProducts(inputRows: 1, repeats: repeats, progress: progress).mapValues { $0.weightBytes / $0.seconds / 1e9 }
    }

    /// GFLOP/s of batched generation's kernel (`Kernels.matVecRows` for float32,
    /// `Kernels.packedMatMul` for packed weights) with `inputRows` input rows and the weights in
    /// cache, on all workers: the arithmetic ceiling of a batched generation step, whose weights
    /// (tiny's fit in the last-level cache) are read once for all rows.
    public static func batchedKernelRates(inputRows: Int = 8, repeats: Int, progress: (String) -> Void) throws -> [WeightFormat: Double] {
        let (rows, cols) = inCacheShape
        let flops = Double(2 * rows * cols * inputRows)
        return try inCacheProducts(inputRows: inputRows, repeats: repeats, progress: progress).mapValues { flops / $0.seconds / 1e9 }
    }

    /// Seconds per product of the in-cache matrix with `inputRows` input rows, and the bytes of
    /// its weights, by weight format.
    static func inCacheProducts(inputRows: Int, repeats: Int,
                                progress: (String) -> Void) throws -> [WeightFormat: (seconds: Double, weightBytes: Double)] {
        let (rows, cols) = inCacheShape
        var generator = RandomGenerator(seed: 7)
        let w = Tensor.randomNormal([rows, cols], std: 0.02, using: &generator)
        let x = Tensor(shape: [inputRows, cols], repeating: 0.5), y = Tensor(shape: [inputRows, rows], repeating: 0)
        let perMeasurement = max(10, 200 / inputRows)  // products per timed run: each run lasts milliseconds, not microseconds
        var out: [WeightFormat: (seconds: Double, weightBytes: Double)] = [:]
        for format in WeightFormat.allCases {
            progress("matrix-vector kernel in cache, \(format.rawValue), \(inputRows) input row\(inputRows == 1 ? "" : "s")")
            let packed = format == .float32 ? nil : try PackedWeights(quantizing: w, format: format)
            let bytes = packed.map { Double($0.byteCount) } ?? Double(4 * rows * cols)
            let m = Measurement.of(repeats: repeats) {
                for _ in 0..<perMeasurement {
                    if let packed {
                        Kernels.packedMatMul(packed, x.unsafeBase, ldx: cols, y.unsafeBase, ldy: rows, inputRows: inputRows, accumulate: false)
                    } else if inputRows == 1 {
                        Kernels.matVec(w.unsafeBase, x.unsafeBase, y.unsafeBase, rows: rows, cols: cols, accumulate: false)
                    } else {
                        Kernels.matVecRows(w.unsafeBase, x.unsafeBase, ldx: cols, y.unsafeBase, ldy: rows, rows: rows, cols: cols,
                                           inputRows: inputRows, accumulate: false)
                    }
                }
            }
            out[format] = (m.median / Double(perMeasurement), bytes)
        }
        withExtendedLifetime((w, x, y)) {}
        return out
    }

    /// The figures `memory.matvec_in_cache_gbps_<format>` of ``kernelRates(repeats:progress:)``.
    public static func figures(kernelRates: [WeightFormat: Double]) -> [BenchFigure] {
        let (rows, cols) = inCacheShape
        return WeightFormat.allCases.compactMap { f in
            kernelRates[f].map { BenchFigure("memory.matvec_in_cache_gbps_\(f.rawValue)", $0, "GB/s of weights, \(rows) x \(cols) in cache, all threads") }
        }
    }

    /// The figures `memory.batched<rows>_in_cache_gflops_<format>` of
    /// ``batchedKernelRates(inputRows:repeats:progress:)``.
    public static func batchedFigures(_ rates: [WeightFormat: Double], inputRows: Int = 8) -> [BenchFigure] {
        let (rows, cols) = inCacheShape
        return WeightFormat.allCases.compactMap { f in
            rates[f].map { BenchFigure("memory.batched\(inputRows)_in_cache_gflops_\(f.rawValue)", $0,
                                       "GFLOP/s, \(inputRows) input rows, \(rows) x \(cols) in cache, all threads") }
        }
    }

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
