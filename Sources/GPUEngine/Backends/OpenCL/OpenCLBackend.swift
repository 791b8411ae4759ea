import Foundation
import Kernels

/// The OpenCL backend: every operator runs as OpenCL C kernels from `Sources/Kernels` on one device.
/// Programs are built once per (file, options) and cached; kernels are looked up by name.
public final class OpenCLBackend: Backend, KernelBackend, @unchecked Sendable {
    public let context: CLContext
    public var name: String { "opencl:\(context.device.index) (\(context.device.name))" }

    /// True for CPU OpenCL devices (PoCL), which need explicit work-group sizes.
    let isCPUDevice: Bool
    /// Options passed to every program build.
    public let buildOptions: String
    private let lock = NSLock()
    private var programs: [String: CLProgram] = [:]
    private var kernels: [String: CLKernel] = [:]
    /// Source overrides by file name (tests use this to build deliberately broken kernels).
    private var sourceOverrides: [String: String] = [:]

    /// When true, every launch waits for its kernel and adds its device time to `kernelTimes`.
    public var profiling = false
    /// Accumulated device time (nanoseconds) and launch count per kernel name, when profiling.
    public private(set) var kernelTimes: [String: (launches: Int, nanoseconds: UInt64)] = [:]
    /// Seconds spent building programs (first-launch cost), for benchmarks.
    public private(set) var buildSeconds: Double = 0
    /// The GEMM kernel of matmuls and pointwise convolutions (see `TuningStore`): read at start-up from
    /// this device's tuning file, else the shipped default for its kind; settable (the tuner, tests).
    public var gemmChoice: GEMMChoice = .cpuStyle
    /// Where `gemmChoice` came from, and the warning of an unusable tuning file (nil when none).
    public private(set) var gemmChoiceSource = "shipped default"
    public private(set) var tuningWarning: String?
    /// Launches of `matmul_tiled` per parameter set (dispatch tests, the tuner).
    private var tiledLaunchCounts: [GEMMParameters: Int] = [:]
    /// The kernels of fused attention (`AttentionChoice`): `AMGPU_ATTENTION` when set (a bad value makes `init`
    /// throw), else the shipped default for the kind of device (GPUs: flash; PoCL: P-storing); settable (tests).
    public var attentionChoice: AttentionChoice = .probabilities
    /// Where `attentionChoice` came from (`AMGPU_ATTENTION` or the shipped default).
    public private(set) var attentionChoiceSource = "shipped default"
    /// How the CPU-style path runs convolutions (`ConvRoute`): `AMGPU_CONV` when set (a bad value makes `init`
    /// throw), else `.auto` (the measured per-shape rule); settable (tests, benchmarks).
    public var convRoute: ConvRoute = .auto
    /// Launches of `conv2d_gemm_8x16` (dispatch tests).
    public private(set) var convGEMMLaunches = 0
    /// Flash attention forward launches per parameter set (dispatch tests).
    private var flashLaunchCounts: [FlashAttentionParameters: Int] = [:]

    /// Opens `device`; the GEMM choice comes from `TuningStore.load(for: device, directory: tuningDirectory)`
    /// (a corrupt tuning file leaves the shipped default and sets `tuningWarning`).
    public init(device: CLDeviceInfo, buildOptions: String = "-cl-mad-enable",
                tuningDirectory: URL = TuningStore.directory) throws {
        context = try CLContext(device: device)
        self.buildOptions = buildOptions
        isCPUDevice = device.type.contains("CPU")
        let tuning = TuningStore.load(for: device, directory: tuningDirectory)
        gemmChoice = tuning.choice
        gemmChoiceSource = tuning.source
        tuningWarning = tuning.warning
        let attention = try ShippedAttention.choice(for: device)
        attentionChoice = attention.choice
        attentionChoiceSource = attention.source
        if let text = ProcessInfo.processInfo.environment["AMGPU_CONV"], !text.isEmpty {
            guard let route = ConvRoute(rawValue: text) else {
                throw EngineError.invalidInput("AMGPU_CONV: '\(text)' is not one of \(ConvRoute.allCases.map(\.rawValue).joined(separator: ", ")); unset it for the default (auto)")
            }
            convRoute = route
        }
    }

    /// Counts one launch of `conv2d_gemm_8x16`.
    func recordConvGEMMLaunch() {
        lock.lock(); convGEMMLaunches += 1; lock.unlock()
    }

    /// Counts one launch of `matmul_tiled` with `parameters`.
    func recordTiledLaunch(_ parameters: GEMMParameters) {
        lock.lock(); tiledLaunchCounts[parameters, default: 0] += 1; lock.unlock()
    }

