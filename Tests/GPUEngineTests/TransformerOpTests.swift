import Foundation
import Testing
@testable import GPUEngine

/// Tests of the transformer operators (issue 4): layer norm, softmax / log-softmax, GELU and erf,
/// fused attention and attention probabilities, token ops, and a whole pre-norm block.
/// On the CPU each op's backward is checked by finite differences; on OpenCL forward and backward
/// are compared with the CPU reference. Every op also has a forward check against an independent
/// naive computation or a table of known values.
@Suite struct TransformerOpTests {
    // MARK: - Helpers

    /// Naive attention in Double: P = softmax(scale·Q·Kᵀ), O = P·V, leading dims flattened.
    static func naiveAttention(_ q: HostTensor, _ k: HostTensor, _ v: HostTensor, scale: Double) -> (o: [Double], p: [Double]) {
        let tq = q.shape[q.shape.count - 2], d = q.shape.last!
        let tk = k.shape[k.shape.count - 2], dv = v.shape.last!
        let bh = q.count / (tq * d)
        var o = [Double](repeating: 0, count: bh * tq * dv), p = [Double](repeating: 0, count: bh * tq * tk)
        for b in 0..<bh {
            for i in 0..<tq {
                var s = [Double](repeating: 0, count: tk)
                for j in 0..<tk {
                    var dot = 0.0
                    for c in 0..<d { dot += Double(q.values[(b * tq + i) * d + c]) * Double(k.values[(b * tk + j) * d + c]) }
                    s[j] = scale * dot
                }
                let m = s.max()!
                let e = s.map { exp($0 - m) }
                let sum = e.reduce(0, +)
                for j in 0..<tk { p[(b * tq + i) * tk + j] = e[j] / sum }
                for c in 0..<dv {
                    var acc = 0.0
                    for j in 0..<tk { acc += e[j] / sum * Double(v.values[(b * tk + j) * dv + c]) }
                    o[(b * tq + i) * dv + c] = acc
                }
            }
        }
        return (o, p)
    }

    static func host(_ shape: [Int], _ values: [Double]) -> HostTensor {
        HostTensor(shape: shape, values: values.map { Float($0) })
    }

    /// Runs a graph forward to `target` and backward with `seed` to `input`; returns (value, gradient).
    static func gradient(_ graph: Graph, input: ValueID, target: ValueID, value: HostTensor, seed: HostTensor,
                         on backend: any Backend) throws -> (HostTensor, HostTensor) {
        let ex = Executor(graph: graph, backend: backend)
        let pass = try ex.forward(feeds: [input: backend.tensor(value)], targets: [target], differentiable: [input])
        let out = try backend.download(pass.value(target))
        let grads = try ex.backward(pass, seeds: [target: backend.tensor(seed)])
        guard let g = grads[input] else { throw EngineError.invalidGraph("no gradient for the input") }
        return (out, try backend.download(g))
    }

    /// Central finite differences of L = Σ out ⊙ seed on the CPU at `positions` of the input.
    static func checkFiniteDifferences(_ graph: Graph, input: ValueID, target: ValueID, value: HostTensor,
                                       seed: HostTensor, analytic: HostTensor, positions: [Int], h: Float = 1e-2,
                                       atol: Double = 2e-3, rtol: Double = 2e-2,
                                       sourceLocation: SourceLocation = #_sourceLocation) throws {
        let ex = Executor(graph: graph, backend: Backends.cpu)
        func loss(_ x: HostTensor) throws -> Double {
            let pass = try ex.forward(feeds: [input: Backends.cpu.tensor(x)], targets: [target])
            let out = try Backends.cpu.download(pass.value(target))
            var s = 0.0
            for i in 0..<out.count { s += Double(out.values[i]) * Double(seed.values[i]) }
            return s
        }
        for p in positions {
            var plus = value, minus = value
            plus.values[p] += h
            minus.values[p] -= h
            let numeric = (try loss(plus) - loss(minus)) / (2 * Double(h))
            let a = Double(analytic.values[p])
            if !(abs(numeric - a) <= atol + rtol * max(abs(numeric), abs(a))) {
                Issue.record("gradient at \(p) \(unravel(p, value.shape)): analytic \(a), finite difference \(numeric)",
                             sourceLocation: sourceLocation)
            }
        }
    }

    /// Max |a − b| over two tensors of equal size (for reports).
    static func maxError(_ a: HostTensor, _ b: HostTensor) -> Float {
        zip(a.values, b.values).reduce(0) { max($0, abs($1.0 - $1.1)) }
    }

    // MARK: - Layer norm

