import FactorlabTensor
import Foundation

/// A trainable tensor that owns its gradient.
///
/// Layers hold parameters; reading `parameter.variable` inside `Tape.record` makes a leaf on
/// the recording tape, and `Tape.backward` adds the leaf's gradient into `grad`.
public final class Parameter {
    /// Hugging Face-style dotted name, e.g. `h.3.attn.c_attn.weight`.
    public var name: String
    /// The float32 values. For a packed parameter (``packed``) no float32 copy is kept: reading
    /// `value` dequantizes the packed weights into a fresh tensor each time (correct everywhere,
    /// and what the paths without a packed kernel do once per product); the products that know
    /// packed weights never read it. Assigning a value drops the packed form.
    public var value: Tensor {
        get { stored ?? packed!.dequantized() }
        set {
            stored = newValue
            packed = nil
        }
    }
    private var stored: Tensor?
    /// Accumulated gradient, nil until a backward pass reaches this parameter.
    public var grad: Tensor?
    /// False for frozen parameters: they enter the tape as constants.
    public var requiresGrad: Bool
    /// Low-precision weights for inference (`factorlab quantize`): when set they are the
    /// parameter's only storage (the float32 copy is released), so a quantized model's resident
    /// weights are its packed bytes. Products with few rows read them directly
    /// (``Variable/linear(_:weight:bias:)``, the block products, the embedding lookup); the rest
    /// dequantize a tile or a factor at a time.
    public private(set) var packed: PackedWeights?

    public init(_ name: String, _ value: Tensor, requiresGrad: Bool = true) {
        self.name = name
        self.stored = value
        self.requiresGrad = requiresGrad
    }

    /// Makes `packed` this parameter's storage and releases the float32 values. Its shape must be
    /// the parameter's.
    public func pack(_ packed: PackedWeights) {
        precondition(packed.shape == shape, "pack \(name): packed shape \(packed.shape) is not \(shape)")
        self.packed = packed
        stored = nil
    }

    /// Drops the accumulated gradient (cheap: no memory is touched).
    public func zeroGrad() { grad = nil }

    /// This parameter as a variable: a leaf on the recording tape, or a constant outside one (a
    /// packed constant when packed: its float32 value is only formed if an operation asks).
    public var variable: Variable {
        if requiresGrad, let tape = Tape.current { return tape.leaf(self) }
        if let stored { return Variable(stored) }
        return Variable(packedConstant: packed!)
    }

    public var shape: [Int] { stored?.shape ?? packed!.shape }
    /// Whether float32 values are stored (false for a packed parameter, whose only copy is packed).
    public var holdsFloat32: Bool { stored != nil }
    /// Number of values (no dequantization).
    public var count: Int { stored?.count ?? packed!.count }
}

/// An error from the tape itself (as opposed to a shape error inside an operation).
public struct TapeError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { "autodiff: \(message)" }
}

/// A record of differentiable operations, in execution order, for reverse-mode autodiff.
///
/// ```swift
/// let tape = Tape()
/// let loss = try tape.record { try model.loss(tokens, targets) }
/// try tape.backward(loss)          // fills each Parameter.grad
/// ```
/// Outside `record` (or inside `Tape.withoutRecording`) operations compute values only: that
/// is the no-grad mode for evaluation and generation. The recording tape is a task-local
/// value, not global state, so concurrent tasks never see each other's tapes. Child tasks
/// inherit the recording tape; appends are serialized by a lock, so that is safe too.
public final class Tape: @unchecked Sendable {
    @TaskLocal public static var current: Tape?

    struct Record {
        var inputs: [Int]
        var inputShapes: [[Int]]
        var output: Int
        var name: String
        var backward: ((Tensor) throws -> [Tensor?])?
        /// For single-input operations with a sparse gradient (an embedding lookup): adds the
        /// input's gradient into the running sum in place (nil: none yet) instead of returning it.
        var accumulate: ((Tensor, inout Tensor?) throws -> Void)?
    }

    var records: [Record] = []
    var slotCount = 0
    var parameters: [(slot: Int, parameter: Parameter)] = []
    /// The leaf slot of each parameter read so far: every read of a parameter (tied weights are
    /// read twice) shares one slot, so its gradients accumulate in one tensor.
    var parameterSlots: [ObjectIdentifier: Int] = [:]
    var spent = false
    private let lock = NSLock()
    /// When set, each operation's forward and backward time is added to it (see
    /// ``OperationProfile``).
    public let profile: OperationProfile?

