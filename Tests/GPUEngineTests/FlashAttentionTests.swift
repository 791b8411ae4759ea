import Foundation
import Testing
@testable import GPUEngine

/// The tiled attention kernels (`attention_flash.cl`, FlashAttention-2 style: O and the row logsumexp L stored,
/// P recomputed in backward, never written to global memory) selected through `FlashAttentionBackend` or
/// `OpenCLBackend.attentionChoice`: forward O and L, and dQ, dK, dV, against the CPU reference at awkward
/// token counts (1, 7, 197, 257), a power of two (64), 1/3/6 heads, head dimensions 64 and odd ones (24, 40),
/// cross attention with Dv ≠ D, and scores of ±100 (online softmax without overflow); finite differences
/// through the op with the flash backward's gradients; the CPU reference of the (O, L) backward; the choice per
/// device and its fallback; and a ViT-tiny input gradient with and without the flash kernels.
/// PoCL runs these GPU-style kernels slowly (barriers), so the largest cases stay at batch 2.
@Suite struct FlashAttentionTests {
    /// Parameter sets: a work-group of 5 rows with 3-row tiles (nothing divides anything), 8×16, 16×8 (the
    /// backward's fallback), and the shipped GPU default.
    static let parameterSets: [FlashAttentionParameters] = [
        FlashAttentionParameters(rows: 5, tile: 3),
        FlashAttentionParameters(rows: 8, tile: 16),
        FlashAttentionParameters(rows: 16, tile: 8),
        ShippedAttention.gpuDefault,
    ]

    /// (Q, K, V shapes): T 1, 7 (D 24), 64 (power of two), 197 and 257 (D 40), 6 heads; cross attention
    /// Tq 7, Tk 19, Dv 16.
    static let shapes: [(q: [Int], k: [Int], v: [Int])] = [
        ([2, 1, 1, 64], [2, 1, 1, 64], [2, 1, 1, 64]),
        ([2, 3, 7, 24], [2, 3, 7, 24], [2, 3, 7, 24]),
        ([2, 3, 7, 24], [2, 3, 19, 24], [2, 3, 19, 16]),
        ([2, 1, 64, 64], [2, 1, 64, 64], [2, 1, 64, 64]),
        ([2, 6, 197, 64], [2, 6, 197, 64], [2, 6, 197, 64]),
        ([2, 6, 257, 40], [2, 6, 257, 40], [2, 6, 257, 40]),
    ]

    /// Shapes per parameter set: all of them for the default and the 5×3 set, the small ones for the others.
    static func shapes(for p: FlashAttentionParameters) -> [(q: [Int], k: [Int], v: [Int])] {
        p == ShippedAttention.gpuDefault || p.rows == 5 ? shapes : Array(shapes.prefix(4))
    }

    /// L [bh·Tq] = log Σ_j exp(scale·q_i·k_j) in Double, max subtracted.
    static func logSumExp(_ q: HostTensor, _ k: HostTensor, scale: Double) -> [Double] {
        let d = q.shape.last!, tq = q.shape[q.shape.count - 2], tk = k.shape[k.shape.count - 2]
        let bh = q.count / (tq * d)
        var out: [Double] = []
        for b in 0..<bh {
            for i in 0..<tq {
                let s = (0..<tk).map { j in
                    scale * (0..<d).reduce(0.0) { $0 + Double(q.values[(b * tq + i) * d + $1]) * Double(k.values[(b * tk + j) * d + $1]) }
                }
                let m = s.max()!
                out.append(m + Foundation.log(s.reduce(0) { $0 + Foundation.exp($1 - m) }))
            }
        }
        return out
    }

