import Foundation
import Testing
@testable import GPUEngine

@Suite struct RuntimeTests {
    @Test func listsDevicesOrSaysThereAreNone() throws {
        let devices = try OpenCLRuntime.devices()
        if devices.isEmpty {
            TestEnvironment.skip("listsDevicesOrSaysThereAreNone's device checks",
                                 because: "no OpenCL device listed (\(Backends.openclUnavailableReason))")
        }
        for d in devices {
            #expect(d.computeUnits > 0)
            #expect(d.globalMemoryBytes > 0)
            #expect(d.openCLVersion.hasPrefix("OpenCL"))
        }
    }

    @Test func brokenKernelReportsTheBuildLog() throws {
        guard Backends.requireOpenCL() != nil, let device = try OpenCLRuntime.devices().first else { return }
        let backend = try OpenCLBackend(device: device)
        backend.overrideSource(file: "elementwise", with: "__kernel void unary_forward(__global float* y) { y[0] = undefined_symbol_xyz; }")
        do {
            _ = try backend.run(Unary(.relu), backend.tensor(HostTensor(shape: [2], values: [1, -1])))
            Issue.record("a broken kernel built without error")
        } catch let error as CLError {
            #expect(error.call == "clBuildProgram")
            #expect(error.description.contains("undefined_symbol_xyz"), "the build log names the bad identifier: \(error)")
            #expect(error.description.contains("CL_BUILD_PROGRAM_FAILURE"))
        }
    }

    @Test func deviceSelectionParsing() throws {
        #expect(try DeviceSelection(parsing: "cpu") == .cpu)
        #expect(try DeviceSelection(parsing: "auto") == .auto)
        #expect(try DeviceSelection(parsing: "opencl") == .opencl(nil))
        #expect(try DeviceSelection(parsing: "opencl:1") == .opencl(1))
        #expect(throws: EngineError.self) { try DeviceSelection(parsing: "cuda") }
        #expect(throws: EngineError.self) { try DeviceSelection(parsing: "opencl:-2") }
    }

    /// A packed matmul panel is cached only with an immutable (constant) weight, and the cached panel
    /// gives the CPU's product on every call; a mutable weight is repacked, so changing it is seen.
    @Test func packedWeightPanelsAreCachedOnlyForImmutableWeights() throws {
        guard let cl = Backends.requireOpenCL() else { return }
        var rng = SeededRandom(seed: 41)
        let x = rng.tensor([19, 23]), w = rng.tensor([37, 23]), w2 = rng.tensor([37, 23])
        let op = MatMul(transposeB: true)
        let expected = try Backends.cpu.download(Backends.cpu.run(op, Backends.cpu.tensor(x), Backends.cpu.tensor(w)))
        let expected2 = try Backends.cpu.download(Backends.cpu.run(op, Backends.cpu.tensor(x), Backends.cpu.tensor(w2)))
        let constant = try cl.tensor(w)
        try constant.device().markImmutable()
        let xt = try cl.tensor(x)
        for _ in 0..<2 {
            expectClose(try cl.download(cl.run(op, xt, constant)), expected, atol: 1e-4, rtol: 1e-4, "immutable weight")
        }
        let make = { try cl.context.makeBuffer(byteCount: 64) }
        #expect(try constant.device().derived("k", make: make) === constant.device().derived("k", make: make),
                "an immutable buffer keeps its derived buffer")
        let mutable = try cl.tensor(w)
        #expect(try mutable.device().derived("k", make: make) !== mutable.device().derived("k", make: make),
                "a mutable buffer's derived buffer is made anew")
        // A mutable weight overwritten in place: the next product must use the new values.
        expectClose(try cl.download(cl.run(op, xt, mutable)), expected, atol: 1e-4, rtol: 1e-4, "mutable weight")
        try w2.values.withUnsafeBytes { raw in
            try cl.context.write(mutable.device(), from: raw.baseAddress!, byteCount: raw.count)
        }
        expectClose(try cl.download(cl.run(op, xt, mutable)), expected2, atol: 1e-4, rtol: 1e-4, "rewritten weight")
    }

    @Test func oversizedAllocationIsReportedWithItsSize() throws {
        guard let cl = Backends.requireOpenCL() else { return }
        let limit = cl.context.device.maxAllocationBytes
        do {
            _ = try cl.context.makeBuffer(byteCount: Int(limit) + 4096)
            Issue.record("an allocation over CL_DEVICE_MAX_MEM_ALLOC_SIZE succeeded")
        } catch {
            #expect(error.code == -61)
            #expect(error.description.contains("\(Int(limit) + 4096)"))
        }
    }

    @Test func buffersAreReleased() throws {
        guard let cl = Backends.requireOpenCL() else { return }
        // Other tests run concurrently, so only check that our own buffers come and go.
        var tensors: [Tensor] = []
        for _ in 0..<50 { tensors.append(try cl.zeros([1000])) }
        #expect(CLBuffer.live >= 50)
        weak let probe = tensors.first
        tensors.removeAll()
        #expect(probe == nil)
    }
}

/// Runs the real `amgpu` binary.
@Suite struct CLITests {
    /// The amgpu binary next to the test bundle or, where Swift Testing runs from a bundle folder,
    /// in .build/debug.
    static var binary: URL {
        let next = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("amgpu")
        return FileManager.default.fileExists(atPath: next.path) ? next
            : URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(".build/debug/amgpu")
    }

    /// Runs `amgpu arguments` with `environment` added to this process's. With `fileSizeLimitKiB`,
    /// a full disk is simulated: RLIMIT_FSIZE makes writes past the limit fail with EFBIG, and
    /// SIGXFSZ is ignored (inherited through exec) so the write returns the error instead of killing.
    /// `signaled`: the process was ended by a signal (a crash), not by exit.
    static func run(_ arguments: [String], environment: [String: String] = [:], fileSizeLimitKiB: Int? = nil) throws
        -> (status: Int32, signaled: Bool, stdout: String, stderr: String) {
        let process = Process()
        if let limit = fileSizeLimitKiB {
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", "trap '' XFSZ; ulimit -f \(limit); exec \"$0\" \"$@\"", binary.path] + arguments
        } else {
            process.executableURL = binary
            process.arguments = arguments
        }
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process.environment = env
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, process.terminationReason == .uncaughtSignal,
                String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    @Test func devicesListsTheCPUBackendAndOpenCLDevices() throws {
        let r = try Self.run(["devices"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("cpu"))
        if let devices = try? OpenCLRuntime.devices(), let first = devices.first {
            #expect(r.stdout.contains(first.name))
        }
    }

    @Test func noOpenCLPlatformFailsClearlyAndAutoFallsBack() throws {
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("amgpu-empty-icd-\(getpid())")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        let env = ["OCL_ICD_VENDORS": empty.path]
        let forced = try Self.run(["selftest", "--device", "opencl"], environment: env)
        #expect(forced.status != 0)
        #expect(forced.stderr.contains("no OpenCL device"))
        #expect(forced.stderr.split(separator: "\n").count == 1, "one line: \(forced.stderr)")
        let auto = try Self.run(["selftest", "--device", "auto"], environment: env)
        #expect(auto.status == 0, "auto falls back: \(auto.stderr)")
        #expect(auto.stderr.contains("running on the CPU backend"))
        #expect(auto.stdout.contains("cpu"))
        let viaEnv = try Self.run(["selftest"], environment: env.merging(["AMGPU_DEVICE": "cpu"]) { $1 })
        #expect(viaEnv.status == 0 && viaEnv.stderr.isEmpty)
    }
}