    @Test(arguments: TestBackend.allCases)
    func layerNorm(_ backend: TestBackend) throws {
        var rng = SeededRandom(seed: 41)
        // Awkward widths (tails of the 8-wide vector loop), one power of two, and a 3-D batch.
        for shape in [[3, 13], [2, 5, 37], [4, 64], [2, 3, 7], [1, 9, 1]] {
            let c = shape.last!
            var x = rng.tensor(shape, -2, 2)
            x.values = x.values.map { $0 + 0.7 }  // a non-zero mean to subtract
            try OpCase(LayerNorm(epsilon: 1e-5), [x, rng.tensor([c], 0.5, 1.5), rng.tensor([c])],
                       differentiable: [true, false, false]).verify(on: backend, atol: 2e-4, rtol: 2e-4)
        }
        // No affine; scale only.
        try OpCase(LayerNorm(epsilon: 1e-6), [rng.tensor([6, 19])]).verify(on: backend)
        try OpCase(LayerNorm(), [rng.tensor([4, 24]), rng.tensor([24], 0.5, 1.5)], differentiable: [true, false])
            .verify(on: backend)
        // Weight and bias that need gradients (the composed dweight/dbias path).
        try OpCase(LayerNorm(), [rng.tensor([3, 4, 11]), rng.tensor([11], 0.5, 1.5), rng.tensor([11])])
            .verify(on: backend, atol: 2e-4, rtol: 2e-4)
    }

    /// Layer norm at ViT widths (ViT-S 384, ViT-B 768, ViT-L 1024), OpenCL against the CPU.
    @Test func layerNormAtViTWidths() throws {
        guard let cl = Backends.get(.opencl) else { return }
        var rng = SeededRandom(seed: 42)
        for (t, c) in [(257, 384), (197, 768), (197, 1024)] {
            let x = rng.tensor([1, t, c], -3, 3)
            try OpCase(LayerNorm(epsilon: 1e-6), [x, rng.tensor([c], 0.5, 1.5), rng.tensor([c])],
                       differentiable: [true, false, false]).compareWithCPU(on: cl, atol: 2e-4, rtol: 2e-4)
        }
    }

    @Test(arguments: TestBackend.allCases)
    func layerNormForwardMatchesNaive(_ backend: TestBackend) throws {
        guard let b = Backends.get(backend) else { return }
        // By hand: x = [1, 2, 3, 4] → mean 2.5, variance 1.25, y = (x − 2.5)/√1.25 = ±1.3416408, ±0.4472136.
        let simple = try b.download(b.run(LayerNorm(epsilon: 0), b.tensor(HostTensor(shape: [1, 4], values: [1, 2, 3, 4]))))
        expectClose(simple, HostTensor(shape: [1, 4], values: [-1.3416408, -0.4472136, 0.4472136, 1.3416408]),
                    atol: 1e-6, rtol: 1e-6, "layer norm of [1, 2, 3, 4]")
        var rng = SeededRandom(seed: 43)
        let (rows, c) = (7, 29)
        let x = rng.tensor([rows, c], -2, 3), w = rng.tensor([c]), bias = rng.tensor([c])
        let eps = 1e-5
        var expected = [Double](repeating: 0, count: rows * c)
        for r in 0..<rows {
            let row = (0..<c).map { Double(x.values[r * c + $0]) }
            let mean = row.reduce(0, +) / Double(c)
            let variance = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(c)
            for j in 0..<c {
                expected[r * c + j] = (row[j] - mean) / (variance + eps).squareRoot() * Double(w.values[j]) + Double(bias.values[j])
            }
        }
        let result = try LayerNorm(epsilon: Float(eps)).forward([b.tensor(x), b.tensor(w), b.tensor(bias)], on: b)
        expectClose(try b.download(result.output), Self.host([rows, c], expected), atol: 1e-5, rtol: 1e-5, "layer norm vs naive")
        #expect(result.saved.count == 2 && result.saved[0].shape == [rows] && result.saved[1].shape == [rows])
    }

    // MARK: - Softmax and log-softmax

    @Test(arguments: TestBackend.allCases)
    func softmaxAndLogSoftmax(_ backend: TestBackend) throws {
        var rng = SeededRandom(seed: 44)
        let cases: [([Int], Int)] = [([3, 5, 7], -1), ([3, 5, 7], 1), ([3, 5, 7], 0), ([2, 16], -1), ([4, 33], 1),
                                     ([2, 3, 4, 5], 2), ([6], 0)]
        for (shape, axis) in cases {
            let x = rng.tensor(shape, -3, 3)
            try OpCase(Softmax(axis: axis), [x]).verify(on: backend)
            try OpCase(LogSoftmax(axis: axis), [x]).verify(on: backend)
        }
        // A 1000-class row (classifier logits) and a ViT attention-sized matrix.
        try OpCase(Softmax(), [rng.tensor([2, 1000], -8, 8)]).verify(on: backend)
        try OpCase(LogSoftmax(), [rng.tensor([2, 1000], -8, 8)]).verify(on: backend)
        try OpCase(Softmax(), [rng.tensor([1, 3, 197, 197], -4, 4)]).verify(on: backend)
    }