    public init(profile: OperationProfile? = nil) { self.profile = profile }

    /// Number of operations recorded so far.
    public var operationCount: Int { records.count }

    /// Runs `body` with this tape recording every differentiable operation.
    public func record<R>(_ body: () throws -> R) throws -> R {
        guard !spent else {
            throw TapeError(message: "this tape was already used for a backward pass; record the forward pass on a new Tape")
        }
        profile?.mark()
        return try Tape.$current.withValue(self) { try body() }
    }

    /// Runs `body` without recording (no-grad mode): results are constants.
    public static func withoutRecording<R>(_ body: () throws -> R) rethrows -> R {
        try Tape.$current.withValue(nil) { try body() }
    }

    func newSlot() -> Int {
        lock.lock()
        defer { lock.unlock() }
        slotCount += 1
        return slotCount - 1
    }

    /// A leaf for a parameter (the same one each time it is read); its gradient goes to
    /// `parameter.grad` on backward.
    func leaf(_ p: Parameter) -> Variable {
        let id = ObjectIdentifier(p)
        lock.lock()
        defer { lock.unlock() }
        if let slot = parameterSlots[id] { return Variable(value: p.value, slot: slot, tape: self) }
        let slot = slotCount
        slotCount += 1
        parameterSlots[id] = slot
        parameters.append((slot, p))
        return Variable(value: p.value, slot: slot, tape: self)
    }

    /// A leaf for an input tensor whose gradient the caller wants (read it from the returned
    /// `Gradients`).
    public func watch(_ t: Tensor) -> Variable { Variable(value: t, slot: newSlot(), tape: self) }

    /// Appends one operation. `backward` maps the output's gradient to one gradient per input
    /// (nil where an input needs none); gradients of broadcast inputs may keep the broadcast
    /// shape, and are summed back to the input's shape here.
    func append(output value: Tensor, inputs: [Variable], name: String,
                backward: ((Tensor) throws -> [Tensor?])?,
                accumulate: ((Tensor, inout Tensor?) throws -> Void)? = nil) -> Variable {
        profile?.forwardDone(name)
        let slot = newSlot()
        lock.lock()
        defer { lock.unlock() }
        records.append(Record(inputs: inputs.map { $0.tape === self ? $0.slot : -1 },
                              inputShapes: inputs.map(\.shape), output: slot, name: name, backward: backward,
                              accumulate: accumulate))
        return Variable(value: value, slot: slot, tape: self)
    }

    /// Gradients of leaves the caller watched, by variable.
    public struct Gradients {
        var bySlot: [Int: Tensor]
        /// The gradient of `loss` with respect to `v`, or nil if `v` did not influence it.
        public subscript(_ v: Variable) -> Tensor? { bySlot[v.slot] }
    }