    /// How many times `matmul_tiled` ran with `parameters` on this backend.
    public func tiledLaunches(_ parameters: GEMMParameters) -> Int {
        lock.lock(); defer { lock.unlock() }
        return tiledLaunchCounts[parameters] ?? 0
    }

    /// Counts one flash attention forward with `parameters`.
    func recordFlashLaunch(_ parameters: FlashAttentionParameters) {
        lock.lock(); flashLaunchCounts[parameters, default: 0] += 1; lock.unlock()
    }

    /// How many attention forwards ran on the flash kernels with `parameters` on this backend.
    public func flashLaunches(_ parameters: FlashAttentionParameters) -> Int {
        lock.lock(); defer { lock.unlock() }
        return flashLaunchCounts[parameters] ?? 0
    }

    /// Opens the device `opencl:index`.
    public convenience init(index: Int = 0) throws {
        let devices = try OpenCLRuntime.devices()
        guard !devices.isEmpty else { throw EngineError.noOpenCLDevice(DeviceSelection.noDeviceMessage) }
        guard devices.indices.contains(index) else {
            throw EngineError.noOpenCLDevice("there is no OpenCL device \(index); this machine has \(devices.count) (opencl:0…opencl:\(devices.count - 1)); see `amgpu devices`")
        }
        try self.init(device: devices[index])
    }

    /// Replaces the source of kernel file `file` (for tests of build failures).
    public func overrideSource(file: String, with source: String) {
        lock.lock(); defer { lock.unlock() }
        sourceOverrides[file] = source
        programs = programs.filter { !$0.key.hasPrefix(file + "|") }
        kernels = kernels.filter { !$0.key.hasPrefix(file + "|") }
    }

    /// A folder whose `NAME.cl` files replace the embedded kernel files of the same name
    /// (`$AMGPU_KERNEL_DIR`): kernel developers edit a kernel and rerun without rebuilding amgpu.
    public static let kernelDirectory: String? = ProcessInfo.processInfo.environment["AMGPU_KERNEL_DIR"].flatMap { $0.isEmpty ? nil : $0 }

    /// The source of kernel file `file` and where it came from: a test override, `$AMGPU_KERNEL_DIR`, or the binary.
    func kernelSource(_ file: String) throws -> (text: String, origin: String)? {
        if let text = sourceOverrides[file] { return (text, "\(file).cl (override)") }
        if let dir = Self.kernelDirectory {
            let path = (dir as NSString).appendingPathComponent(file + ".cl")
            if FileManager.default.fileExists(atPath: path) {
                do { return (try String(contentsOfFile: path, encoding: .utf8), path) } catch {
                    throw EngineError.io("cannot read kernel file '\(path)' (from AMGPU_KERNEL_DIR): \(error.localizedDescription)")
                }
            }
        }
        return KernelSources.source(named: file).map { ($0, "\(file).cl") }
    }

    /// The built program of kernel file `file` with extra `options` (built on first use).
    public func program(file: String, options: String = "") throws -> CLProgram {
        let key = file + "|" + options
        lock.lock(); defer { lock.unlock() }
        if let program = programs[key] { return program }
        guard let body = try kernelSource(file) else {
            throw EngineError.unsupported("no OpenCL kernel file named \(file).cl is embedded in this binary")
        }
        // common.cl (index_map and helpers) is prepended to every file.
        let source = file == "common" ? body.text : ((try kernelSource("common"))?.text ?? "") + "\n" + body.text
        let start = DispatchTime.now().uptimeNanoseconds
        let program = try context.buildProgram(source: source, name: body.origin,
                                               options: [buildOptions, options].filter { !$0.isEmpty }.joined(separator: " "))
        buildSeconds += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        programs[key] = program
        return program
    }

    /// The kernel `name` of file `file` (cached).
    public func kernel(_ file: String, _ name: String, options: String = "") throws -> CLKernel {
        let key = file + "|" + options + "|" + name
        lock.lock()
        if let kernel = kernels[key] { lock.unlock(); return kernel }
        lock.unlock()
        let kernel = try program(file: file, options: options).makeKernel(name)
        lock.lock(); kernels[key] = kernel; lock.unlock()
        return kernel
    }