    /// Forward O, L and all three gradients on the flash kernels against the CPU reference.
    @Test(arguments: parameterSets)
    func flashMatchesCPU(_ parameters: FlashAttentionParameters) throws {
        // A backend of its own: the launch counts are per backend, and other tests run the same sets in parallel.
        guard Backends.requireOpenCL() != nil, let device = try OpenCLRuntime.devices().first else { return }
        let cl = try OpenCLBackend(device: device)
        let flash = FlashAttentionBackend(base: cl, parameters: parameters)
        var rng = SeededRandom(seed: 1616)
        for c in Self.shapes(for: parameters) {
            let scale = Attention.defaultScale(headDim: c.q.last!)
            let inputs = [rng.tensor(c.q, -2, 2), rng.tensor(c.k, -2, 2), rng.tensor(c.v)]
            let label = "flash \(parameters) Q \(c.q) K \(c.k) V \(c.v)"
            let op = OpCase(Attention(scale: scale), inputs)
            let seed = try op.lossSeed()
            let before = flash.flashLaunches
            let got = try op.run(on: flash, seed: seed), want = try op.run(on: Backends.cpu, seed: seed)
            #expect(flash.flashLaunches == before + 1, "\(label): the forward did not run on the flash kernels")
            #expect(got.output.values.contains { $0 != 0 })
            expectClose(got.output, want.output, atol: 1e-4, rtol: 1e-4, "\(label) O")
            for (i, (g, w)) in zip(got.grads, want.grads).enumerated() {
                let g = try #require(g), w = try #require(w)
                // One key: P ≡ 1, so dQ and dK are exactly zero (and compared as such); else never all zero.
                if c.k[2] > 1 || i == 2 { #expect(w.values.contains { $0 != 0 }, "\(label) d input \(i) reference is all zero") }
                expectClose(g, w, atol: 1e-4, rtol: 1e-4, "\(label) d input \(i)")
            }
            // L itself, against a Double logsumexp.
            let s = try AttentionShape(q: c.q, k: c.k, v: c.v, op: "test")
            let (_, saved) = try flash.attentionForward(cl.tensor(inputs[0]), cl.tensor(inputs[1]), cl.tensor(inputs[2]),
                                                        shape: s, scale: scale)
            guard case .logSumExp(_, let l) = saved else { Issue.record("\(label): forward saved P"); continue }
            let ref = Self.logSumExp(inputs[0], inputs[1], scale: Double(scale))
            expectClose(try cl.download(l), HostTensor(shape: [s.bh, s.tq], values: ref.map(Float.init)),
                        atol: 1e-5, rtol: 1e-5, "\(label) L")
        }
    }

    /// Scores scale·q·k up to about ±100 (exp overflows float32 past 88.7): the online softmax's running
    /// max keeps O, L and the gradients finite and equal to the reference's, and partial gradients (only dV,
    /// only dQ, only dK) run the kernels with the others off.
    @Test func largeScoresAndPartialGradients() throws {
        guard let cl = Backends.requireOpenCL() else { return }
        let flash = FlashAttentionBackend(base: cl, parameters: ShippedAttention.gpuDefault)
        var rng = SeededRandom(seed: 1617)
        let shape = [2, 3, 41, 64]
        let q = rng.tensor(shape, -2.2, 2.2), k = rng.tensor(shape, -2.2, 2.2), v = rng.tensor(shape)
        let scale: Float = 3
        let largest = Self.logSumExp(q, k, scale: Double(scale)).max()!
        #expect(largest > 89, "the test needs scores past float32's exp range; largest logsumexp \(largest)")
        for flags in [[true, true, true], [false, false, true], [true, false, false], [false, true, false]] {
            let op = OpCase(Attention(scale: scale), [q, k, v], differentiable: flags)
            let seed = try op.lossSeed()
            let got = try op.run(on: flash, seed: seed), want = try op.run(on: Backends.cpu, seed: seed)
            #expect(got.output.values.allSatisfy { $0.isFinite })
            expectClose(got.output, want.output, atol: 1e-4, rtol: 1e-4, "large scores \(flags) O")
            for (i, (g, w)) in zip(got.grads, want.grads).enumerated() {
                guard flags[i] else { #expect(g == nil); continue }
                let g = try #require(g), w = try #require(w)
                #expect(w.values.contains { abs($0) > 1e-3 })
                expectClose(g, w, atol: 2e-4, rtol: 1e-3, "large scores \(flags) d input \(i)")
            }
        }
    }

    /// Finite differences through the op (the CPU forward, float32, Richardson-extrapolated) against the
    /// flash kernels' gradients, and against the CPU reference of the (O, L) backward.
    @Test func flashGradientsMatchFiniteDifferences() throws {
        guard let cl = Backends.requireOpenCL() else { return }
        let flash = FlashAttentionBackend(base: cl, parameters: FlashAttentionParameters(rows: 5, tile: 3))
        var rng = SeededRandom(seed: 1618)
        for c in [([2, 3, 7, 24], [2, 3, 9, 24], [2, 3, 9, 8]), ([1, 2, 16, 64], [1, 2, 16, 64], [1, 2, 16, 64])] {
            let op = OpCase(Attention(scale: 0.35), [rng.tensor(c.0, -1.5, 1.5), rng.tensor(c.1, -1.5, 1.5), rng.tensor(c.2)])
            let seed = try op.lossSeed()
            let check = GradientCheck(h: 1e-2, tolerance: 1e-2, samples: 32, rngSeed: 8)
            let numeric = try op.numericGradients(check, seed: seed)
            for (name, backend) in [("OpenCL flash", flash as any Backend), ("CPU (O, L)", LogSumExpCPU() as any Backend)] {
                let analytic = try op.run(on: backend, seed: seed).grads
                for failure in check.failures("\(name) \(c.0)", numeric: numeric, analytic: analytic) {
                    Issue.record("\(failure)")
                }
            }
        }
    }

    /// The CPU reference of the (O, L) backward (P = exp(S − L), rowsum(dO ⊙ O)) gives the P-path's gradients.
    @Test func cpuLogSumExpBackwardMatchesProbabilities() throws {
        var rng = SeededRandom(seed: 1619)
        for c in Self.shapes {
            let op = OpCase(Attention(scale: 0.3), [rng.tensor(c.q, -2, 2), rng.tensor(c.k, -2, 2), rng.tensor(c.v)])
            let seed = try op.lossSeed()
            let got = try op.run(on: LogSumExpCPU(), seed: seed), want = try op.run(on: Backends.cpu, seed: seed)
            expectClose(got.output, want.output, atol: 0, rtol: 0, "CPU (O, L) forward \(c.q)")
            for (i, (g, w)) in zip(got.grads, want.grads).enumerated() {
                expectClose(try #require(g), try #require(w), atol: 1e-5, rtol: 1e-5, "CPU (O, L) d input \(i) \(c.q)")
            }
        }
    }

    /// `attentionChoice`: the engine's `Attention` runs the flash kernels when chosen, the P-storing kernels
    /// otherwise; a head dimension the parameters refuse (D 200 > 128) falls back to the P-storing kernels with
    /// the right result, while the fixed variant refuses it with the reason.
    @Test func choiceDispatchAndFallback() throws {
        guard Backends.requireOpenCL() != nil, let device = try OpenCLRuntime.devices().first else { return }
        let cl = try OpenCLBackend(device: device)
        let p = FlashAttentionParameters(rows: 8, tile: 16)
        var rng = SeededRandom(seed: 1620)
        let small = OpCase(Attention(scale: 0.3), [rng.tensor([1, 2, 9, 16], -2, 2), rng.tensor([1, 2, 9, 16], -2, 2), rng.tensor([1, 2, 9, 16])])
        cl.attentionChoice = .probabilities
        _ = try small.run(on: cl, seed: try small.lossSeed())
        #expect(cl.flashLaunches(p) == 0)
        cl.attentionChoice = .flash(p)
        try small.compareWithCPU(on: cl)
        #expect(cl.flashLaunches(p) == 1, "the forward ran on the flash kernels")
        let wide = OpCase(Attention(scale: 0.05), [rng.tensor([1, 1, 5, 200]), rng.tensor([1, 1, 6, 200]), rng.tensor([1, 1, 6, 3])])
        try wide.compareWithCPU(on: cl)
        #expect(cl.flashLaunches(p) == 1, "D 200 fell back to the P-storing kernels")
        let reason = try #require(p.unsupportedReason(d: 200, dv: 3))
        #expect(reason.contains("128"))
        #expect(throws: EngineError.self) {
            try wide.run(on: FlashAttentionBackend(base: cl, parameters: p), seed: nil)
        }
        // Too much local memory is refused with the byte count.
        #expect(FlashAttentionParameters(rows: 128, tile: 64).unsupportedReason(d: 64, dv: 64)?.contains("local memory") == true)
        #expect(ShippedAttention.gpuDefault.unsupportedReason(d: 64, dv: 64) == nil)
    }

    /// Shipped defaults per kind of device and the `AMGPU_ATTENTION` override.
    @Test func shippedDefaultsAndEnvironment() throws {
        guard let cl = Backends.requireOpenCL() else { return }
        let device = cl.context.device
        let shipped = ShippedAttention.defaults(for: device)
        if device.type.contains("GPU") {
            #expect(shipped.choice == .flash(ShippedAttention.gpuDefault))
        } else {
            #expect(shipped.choice == .probabilities, "\(device.type): PoCL keeps the P-storing kernels")
        }
        let env = try ShippedAttention.choice(for: device, environment: ["AMGPU_ATTENTION": "flash:16,8"])
        #expect(env.choice == .flash(FlashAttentionParameters(rows: 16, tile: 8)) && env.source == "AMGPU_ATTENTION=flash:16,8")
        #expect(try ShippedAttention.choice(for: device, environment: ["AMGPU_ATTENTION": "flash"]).choice == .flash(ShippedAttention.gpuDefault))
        #expect(try ShippedAttention.choice(for: device, environment: ["AMGPU_ATTENTION": "probabilities"]).choice == .probabilities)
        #expect(try ShippedAttention.choice(for: device, environment: [:]).choice == shipped.choice)
        for bad in ["fast", "flash:0,8", "flash:16", "flash:a,b"] {
            do {
                _ = try ShippedAttention.choice(for: device, environment: ["AMGPU_ATTENTION": bad])
                Issue.record("AMGPU_ATTENTION=\(bad) was accepted")
            } catch {
                #expect("\(error)".contains("AMGPU_ATTENTION") && "\(error)".contains(bad), "\(error)")
            }
        }
    }

    /// A ViT-tiny input gradient (12 blocks, 3 heads, D 64) with the flash kernels forced equals the one with
    /// the P-storing kernels; at 224 px (197 tokens) the flash path holds fewer bytes at its peak.
    @Test(arguments: [(48, 2), (224, 1)])
    func vitTinyGradientWithFlash(_ size: Int, _ batch: Int) throws {
        guard Backends.requireOpenCL() != nil, let device = try OpenCLRuntime.devices().first else { return }
        let model = try ModelBuilders.build("vit_tiny_patch16_224", weights: .random(seed: 16), batch: batch, imageSize: size)
        var rng = SeededRandom(seed: 17)
        let input = rng.tensor(model.graph.shape(of: model.input), -2, 2)
        var results: [(HostTensor, Int)] = []
        for choice in [AttentionChoice.probabilities, .flash(ShippedAttention.gpuDefault)] {
            let cl = try OpenCLBackend(device: device)
            cl.attentionChoice = choice
            let g = try MemoryTests.inputGradient(model, Executor(graph: model.graph, backend: cl), input, on: cl)
            try cl.synchronize()
            if case .flash(let p) = choice { #expect(cl.flashLaunches(p) == 12, "every block ran the flash kernels") }
            results.append((g, cl.context.pool.statistics.peakLiveBytes))
        }
        #expect(results[0].0.values.contains { $0 != 0 } && results[0].0.values.allSatisfy { $0.isFinite })
        expectClose(results[1].0, results[0].0, atol: 1e-4, rtol: 1e-3, "ViT-tiny \(size) px input gradient, flash vs P-storing")
        print("amgpu-test: MEMORY ViT-tiny \(size) px batch \(batch): peak OpenCL bytes P-storing \(results[0].1), flash \(results[1].1)")
        if size == 224 { #expect(results[1].1 < results[0].1, "flash peak \(results[1].1) B vs P-storing \(results[0].1) B") }
    }
}

/// The CPU reference with the flash kernels' saved state: forward saves (O, L), backward recomputes P.
final class LogSumExpCPU: KernelBackendWrapper, @unchecked Sendable {
    var base: any KernelBackend { Backends.cpu }
    var name: String { "cpu (O, L)" }

    func attentionForward(_ q: Tensor, _ k: Tensor, _ v: Tensor, shape: AttentionShape, scale: Float) throws -> (Tensor, AttentionSaved) {
        try Backends.cpu.attentionForwardLogSumExp(q, k, v, shape: shape, scale: scale)
    }
}