    /// Walks the tape in reverse from `loss`, accumulating gradients into parameters (added to
    /// any existing `grad`, so gradient accumulation over micro-batches works) and returning the
    /// gradients of watched inputs. Each operation's saved tensors are released as soon as its
    /// backward has run, and the tape cannot be walked again.
    ///
    /// A parameter's gradient is final once the walk has passed the first operation (in forward
    /// order) that used it; it is added to `grad` at that moment and `parameterReady` is called
    /// with it, while the rest of the backward pass still runs. Data-parallel training starts
    /// reducing gradients there, overlapping communication with the remaining backward work.
    /// The calls come in reverse order of first use, the same on every process running the same
    /// model; a parameter that got no gradient is not reported.
    @discardableResult
    public func backward(_ loss: Variable, seed: Tensor? = nil,
                         parameterReady: ((Parameter) -> Void)? = nil) throws -> Gradients {
        guard !spent else {
            throw TapeError(message: "backward called twice on the same tape; its saved tensors were released after the first call")
        }
        guard loss.tape === self else {
            throw TapeError(message: "the loss was not recorded on this tape (was the forward pass run inside tape.record?)")
        }
        let start = seed ?? Tensor(shape: loss.shape, repeating: 1)
        guard start.shape == loss.shape else {
            throw TapeError(message: "seed gradient shape \(describe(start.shape)) does not match the output shape \(describe(loss.shape))")
        }
        spent = true
        var grads = [Tensor?](repeating: nil, count: slotCount)
        grads[loss.slot] = start

        // Group the leaves by parameter (a parameter read twice, like tied embeddings, has two
        // leaves) and find, for each, the earliest operation that reads one of its leaves.
        var groupOfSlot = [Int: Int]()
        var groups: [(parameter: Parameter, slots: [Int])] = []
        var groupIndex = [ObjectIdentifier: Int]()
        for (slot, p) in parameters {
            let id = ObjectIdentifier(p)
            if let g = groupIndex[id] { groups[g].slots.append(slot) } else {
                groupIndex[id] = groups.count
                groups.append((p, [slot]))
            }
            groupOfSlot[slot] = groupIndex[id]!
        }
        var firstUse = [Int](repeating: Int.max, count: groups.count)
        for (i, rec) in records.enumerated() {
            for slot in rec.inputs where slot >= 0 {
                if let g = groupOfSlot[slot] { firstUse[g] = min(firstUse[g], i) }
            }
        }
        var readyAfter = [Int: [Int]]()
        for (g, i) in firstUse.enumerated() where i != Int.max { readyAfter[i, default: []].append(g) }
        var flushed = [Bool](repeating: false, count: groups.count)
        func flush(_ g: Int) throws {
            flushed[g] = true
            let p = groups[g].parameter
            var touched = false
            for slot in groups[g].slots {
                guard let grad = grads[slot] else { continue }
                grads[slot] = nil
                if p.grad == nil { p.grad = grad } else { try p.grad!.addInPlace(grad) }
                touched = true
            }
            if touched { parameterReady?(p) }
        }

        for i in stride(from: records.count - 1, through: 0, by: -1) {
            let rec = records[i]
            records[i].backward = nil // releases the tensors the closures saved
            records[i].accumulate = nil
            let started = profile == nil ? 0 : DispatchTime.now().uptimeNanoseconds
            defer { if let profile, started != 0 { profile.backwardDone(rec.name, since: started) } }
            if let g = grads[rec.output], let accumulate = rec.accumulate {
                grads[rec.output] = nil
                if let slot = rec.inputs.first, slot >= 0 {
                    try accumulate(g, &grads[slot])
                    if let gi = grads[slot], gi.shape != rec.inputShapes[0] {
                        throw TapeError(message: "\(rec.name) backward: gradient \(describe(gi.shape)) does not match its input's shape \(describe(rec.inputShapes[0]))")
                    }
                }
            } else if let g = grads[rec.output], let vjp = rec.backward {
                grads[rec.output] = nil
                let inputGrads = try vjp(g)
                for (k, slot) in rec.inputs.enumerated() where slot >= 0 {
                    guard k < inputGrads.count, var gi = inputGrads[k] else { continue }
                    if gi.shape != rec.inputShapes[k] {
                        do { gi = try gi.sum(toShape: rec.inputShapes[k]) } catch {
                            throw TapeError(message: "\(rec.name) backward: gradient \(describe(gi.shape)) cannot be reduced to input \(k)'s shape \(describe(rec.inputShapes[k]))")
                        }
                    }
                    if grads[slot] == nil { grads[slot] = gi } else { try grads[slot]!.addInPlace(gi) }
                }
            }
            if let ready = readyAfter[i] { for g in ready { try flush(g) } }
        }
        records.removeAll()
        // Parameters no operation read (the loss is a parameter itself, or unused leaves).
        for g in groups.indices where !flushed[g] { try flush(g) }
        parameters.removeAll()
        var watched: [Int: Tensor] = [:]
        for (slot, g) in grads.enumerated() where g != nil { watched[slot] = g }
        return Gradients(bySlot: watched)
    }
}

/// Wall time per operation name over the tapes that share it: the training-step breakdown of
/// `factorlab profile --train`.
///
/// An operation's forward time is the time since the previous operation was recorded (or since
/// `record` began), so the glue between kernels is charged to the operation that follows it;
/// its backward time is that of its gradient function, accumulation included.
public final class OperationProfile: @unchecked Sendable {
    public struct Entry: Sendable {
        public var name: String
        public var forwardSeconds = 0.0
        public var backwardSeconds = 0.0
        public var count = 0
    }

