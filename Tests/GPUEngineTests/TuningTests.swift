import Foundation
import Testing
@testable import GPUEngine

/// `amgpu tune`'s engine: the per-device tuning file (round trip, atomic write, corrupt file ignored with
/// a warning), the engine actually running the tuned set, the tuner rejecting a wrong candidate, and the
/// GEMM shapes it derives from the builders.
@Suite struct TuningTests {
    static let tuned = GEMMParameters(mwg: 16, nwg: 32, kwg: 8, mdimc: 4, ndimc: 8, vwm: 2, vwn: 2)

    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("amgpu-tuning-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static func file(for device: CLDeviceInfo, _ choice: GEMMChoice) -> TuningFile {
        TuningFile(platform: device.platformName, device: device.name, driver: device.driverVersion,
                   created: "2026-12-02T00:00:00Z", note: "test", gemm: choice)
    }

    @Test func cacheRoundTrip() throws {
        guard let cl = Backends.requireOpenCL() else { return }
        let device = cl.context.device
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        // Nothing cached: the shipped default for this kind of device, no warning.
        let none = TuningStore.load(for: device, directory: dir)
        #expect(none.choice == ShippedTuning.defaults(for: device).choice && none.warning == nil && none.source.hasPrefix("shipped default"))
        let url = try TuningStore.save(Self.file(for: device, .tiled(Self.tuned)), for: device, directory: dir)
        #expect(url.lastPathComponent.hasSuffix(".json") && !url.lastPathComponent.contains(" "))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == [url.lastPathComponent], "a temporary file was left behind")
        let back = TuningStore.load(for: device, directory: dir)
        #expect(back.choice == .tiled(Self.tuned))
        #expect(back.warning == nil && back.source == "tuned: \(url.path)")
        // Overwriting replaces the choice.
        try TuningStore.save(Self.file(for: device, .cpuStyle), for: device, directory: dir)
        #expect(TuningStore.load(for: device, directory: dir).choice == .cpuStyle)
    }

    @Test func corruptCacheIsIgnoredWithAWarning() throws {
        guard let cl = Backends.requireOpenCL() else { return }
        let device = cl.context.device
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = TuningStore.fileURL(for: device, directory: dir)
        let shipped = ShippedTuning.defaults(for: device).choice
        var unbuildable = Self.file(for: device, .tiled(GEMMParameters(mwg: 30, nwg: 32, kwg: 8, mdimc: 4, ndimc: 8, vwm: 1, vwn: 1)))
        let encoder = JSONEncoder()
        var future = Self.file(for: device, .tiled(Self.tuned))
        future.format = 99
        let bodies: [(Data, String)] = [
            (Data("{\"format\": 1, \"gemm\": ".utf8), "truncated JSON"),
            (Data([0xFF, 0xFE, 0x00, 0x41]), "binary junk"),
            (try encoder.encode(future), "format 99"),
            (try encoder.encode(unbuildable), "cannot build"),
        ]
        unbuildable.note = ""
        for (body, what) in bodies {
            try body.write(to: url)
            let r = TuningStore.load(for: device, directory: dir)
            #expect(r.choice == shipped, "\(what): \(r.choice)")
            let warning = try #require(r.warning, "\(what): no warning")
            #expect(warning.contains("ignoring the tuning file") && warning.contains(url.path), "\(what): \(warning)")
            // A backend opened on it starts with the shipped default and carries the warning.
            let backend = try OpenCLBackend(device: device, tuningDirectory: dir)
            #expect(backend.gemmChoice == shipped && backend.tuningWarning == warning)
        }
    }

