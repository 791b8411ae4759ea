import COpenCL
import Foundation

/// One OpenCL device as `amgpu devices` shows it. `index` numbers all devices of all
/// platforms in order, which is the N of `--device opencl:N`.
public struct CLDeviceInfo: @unchecked Sendable, CustomStringConvertible {
    public let index: Int
    public let platformName: String
    public let name: String
    public let vendor: String
    public let type: String
    public let computeUnits: Int
    public let globalMemoryBytes: UInt64
    public let maxAllocationBytes: UInt64
    public let openCLVersion: String
    public let driverVersion: String
    // Plain identifiers owned by the driver; sharing them across threads is safe.
    let platformID: cl_platform_id
    let deviceID: cl_device_id

    public var description: String {
        let gib = Double(globalMemoryBytes) / 1_073_741_824
        return "opencl:\(index)  \(name) [\(type)] — \(platformName); \(computeUnits) compute units, "
            + String(format: "%.1f GiB", gib) + ", \(openCLVersion), driver \(driverVersion)"
    }
}


/// Discovery of OpenCL platforms and devices.
public enum OpenCLRuntime {
    /// Serializes platform discovery and context/queue creation across threads. PoCL 3.1 (Debian 12,
    /// through ocl-icd) segfaults in `strlen(NULL)` now and then when several threads make these calls
    /// at once in a fresh process, as parallel tests and multi-device atlas runs do: 4 crashes in 150
    /// processes of 8 racing threads, 0 in 300 with this lock (scripts/tools/opencl-setup-race.c).
    /// Everything after setup (buffers, kernels, builds, queues) runs unserialized.
    static let setupLock = NSLock()

    /// Every device of every platform. An empty list means no OpenCL driver is installed
    /// (the ICD loader reports CL_PLATFORM_NOT_FOUND_KHR); other failures throw.
    public static func devices() throws(CLError) -> [CLDeviceInfo] {
        setupLock.lock()
        defer { setupLock.unlock() }
        var platformCount: cl_uint = 0
        let status = clGetPlatformIDs(0, nil, &platformCount)
        if status == CL_PLATFORM_NOT_FOUND_KHR || platformCount == 0 { return [] }
        try clCheck(status, "clGetPlatformIDs")
        var platforms = [cl_platform_id?](repeating: nil, count: Int(platformCount))
        try clCheck(clGetPlatformIDs(platformCount, &platforms, nil), "clGetPlatformIDs")
        var result: [CLDeviceInfo] = []
        for case let platform? in platforms {
            var deviceCount: cl_uint = 0
            let st = clGetDeviceIDs(platform, cl_device_type(CL_DEVICE_TYPE_ALL), 0, nil, &deviceCount)
            if st == CL_DEVICE_NOT_FOUND || deviceCount == 0 { continue }
            try clCheck(st, "clGetDeviceIDs")
            var ids = [cl_device_id?](repeating: nil, count: Int(deviceCount))
            try clCheck(clGetDeviceIDs(platform, cl_device_type(CL_DEVICE_TYPE_ALL), deviceCount, &ids, nil),
                        "clGetDeviceIDs")
            let platformName = try platformString(platform, cl_platform_info(CL_PLATFORM_NAME))
            for case let device? in ids {
                let typeBits: cl_device_type = try deviceValue(device, cl_device_info(CL_DEVICE_TYPE))
                result.append(CLDeviceInfo(
                    index: result.count,
                    platformName: platformName,
                    name: try deviceString(device, cl_device_info(CL_DEVICE_NAME)),
                    vendor: try deviceString(device, cl_device_info(CL_DEVICE_VENDOR)),
                    type: typeName(typeBits),
                    computeUnits: Int(try deviceValue(device, cl_device_info(CL_DEVICE_MAX_COMPUTE_UNITS)) as cl_uint),
                    globalMemoryBytes: try deviceValue(device, cl_device_info(CL_DEVICE_GLOBAL_MEM_SIZE)),
                    maxAllocationBytes: try deviceValue(device, cl_device_info(CL_DEVICE_MAX_MEM_ALLOC_SIZE)),
                    openCLVersion: try deviceString(device, cl_device_info(CL_DEVICE_VERSION)),
                    driverVersion: try deviceString(device, cl_device_info(CL_DRIVER_VERSION)),
                    platformID: platform, deviceID: device))
            }
        }
        return result
    }

