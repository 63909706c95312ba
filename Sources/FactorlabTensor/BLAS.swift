import COpenBLAS
import Foundation

/// Thin wrappers over OpenBLAS: every matrix product in Factorlab goes through `cblas_sgemm`.
public enum BLAS {
    /// C[m,n] = alpha * op(A)[m,k] * op(B)[k,n] + beta * C, row-major, where op transposes
    /// when the flag is set. `lda`, `ldb`, `ldc` are the row strides of the stored matrices.
    @inlinable
    public static func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                             alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                             b: UnsafePointer<Float>, ldb: Int,
                             beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if m == 0 || n == 0 { return }
        if k == 0 {
            // BLAS leaves C scaled by beta; keep that contract explicitly.
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
            return
        }
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// `batch` independent products with fixed element strides between consecutive matrices.
    @inlinable
    public static func sgemmStridedBatched(batch: Int, transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                                           alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, strideA: Int,
                                           b: UnsafePointer<Float>, ldb: Int, strideB: Int,
                                           beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int, strideC: Int) {
        for i in 0..<batch {
            sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                  a: a + i * strideA, lda: lda, b: b + i * strideB, ldb: ldb,
                  beta: beta, c: c + i * strideC, ldc: ldc)
        }
    }

    /// Like `sgemmStridedBatched`, but the batch is split between the worker threads, each running
    /// single-threaded BLAS: for many mid-sized products (Monarch blocks) this keeps both cores on
    /// whole GEMMs instead of splitting each small GEMM across threads.
    public static func sgemmBatchedAcrossThreads(batch: Int, transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                                                 alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, strideA: Int,
                                                 b: UnsafePointer<Float>, ldb: Int, strideB: Int,
                                                 beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int, strideC: Int) {
        let workers = Swift.min(Parallel.workers, batch)
        if workers <= 1 {
            sgemmStridedBatched(batch: batch, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                                strideA: strideA, b: b, ldb: ldb, strideB: strideB, beta: beta, c: c, ldc: ldc, strideC: strideC)
            return
        }
        let pa = SendablePointer(a), pb = SendablePointer(b), pc = SendablePointer(c)
        withThreads(1) {
            Parallel.onWorkers(workers) { w in
                var i = w
                while i < batch {
                    sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: pa.p + i * strideA, lda: lda,
                          b: pb.p + i * strideB, ldb: ldb, beta: beta, c: pc.p + i * strideC, ldc: ldc)
                    i += workers
                }
            }
        }
    }

    /// OpenBLAS's current thread count.
    public static var threads: Int { Int(openblas_get_num_threads()) }

    /// Sets OpenBLAS's thread count for the rest of the process (e.g. to ``Parallel/workers``
    /// when several ranks share the machine).
    public static func setThreads(_ n: Int) {
        threadLock.lock()
        openblas_set_num_threads(Int32(max(1, n)))
        threadLock.unlock()
    }

    private static let threadLock = NSLock()

    /// Runs `body` with OpenBLAS limited to `n` threads, then restores the previous count. Used by
    /// kernels that call BLAS from several of their own worker threads at once.
    public static func withThreads<R>(_ n: Int, _ body: () throws -> R) rethrows -> R {
        threadLock.lock()
        let previous = openblas_get_num_threads()
        openblas_set_num_threads(Int32(n))
        defer {
            openblas_set_num_threads(previous)
            threadLock.unlock()
        }
        return try body()
    }

    /// The OpenBLAS build configuration string (version, core type).
    public static var configuration: String { String(cString: openblas_get_config()) }

    /// The kernel family OpenBLAS chose when it was loaded ("Haswell", "SkylakeX", "Prescott").
    public static var coreName: String { String(cString: openblas_get_corename()) }

    /// Kernel families without AVX2: what a DYNAMIC_ARCH OpenBLAS falls back to when it does not
    /// recognise the CPU (0.3.21, Debian 12's, takes a Sapphire Rapids Xeon for a Prescott and
    /// runs sgemm at a fifth of the speed its AVX-512 kernels reach there).
    static let preAVX2Cores: Set<String> = ["prescott", "core2", "penryn", "dunnington", "nehalem",
                                            "atom", "sandybridge", "katmai", "coppermine", "northwood",
                                            "banias", "opteron", "opteron_sse3", "barcelona", "bobcat",
                                            "bulldozer", "piledriver", "steamroller", "excavator"]

    /// The OPENBLAS_CORETYPE to set when OpenBLAS loaded a pre-AVX2 kernel family (`loaded`, as
    /// ``coreName`` gives it) on a CPU whose flags (the `flags` line of /proc/cpuinfo, which lists
    /// only what the kernel enabled) support a better one; nil when OpenBLAS's choice stands.
    /// AVX-512 F/CD/BW/DQ/VL selects SkylakeX, or Cooperlake with AVX512_BF16 (the family OpenBLAS
    /// itself gives such CPUs when it knows them); AVX2 with FMA selects Haswell.
    public static func betterCoreType(loaded: String, cpuFlags: Set<String>) -> String? {
        guard preAVX2Cores.contains(loaded.lowercased()) else { return nil }
        let avx512 = ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"]
        if avx512.allSatisfy(cpuFlags.contains) {
            return cpuFlags.contains("avx512_bf16") ? "Cooperlake" : "SkylakeX"
        }
        if cpuFlags.contains("avx2") && cpuFlags.contains("fma") { return "Haswell" }
        return nil
    }

    /// The CPU flags of /proc/cpuinfo's first `flags` line (empty where there is none).
    public static func cpuFlags(cpuinfo: String) -> Set<String> {
        for line in cpuinfo.split(separator: "\n") where line.hasPrefix("flags") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
        }
        return []
    }
}

