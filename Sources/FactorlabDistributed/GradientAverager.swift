import FactorlabAutograd
import FactorlabTensor
import Foundation

/// Averages parameter gradients over the ranks of a data-parallel job, in buckets, overlapped
/// with the backward pass.
///
/// The tape reports each parameter as soon as its gradient is final (``Tape/backward(_:seed:parameterReady:)``);
/// ``parameterReady(_:)`` copies it into the current bucket, and a full bucket starts a
/// non-blocking MPI_Iallreduce while backward goes on with earlier layers. ``finish(scale:)``
/// sends the last bucket, waits for all, and writes the sums times `scale` (1 / (ranks x
/// micro-batches): the mean) back into the gradients. Every rank sees the same parameters in
/// the same order (same model, same tape), so the buckets line up without negotiation.
///
/// Bucket buffers are allocated on the first step and reused afterwards.
public final class GradientAverager {
    public let communicator: Communicator
    /// Target bucket size in floats (a parameter larger than this gets a bucket of its own).
    public let bucketElements: Int

    final class Bucket {
        var buffer: UnsafeMutablePointer<Float>
        var capacity: Int
        var count = 0
        var members: [(parameter: Parameter, offset: Int, count: Int)] = []
        var request: Communicator.Request?

        init(capacity: Int) {
            self.capacity = capacity
            buffer = .allocate(capacity: capacity)
        }

        func reserve(_ n: Int) {
            guard n > capacity else { return }
            buffer.deallocate()
            buffer = .allocate(capacity: n)
            capacity = n
        }

        deinit { buffer.deallocate() }
    }

    private var buckets: [Bucket] = []
    private var filling = 0
    private var started = 0
    private var failure: Error?

    /// Seconds this process spent inside MPI calls during the last step (starting, progressing
    /// and waiting for the reductions; the part overlapped with backward is not blocking).
    public private(set) var lastCommunicationSeconds = 0.0
    /// Seconds of the last step spent blocked in ``finish(scale:)`` waiting for reductions.
    public private(set) var lastWaitSeconds = 0.0
    /// Bytes of gradient reduced per step (the last step).
    public private(set) var lastBytes = 0
    /// Buckets used in the last step.
    public var lastBucketCount: Int { started }

    /// - Parameter bucketBytes: target bucket size (default 8 MiB, 2M floats).
    public init(communicator: Communicator, bucketBytes: Int = 8 << 20) {
        self.communicator = communicator
        bucketElements = max(1, bucketBytes / MemoryLayout<Float>.stride)
    }

    /// Starts a step: empties the buckets.
    public func begin() {
        for b in buckets {
            b.count = 0
            b.members.removeAll(keepingCapacity: true)
            b.request = nil
        }
        filling = 0
        started = 0
        failure = nil
        lastCommunicationSeconds = 0
        lastWaitSeconds = 0
        lastBytes = 0
    }

    /// Adds a parameter whose gradient is final (pass this to the tape's `parameterReady`).
    public func parameterReady(_ p: Parameter) {
        guard failure == nil, let grad = p.grad else { return }
        let n = grad.count
        if filling == buckets.count { buckets.append(Bucket(capacity: max(bucketElements, n))) }
        var bucket = buckets[filling]
        if bucket.count > 0 && bucket.count + n > bucket.capacity {
            launch(bucket)
            filling += 1
            if filling == buckets.count { buckets.append(Bucket(capacity: max(bucketElements, n))) }
            bucket = buckets[filling]
        }
        bucket.reserve(n)
        let dst = bucket.buffer + bucket.count
        grad.withUnsafePointer { dst.update(from: $0, count: n) }
        bucket.members.append((p, bucket.count, n))
        bucket.count += n
        // Let MPI move the reductions already started along.
        progress()
    }

    private func launch(_ bucket: Bucket) {
        let t0 = DispatchTime.now().uptimeNanoseconds
        do { bucket.request = try communicator.startAllreduceSum(bucket.buffer, count: bucket.count) } catch { failure = error }
        started += 1
        lastBytes += bucket.count * MemoryLayout<Float>.stride
        lastCommunicationSeconds += Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
    }

    private func progress() {
        guard started > 0, communicator.usesMPI else { return }
        let t0 = DispatchTime.now().uptimeNanoseconds
        for i in 0..<started where buckets[i].request != nil {
            do {
                if try communicator.test(&buckets[i].request!) { buckets[i].request = nil }
            } catch { failure = error }
        }
        lastCommunicationSeconds += Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
    }

    /// Sends the last bucket, waits for every reduction and replaces each reported gradient by
    /// the reduced sum times `scale`.
    public func finish(scale: Float) throws {
        if filling < buckets.count && buckets[filling].count > 0 { launch(buckets[filling]) }
        let t0 = DispatchTime.now().uptimeNanoseconds
        for i in 0..<started where buckets[i].request != nil {
            do { try communicator.wait(&buckets[i].request!) } catch { failure = error }
            buckets[i].request = nil
        }
        let waited = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        lastWaitSeconds = waited
        lastCommunicationSeconds += waited
        if let failure { throw failure }
        for i in 0..<started {
            let b = buckets[i]
            for (p, offset, n) in b.members {
                guard var g = p.grad else { continue }
                p.grad = nil // one reference, so the write below is in place
                let src = b.buffer + offset
                g.withUnsafeMutablePointer { dst in for j in 0..<n { dst[j] = src[j] * scale } }
                p.grad = g
            }
        }
    }
}
