import Dispatch
import Foundation

/// A raw pointer that may cross into worker threads. Each kernel that uses it writes disjoint
/// ranges from each worker, which is what makes the `@unchecked Sendable` sound.
public struct SendablePointer<T>: @unchecked Sendable {
    public let p: UnsafeMutablePointer<T>
    @inlinable public init(_ p: UnsafeMutablePointer<T>) { self.p = p }
    @inlinable public init(_ p: UnsafePointer<T>) { self.p = UnsafeMutablePointer(mutating: p) }
}

/// Lets a closure that only touches disjoint memory per worker cross into worker threads.
public struct UncheckedSendable<T>: @unchecked Sendable {
    public let value: T
    @inlinable public init(_ value: T) { self.value = value }
}

/// Work splitting over the machine's cores for element-wise and row-wise kernels.
///
/// Kernels run on at most `Parallel.workers` threads. OpenBLAS keeps its own pool, which is idle
/// while these kernels run (kernels never call BLAS from inside a parallel region unless they
/// switch BLAS to one thread with `BLAS.withThreads(1)`), so the cores are not oversubscribed.
public enum Parallel {
    /// Number of worker threads: FACTORLAB_THREADS if set; otherwise the active processor count
    /// (2 on the reference machine) shared among the MPI ranks on this machine
    /// (OMPI_COMM_WORLD_LOCAL_SIZE), so that data-parallel ranks do not oversubscribe the cores.
    public static let workers: Int = {
        let env = ProcessInfo.processInfo.environment
        if let n = env["FACTORLAB_THREADS"].flatMap(Int.init), n > 0 { return n }
        let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)
        if let local = env["OMPI_COMM_WORLD_LOCAL_SIZE"].flatMap(Int.init), local > 1 { return max(1, cores / local) }
        return cores
    }()

    /// Runs `body` over disjoint sub-ranges of `0..<count`, in parallel when the work is large
    /// enough (`count * costPerItem` above about 32k operations) to pay for waking threads.
    ///
    /// `piecesPerWorker` > 1 cuts the range into that many pieces per worker, which the threads
    /// claim as they come: a worker that wakes late (tens of microseconds in a VM) then takes the
    /// pieces left instead of leaving its whole half to run after the caller's. For kernels
    /// whose outputs do not depend on the split (the matrix-vector products of generation),
    /// where one call lasts only a few times the wake-up.
    @inlinable
    public static func forRange(_ count: Int, costPerItem: Int = 1, piecesPerWorker: Int = 1, _ body: (Range<Int>) -> Void) {
        guard let n = pieceCount(count, costPerItem: costPerItem, piecesPerWorker: piecesPerWorker) else {
            body(0..<count)
            return
        }
        if prefersSpinningPool, runOnSpinningPool(pieces: n, { i in body(count * i / n ..< count * (i + 1) / n) }) { return }
        dispatch(count, pieces: n, body)
    }

    /// `body` over `pieces` sub-ranges of `0..<count` on Dispatch's workers.
    @usableFromInline
    static func dispatch(_ count: Int, pieces n: Int, _ body: (Range<Int>) -> Void) {
        withoutActuallyEscaping(body) { escaping in
            let work = UncheckedSendable(escaping)
            DispatchQueue.concurrentPerform(iterations: n) { i in
                let lo = count * i / n, hi = count * (i + 1) / n
                work.value(lo..<hi)
            }
        }
    }

    /// True inside ``onSpinningPool(_:)``: then every parallel loop here, not only the
    /// matrix-vector products', runs on ``SpinningPool``'s threads when they are free.
    @TaskLocal public static var prefersSpinningPool = false

    /// Runs `body` with every kernel's parallel loop on the spinning pool: for generation's cached
    /// forward passes, where the pool's worker spins between the products, and a Dispatch worker
    /// woken for a GELU or a layer norm of a few rows would wait for a core the spinner holds
    /// (on tiny at batch 8, GELU took 31 us a call on Dispatch).
    public static func onSpinningPool<T>(_ body: () throws -> T) rethrows -> T {
        try $prefersSpinningPool.withValue(true, operation: body)
    }

    /// ``forRange(_:costPerItem:piecesPerWorker:_:)`` on ``SpinningPool``'s threads, which spin
    /// for a moment after each call instead of sleeping: for short calls that follow each other
    /// closely (generation's matrix-vector products, dozens per token), where waking a Dispatch
    /// worker each time costs a good part of the call. Falls back to Dispatch when the pool is
    /// busy (a call from another thread, or from inside a piece).
    @inlinable
    public static func forRangeSpinning(_ count: Int, costPerItem: Int = 1, piecesPerWorker: Int = 1, _ body: (Range<Int>) -> Void) {
        guard let n = pieceCount(count, costPerItem: costPerItem, piecesPerWorker: piecesPerWorker) else {
            body(0..<count)
            return
        }
        if !runOnSpinningPool(pieces: n, { i in body(count * i / n ..< count * (i + 1) / n) }) {
            dispatch(count, pieces: n, body)
        }
    }

    /// How many pieces to cut `count` items into: nil when the work (`count * costPerItem`, about
    /// 32k operations or less) is too small to pay for waking threads; otherwise up to
    /// `piecesPerWorker` per worker, never more than the items, nor than the spinning pool's
    /// 16-bit piece counter takes.
    @inlinable
    static func pieceCount(_ count: Int, costPerItem: Int, piecesPerWorker: Int) -> Int? {
        let chunks = min(workers, max(1, count * costPerItem / 32_768))
        if chunks <= 1 || count < 2 { return nil }
        return min(chunks * max(1, piecesPerWorker), count, 0xFFFF)
    }

    @usableFromInline
    static func runOnSpinningPool(pieces: Int, _ work: (Int) -> Void) -> Bool {
        SpinningPool.shared?.run(pieces: pieces, work) ?? false
    }

    /// Runs `body(worker)` for each worker index in 0..<n, on up to `n` threads, and waits for all
    /// of them (a thread may run several indices one after another, so bodies must not wait for
    /// each other).
    @inlinable
    public static func onWorkers(_ n: Int, _ body: (Int) -> Void) {
        if n <= 1 { body(0); return }
        if prefersSpinningPool, runOnSpinningPool(pieces: n, body) { return }
        withoutActuallyEscaping(body) { escaping in
            let work = UncheckedSendable(escaping)
            DispatchQueue.concurrentPerform(iterations: n) { work.value($0) }
        }
    }
}
