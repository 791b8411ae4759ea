import Foundation
import Testing
@testable import GPUEngine

/// Memory of the OpenCL backend (issue #16, item 5): released buffers are pooled and reused by the
/// next step (no new `clCreateBuffer`, reused buffers poisoned with NaN so a kernel that reads
/// memory it did not write fails), every step's tensors are freed again, and on a device whose
/// memory is host memory the weights are used in place (one copy, not two).
@Suite("MemoryTests", .serialized)
struct MemoryTests {
    /// A fresh backend (its own context and pool, so other suites' buffers do not count).
    static func freshBackend(_ test: String = #function) throws -> OpenCLBackend? {
        guard Backends.requireOpenCL(test) != nil, let device = try OpenCLRuntime.devices().first else { return nil }
        return try OpenCLBackend(device: device)
    }

    /// One AM-like step: forward to the logits, backward of Σ logits[:, 0..2] to the input.
    static func inputGradient(_ model: Model, _ ex: Executor, _ input: HostTensor, on backend: any Backend) throws -> HostTensor {
        let x = try backend.tensor(input)
        let pass = try ex.forward(feeds: [model.input: x], targets: [model.output], differentiable: [model.input])
        let shape = model.graph.shape(of: model.output)
        var seed = [Float](repeating: 0, count: shape.reduce(1, *))
        for b in 0..<shape[0] { for k in 0..<3 { seed[b * shape[1] + k] = 1 } }
        let grads = try ex.backward(pass, seeds: [model.output: backend.tensor(HostTensor(shape: shape, values: seed))])
        guard let g = grads[model.input] else { throw EngineError.invalidGraph("no input gradient") }
        return try backend.download(g)
    }

    /// Step 2 of the same graph takes its buffers from the pool (≤ 5 % new), with the reused buffers
    /// filled with NaN first, and gives bit-identical gradients to step 1, which match the CPU.
    /// After each step every activation, gradient and scratch buffer is freed again.
    @Test(arguments: [("vit_tiny_patch16_224", 32), ("resnetv2_50", 32), ("efficientnet_lite0", 32)])
    func secondStepReusesEveryBuffer(_ architecture: String, _ size: Int) throws {
        guard let cl = try Self.freshBackend() else { return }
        cl.context.pool.poisonReused = true
        let model = try ModelBuilders.build(architecture, weights: .random(seed: 7), batch: 2, imageSize: size)
        var rng = SeededRandom(seed: 8)
        let input = rng.tensor(model.graph.shape(of: model.input), -2, 2)
        let ex = Executor(graph: model.graph, backend: cl)
        let first = try Self.inputGradient(model, ex, input, on: cl)
        try cl.synchronize()
        let afterFirst = cl.context.pool.statistics
        let second = try Self.inputGradient(model, ex, input, on: cl)
        try cl.synchronize()
        let afterSecond = cl.context.pool.statistics
        #expect(afterFirst.created > 10, "step 1 made its buffers (\(afterFirst.created))")
        // The pool holds at most the peak live bytes, so a graph whose per-size maxima add up to more
        // (EfficientNet: 4 of 123 buffers) returns a few to OpenCL at the end of a step.
        #expect((afterSecond.created - afterFirst.created) * 20 <= afterFirst.created,
                "step 2 made \(afterSecond.created - afterFirst.created) new buffers (step 1: \(afterFirst.created)); the pool should have had nearly all")
        #expect(afterSecond.reused > afterFirst.reused, "step 2 took its buffers from the pool")
        #expect(afterSecond.liveBytes == afterFirst.liveBytes,
                "bytes still held after step 2: \(afterSecond.liveBytes), after step 1: \(afterFirst.liveBytes)")
        #expect(afterSecond.pooledBytes <= afterSecond.peakLiveBytes)
        let finite = first.values.allSatisfy { $0.isFinite }
        #expect(finite, "step 1 gradient is finite")
        #expect(first.values == second.values, "step 2 (reused, NaN-poisoned buffers) differs from step 1")
        #expect(first.values.contains { $0 != 0 }, "the gradient is not all zeros")
        let cpu = Backends.cpu
        let reference = try Self.inputGradient(model, Executor(graph: model.graph, backend: cpu), input, on: cpu)
        expectClose(second, reference, atol: 1e-3, rtol: 2e-3, "\(architecture) input gradient, OpenCL step 2 vs CPU")
    }

    /// A tensor freed mid-run returns its buffer to the pool, the next tensor of that size gets it back
    /// (no new buffer), and a pool never holds more than the peak bytes ever live at once.
    @Test func releasedBufferIsHandedOutAgain() throws {
        guard let cl = try Self.freshBackend() else { return }
        let pool = cl.context.pool
        var a: Tensor? = try cl.full([1000], value: 1)
        let b = try cl.full([37], value: 2)
        let start = pool.statistics
        #expect(start.created == 2 && start.liveBytes == 4148)
        a = nil
        #expect(pool.statistics.pooledBytes == 4000 && pool.statistics.liveBytes == 148)
        let c = try cl.full([1000], value: 3)
        #expect(pool.statistics.created == 2 && pool.statistics.reused == 1, "the 4000-byte buffer came from the pool")
        #expect(try cl.download(c).values == [Float](repeating: 3, count: 1000))
        #expect(try cl.download(b).values == [Float](repeating: 2, count: 37))
        _ = a
        pool.trim()
        #expect(pool.statistics.pooledBytes == 0)
    }

    /// On a device whose memory is host memory (PoCL's CPU device), a graph constant is the host
    /// array itself: no pool bytes, reads give its values, and a matmul with it (packed panel derived
    /// from it) matches the CPU. Elsewhere the constant is an immutable upload.
    @Test func constantsUseTheHostArrayInPlace() throws {
        guard let cl = try Self.freshBackend() else { return }
        var rng = SeededRandom(seed: 11)
        let w = rng.tensor([37, 23]), x = rng.tensor([19, 23])
        let before = cl.context.pool.statistics.liveBytes
        let constant = try cl.constant(w)
        let buffer = try constant.device()
        if cl.context.device.type.contains("CPU") {
            #expect(cl.context.sharesHostMemory, "PoCL's CPU device reports host-unified memory")
        }
        if cl.context.sharesHostMemory {
            #expect(buffer.pool == nil && buffer.hostValues == w.values)
            #expect(cl.context.pool.statistics.liveBytes == before, "an in-place constant takes no device buffer")
        }
        #expect(try cl.download(constant) == w)
        let op = MatMul(transposeB: true)
        let expected = try Backends.cpu.download(Backends.cpu.run(op, Backends.cpu.tensor(x), Backends.cpu.tensor(w)))
        for _ in 0..<2 {
            expectClose(try cl.download(cl.run(op, cl.tensor(x), constant)), expected, atol: 1e-4, rtol: 1e-4, "x·Wᵀ with a constant W")
        }
        let make = { try cl.context.makeBuffer(byteCount: 64) }
        #expect(try buffer.derived("k", make: make) === buffer.derived("k", make: make), "a constant keeps its derived buffers")
    }
}