extension Tensor {
    /// How a 2-D view maps onto a BLAS operand: transpose flag and leading dimension.
    @usableFromInline
    func blasOperand() -> (tensor: Tensor, trans: Bool, ld: Int) {
        precondition(rank == 2)
        if strides[1] == 1 && strides[0] >= Swift.max(1, shape[1]) { return (self, false, strides[0]) }
        if strides[0] == 1 && strides[1] >= Swift.max(1, shape[0]) { return (self, true, strides[1]) }
        let c = contiguous()
        return (c, false, Swift.max(1, shape[1]))
    }

    /// Matrix product following `torch.matmul` for ranks 2 and 3: `[m,k] x [k,n]`,
    /// `[b,m,k] x [b,k,n]` and `[b,m,k] x [k,n]`. Transposed views are passed to BLAS with
    /// a transpose flag, never copied.
    public func matmul(_ other: Tensor) throws -> Tensor {
        switch (rank, other.rank) {
        case (2, 2):
            guard shape[1] == other.shape[0] else {
                throw TensorError("matmul", "inner dimensions differ: \(describe(shape)) x \(describe(other.shape))")
            }
            let m = shape[0], k = shape[1], n = other.shape[1]
            let out = Tensor(uninitializedShape: [m, n])
            let (a, ta, lda) = blasOperand(), (b, tb, ldb) = other.blasOperand()
            withExtendedLifetime((a, b)) {
                BLAS.sgemm(transA: ta, transB: tb, m: m, n: n, k: k,
                           a: a.storage.base + a.offset, lda: lda, b: b.storage.base + b.offset, ldb: ldb,
                           c: out.storage.base, ldc: n)
            }
            return out
        case (3, 2):
            guard shape[2] == other.shape[0] else {
                throw TensorError("matmul", "inner dimensions differ: \(describe(shape)) x \(describe(other.shape))")
            }
            let flat = try reshaped([shape[0] * shape[1], shape[2]])
            return try flat.matmul(other).reshaped([shape[0], shape[1], other.shape[1]])
        case (3, 3):
            guard shape[0] == other.shape[0], shape[2] == other.shape[1] else {
                throw TensorError("matmul", "batched shapes do not match: \(describe(shape)) x \(describe(other.shape))")
            }
            let bsz = shape[0], m = shape[1], k = shape[2], n = other.shape[2]
            let out = Tensor(uninitializedShape: [bsz, m, n])
            let a = batchOperand(), b = other.batchOperand()
            withExtendedLifetime((a.t, b.t)) {
                BLAS.sgemmStridedBatched(batch: bsz, transA: a.trans, transB: b.trans, m: m, n: n, k: k,
                                         a: a.t.storage.base + a.t.offset, lda: a.ld, strideA: a.stride,
                                         b: b.t.storage.base + b.t.offset, ldb: b.ld, strideB: b.stride,
                                         c: out.storage.base, ldc: n, strideC: m * n)
            }
            return out
        default:
            throw TensorError("matmul", "unsupported ranks: \(describe(shape)) x \(describe(other.shape)) (expected 2-D or 3-D operands)")
        }
    }

    /// A 3-D tensor as a batch of BLAS operands.
    @usableFromInline
    func batchOperand() -> (t: Tensor, trans: Bool, ld: Int, stride: Int) {
        if strides[2] == 1 && strides[1] >= Swift.max(1, shape[2]) { return (self, false, strides[1], strides[0]) }
        if strides[1] == 1 && strides[2] >= Swift.max(1, shape[1]) { return (self, true, strides[2], strides[0]) }
        let c = contiguous()
        return (c, false, Swift.max(1, shape[2]), shape[1] * shape[2])
    }
}