    @Test(arguments: TestBackend.allCases)
    func softmaxForwardValues(_ backend: TestBackend) throws {
        guard let b = Backends.get(backend) else { return }
        // softmax([1, 2, 3]) = e^k / (e + e² + e³); log-softmax = k − 3 − log(1 + e⁻¹ + e⁻²).
        // The same row shifted by 1000 must give the same values (the maximum is subtracted first).
        let x = HostTensor(shape: [2, 3], values: [1, 2, 3, 1001, 1002, 1003])
        let soft: [Float] = [0.09003057317, 0.24472847105, 0.66524095577]
        let logSoft: [Float] = [-2.40760596444, -1.40760596444, -0.40760596444]
        expectClose(try b.download(b.run(Softmax(), b.tensor(x))), HostTensor(shape: [2, 3], values: soft + soft),
                    atol: 1e-6, rtol: 1e-6, "softmax values")
        expectClose(try b.download(b.run(LogSoftmax(), b.tensor(x))), HostTensor(shape: [2, 3], values: logSoft + logSoft),
                    atol: 1e-5, rtol: 1e-6, "log-softmax values")
        // Along axis 0 of [2, 3]: columns (0, 1), (1, 1), (1, 0); softmax(0, 1) = (1/(1+e), e/(1+e)).
        let y = HostTensor(shape: [2, 3], values: [0, 1, 1, 1, 1, 0])
        let s = Float(1 / (1 + exp(1.0)))  // softmax(0, 1)[0]
        let expected: [Float] = [s, 0.5, 1 - s, 1 - s, 0.5, s]
        expectClose(try b.download(b.run(Softmax(axis: 0), b.tensor(y))), HostTensor(shape: [2, 3], values: expected),
                    atol: 1e-6, rtol: 1e-6, "softmax along axis 0")
    }

    // MARK: - GELU and erf

    /// Independent values (Python: 0.5·x·(1 + math.erf(x/√2)), the tanh form with 0.044715, math.erf).
    static let geluTable: [(x: Float, gelu: Double, geluTanh: Double, erf: Double)] = [
        (-3.0, -0.00404969409489031, -0.0036373920817729943, -0.9999779095030014),
        (-1.5, -0.10021080190328713, -0.10042842301976707, -0.9661051464753108),
        (-0.5, -0.15426876936299344, -0.15428599017485606, -0.5204998778130465),
        (0.25, 0.14967658142073093, 0.149675350701685, 0.2763263901682369),
        (1.0, 0.8413447460685429, 0.8411919906082768, 0.8427007929497149),
        (2.0, 1.9544997361036416, 1.954597694087775, 0.9953222650189527),
        (3.5, 3.4991857982233756, 3.499383802344626, 0.9999992569016276),
    ]

    @Test(arguments: TestBackend.allCases)
    func geluAndErfValues(_ backend: TestBackend) throws {
        guard let b = Backends.get(backend) else { return }
        let x = HostTensor(shape: [Self.geluTable.count], values: Self.geluTable.map(\.x))
        for (function, column) in [(UnaryFunction.geluErf, 0), (.geluTanh, 1), (.erf, 2)] {
            let expected = Self.geluTable.map { Float([$0.gelu, $0.geluTanh, $0.erf][column]) }
            expectClose(try b.download(b.run(Unary(function), b.tensor(x))), HostTensor(shape: x.shape, values: expected),
                        atol: 2e-6, rtol: 2e-6, "\(function) against the reference table")
        }
    }

    /// GELU and erf at transformer MLP shapes (ViT-S hidden 1536, ViT-B 3072).
    @Test(arguments: TestBackend.allCases)
    func geluAtTransformerShapes(_ backend: TestBackend) throws {
        var rng = SeededRandom(seed: 45)
        for function in [UnaryFunction.geluErf, .geluTanh, .erf] {
            try OpCase(Unary(function), [rng.tensor([1, 197, 1536], -4, 4)]).verify(on: backend, atol: 2e-5, rtol: 2e-5)
            try OpCase(Unary(function), [rng.tensor([1, 13, 3072], -4, 4)]).verify(on: backend, atol: 2e-5, rtol: 2e-5)
        }
    }

    // MARK: - Attention