    /// A tuned set in the device's file is the one the engine launches: matmuls and pointwise convolutions
    /// on `matmul_tiled`, a 3×3 convolution on `conv2d_forward_tiled`, with exactly those parameters (counted per
    /// parameter set); a depthwise convolution not.
    @Test func tunedSetIsTheOneUsed() throws {
        guard let shared = Backends.requireOpenCL() else { return }
        let device = shared.context.device
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try TuningStore.save(Self.file(for: device, .tiled(Self.tuned)), for: device, directory: dir)
        let backend = try OpenCLBackend(device: device, tuningDirectory: dir)
        #expect(backend.gemmChoice == .tiled(Self.tuned) && backend.tuningWarning == nil)
        var rng = SeededRandom(seed: 1603)
        let a = rng.tensor([19, 23]), b = rng.tensor([23, 37])
        let product = try backend.download(backend.run(MatMul(), backend.tensor(a), backend.tensor(b)))
        #expect(backend.tiledLaunches(Self.tuned) == 1)
        expectClose(product, try Backends.cpu.download(Backends.cpu.run(MatMul(), Backends.cpu.tensor(a), Backends.cpu.tensor(b))),
                    atol: 1e-4, rtol: 1e-4, "matmul on the tuned kernel")
        let x = rng.tensor([1, 6, 5, 7])
        _ = try backend.run(Conv2D(), backend.tensor(x), backend.tensor(rng.tensor([4, 6, 1, 1])))
        #expect(backend.tiledLaunches(Self.tuned) == 2, "the pointwise conv did not run on the tuned kernel")
        let w3 = rng.tensor([4, 6, 3, 3])
        let conv = try backend.download(backend.run(Conv2D(pads: Padding2D(1)), backend.tensor(x), backend.tensor(w3)))
        #expect(backend.tiledLaunches(Self.tuned) == 3, "the 3×3 conv did not run on the tuned implicit-GEMM kernel")
        expectClose(conv, try Backends.cpu.download(Backends.cpu.run(Conv2D(pads: Padding2D(1)), Backends.cpu.tensor(x), Backends.cpu.tensor(w3))),
                    atol: 1e-4, rtol: 1e-4, "3×3 conv on the tuned kernel")
        _ = try backend.run(Conv2D(pads: Padding2D(1), groups: 6), backend.tensor(x), backend.tensor(rng.tensor([6, 1, 3, 3])))
        #expect(backend.tiledLaunches(Self.tuned) == 3, "a depthwise conv ran on the GEMM kernels")
        // Without a file the CPU device runs its shipped default: no tiled launches at all.
        let plain = try OpenCLBackend(device: device, tuningDirectory: dir.appendingPathComponent("empty"))
        _ = try plain.run(MatMul(), plain.tensor(a), plain.tensor(b))
        #expect(plain.gemmChoice == ShippedTuning.defaults(for: device).choice)
        if plain.gemmChoice == .cpuStyle { #expect(plain.tiledLaunches(Self.tuned) == 0) }
    }

    /// A candidate whose kernel computes wrong results (here: any set with KWG 8 halves the accumulator at
    /// every fma) is rejected with the reason, never timed and never written; a correct one is timed.
    @Test func wrongCandidateIsRejected() throws {
        guard let shared = Backends.requireOpenCL() else { return }
        let device = shared.context.device
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let backend = try OpenCLBackend(device: device, tuningDirectory: dir)
        let source = try #require(try backend.kernelSource("gemm")).text
        backend.overrideSource(file: "gemm", with: "#if KWG == 8\n#define fma(a, b, c) ((a) * (b) + 0.5f * (c))\n#endif\n" + source)
        let wrong = GEMMParameters(mwg: 16, nwg: 16, kwg: 8, mdimc: 4, ndimc: 4, vwm: 2, vwn: 2)
        let right = GEMMParameters(mwg: 16, nwg: 16, kwg: 16, mdimc: 4, ndimc: 4, vwm: 2, vwn: 2)
        #expect(Tuner.check(right, on: backend) == nil)
        var request = TuneRequest()
        request.reps = 1
        request.directory = dir
        let problem = GEMMProblem(gemm: StridedGEMM(batch: 1, m: 40, n: 24, k: 20, aBatchStride: 0, aRowStride: 20, aColStride: 1,
                                                    bBatchStride: 0, bRowStride: 24, bColStride: 1, cBatchStride: 960),
                                  count: 2, label: "small")
        var lines: [String] = []
        let report = try Tuner.run(request, on: backend, candidates: [wrong, right], problems: [problem]) { lines.append($0) }
        let rejected = try #require(report.candidates.first { $0.candidate == wrong.description })
        #expect(rejected.rejected?.contains("wrong result") == true && rejected.secondsPerStep == nil, "\(rejected)")
        #expect(lines.contains { $0.contains(wrong.description) && $0.contains("rejected") })
        let timed = try #require(report.candidates.first { $0.candidate == right.description })
        #expect(timed.rejected == nil && (timed.secondsPerStep ?? 0) > 0)
        #expect(report.winner != .tiled(wrong))
        let written = TuningStore.load(for: device, directory: dir)
        #expect(written.choice == report.winner && written.warning == nil && written.source.hasPrefix("tuned:"))
        #expect(backend.gemmChoice == report.winner)
    }

    /// The GEMMs are derived from the builders (random weights, no model file): ViT-B/16's qkv product (197 tokens ×
    /// 768 → 2304) forward and its backward to the activations, a pointwise conv of ResNetV2-50, and the
    /// implicit-GEMM convolutions (stem, 3×3, patch embedding) both ways.
    @Test func problemsComeFromTheBuilders() throws {
        let vit = try Tuner.problems(models: ["vit_base_patch16_224"], batches: [1])
        #expect(vit.contains { $0.gemm.m == 197 && $0.gemm.k == 768 && $0.gemm.n == 2304 && $0.count == 12 }, "\(vit.prefix(4))")
        #expect(vit.contains { $0.gemm.m == 197 && $0.gemm.k == 2304 && $0.gemm.n == 768 && $0.label.hasSuffix("backward") })
        let resnet = try Tuner.problems(models: ["resnetv2_50"], batches: [1])
        #expect(resnet.contains { $0.conv == nil && $0.gemm.biasPerRow && $0.gemm.m == 256 && $0.gemm.k == 64 && $0.gemm.n == 56 * 56 }, "\(resnet.prefix(4))")
        // Implicit-GEMM convolutions: the 7×7/s2 stem and the 3×3 convolutions (forward and backward-to-input),
        // and ViT-B/16's 16×16/s16 patch embedding; never a pointwise one (those are plain GEMMs above).
        func conv(_ list: [GEMMProblem], k: Int, s: Int, cin: Int, cout: Int, backward: Bool) -> GEMMProblem? {
            list.first { p in
                guard let c = p.conv else { return false }
                return c.geometry.kh == k && c.geometry.sh == s && c.geometry.cin == cin && c.geometry.cout == cout && c.backward == backward
            }
        }
        for backward in [false, true] {
            let stem = try #require(conv(resnet, k: 7, s: 2, cin: 3, cout: 64, backward: backward), "no stem conv problem")
            #expect(stem.gemm.m == 64 && stem.gemm.k == 3 * 49 && stem.gemm.n == 112 * 112)
            let stemFlop: Double = 2 * 64 * 112 * 112 * 147
            #expect(stem.flop == stemFlop)
            let mid = try #require(conv(resnet, k: 3, s: 1, cin: 64, cout: 64, backward: backward), "no 3×3 conv problem")
            #expect(mid.count == 3, "\(mid)")
            let patch = try #require(conv(vit, k: 16, s: 16, cin: 3, cout: 768, backward: backward), "no patch-embedding problem")
            #expect(patch.gemm.m == 768 && patch.gemm.k == 768 && patch.gemm.n == 196)
        }
        #expect(!resnet.contains { $0.conv.map { $0.geometry.isPointwise } ?? false })
    }
}