    /// Enqueues a kernel over `global` work items; `local` nil picks `defaultLocalSize(global)`.
    /// With `profiling` on, waits for the kernel and records its device time.
    public func launch(_ file: String, _ name: String, _ arguments: [CLArgument], global: [Int],
                       local: [Int]? = nil, options: String = "") throws {
        let k = try kernel(file, name, options: options)
        let ns = try context.launch(k, arguments, global: global, local: local ?? defaultLocalSize(global),
                                    profile: profiling)
        if profiling {
            lock.lock()
            let old = kernelTimes[name] ?? (0, 0)
            kernelTimes[name] = (old.launches + 1, old.nanoseconds + ns)
            lock.unlock()
        }
    }

    /// The work-group size for a launch over `global` on this device. On CPU devices PoCL's choice for
    /// a NULL local size packs a small range (≤ 4096 items, e.g. [25, 144, 1]) into ONE work-group, which
    /// runs on one thread. So split the range into at least 8 groups per compute unit of at most 1024
    /// items, using divisors (no padding): outer dimensions first by their smallest factors (keeping
    /// consecutive items of dimension 0 together), then dimension 0 by its largest fitting divisor,
    /// preferring a multiple of 16 (PoCL vectorizes a group's items along dimension 0). A range that
    /// would end with tiny groups (a large prime extent) keeps the driver's choice, as do GPUs (nil).
    func defaultLocalSize(_ global: [Int]) -> [Int]? {
        guard isCPUDevice, !global.isEmpty else { return nil }
        let target = max(16, 8 * context.device.computeUnits)
        let maxItems = 1024
        var local = global.map { max($0, 1) }
        func groups(_ l: [Int]) -> Int { zip(global, l).reduce(1) { $0 * ((max($1.0, 1) + $1.1 - 1) / $1.1) } }
        func smallestFactor(_ n: Int) -> Int {
            var f = 2
            while f * f <= n { if n % f == 0 { return f }; f += 1 }
            return n
        }
        var dim = local.count - 1
        while dim >= 1 && (groups(local) < target || local.reduce(1, *) > maxItems) {
            if local[dim] == 1 { dim -= 1; continue }
            local[dim] /= smallestFactor(local[dim])
        }
        if groups(local) < target || local.reduce(1, *) > maxItems {
            let others = local.dropFirst().reduce(1, *), g0 = local[0]
            let otherGroups = groups([1] + local.dropFirst())
            var best = 1, best16 = 0
            var d = min(g0, max(1, maxItems / others))
            while d >= 1 {
                if g0 % d == 0 && otherGroups * (g0 / d) >= target {
                    if best == 1 { best = d }
                    if d % 16 == 0 { best16 = d; break }
                }
                d -= 1
            }
            local[0] = best16 > 0 ? best16 : best
        }
        if local.reduce(1, *) < 8 && global.reduce(1, *) > 4096 { return nil }
        return local
    }

    public func resetKernelTimes() {
        lock.lock(); kernelTimes = [:]; lock.unlock()
    }

    /// A new uninitialised tensor on the device.
    public func make(_ shape: [Int]) throws -> Tensor {
        let count = shape.reduce(1, *)
        return Tensor(shape: shape, storage: .device(try context.makeBuffer(byteCount: count * 4)))
    }

    public func tensor(_ host: HostTensor) throws -> Tensor {
        let t = try make(host.shape)
        try host.values.withUnsafeBytes { raw in
            if let base = raw.baseAddress { try context.write(t.device(), from: base, byteCount: raw.count) }
        }
        return t
    }

    /// A constant's buffer: on a device whose memory is host memory (PoCL), the host array itself
    /// (`CLContext.sharedBuffer`, no second copy of the weights); elsewhere an upload. Marked
    /// immutable either way, so derived buffers (packed panels) are made once.
    public func constant(_ host: HostTensor) throws -> Tensor {
        if let shared = try context.sharedBuffer(host.values) {
            return Tensor(shape: host.shape, storage: .device(shared))
        }
        let t = try tensor(host)
        try t.device().markImmutable()
        return t
    }

    public func full(_ shape: [Int], value: Float) throws -> Tensor {
        let t = try make(shape)
        try fill(t, value: value)
        return t
    }

    /// Sets every element of `tensor` to `value` on the device.
    public func fill(_ tensor: Tensor, value: Float) throws {
        try launch("shape", "fill", [.buffer(tensor.device()), .int(Int32(tensor.count)), .float(value)],
                   global: [tensor.count])
    }

    public func download(_ tensor: Tensor) throws -> HostTensor {
        var values = [Float](repeating: 0, count: tensor.count)
        try values.withUnsafeMutableBytes { raw in
            if let base = raw.baseAddress { try context.read(tensor.device(), into: base, byteCount: raw.count) }
        }
        return HostTensor(shape: tensor.shape, values: values)
    }

    public func synchronize() throws { try context.finish() }
}
