import CMPI
import Foundation

/// A failure of the MPI layer (loading Open MPI, or a call returning an error code).
public struct DistributedError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { "distributed: \(message)" }
}

/// The processes of a data-parallel job and the collectives training needs.
///
/// Started by `mpirun -np N factorlab ...`, each process gets `Communicator.world()`: its rank
/// (0 ..< size) in MPI_COMM_WORLD, on Open MPI loaded at run time (`CMPI`), so a plain
/// `factorlab` run needs no MPI at all and uses ``single``.
///
/// Every collective must be called by all ranks in the same order with the same sizes; rank 0
/// alone writes files and prints. MPI's default error handler aborts the whole job on a
/// communication failure, and `mpirun` terminates the other ranks when one exits abnormally,
/// so a dead rank never leaves the others waiting forever.
public final class Communicator: Sendable {
    public let rank: Int
    public let size: Int
    /// True when collectives go through MPI (launched by mpirun), even with a single rank.
    public let usesMPI: Bool

    private init(rank: Int, size: Int, usesMPI: Bool) {
        self.rank = rank
        self.size = size
        self.usesMPI = usesMPI
    }

    /// One process, no MPI: every collective is the identity.
    public static let single = Communicator(rank: 0, size: 1, usesMPI: false)

    public var isRoot: Bool { rank == 0 }

    /// Whether this process was started by Open MPI's launcher (mpirun/mpiexec set
    /// OMPI_COMM_WORLD_SIZE in each process's environment).
    public static var launchedByMPI: Bool { ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"] != nil }

    /// The job's communicator: MPI_COMM_WORLD when launched by mpirun (MPI is initialised once,
    /// on the first call), otherwise ``single``.
    public static func world() throws -> Communicator { try worldResult.get() }

    private static let worldResult: Result<Communicator, DistributedError> = {
        guard launchedByMPI else { return .success(single) }
        var buffer = [CChar](repeating: 0, count: 512)
        guard fl_mpi_load(&buffer, buffer.count) == 0 else {
            return .failure(DistributedError(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)))
        }
        guard fl_mpi_init() == 0 else { return .failure(DistributedError("MPI_Init_thread failed")) }
        var rank: Int32 = 0, size: Int32 = 0
        guard fl_mpi_rank(&rank) == 0, fl_mpi_size(&size) == 0 else {
            return .failure(DistributedError("MPI_Comm_rank/MPI_Comm_size failed"))
        }
        TerminationNotice.install(rank: Int(rank))
        return .success(Communicator(rank: Int(rank), size: Int(size), usesMPI: true))
    }()

    /// The MPI library's version string ("" without MPI).
    public var libraryVersion: String {
        usesMPI ? String(cString: fl_mpi_library_version()).trimmingCharacters(in: .whitespacesAndNewlines) : ""
    }

    private func check(_ code: Int32, _ call: String) throws {
        guard code == 0 else { throw DistributedError("\(call) failed on rank \(rank) with MPI error \(code)") }
    }

    /// Sums `count` floats at `buffer` over all ranks, in place.
    public func allreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws {
        guard usesMPI else { return }
        var done = 0
        while done < count {
            let n = min(count - done, Int(Int32.max))
            try check(fl_mpi_allreduce_sum_float(buffer + done, Int32(n)), "MPI_Allreduce")
            done += n
        }
    }

    /// Sums a few doubles over all ranks (losses, counts).
    public func allreduceSum(_ values: [Double]) throws -> [Double] {
        guard usesMPI, !values.isEmpty else { return values }
        var v = values
        try v.withUnsafeMutableBufferPointer { try check(fl_mpi_allreduce_sum_double($0.baseAddress, Int32($0.count)), "MPI_Allreduce") }
        return v
    }

    /// A pending non-blocking reduction (``startAllreduceSum(_:count:)``).
    public struct Request {
        var handle: UnsafeMutableRawPointer?
    }

    /// Starts summing `count` floats at `buffer` over all ranks in place; the buffer must stay
    /// untouched until ``wait(_:)`` returns. Without MPI it completes at once.
    public func startAllreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws -> Request {
        guard usesMPI else { return Request(handle: nil) }
        precondition(count <= Int(Int32.max), "bucket larger than 2^31 floats")
        var handle: UnsafeMutableRawPointer?
        try check(fl_mpi_iallreduce_sum_float(buffer, Int32(count), &handle), "MPI_Iallreduce")
        return Request(handle: handle)
    }

    /// Lets MPI make progress on `request`; true once it has completed.
    public func test(_ request: inout Request) throws -> Bool {
        guard usesMPI, request.handle != nil else { return true }
        var done: Int32 = 0
        try check(fl_mpi_test(&request.handle, &done), "MPI_Test")
        return done != 0
    }

    /// Blocks until `request` has completed.
    public func wait(_ request: inout Request) throws {
        guard usesMPI, request.handle != nil else { return }
        try check(fl_mpi_wait(&request.handle), "MPI_Wait")
    }

    public func barrier() throws {
        guard usesMPI else { return }
        try check(fl_mpi_barrier(), "MPI_Barrier")
    }

    /// Ends the whole job (every rank) with `code`: for an error on one rank, which the others
    /// could otherwise wait on forever.
    public func abort(code: Int32) -> Never {
        if usesMPI { _ = fl_mpi_abort(code) }
        exit(code)
    }

    /// MPI_Finalize; call once, after the last collective, on every rank.
    public func finalize() {
        if usesMPI { _ = fl_mpi_finalize() }
    }
}

/// When one rank dies, mpirun sends SIGTERM to the others (SIGKILL a few seconds later). This
/// handler says so on stderr before exiting, so the job's log names what happened.
enum TerminationNotice {
    nonisolated(unsafe) static var message: UnsafeMutablePointer<CChar>?
    nonisolated(unsafe) static var length = 0

    static func install(rank: Int) {
        let text = "\nfactorlab rank \(rank): stopped by mpirun (another rank failed or the job was interrupted); the last checkpoint on disk is kept\n"
        message = strdup(text)
        length = text.utf8.count
        signal(SIGTERM) { _ in
            // Only async-signal-safe calls here.
            if let m = TerminationNotice.message { _ = write(2, m, TerminationNotice.length) }
            _exit(143)
        }
    }
}