    private let lock = NSLock()
    private var entries: [String: Entry] = [:]
    private var last: UInt64 = 0

    public init() {}

    /// Per operation name, sorted by total time (largest first).
    public var operations: [Entry] {
        lock.lock()
        defer { lock.unlock() }
        return entries.values.sorted { $0.forwardSeconds + $0.backwardSeconds > $1.forwardSeconds + $1.backwardSeconds }
    }

    /// Drops everything measured so far (after a warm-up).
    public func reset() {
        lock.lock()
        entries = [:]
        last = 0
        lock.unlock()
    }

    func mark() {
        lock.lock()
        last = DispatchTime.now().uptimeNanoseconds
        lock.unlock()
    }

    func forwardDone(_ name: String) {
        let now = DispatchTime.now().uptimeNanoseconds
        lock.lock()
        if last != 0 {
            entries[name, default: Entry(name: name)].forwardSeconds += Double(now - last) / 1e9
            entries[name, default: Entry(name: name)].count += 1
        }
        last = now
        lock.unlock()
    }

    func backwardDone(_ name: String, since start: UInt64) {
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        lock.lock()
        entries[name, default: Entry(name: name)].backwardSeconds += seconds
        lock.unlock()
    }
}

/// A tensor in a differentiable computation: its value and, when recorded, its place on a tape.
public struct Variable {
    /// The float32 value (a packed constant's is dequantized on each read; see ``packed``).
    public var value: Tensor { stored ?? packed!.dequantized() }
    private let stored: Tensor?
    let slot: Int
    let tape: Tape?
    /// The packed form of a constant weight (see ``Parameter/packed``), nil otherwise. Operations
    /// with a packed kernel read it and never ``value``.
    public let packed: PackedWeights?

    init(value: Tensor, slot: Int, tape: Tape?) {
        self.stored = value
        self.slot = slot
        self.tape = tape
        self.packed = nil
    }

    /// A constant: no gradient flows into it.
    public init(_ constant: Tensor) { self.init(value: constant, slot: -1, tape: nil) }

    /// A constant weight held only in packed form.
    public init(packedConstant packed: PackedWeights) {
        stored = nil
        slot = -1
        tape = nil
        self.packed = packed
    }

    public var shape: [Int] { stored?.shape ?? packed!.shape }
    public var rank: Int { shape.count }
    /// True when this value is recorded on a tape and gradients flow through it.
    public var requiresGrad: Bool { tape != nil }

    /// Builds the result of an operation: recorded when some input is on the tape that is
    /// currently recording, a constant otherwise (no-grad mode). This is how every operation,
    /// including those of other modules (structured layers), joins the tape: `backward` receives
    /// the output's gradient and returns one gradient per input (nil for none).
    public static func record(_ value: Tensor, inputs: [Variable], name: String,
                              backward: @escaping (Tensor) throws -> [Tensor?]) -> Variable {
        make(value, inputs, name, backward: backward)
    }

    static func make(_ value: Tensor, _ inputs: [Variable], _ name: String,
                     backward: @escaping (Tensor) throws -> [Tensor?]) -> Variable {
        guard let tape = Tape.current, inputs.contains(where: { $0.tape === tape }) else { return Variable(value) }
        return tape.append(output: value, inputs: inputs, name: name, backward: backward)
    }

    /// Builds the result of a one-input operation whose input gradient is sparse (an embedding
    /// lookup touches a few rows of a large table): `accumulate` receives the output's gradient
    /// and adds the input's gradient into the running sum in place, creating it (zeros plus the
    /// update) when it is nil. A tied weight's second gradient then costs its rows, not a
    /// table-sized temporary and a table-sized addition.
    public static func recordAccumulating(_ value: Tensor, input: Variable, name: String,
                                          accumulate: @escaping (Tensor, inout Tensor?) throws -> Void) -> Variable {
        guard let tape = Tape.current, input.tape === tape else { return Variable(value) }
        return tape.append(output: value, inputs: [input], name: name, backward: nil, accumulate: accumulate)
    }
}
