import COpenBLAS
import Dispatch
import Foundation
import Synchronization

/// Worker threads for short parallel calls that come in quick succession: the matrix-vector
/// products of generation, dozens per token, each lasting from tens to a few hundred
/// microseconds.
///
/// Dispatch's workers sleep between such calls, and waking one takes tens of microseconds in a
/// VM: a good part of the call. These threads instead spin for ``spinNanoseconds`` after each
/// call, watching for the next one, and only then sleep on a condition variable. Only the
/// matrix-vector kernels use the pool (``Parallel/forRangeSpinning(_:costPerItem:piecesPerWorker:_:)``):
/// training's kernels run on Dispatch and OpenBLAS, so a spinning thread never competes with
/// OpenBLAS's threads for a core in a training step.
///
/// How a call runs. `state` packs (epoch << 32) | (piece count << 16) | next piece. The caller
/// stores the call's body, then publishes a new epoch with the piece count and next = 0.
/// Every thread, the caller included, claims pieces by compare-and-exchange while the epoch is
/// still that call's and pieces are left, runs them, and then counts them in `finished`. The
/// caller returns only once `finished` reaches the piece count. So no thread touches a body after its
/// call has returned, and a worker that wakes late finds the epoch moved on or no piece left.
/// Sleeping is Dekker-style: a worker counts itself in `sleepers` and then re-reads `state`; a
/// caller publishes `state` and then reads `sleepers` (all sequentially consistent), so at least
/// one of them sees the other, and the caller's broadcast, taken under the condition's lock,
/// cannot fall between a worker's last check and its wait.
final class SpinningPool: @unchecked Sendable {
    /// The pool of `Parallel.workers - 1` threads (the caller is the last worker); none with one
    /// worker, or with FACTORLAB_SPIN=0 (then the matrix-vector kernels use Dispatch, as
    /// before the pool: for comparisons).
    static let shared: SpinningPool? = {
        guard Parallel.workers > 1, ProcessInfo.processInfo.environment["FACTORLAB_SPIN"] != "0" else { return nil }
        return SpinningPool(threads: Parallel.workers - 1)
    }()

    /// How long a worker watches for the next call before it sleeps: longer than the gaps
    /// between one token's products (layer norms, attention over the cache, sampling), short
    /// enough that an idle process gives its core back at once.
    static let spinNanoseconds: UInt64 = 200_000

    /// The worker threads started (the caller runs pieces too).
    let threads: Int

    private let state = Atomic<UInt64>(0)
    private let finished = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    private let wake = NSCondition()
    /// One call at a time: a second caller, or a call made from inside a piece, runs on Dispatch.
    private let callLock = NSLock()
    /// The running call's body. Written by the caller before it publishes the epoch; read by a
    /// worker only after it claimed a piece of that epoch (acquiring), and only until the call returns.
    private let body: UnsafeMutablePointer<((Int) -> Void)?>

    init(threads: Int) {
        self.threads = Swift.max(0, threads)
        body = .allocate(capacity: 1)
        body.initialize(to: nil)
        for i in 0..<self.threads {
            let thread = Thread { [self] in workerLoop() }
            thread.name = "factorlab-spin-\(i)"
            thread.start()
        }
    }

    /// Runs `work(piece)` for every piece in 0..<pieces on the pool and the calling thread, and
    /// returns when all have run. Returns false, running nothing, if the pool is busy with
    /// another call (the caller then uses Dispatch).
    func run(pieces: Int, _ work: (Int) -> Void) -> Bool {
        precondition(pieces > 0 && pieces <= 0xFFFF, "SpinningPool: \(pieces) pieces")
        guard callLock.try() else { return false }
        defer { callLock.unlock() }
        withoutActuallyEscaping(work) { escaping in
            body.pointee = escaping
            finished.store(0, ordering: .relaxed)
            let epoch = ((state.load(ordering: .relaxed) >> 32) &+ 1) & 0xFFFF_FFFF
            state.store(epoch << 32 | UInt64(pieces) << 16, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                wake.lock()
                wake.broadcast()
                wake.unlock()
            }
            runPieces(epoch: epoch)
            while finished.load(ordering: .acquiring) < pieces { factorlab_spin_pause() }
            body.pointee = nil
        }
        return true
    }

    /// Claims and runs pieces of call `epoch` until none is left. The body is copied out once
    /// (one retain of its context, not one per piece, on a context both threads share) and
    /// released before the pieces run here are counted in `finished`, all at once: once they
    /// are counted, the caller may return.
    private func runPieces(epoch: UInt64) {
        var v = state.load(ordering: .acquiring)
        var work: ((Int) -> Void)?
        var done = 0
        while v >> 32 == epoch, v & 0xFFFF < (v >> 16) & 0xFFFF {
            let (claimed, current) = state.compareExchange(expected: v, desired: v + 1, ordering: .acquiringAndReleasing)
            if claimed {
                if work == nil { work = body.pointee }
                work!(Int(v & 0xFFFF))
                done += 1
                v += 1
            } else {
                v = current
            }
        }
        work = nil
        if done > 0 { finished.add(done, ordering: .releasing) }
    }

    private func workerLoop() {
        var seen: UInt64 = 0 // the last epoch this thread has taken part in
        while true {
            var v = state.load(ordering: .acquiring)
            if v >> 32 == seen {
                let start = DispatchTime.now().uptimeNanoseconds
                var spins = 0
                while v >> 32 == seen {
                    factorlab_spin_pause()
                    spins += 1
                    if spins & 255 == 0, DispatchTime.now().uptimeNanoseconds - start > Self.spinNanoseconds {
                        sleep(after: seen)
                    }
                    v = state.load(ordering: .acquiring)
                }
            }
            seen = v >> 32
            runPieces(epoch: seen)
        }
    }

    /// Sleeps until a call newer than `epoch` is published.
    private func sleep(after epoch: UInt64) {
        wake.lock()
        sleepers.add(1, ordering: .sequentiallyConsistent)
        while state.load(ordering: .sequentiallyConsistent) >> 32 == epoch { wake.wait() }
        sleepers.subtract(1, ordering: .sequentiallyConsistent)
        wake.unlock()
    }
}
