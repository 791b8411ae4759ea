import Foundation

// Multi-threading and per-entry timing for the CPU backend.
//
// `forChunks` splits [0, count) into contiguous chunks whose boundaries depend only on `count`, `grain`
// and the number of cores (never on timing), and runs the chunks with DispatchQueue.concurrentPerform.
// A per-element loop run through it writes exactly the values the serial loop writes (each element is
// computed by the same expression, once), so results depend neither on the chunking nor on the machine.
// No caller sums per-chunk partials: reductions are split over their outputs, each summed serially.

/// A raw pointer that may cross into `concurrentPerform`'s closure. The caller guarantees that
/// concurrent chunks write disjoint elements.
struct SendablePointer<T>: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<T>
    init(_ pointer: UnsafeMutablePointer<T>) { self.pointer = pointer }
}

enum CPUParallel {
    /// Cores the process may use (at least 1).
    static let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)
    /// Default grain: chunks of at least this many elements (smaller work runs serially).
    static let defaultGrain = 16_384
    /// The default of `CPUBackend.serial`: true when the environment variable AMGPU_CPU_SERIAL=1
    /// (for A/B measurements of the threading).
    static let serialByDefault = ProcessInfo.processInfo.environment["AMGPU_CPU_SERIAL"] == "1"

    /// The chunk boundaries of [0, count) with at least `grain` elements per chunk: chunk i is
    /// [i·count / chunks, (i+1)·count / chunks), chunks = min(4·cores, count / grain) (≥ 1).
    static func chunkCount(_ count: Int, grain: Int) -> Int {
        guard count > 0 else { return 0 }
        return max(1, min(4 * cores, count / max(grain, 1)))
    }

    /// Calls body(lo, hi) for contiguous chunks covering [0, count) exactly once each, concurrently
    /// when there is more than one chunk and not `serial`. Chunks are independent of timing.
    static func forChunks(_ count: Int, grain: Int = defaultGrain, serial: Bool,
                          _ body: (_ lo: Int, _ hi: Int) -> Void) {
        let chunks = chunkCount(count, grain: grain)
        guard chunks > 1, !serial else {
            if count > 0 { body(0, count) }
            return
        }
        withoutActuallyEscaping(body) { body in
            let box = UncheckedBox(body)
            DispatchQueue.concurrentPerform(iterations: chunks) { i in
                box.value(i * count / chunks, (i + 1) * count / chunks)
            }
        }
    }
}

/// Lets a non-Sendable closure cross into `concurrentPerform` (it only reads captured pointers and
/// writes disjoint ranges).
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// Per-entry-point wall time of the CPU backend (`CPUBackend.profiling`), the CPU analogue of
/// `OpenCLBackend.kernelTimes`. Nested entries (a conv's im2col inside `conv_forward`) are
/// recorded under their own names and also inside their caller's time.
final class CPUProfile: @unchecked Sendable {
    private let lock = NSLock()
    private var times: [String: (launches: Int, nanoseconds: UInt64)] = [:]

    func add(_ name: String, _ ns: UInt64) {
        lock.lock(); defer { lock.unlock() }
        let old = times[name] ?? (0, 0)
        times[name] = (old.launches + 1, old.nanoseconds + ns)
    }

    var snapshot: [String: (launches: Int, nanoseconds: UInt64)] {
        lock.lock(); defer { lock.unlock() }
        return times
    }

    func reset() { lock.lock(); times = [:]; lock.unlock() }
}

extension CPUBackend {
    /// `CPUParallel.forChunks` on this backend (serially when `serial`).
    @inline(__always)
    func forChunks(_ count: Int, grain: Int = CPUParallel.defaultGrain, _ body: (_ lo: Int, _ hi: Int) -> Void) {
        CPUParallel.forChunks(count, grain: grain, serial: serial, body)
    }

    /// Start of a timed entry point: nil (free) when not profiling.
    @inline(__always)
    func profileStart() -> UInt64? {
        profiling ? DispatchTime.now().uptimeNanoseconds : nil
    }

    /// End of a timed entry point started by `profileStart`.
    @inline(__always)
    func profileEnd(_ name: String, _ start: UInt64?) {
        guard let start else { return }
        profile.add(name, DispatchTime.now().uptimeNanoseconds &- start)
    }

    /// Accumulated wall time (nanoseconds) and call count per entry point since the last reset.
    public var kernelTimes: [String: (launches: Int, nanoseconds: UInt64)] { profile.snapshot }

    public func resetKernelTimes() { profile.reset() }
}

extension IndexMap {
    /// Calls `body(i, offset0(i), offset1(i))` for the linear indices lo ..< hi in order — the slice
    /// [lo, hi) of `forEach`, so chunks of a parallel loop visit exactly what the serial walk visits.
    func forEach(from lo: Int, to hi: Int, _ body: (_ i: Int, _ o0: Int, _ o1: Int) -> Void) {
        guard lo < hi else { return }
        let rank = dims.count
        if rank == 0 { body(0, 0, 0); return }
        // Coordinates and offsets of index lo.
        var coord = [Int](repeating: 0, count: rank)
        var o0 = 0, o1 = 0, rest = lo
        for axis in stride(from: rank - 1, through: 0, by: -1) {
            let c = rest % dims[axis]
            rest /= dims[axis]
            coord[axis] = c
            o0 += c * strides0[axis]; o1 += c * strides1[axis]
        }
        let inner = rank - 1
        let innerDim = dims[inner], innerS0 = strides0[inner], innerS1 = strides1[inner]
        var i = lo
        while i < hi {
            // Finish the current inner row (or stop at hi).
            let run = min(innerDim - coord[inner], hi - i)
            var a = o0, b = o1
            for _ in 0..<run {
                body(i, a, b)
                a += innerS0; b += innerS1; i += 1
            }
            guard i < hi else { break }
            // Next row: reset the inner axis, advance the outer coordinates (odometer).
            o0 -= coord[inner] * innerS0; o1 -= coord[inner] * innerS1
            coord[inner] = 0
            var axis = inner - 1
            while axis >= 0 {
                coord[axis] += 1
                o0 += strides0[axis]; o1 += strides1[axis]
                if coord[axis] < dims[axis] { break }
                o0 -= strides0[axis] * dims[axis]; o1 -= strides1[axis] * dims[axis]
                coord[axis] = 0
                axis -= 1
            }
        }
    }
}