    /// Small shapes: awkward (B=2, H=3, T=7, D=5), a power of two (T=16, D=8), cross-attention with
    /// Tq ≠ Tk and Dv ≠ D, rank 3, and one key. Each with every input differentiable.
    static let attentionCases: [(q: [Int], k: [Int], v: [Int])] = [
        ([2, 3, 7, 5], [2, 3, 7, 5], [2, 3, 7, 5]),
        ([1, 2, 16, 8], [1, 2, 16, 8], [1, 2, 16, 8]),
        ([1, 2, 5, 4], [1, 2, 9, 4], [1, 2, 9, 3]),
        ([3, 17, 6], [3, 18, 6], [3, 18, 21]),
        ([2, 1, 3, 4], [2, 1, 1, 4], [2, 1, 1, 2]),
    ]

    @Test(arguments: TestBackend.allCases)
    func attention(_ backend: TestBackend) throws {
        var rng = SeededRandom(seed: 46)
        for c in Self.attentionCases {
            let scale = Attention.defaultScale(headDim: c.q.last!)
            let inputs = [rng.tensor(c.q, -2, 2), rng.tensor(c.k, -2, 2), rng.tensor(c.v)]
            try OpCase(Attention(scale: scale), inputs).verify(on: backend, atol: 1e-4, rtol: 1e-4)
        }
    }

    /// Only some inputs differentiable (the kernels skip the others).
    @Test(arguments: TestBackend.allCases)
    func attentionPartialGradients(_ backend: TestBackend) throws {
        var rng = SeededRandom(seed: 47)
        let inputs = [rng.tensor([2, 3, 7, 5], -2, 2), rng.tensor([2, 3, 7, 5], -2, 2), rng.tensor([2, 3, 7, 5])]
        for flags in [[true, false, false], [false, true, false], [false, false, true], [true, true, false], [false, true, true]] {
            try OpCase(Attention(scale: 0.4), inputs, differentiable: flags).verify(on: backend)
        }
    }

    @Test(arguments: TestBackend.allCases)
    func attentionProbabilities(_ backend: TestBackend) throws {
        var rng = SeededRandom(seed: 48)
        for c in Self.attentionCases {
            let inputs = [rng.tensor(c.q, -2, 2), rng.tensor(c.k, -2, 2)]
            try OpCase(AttentionProbabilities(scale: 0.45), inputs).verify(on: backend)
            try OpCase(AttentionProbabilities(scale: 0.45), inputs, differentiable: [false, true]).verify(on: backend)
        }
    }

    /// ViT shapes (B = 1, D = 64): DINOv2 ViT-S/14 (6 heads, 257 tokens), ViT-B/16 (12, 197),
    /// ViT-L/16 (16, 197), and 12 heads × 257. OpenCL forward and all three gradients against the CPU.
    @Test func attentionAtViTShapes() throws {
        guard let cl = Backends.get(.opencl) else { return }
        var rng = SeededRandom(seed: 49)
        for (h, t) in [(6, 257), (12, 197), (16, 197), (12, 257)] {
            let shape = [1, h, t, 64]
            let inputs = [rng.tensor(shape, -2, 2), rng.tensor(shape, -2, 2), rng.tensor(shape)]
            try OpCase(Attention(scale: 0.125), inputs).compareWithCPU(on: cl, atol: 1e-4, rtol: 1e-3)
        }
        let shape = [1, 6, 197, 64]
        try OpCase(AttentionProbabilities(scale: 0.125), [rng.tensor(shape, -2, 2), rng.tensor(shape, -2, 2)])
            .compareWithCPU(on: cl, atol: 1e-5, rtol: 1e-3)
    }

    /// Forward against a naive Double computation, also at one ViT-sized head (T = 197, D = 64).
    @Test(arguments: TestBackend.allCases)
    func attentionForwardMatchesNaive(_ backend: TestBackend) throws {
        guard let b = Backends.get(backend) else { return }
        var rng = SeededRandom(seed: 50)
        for c in Self.attentionCases + [([1, 2, 197, 64], [1, 2, 197, 64], [1, 2, 197, 64])] {
            let q = rng.tensor(c.q, -2, 2), k = rng.tensor(c.k, -2, 2), v = rng.tensor(c.v)
            let scale = Attention.defaultScale(headDim: c.q.last!)
            let (o, p) = Self.naiveAttention(q, k, v, scale: Double(scale))
            let result = try Attention(scale: scale).forward([b.tensor(q), b.tensor(k), b.tensor(v)], on: b)
            let outShape = Array(c.q.dropLast()) + [c.v.last!]
            expectClose(try b.download(result.output), Self.host(outShape, o), atol: 2e-6, rtol: 1e-5, "attention \(c.q) output vs naive")
            let probShape = Array(c.q.dropLast()) + [c.k[c.k.count - 2]]
            let saved = try b.download(result.saved[0])
            expectClose(HostTensor(shape: probShape, values: saved.values), Self.host(probShape, p), atol: 1e-6, rtol: 1e-5,
                        "attention \(c.q) saved probabilities vs naive")
            let probs = try b.download(b.run(AttentionProbabilities(scale: scale), b.tensor(q), b.tensor(k)))
            expectClose(probs, Self.host(probShape, p), atol: 1e-6, rtol: 1e-5, "attention probabilities \(c.q) vs naive")
        }
    }

