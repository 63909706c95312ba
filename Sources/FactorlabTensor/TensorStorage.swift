import Foundation

#if os(Linux)
import COpenBLAS  // its shim header brings in malloc.h (mallopt)
#endif

/// Process-wide settings and readings that Factorlab's library never changes on its own: an
/// executable opts in at start-up (the `factorlab` CLI does).
public enum ProcessTuning {
    /// glibc serves blocks above 128 KiB (adaptively up to 32 MiB) with fresh mmap calls and
    /// returns them on free, so every large tensor of every step would fault its pages in again,
    /// zeroed by the kernel. This keeps large blocks in the heap (and the heap untrimmed) so the
    /// next step reuses them. Call once, before the first tensor is allocated.
    public static func keepLargeBlocksInHeap() {
        #if os(Linux)
        mallopt(M_MMAP_THRESHOLD, 1 << 30)
        mallopt(M_TRIM_THRESHOLD, 1 << 30)
        #endif
    }

    /// Returns the heap's free pages to the system (glibc: malloc_trim(0)), which
    /// ``keepLargeBlocksInHeap()`` otherwise keeps: a measurement of resident memory that follows
    /// freeing (a float32 model quantized in place) then sees what is live, not what was.
    public static func releaseFreedMemory() {
        #if os(Linux)
        _ = malloc_trim(0)
        #endif
    }

    /// Starts measuring the memory of what follows: returns freed heap pages to the system
    /// (``releaseFreedMemory()``), starts a new peak (``resetPeakResidentBytes()``) and returns the
    /// resident size at the start, so that the peak and its growth from here count what is live
    /// now and what the measured work adds, not what was freed before.
    @discardableResult
    public static func startMemoryMeasurement() -> Int {
        releaseFreedMemory()
        let resident = residentBytes()
        resetPeakResidentBytes()
        return resident
    }

    /// Peak resident set size of this process so far, in bytes (Linux: VmHWM; 0 elsewhere).
    public static func peakResidentBytes() -> Int { statusField("VmHWM:") }

    /// Starts a new peak: from now on ``peakResidentBytes()`` reports the highest resident size
    /// since this call (Linux: writes 5 to /proc/self/clear_refs; elsewhere nothing happens).
    public static func resetPeakResidentBytes() {
        #if os(Linux)
        if let h = FileHandle(forWritingAtPath: "/proc/self/clear_refs") {
            h.write(Data("5".utf8))
            try? h.close()
        }
        #endif
    }

    /// Current resident set size, in bytes (VmRSS).
    public static func residentBytes() -> Int { statusField("VmRSS:") }

    static func statusField(_ name: String) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix(name) {
            return (line.split(separator: " ").compactMap { Int($0) }.first ?? 0) * 1024
        }
        return 0
    }
}

/// A 64-byte aligned, heap-allocated buffer of `Float`, shared by value-type tensors.
///
/// Tensors hold storage by reference and copy it on write (see `Tensor.makeUniqueContiguous`), so two
/// tensors never observe each other's mutations. Storage is never resized.
public final class TensorStorage: @unchecked Sendable {
    /// Number of floats in the buffer.
    public let count: Int
    /// Start of the buffer. Valid for `count` floats while the storage lives.
    public let base: UnsafeMutablePointer<Float>

    /// Allocates uninitialized storage for `count` floats.
    public init(uninitializedCount count: Int) {
        // Checked even in -Ounchecked builds: a bad size must stop, not corrupt memory.
        if count < 0 || count > Int.max / MemoryLayout<Float>.stride - 64 { fatalError("invalid tensor storage size \(count)") }
        self.count = count
        var raw: UnsafeMutableRawPointer? = nil
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        let rc = posix_memalign(&raw, 64, bytes)
        guard rc == 0, let raw else { fatalError("out of memory allocating \(bytes) bytes for a tensor") }
        base = raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    /// Allocates storage for `count` floats, all set to `value`.
    public convenience init(count: Int, repeating value: Float) {
        self.init(uninitializedCount: count)
        if value == 0 {
            memset(base, 0, count * MemoryLayout<Float>.stride)
        } else {
            base.initialize(repeating: value, count: count)
        }
    }

    /// A fresh copy of `count` floats starting at `base + offset` of another storage.
    public convenience init(copying source: UnsafePointer<Float>, count: Int) {
        self.init(uninitializedCount: count)
        memcpy(base, source, count * MemoryLayout<Float>.stride)
    }

    deinit { free(base) }
}