    static func typeName(_ bits: cl_device_type) -> String {
        var parts: [String] = []
        if bits & cl_device_type(CL_DEVICE_TYPE_GPU) != 0 { parts.append("GPU") }
        if bits & cl_device_type(CL_DEVICE_TYPE_CPU) != 0 { parts.append("CPU") }
        if bits & cl_device_type(CL_DEVICE_TYPE_ACCELERATOR) != 0 { parts.append("accelerator") }
        return parts.isEmpty ? "other" : parts.joined(separator: "+")
    }

    static func platformString(_ platform: cl_platform_id, _ param: cl_platform_info) throws(CLError) -> String {
        var size = 0
        try clCheck(clGetPlatformInfo(platform, param, 0, nil, &size), "clGetPlatformInfo")
        var bytes = [CChar](repeating: 0, count: size + 1)
        try clCheck(clGetPlatformInfo(platform, param, size, &bytes, nil), "clGetPlatformInfo")
        return String(decoding: bytes.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            .trimmingCharacters(in: .whitespaces)
    }

    static func deviceString(_ device: cl_device_id, _ param: cl_device_info) throws(CLError) -> String {
        var size = 0
        try clCheck(clGetDeviceInfo(device, param, 0, nil, &size), "clGetDeviceInfo")
        var bytes = [CChar](repeating: 0, count: size + 1)
        try clCheck(clGetDeviceInfo(device, param, size, &bytes, nil), "clGetDeviceInfo")
        return String(decoding: bytes.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            .trimmingCharacters(in: .whitespaces)
    }

    static func deviceValue<T: FixedWidthInteger>(_ device: cl_device_id, _ param: cl_device_info) throws(CLError) -> T {
        var value: T = 0
        try clCheck(clGetDeviceInfo(device, param, MemoryLayout<T>.size, &value, nil), "clGetDeviceInfo")
        return value
    }
}

/// A context and an in-order, profiling-enabled command queue on one device.
/// OpenCL 1.2 makes every call except clSetKernelArg thread-safe, so the handles may be shared.
public final class CLContext: @unchecked Sendable {
    public let device: CLDeviceInfo
    let context: cl_context
    let queue: cl_command_queue
    /// Released buffers of this context, kept for reuse by `makeBuffer` (see `CLBufferPool`).
    public let pool = CLBufferPool()
    /// True on a CPU device whose memory is host memory (`CL_DEVICE_HOST_UNIFIED_MEMORY`, e.g. PoCL):
    /// there `sharedBuffer(_:)` wraps host arrays without copying them.
    public let sharesHostMemory: Bool

    public init(device: CLDeviceInfo) throws(CLError) {
        OpenCLRuntime.setupLock.lock()
        defer { OpenCLRuntime.setupLock.unlock() }
        self.device = device
        var status: cl_int = 0
        var deviceID: cl_device_id? = device.deviceID
        guard let ctx = clCreateContext(nil, 1, &deviceID, nil, nil, &status), status == CL_SUCCESS else {
            throw CLError(code: status, call: "clCreateContext", detail: device.name)
        }
        context = ctx
        guard let q = clCreateCommandQueue(ctx, device.deviceID,
                                           cl_command_queue_properties(CL_QUEUE_PROFILING_ENABLE), &status),
              status == CL_SUCCESS else {
            clReleaseContext(ctx)
            throw CLError(code: status, call: "clCreateCommandQueue", detail: device.name)
        }
        queue = q
        let unified: cl_bool = (try? OpenCLRuntime.deviceValue(device.deviceID, cl_device_info(CL_DEVICE_HOST_UNIFIED_MEMORY))) ?? 0
        sharesHostMemory = unified != 0 && device.type.contains("CPU")
    }

    deinit {
        clFinish(queue)
        clReleaseCommandQueue(queue)
        clReleaseContext(context)
    }

    /// Waits for every queued command to finish.
    public func finish() throws(CLError) {
        try clCheck(clFinish(queue), "clFinish")
    }

    /// Allocates an uninitialised device buffer of `byteCount` bytes.
    public func makeBuffer(byteCount: Int) throws(CLError) -> CLBuffer {
        let size = max(byteCount, 4)
        if UInt64(size) > device.maxAllocationBytes {
            throw CLError(code: Int32(CL_INVALID_BUFFER_SIZE), call: "clCreateBuffer",
                          detail: "needs \(size) bytes but the device allows at most \(device.maxAllocationBytes) in one buffer (CL_DEVICE_MAX_MEM_ALLOC_SIZE); use a smaller --batch or --size, or --device cpu")
        }
        if let mem = pool.take(byteCount: size) {
            if pool.poisonReused {
                var nan = Float.nan
                try clCheck(clEnqueueFillBuffer(queue, mem, &nan, 4, 0, size, 0, nil, nil), "clEnqueueFillBuffer")
            }
            return CLBuffer(mem: mem, byteCount: size, pool: pool)
        }
        var status: cl_int = 0
        guard let mem = clCreateBuffer(context, cl_mem_flags(CL_MEM_READ_WRITE), size, nil, &status),
              status == CL_SUCCESS else {
            throw CLError(code: status, call: "clCreateBuffer", detail: "\(size) bytes")
        }
        pool.created(byteCount: size)
        return CLBuffer(mem: mem, byteCount: size, pool: pool)
    }

    /// A read-only buffer over `values` without a copy, where this device's memory is host memory
    /// (`sharesHostMemory`; `CL_MEM_USE_HOST_PTR`, which PoCL uses in place); nil elsewhere. The buffer
    /// keeps the array alive; its values must never be written (graph constants: weights).
    public func sharedBuffer(_ values: [Float]) throws(CLError) -> CLBuffer? {
        guard sharesHostMemory, !values.isEmpty else { return nil }
        let size = values.count * 4
        if UInt64(size) > device.maxAllocationBytes { return nil }
        // A stored, never-mutated array keeps its element storage (and so this address) while it lives.
        guard let base = values.withUnsafeBufferPointer({ $0.baseAddress }) else { return nil }
        var status: cl_int = 0
        guard let mem = clCreateBuffer(context, cl_mem_flags(CL_MEM_READ_ONLY | CL_MEM_USE_HOST_PTR), size,
                                       UnsafeMutableRawPointer(mutating: base), &status),
              status == CL_SUCCESS else {
            throw CLError(code: status, call: "clCreateBuffer", detail: "\(size) bytes over host memory")
        }
        let buffer = CLBuffer(mem: mem, byteCount: size, pool: nil)
        buffer.hostValues = values
        buffer.markImmutable()
        return buffer
    }

    /// Copies `count` floats from host memory into `buffer` at element `offset` (blocking).
    public func write(_ buffer: CLBuffer, from pointer: UnsafeRawPointer, byteCount: Int, byteOffset: Int = 0) throws(CLError) {
        guard byteCount > 0 else { return }
        try clCheck(clEnqueueWriteBuffer(queue, buffer.mem, cl_bool(CL_TRUE), byteOffset, byteCount,
                                         pointer, 0, nil, nil), "clEnqueueWriteBuffer")
    }

    /// Copies bytes from `buffer` into host memory (blocking; waits for earlier commands).
    public func read(_ buffer: CLBuffer, into pointer: UnsafeMutableRawPointer, byteCount: Int, byteOffset: Int = 0) throws(CLError) {
        guard byteCount > 0 else { return }
        try clCheck(clEnqueueReadBuffer(queue, buffer.mem, cl_bool(CL_TRUE), byteOffset, byteCount,
                                        pointer, 0, nil, nil), "clEnqueueReadBuffer")
    }

    /// Copies `byteCount` bytes between device buffers (asynchronous, in queue order).
    public func copy(from source: CLBuffer, sourceOffset: Int = 0, to destination: CLBuffer,
                     destinationOffset: Int = 0, byteCount: Int) throws(CLError) {
        guard byteCount > 0 else { return }
        try clCheck(clEnqueueCopyBuffer(queue, source.mem, destination.mem, sourceOffset, destinationOffset,
                                        byteCount, 0, nil, nil), "clEnqueueCopyBuffer")
    }

    /// Compiles OpenCL C `source` with `options`; a failed build throws with the build log.
    public func buildProgram(source: String, name: String, options: String) throws(CLError) -> CLProgram {
        var status: cl_int = 0
        let program: cl_program? = source.withCString { cString in
            var pointer: UnsafePointer<CChar>? = cString
            var length = strlen(cString)
            return clCreateProgramWithSource(context, 1, &pointer, &length, &status)
        }
        guard let program, status == CL_SUCCESS else {
            throw CLError(code: status, call: "clCreateProgramWithSource", detail: name)
        }
        var deviceID: cl_device_id? = device.deviceID
        let buildStatus = clBuildProgram(program, 1, &deviceID, options, nil, nil)
        if buildStatus != CL_SUCCESS {
            let log = buildLog(program)
            clReleaseProgram(program)
            // One line: the first compiler error; the whole log stays in `buildLog`.
            let lines = log.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            let first = lines.first { $0.localizedCaseInsensitiveContains("error") } ?? lines.first ?? "(empty build log)"
            var error = CLError(code: buildStatus, call: "clBuildProgram",
                                detail: "kernel file \(name) failed to build with options '\(options)': \(first)"
                                    + (lines.count > 1 ? " (+\(lines.count - 1) more build-log lines)" : "")
                                    + "; fix the kernel source (AMGPU_KERNEL_DIR=folder runs edited kernels without rebuilding) or use --device cpu")
            error.buildLog = log
            throw error
        }
        return CLProgram(program: program, name: name)
    }

    private func buildLog(_ program: cl_program) -> String {
        var size = 0
        clGetProgramBuildInfo(program, device.deviceID, cl_program_build_info(CL_PROGRAM_BUILD_LOG), 0, nil, &size)
        guard size > 0 else { return "(empty)" }
        var bytes = [CChar](repeating: 0, count: size + 1)
        clGetProgramBuildInfo(program, device.deviceID, cl_program_build_info(CL_PROGRAM_BUILD_LOG), size, &bytes, nil)
        return String(decoding: bytes.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// A device memory object; released when the last reference goes away. OpenCL keeps the
/// memory alive until commands already enqueued on it have finished.
public final class CLBuffer: @unchecked Sendable {
    let mem: cl_mem
    public let byteCount: Int
    /// Where `mem` goes when this buffer is released (nil: released to OpenCL).
    let pool: CLBufferPool?
    /// The host array a `CLContext.sharedBuffer` uses as its memory, kept alive with it.
    fileprivate(set) var hostValues: [Float]? = nil
    nonisolated(unsafe) static var liveCount = LiveCounter()
    nonisolated(unsafe) static var liveByteCount = LiveCounter()

    init(mem: cl_mem, byteCount: Int, pool: CLBufferPool? = nil) {
        self.mem = mem
        self.byteCount = byteCount
        self.pool = pool
        CLBuffer.liveCount.add(1)
        CLBuffer.liveByteCount.add(byteCount)
        pool?.acquired(byteCount: byteCount)
    }

    deinit {
        // The queue is in order, so a later command on a reused `mem` runs after every command already
        // enqueued on it; OpenCL keeps a released one alive until those finish.
        if let pool { pool.give(mem, byteCount: byteCount) } else { clReleaseMemObject(mem) }
        CLBuffer.liveCount.add(-1)
        CLBuffer.liveByteCount.add(-byteCount)
    }

    private let derivedLock = NSLock()
    private var immutable = false
    private var derivedBuffers: [String: CLBuffer] = [:]

    /// Declares that this buffer's values never change again (graph constants: weights), which lets
    /// kernels cache buffers derived from it (`derived(_:make:)`).
    public func markImmutable() {
        derivedLock.lock(); immutable = true; derivedLock.unlock()
    }

    /// A buffer computed from this one's values by `make` (e.g. a packed matmul panel), identified by
    /// `key`. For an immutable buffer it is made once and kept as long as this buffer lives, so it can
    /// never go stale; for others it is made on every call.
    func derived(_ key: String, make: () throws -> CLBuffer) throws -> CLBuffer {
        derivedLock.lock()
        let isImmutable = immutable
        let cached = derivedBuffers[key]
        derivedLock.unlock()
        if let cached { return cached }
        let made = try make()
        if isImmutable {
            derivedLock.lock(); derivedBuffers[key] = made; derivedLock.unlock()
        }
        return made
    }

    /// How many OpenCL buffers exist right now (for leak checks).
    public static var live: Int { liveCount.value }
    /// Their total size in bytes.
    public static var liveBytes: Int { liveByteCount.value }
}

/// The released buffers of one context, by exact size, for `CLContext.makeBuffer` to hand out again.
/// An AM run repeats the same step, so from the second step on every activation, gradient and
/// scratch buffer comes from here: no `clCreateBuffer`, and no memory returned to the C heap, whose
/// fragmentation made PoCL runs grow far past their live size. The pool holds at most as many bytes
/// as were ever live at once from this context (`peakLiveBytes`); a buffer released past that is
/// returned to OpenCL. Thread-safe; buffers are reused on the context's one in-order queue.
public final class CLBufferPool: @unchecked Sendable {
    /// Fill every reused buffer with NaN before handing it out (tests: a kernel that reads memory it
    /// did not write then gives NaN instead of last step's values). Default: `AMGPU_POOL_POISON=1`.
    public var poisonReused: Bool {
        get { lock.lock(); defer { lock.unlock() }; return poison }
        set { lock.lock(); poison = newValue; lock.unlock() }
    }
    private var poison = ProcessInfo.processInfo.environment["AMGPU_POOL_POISON"] == "1"

    private let lock = NSLock()
    private var free: [Int: [cl_mem]] = [:]
    private var stats = Stats()

    /// Counters of one pool.
    public struct Stats: Sendable, Equatable {
        /// Buffers made with `clCreateBuffer` (pool misses).
        public var created = 0
        /// Buffers handed out again from the pool (hits).
        public var reused = 0
        /// Bytes in buffers currently held by tensors, and the most ever at once.
        public var liveBytes = 0
        public var peakLiveBytes = 0
        /// Bytes in released buffers waiting for reuse.
        public var pooledBytes = 0
    }

    public var statistics: Stats { lock.lock(); defer { lock.unlock() }; return stats }

    func take(byteCount: Int) -> cl_mem? {
        lock.lock(); defer { lock.unlock() }
        guard var list = free[byteCount], let mem = list.popLast() else { return nil }
        free[byteCount] = list.isEmpty ? nil : list
        stats.pooledBytes -= byteCount
        stats.reused += 1
        return mem
    }

    func created(byteCount: Int) {
        lock.lock(); stats.created += 1; lock.unlock()
    }

    func acquired(byteCount: Int) {
        lock.lock()
        stats.liveBytes += byteCount
        stats.peakLiveBytes = max(stats.peakLiveBytes, stats.liveBytes)
        lock.unlock()
    }

    func give(_ mem: cl_mem, byteCount: Int) {
        lock.lock()
        stats.liveBytes -= byteCount
        let keep = stats.pooledBytes + byteCount <= stats.peakLiveBytes
        if keep {
            free[byteCount, default: []].append(mem)
            stats.pooledBytes += byteCount
        }
        lock.unlock()
        if !keep { clReleaseMemObject(mem) }
    }

    /// Returns every pooled buffer to OpenCL.
    public func trim() {
        lock.lock()
        let all = free.values.flatMap { $0 }
        free = [:]
        stats.pooledBytes = 0
        lock.unlock()
        for mem in all { clReleaseMemObject(mem) }
    }

    deinit {
        for mem in free.values.joined() { clReleaseMemObject(mem) }
    }
}

/// A thread-safe counter.
struct LiveCounter: @unchecked Sendable {
    private let lock = NSLock()
    private let storage = UnsafeMutablePointer<Int>.allocate(capacity: 1)
    init() { storage.initialize(to: 0) }
    func add(_ delta: Int) { lock.lock(); storage.pointee += delta; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return storage.pointee }
}

/// A built program; kernels are created from it by name.
public final class CLProgram: @unchecked Sendable {
    let program: cl_program
    public let name: String

    init(program: cl_program, name: String) {
        self.program = program
        self.name = name
    }

    deinit { clReleaseProgram(program) }

    /// Creates the kernel `kernelName` of this program.
    public func makeKernel(_ kernelName: String) throws(CLError) -> CLKernel {
        var status: cl_int = 0
        guard let kernel = clCreateKernel(program, kernelName, &status), status == CL_SUCCESS else {
            throw CLError(code: status, call: "clCreateKernel", detail: "\(kernelName) in \(name).cl")
        }
        return CLKernel(kernel: kernel, name: kernelName, program: self)
    }
}

/// One kernel object. Setting arguments is not thread-safe in OpenCL, so `CLKernel.launch`
/// holds a lock from the first argument to the enqueue, and keeps every bound buffer alive
/// until the enqueue returned (Swift may otherwise free a buffer after its last use).
public final class CLKernel: @unchecked Sendable {
    let kernel: cl_kernel
    public let name: String
    let program: CLProgram
    let lock = NSLock()

    init(kernel: cl_kernel, name: String, program: CLProgram) {
        self.kernel = kernel
        self.name = name
        self.program = program
    }

    deinit { clReleaseKernel(kernel) }
}

/// A kernel argument.
public enum CLArgument {
    case buffer(CLBuffer)
    case int(Int32)
    case float(Float)
    /// Raw bytes of a by-value struct whose layout matches the kernel's (see shim/kernel headers).
    case bytes([UInt8])
    /// `__local` scratch memory of the given size in bytes.
    case local(Int)
}

extension CLContext {
    /// Sets the arguments and enqueues `kernel` over `global` work items (1–3 dimensions).
    /// Returns the event's device time in nanoseconds when `profile` is true (waits for it).
    @discardableResult
    public func launch(_ kernel: CLKernel, _ arguments: [CLArgument], global: [Int], local: [Int]? = nil,
                       profile: Bool = false) throws(CLError) -> UInt64 {
        if global.contains(0) { return 0 }
        kernel.lock.lock()
        defer { kernel.lock.unlock() }
        for (index, argument) in arguments.enumerated() {
            let status: cl_int
            switch argument {
            case .buffer(let buffer):
                var mem: cl_mem? = buffer.mem
                status = clSetKernelArg(kernel.kernel, cl_uint(index), MemoryLayout<cl_mem>.size, &mem)
            case .int(let value):
                var v = value
                status = clSetKernelArg(kernel.kernel, cl_uint(index), 4, &v)
            case .float(let value):
                var v = value
                status = clSetKernelArg(kernel.kernel, cl_uint(index), 4, &v)
            case .bytes(let bytes):
                status = bytes.withUnsafeBytes { clSetKernelArg(kernel.kernel, cl_uint(index), bytes.count, $0.baseAddress) }
            case .local(let size):
                status = clSetKernelArg(kernel.kernel, cl_uint(index), size, nil)
            }
            try clCheck(status, "clSetKernelArg", "argument \(index) of \(kernel.name)")
        }
        var globalSize = global
        var event: cl_event? = nil
        var status: cl_int = CL_SUCCESS
        if var localSize = local {
            // Round the global size up to a multiple of the local size; kernels check bounds.
            for i in globalSize.indices { globalSize[i] = (globalSize[i] + localSize[i] - 1) / localSize[i] * localSize[i] }
            if profile {
                status = clEnqueueNDRangeKernel(queue, kernel.kernel, cl_uint(global.count), nil, &globalSize,
                                                &localSize, 0, nil, &event)
            } else {
                status = clEnqueueNDRangeKernel(queue, kernel.kernel, cl_uint(global.count), nil, &globalSize,
                                                &localSize, 0, nil, nil)
            }
        } else if profile {
            status = clEnqueueNDRangeKernel(queue, kernel.kernel, cl_uint(global.count), nil, &globalSize,
                                            nil, 0, nil, &event)
        } else {
            status = clEnqueueNDRangeKernel(queue, kernel.kernel, cl_uint(global.count), nil, &globalSize,
                                            nil, 0, nil, nil)
        }
        withExtendedLifetime(arguments) {}
        try clCheck(status, "clEnqueueNDRangeKernel", "\(kernel.name) over \(global)")
        guard profile, let event else { return 0 }
        defer { clReleaseEvent(event) }
        try clCheck(clWaitForEvents(1, [event]), "clWaitForEvents", kernel.name)
        var start: cl_ulong = 0
        var end: cl_ulong = 0
        try clCheck(clGetEventProfilingInfo(event, cl_profiling_info(CL_PROFILING_COMMAND_START), 8, &start, nil),
                    "clGetEventProfilingInfo")
        try clCheck(clGetEventProfilingInfo(event, cl_profiling_info(CL_PROFILING_COMMAND_END), 8, &end, nil),
                    "clGetEventProfilingInfo")
        return end >= start ? end - start : 0
    }
}