    /// The fused op equals the same computation composed from MatMul, Unary and Softmax, forward
    /// and backward, on each backend.
    @Test(arguments: TestBackend.allCases)
    func attentionMatchesComposedGraph(_ backend: TestBackend) throws {
        guard let b = Backends.get(backend) else { return }
        var rng = SeededRandom(seed: 51)
        let shape = [2, 3, 11, 8], scale: Float = 0.35
        let values = [rng.tensor(shape, -2, 2), rng.tensor(shape, -2, 2), rng.tensor(shape)]
        let seed = rng.tensor(shape)
        func run(fused: Bool) throws -> [HostTensor] {
            let g = Graph()
            let ids = try ["q", "k", "v"].map { try g.addInput($0, shape: shape) }
            let out: ValueID
            if fused {
                out = try g.add(Attention(scale: scale), ids, name: "o")
            } else {
                let s = try g.add(MatMul(transposeB: true), [ids[0], ids[1]], name: "s")
                let scaled = try g.add(Unary.scale(scale), [s], name: "scaled")
                let p = try g.add(Softmax(axis: -1), [scaled], name: "p")
                out = try g.add(MatMul(), [p, ids[2]], name: "o")
            }
            let ex = Executor(graph: g, backend: b)
            var feeds: [ValueID: Tensor] = [:]
            for (id, v) in zip(ids, values) { feeds[id] = try b.tensor(v) }
            let pass = try ex.forward(feeds: feeds, targets: [out], differentiable: Set(ids))
            let o = try b.download(pass.value(out))
            let grads = try ex.backward(pass, seeds: [out: b.tensor(seed)])
            return try [o] + ids.map { try b.download(grads[$0]!) }
        }
        let fused = try run(fused: true), composed = try run(fused: false)
        for (i, what) in ["output", "dQ", "dK", "dV"].enumerated() {
            expectClose(fused[i], composed[i], atol: 1e-5, rtol: 1e-4, "fused vs composed attention \(what) on \(b.name)")
        }
    }

    @Test func attentionRejectsBadShapes() throws {
        let op = Attention(scale: 1)
        #expect(throws: EngineError.self) { try op.outputShape([[1, 2, 5, 4], [1, 2, 5, 3], [1, 2, 5, 4]]) }
        #expect(throws: EngineError.self) { try op.outputShape([[1, 2, 5, 4], [1, 3, 5, 4], [1, 3, 5, 4]]) }
        #expect(throws: EngineError.self) { try op.outputShape([[1, 2, 5, 4], [1, 2, 6, 4], [1, 2, 5, 4]]) }
        #expect(throws: EngineError.self) { try op.outputShape([[5], [5], [5]]) }
        #expect(try op.outputShape([[2, 7, 4], [2, 9, 4], [2, 9, 6]]) == [2, 7, 6])
    }

    // MARK: - Token ops

    @Test(arguments: TestBackend.allCases)
    func patchEmbeddingMatchesConvolution(_ backend: TestBackend) throws {
        guard let b = Backends.get(backend) else { return }
        var rng = SeededRandom(seed: 52)
        let (n, c, h, w, p, d) = (2, 3, 8, 12, 4, 5)
        let image = rng.tensor([n, c, h, w]), weight = rng.tensor([d, c, p, p]), bias = rng.tensor([d])
        let g = Graph()
        let x = try g.addInput("image", shape: [n, c, h, w])
        let out = try addPatchEmbedding(g, x, weight: weight, bias: bias, patch: p, name: "patch_embed")
        #expect(g.shape(of: out) == [n, (h / p) * (w / p), d])
        // Direct convolution with kernel = stride = p, tokens in row-major grid order.
        var expected = [Double](repeating: 0, count: n * (h / p) * (w / p) * d)
        for bi in 0..<n { for gy in 0..<(h / p) { for gx in 0..<(w / p) { for o in 0..<d {
            var s = Double(bias.values[o])
            for ci in 0..<c { for ky in 0..<p { for kx in 0..<p {
                s += Double(weight.values[((o * c + ci) * p + ky) * p + kx])
                    * Double(image.values[((bi * c + ci) * h + gy * p + ky) * w + gx * p + kx])
            } } }
            expected[((bi * (h / p) + gy) * (w / p) + gx) * d + o] = s
        } } } }
        let ex = Executor(graph: g, backend: b)
        let value = try b.download(ex.forward(feeds: [x: b.tensor(image)], targets: [out]).value(out))
        expectClose(value, Self.host([n, (h / p) * (w / p), d], expected), atol: 1e-5, rtol: 1e-5, "patch embedding vs convolution")
        #expect(throws: EngineError.self) {
            try addPatchEmbedding(g, x, weight: rng.tensor([d, c, 5, 5]), bias: nil, patch: 5, name: "bad")
        }
    }

    @Test(arguments: TestBackend.allCases)
    func classTokenPositionEmbeddingAndSlices(_ backend: TestBackend) throws {
        guard let b = Backends.get(backend) else { return }
        var rng = SeededRandom(seed: 53)
        let (n, t, d) = (2, 4, 3)
        let tokens = rng.tensor([n, t, d]), cls = rng.tensor([1, 1, d]), pos = rng.tensor([1, t + 1, d]), gamma = rng.tensor([d])
        let g = Graph()
        let x = try g.addInput("tokens", shape: [n, t, d])
        let withCls = try addClassToken(g, x, classToken: cls, name: "cls")
        let withPos = try addPositionEmbedding(g, withCls, pos: pos, name: "pos")
        let scaled = try addLayerScale(g, withPos, gamma: gamma, name: "ls")
        let first = try addSelectToken(g, scaled, name: "cls_out")
        let patches = try addPatchTokens(g, scaled, numPrefixTokens: 1, name: "patch_out")
        let ex = Executor(graph: g, backend: b)
        let pass = try ex.forward(feeds: [x: b.tensor(tokens)], targets: [scaled, first, patches])
        let all = try b.download(pass.value(scaled))
        var expected = [Float](repeating: 0, count: n * (t + 1) * d)
        for bi in 0..<n { for i in 0...t { for c in 0..<d {
            let token = i == 0 ? cls.values[c] : tokens.values[(bi * t + i - 1) * d + c]
            expected[(bi * (t + 1) + i) * d + c] = (token + pos.values[i * d + c]) * gamma.values[c]
        } } }
        expectClose(all, HostTensor(shape: [n, t + 1, d], values: expected), atol: 1e-6, rtol: 1e-6, "class token + position + layer scale")
        let firstValues = try b.download(pass.value(first))
        #expect(firstValues.shape == [n, d])
        var firstExpected: [Float] = []
        for bi in 0..<n {
            let start: Int = bi * (t + 1) * d
            firstExpected += expected[start..<(start + d)]
        }
        #expect(firstValues.values == firstExpected)
        let patchValues = try b.download(pass.value(patches))
        #expect(patchValues.shape == [n, t, d])
        var patchExpected: [Float] = []
        for bi in 0..<n {
            let start: Int = (bi * (t + 1) + 1) * d, end: Int = (bi + 1) * (t + 1) * d
            patchExpected += expected[start..<end]
        }
        #expect(patchValues.values == patchExpected)
        #expect(throws: EngineError.self) { try addPositionEmbedding(g, x, pos: rng.tensor([1, t + 3, d]), name: "bad") }
    }

    /// Expected grids from two independent libraries (script: numpy float32 grids):
    /// OpenCV 4/5 `cv2.resize(g, (w, h), interpolation=cv2.INTER_CUBIC)` — PyTorch's bicubic with
    /// antialias=False (A = −0.75, half-pixel centres, clamped taps) is documented to match it; and
    /// Pillow `Image.fromarray(g, "F").resize((w, h), Image.BICUBIC)` — PyTorch's antialias=True path
    /// (a = −0.5, support scaled when shrinking, renormalised) is ported from it. A transcription of
    /// PyTorch's weight formulas in numpy agreed with both to < 6e-7. The OpenCV/Pillow script was not kept;
    /// `scripts/tools/bicubic_reference.py` recomputes every table with timm's own `resample_abs_pos_embed`
    /// (torch 2.13, timm 1.0.31) and checks the literals below against it: max difference 6.5e-7 (2026-12-02).
    static let grid3: [Float] = [0.3, -1.2, 0.7, 2.0, 0.1, -0.4, -0.9, 1.5, 0.25]
    static let grid5: [Float] = [0.3, -1.2, 0.7, 0.0, 1.1, 2.0, 0.1, -0.4, 0.6, -0.8, -0.9, 1.5, 0.25, -0.3, 0.45,
                                 0.05, -0.65, 1.25, 0.9, -1.4, 0.8, 0.35, -0.15, 1.7, 0.2]
    static let up3to5x4NoAntialias: [Float] = [0.24170929, -1.0321635, -0.71768343, 0.9585148,
                                               1.3094281, -0.20074944, -0.64369184, 0.29981387,
                                               2.1363769, 0.8395996, -0.28891602, -0.43588868,
                                               0.29715437, 0.92148864, 0.71976656, -0.16263777,
                                               -1.3802952, 0.7660424, 1.4670386, 0.21751033]
    static let up3to5x4Antialias: [Float] = [0.2484793, -0.89552224, -0.6244595, 0.8917347,
                                             1.1218646, -0.19921675, -0.5277997, 0.34210846,
                                             2.0992537, 0.844247, -0.21992517, -0.42611942,
                                             0.14763309, 0.817774, 0.7199933, -0.08440912,
                                             -1.261194, 0.6804111, 1.309126, 0.23080118]
    static let down5to3Antialias: [Float] = [0.33173963, -0.037960652, 0.31914794,
                                             0.30424687, 0.43078095, -0.1570805,
                                             0.16865088, 0.6000644, 0.3346272]
    static let down5to3NoAntialias: [Float] = [0.3433299, 0.31759253, 0.36711243,
                                               -0.074999824, 0.25, 0.18333338,
                                               0.37208506, 0.3462962, 0.2632887]

    @Test func resamplePositionEmbeddingMatchesReferences() throws {
        // Two channels: the grid and the grid times −2; one prefix token that must be kept as is.
        func embed(_ grid: [Float]) -> HostTensor {
            HostTensor(shape: [1, 1 + grid.count, 2], values: [7, -7] + grid.flatMap { [$0, -2 * $0] })
        }
        func check(_ grid: [Float], from: (h: Int, w: Int), to: (h: Int, w: Int), antialias: Bool, expected: [Float],
                   sourceLocation: SourceLocation = #_sourceLocation) throws {
            let out = try resamplePositionEmbedding(embed(grid), numPrefixTokens: 1, from: from, to: to, antialias: antialias)
            let want = HostTensor(shape: [1, 1 + expected.count, 2], values: [7, -7] + expected.flatMap { [$0, -2 * $0] })
            expectClose(out, want, atol: 2e-6, rtol: 1e-5, "bicubic \(from) → \(to) antialias \(antialias)",
                        sourceLocation: sourceLocation)
        }
        try check(Self.grid3, from: (3, 3), to: (5, 4), antialias: false, expected: Self.up3to5x4NoAntialias)
        try check(Self.grid3, from: (3, 3), to: (5, 4), antialias: true, expected: Self.up3to5x4Antialias)
        try check(Self.grid5, from: (5, 5), to: (3, 3), antialias: true, expected: Self.down5to3Antialias)
        try check(Self.grid5, from: (5, 5), to: (3, 3), antialias: false, expected: Self.down5to3NoAntialias)
        // Same size: unchanged. A constant grid stays constant (the weights sum to one).
        let same = try resamplePositionEmbedding(embed(Self.grid3), numPrefixTokens: 1, from: (3, 3), to: (3, 3))
        #expect(same == embed(Self.grid3))
        let flat = HostTensor(shape: [16 * 16, 3], values: Array(repeating: 0.25, count: 16 * 16 * 3))
        let resized = try resamplePositionEmbedding(flat, numPrefixTokens: 0, from: (16, 16), to: (37, 24))
        #expect(resized.shape == [37 * 24, 3])
        #expect(resized.values.allSatisfy { abs($0 - 0.25) < 1e-6 })
        #expect(throws: EngineError.self) {
            try resamplePositionEmbedding(embed(Self.grid3), numPrefixTokens: 0, from: (3, 3), to: (4, 4))
        }
    }

    // MARK: - Whole transformer block

    static func blockWeights(d: Int, hidden: Int, layerScale: Bool, rng: inout SeededRandom) -> TransformerBlockWeights {
        let s = 1 / Float(d).squareRoot()
        return TransformerBlockWeights(
            norm1Weight: rng.tensor([d], 0.6, 1.4), norm1Bias: rng.tensor([d], -0.2, 0.2),
            qkvWeight: rng.tensor([3 * d, d], -2 * s, 2 * s), qkvBias: rng.tensor([3 * d], -0.1, 0.1),
            projWeight: rng.tensor([d, d], -s, s), projBias: rng.tensor([d], -0.1, 0.1),
            layerScale1: layerScale ? rng.tensor([d], 0.2, 1.2) : nil,
            norm2Weight: rng.tensor([d], 0.6, 1.4), norm2Bias: rng.tensor([d], -0.2, 0.2),
            fc1Weight: rng.tensor([hidden, d], -2 * s, 2 * s), fc1Bias: rng.tensor([hidden], -0.1, 0.1),
            fc2Weight: rng.tensor([d, hidden], -s, s), fc2Bias: rng.tensor([d], -0.1, 0.1),
            layerScale2: layerScale ? rng.tensor([d], 0.2, 1.2) : nil)
    }

    /// A small ViT end to end: image → patch embedding → class token → position embedding → one
    /// pre-norm block (with and without layer-scale) → final norm. Differentiated to the image on
    /// both backends: OpenCL against the CPU, the CPU against finite differences at a few pixels.
    @Test(arguments: TestBackend.allCases)
    func transformerBlockEndToEnd(_ backend: TestBackend) throws {
        for layerScale in [true, false] {
            var rng = SeededRandom(seed: layerScale ? 54 : 55)
            let (d, heads, patch) = (24, 3, 4)
            let g = Graph()
            let image = try g.addInput("image", shape: [2, 3, 12, 16])
            let tokens = try addPatchEmbedding(g, image, weight: rng.tensor([d, 3, patch, patch], -0.3, 0.3),
                                               bias: rng.tensor([d]), patch: patch, name: "patch_embed")
            let withCls = try addClassToken(g, tokens, classToken: rng.tensor([1, 1, d]), name: "cls")
            let withPos = try addPositionEmbedding(g, withCls, pos: rng.tensor([1, 13, d], -0.5, 0.5), name: "pos")
            let block = try addTransformerBlock(g, withPos, weights: Self.blockWeights(d: d, hidden: 4 * d, layerScale: layerScale, rng: &rng),
                                                heads: heads, name: "blocks.0")
            let out = try addLayerNorm(g, block, weight: rng.tensor([d], 0.5, 1.5), bias: rng.tensor([d]), epsilon: 1e-6, name: "norm")
            #expect(g.shape(of: out) == [2, 13, d])
            #expect(g.value(named: "blocks.0.attn.probs").map { g.shape(of: $0) } == [2, heads, 13, 13])
            let x = rng.tensor([2, 3, 12, 16])
            let seed = rng.tensor([2, 13, d])
            let (cpuOut, cpuGrad) = try Self.gradient(g, input: image, target: out, value: x, seed: seed, on: Backends.cpu)
            switch backend {
            case .cpu:
                var positions: [Int] = []
                for _ in 0..<10 { positions.append(Int(rng.next() % UInt64(x.count))) }
                try Self.checkFiniteDifferences(g, input: image, target: out, value: x, seed: seed, analytic: cpuGrad,
                                                positions: positions)
            case .opencl:
                guard let cl = Backends.get(.opencl) else { return }
                let (clOut, clGrad) = try Self.gradient(g, input: image, target: out, value: x, seed: seed, on: cl)
                expectClose(clOut, cpuOut, atol: 1e-4, rtol: 1e-4, "block output (layer scale \(layerScale))")
                expectClose(clGrad, cpuGrad, atol: 1e-4, rtol: 1e-3, "block gradient to the image (layer scale \(layerScale))")
            }
        }
    }

    /// One ViT-S/14-sized block (D = 384, 6 heads, 257 tokens, layer-scale as in DINOv2), tokens as
    /// the input: OpenCL forward and gradient against the CPU; the attention map is a target too.
    @Test func transformerBlockAtViTSize() throws {
        guard let cl = Backends.get(.opencl) else { return }
        var rng = SeededRandom(seed: 56)
        let (t, d) = (257, 384)
        let g = Graph()
        let x = try g.addInput("tokens", shape: [1, t, d])
        let out = try addTransformerBlock(g, x, weights: Self.blockWeights(d: d, hidden: 4 * d, layerScale: true, rng: &rng),
                                          heads: 6, name: "blocks.0")
        let value = rng.tensor([1, t, d], -1, 1), seed = rng.tensor([1, t, d])
        let (cpuOut, cpuGrad) = try Self.gradient(g, input: x, target: out, value: value, seed: seed, on: Backends.cpu)
        let (clOut, clGrad) = try Self.gradient(g, input: x, target: out, value: value, seed: seed, on: cl)
        expectClose(clOut, cpuOut, atol: 2e-4, rtol: 2e-4, "ViT-S block output")
        expectClose(clGrad, cpuGrad, atol: 2e-4, rtol: 2e-3, "ViT-S block gradient")
        print("amgpu-test: ViT-S block max |OpenCL − CPU|: output \(Self.maxError(clOut, cpuOut)), gradient \(Self.maxError(clGrad, cpuGrad))")
        // The attention map of the block, through AttentionProbabilities.
        let probs = try g.requireValue(named: "blocks.0.attn.probs")
        let exCPU = Executor(graph: g, backend: Backends.cpu), exCL = Executor(graph: g, backend: cl)
        let pCPU = try Backends.cpu.download(exCPU.forward(feeds: [x: Backends.cpu.tensor(value)], targets: [probs]).value(probs))
        let pCL = try cl.download(exCL.forward(feeds: [x: cl.tensor(value)], targets: [probs]).value(probs))
        expectClose(pCL, pCPU, atol: 1e-5, rtol: 1e-3, "ViT-S attention map")
    }
}
