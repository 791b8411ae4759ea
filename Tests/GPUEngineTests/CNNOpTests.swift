import Foundation
import Testing
@testable import GPUEngine

/// Tests of the CNN operators (issue 3). Each parameterised test runs once per backend: on the CPU
/// it checks the reference's backward by finite differences; on OpenCL it compares forward and
/// backward with the CPU. Shapes are awkward (odd sizes, not multiples of the 8-pixel tiles) with
/// one power of two per op; explicit forward checks compare with naive loops written from the
/// operator definitions.
@Suite struct CNNOpTests {
    // MARK: - Naive references

    /// Direct convolution from the definition, in Double.
    static func naiveConv(_ x: HostTensor, _ w: HostTensor, _ bias: HostTensor?, strides: [Int], dilations: [Int],
                          pads: Padding2D, groups: Int) -> HostTensor {
        let (n, cin, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (cout, cinG, kh, kw) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3])
        let coutG = cout / groups
        let oh = (h + pads.top + pads.bottom - dilations[0] * (kh - 1) - 1) / strides[0] + 1
        let ow = (wd + pads.left + pads.right - dilations[1] * (kw - 1) - 1) / strides[1] + 1
        var out = [Float](repeating: 0, count: n * cout * oh * ow)
        for b in 0..<n { for co in 0..<cout { for oy in 0..<oh { for ox in 0..<ow {
            var s = Double(bias?.values[co] ?? 0)
            let grp = co / coutG
            for ci in 0..<cinG { for ky in 0..<kh { for kx in 0..<kw {
                let iy = oy * strides[0] - pads.top + ky * dilations[0]
                let ix = ox * strides[1] - pads.left + kx * dilations[1]
                guard iy >= 0, iy < h, ix >= 0, ix < wd else { continue }
                let xv = x.values[((b * cin + grp * cinG + ci) * h + iy) * wd + ix]
                s += Double(w.values[((co * cinG + ci) * kh + ky) * kw + kx]) * Double(xv)
            } } }
            out[((b * cout + co) * oh + oy) * ow + ox] = Float(s)
        } } } }
        _ = cin
        return HostTensor(shape: [n, cout, oh, ow], values: out)
    }

    /// Direct transposed convolution from the ONNX definition (scatter form), in Double.
    static func naiveConvTranspose(_ x: HostTensor, _ w: HostTensor, _ bias: HostTensor?, strides: [Int],
                                   dilations: [Int], pads: Padding2D, outputPadding: [Int], groups: Int) -> HostTensor {
        let (n, cin, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (coutG, kh, kw) = (w.shape[1], w.shape[2], w.shape[3])
        let cout = coutG * groups, cinG = cin / groups
        let oh = strides[0] * (h - 1) + outputPadding[0] + dilations[0] * (kh - 1) + 1 - pads.top - pads.bottom
        let ow = strides[1] * (wd - 1) + outputPadding[1] + dilations[1] * (kw - 1) + 1 - pads.left - pads.right
        var out = [Double](repeating: 0, count: n * cout * oh * ow)
        for b in 0..<n { for ci in 0..<cin { for iy in 0..<h { for ix in 0..<wd {
            let xv = Double(x.values[((b * cin + ci) * h + iy) * wd + ix])
            let grp = ci / cinG
            for c in 0..<coutG { for ky in 0..<kh { for kx in 0..<kw {
                let oy = iy * strides[0] - pads.top + ky * dilations[0]
                let ox = ix * strides[1] - pads.left + kx * dilations[1]
                guard oy >= 0, oy < oh, ox >= 0, ox < ow else { continue }
                let co = grp * coutG + c
                out[((b * cout + co) * oh + oy) * ow + ox] += xv * Double(w.values[((ci * coutG + c) * kh + ky) * kw + kx])
            } } }
        } } } }
        if let bias {
            for b in 0..<n { for co in 0..<cout { for i in 0..<(oh * ow) { out[(b * cout + co) * oh * ow + i] += Double(bias.values[co]) } } }
        }
        return HostTensor(shape: [n, cout, oh, ow], values: out.map { Float($0) })
    }

    // MARK: - Conv2D

    struct ConvCase {
        var x: [Int], w: [Int]
        var strides = [1, 1], dilations = [1, 1]
        var pads = Padding2D.zero
        var groups = 1
    }

    /// Awkward shapes: odd sizes, strides 2/3/4, asymmetric pads, dilation 2, groups 2/3,
    /// depthwise (with a channel multiplier), kernels 1/2×4/3/5/7/11, and a power-of-two case.
    static let convCases: [ConvCase] = [
        ConvCase(x: [2, 3, 9, 11], w: [5, 3, 3, 3], pads: Padding2D(1)),
        ConvCase(x: [1, 4, 13, 10], w: [6, 2, 5, 5], strides: [2, 3], pads: Padding2D(top: 2, left: 1, bottom: 0, right: 3), groups: 2),
        ConvCase(x: [1, 6, 12, 9], w: [6, 1, 3, 3], strides: [2, 2], pads: Padding2D(1), groups: 6),
        ConvCase(x: [1, 3, 15, 14], w: [4, 3, 3, 3], dilations: [2, 2], pads: Padding2D(2)),
        ConvCase(x: [2, 5, 7, 9], w: [7, 5, 1, 1]),
        ConvCase(x: [1, 8, 16, 16], w: [16, 8, 3, 3], pads: Padding2D(1)),
        ConvCase(x: [1, 3, 23, 21], w: [4, 3, 7, 7], strides: [2, 2], pads: Padding2D(3)),
        ConvCase(x: [1, 2, 25, 27], w: [3, 2, 11, 11], strides: [4, 4], pads: Padding2D(2)),
        ConvCase(x: [1, 4, 10, 11], w: [8, 1, 3, 3], pads: Padding2D(top: 1, left: 0, bottom: 2, right: 1), groups: 4),
        ConvCase(x: [1, 6, 9, 9], w: [9, 6, 1, 1], strides: [2, 2]),
        ConvCase(x: [1, 3, 8, 9], w: [2, 3, 2, 4], strides: [1, 2], dilations: [2, 1], pads: Padding2D(top: 0, left: 2, bottom: 1, right: 0)),
        ConvCase(x: [1, 6, 11, 12], w: [9, 2, 5, 5], strides: [3, 1], pads: Padding2D(top: 2, left: 1, bottom: 2, right: 3), groups: 3),
        ConvCase(x: [1, 5, 6, 19], w: [10, 1, 5, 5], dilations: [2, 2], pads: Padding2D(4), groups: 5),
        ConvCase(x: [2, 12, 5, 7], w: [20, 12, 1, 1]),
        ConvCase(x: [2, 9, 3, 4], w: [5, 9, 1, 1]),
    ]

    @Test(arguments: TestBackend.allCases)
    func conv2d(_ backend: TestBackend) throws {
        var rng = SeededRandom(seed: 301)
        for c in Self.convCases {
            let op = Conv2D(strides: c.strides, dilations: c.dilations, pads: c.pads, groups: c.groups)
            try OpCase(op, [rng.tensor(c.x), rng.tensor(c.w), rng.tensor([c.w[0]])],
                       differentiable: [true, false, true]).verify(on: backend, atol: 2e-4, rtol: 2e-4)
        }
    }

    @Test(arguments: TestBackend.allCases)
    func conv2dForwardMatchesNaiveLoop(_ backend: TestBackend) throws {
        guard let b = Backends.get(backend) else { return }
        var rng = SeededRandom(seed: 302)
        for c in Self.convCases {
            let x = rng.tensor(c.x), w = rng.tensor(c.w), bias = rng.tensor([c.w[0]])
            let op = Conv2D(strides: c.strides, dilations: c.dilations, pads: c.pads, groups: c.groups)
            let out = try b.download(b.run(op, b.tensor(x), b.tensor(w), b.tensor(bias)))
            let expected = Self.naiveConv(x, w, bias, strides: c.strides, dilations: c.dilations, pads: c.pads, groups: c.groups)
            expectClose(out, expected, atol: 1e-4, rtol: 1e-4, "conv \(c.x)∗\(c.w) vs naive")
        }
    }

    /// Conv with a fused activation equals Conv2D followed by Unary, forward and backward.
    @Test(arguments: TestBackend.allCases)
    func conv2dFusedActivationMatchesUnfused(_ backend: TestBackend) throws {
        guard let b = Backends.get(backend) else { return }
        var rng = SeededRandom(seed: 303)
        let acts: [Unary] = [Unary(.relu), Unary.relu6(), Unary(.silu), Unary(.hardSwish), Unary(.leakyRelu, alpha: 0.1),
                             Unary(.hardSigmoid, alpha: 0.2, beta: 0.5), Unary(.sigmoid), Unary(.geluErf)]
        let cases = [Self.convCases[0], Self.convCases[2], Self.convCases[4], Self.convCases[11]]
        for act in acts {
            for c in cases {
                let x = rng.tensor(c.x), w = rng.tensor(c.w), bias = rng.tensor([c.w[0]])
                let plain = Conv2D(strides: c.strides, dilations: c.dilations, pads: c.pads, groups: c.groups)
                var fused = plain
                fused.activation = act
                let seed = rng.tensor(try plain.outputShape([c.x, c.w]), -1, 1)
                // Fused, through a one-node graph.
                let fusedRun = try OpCase(fused, [x, w, bias], differentiable: [true, false, false]).run(on: b, seed: seed)
                // Unfused: conv → activation.
                let g = Graph()
                let xi = try g.addInput("x", shape: c.x)
                let wi = try g.addConstant("w", w), bi = try g.addConstant("b", bias)
                let z = try g.add(plain, [xi, wi, bi], name: "conv")
                let y = try g.add(act, [z], name: "act")
                let ex = Executor(graph: g, backend: b)
                let pass = try ex.forward(feeds: [xi: b.tensor(x)], targets: [y], differentiable: [xi])
                let yv = try b.download(pass.value(y))
                let dx = try b.download(ex.backward(pass, seeds: [y: b.tensor(seed)])[xi]!)
                expectClose(fusedRun.output, yv, atol: 1e-5, rtol: 1e-5, "fused \(act.function) forward")
                if let fd = fusedRun.grads[0] {
                    expectClose(fd, dx, atol: 1e-5, rtol: 1e-5, "fused \(act.function) backward")
                }
            }
        }
    }

    /// Smooth fused activations through the standard check (finite differences / CPU comparison).
    @Test(arguments: TestBackend.allCases)
    func conv2dFusedActivationGradients(_ backend: TestBackend) throws {
        var rng = SeededRandom(seed: 304)
        for act in [Unary(.silu), Unary(.sigmoid), Unary(.tanh), Unary(.geluTanh)] {
            for c in [Self.convCases[1], Self.convCases[8]] {
                let op = Conv2D(strides: c.strides, dilations: c.dilations, pads: c.pads, groups: c.groups, activation: act)
                try OpCase(op, [rng.tensor(c.x), rng.tensor(c.w), rng.tensor([c.w[0]])],
                           differentiable: [true, false, false]).verify(on: backend, atol: 2e-4, rtol: 2e-4)
            }
        }
    }

    @Test func convWeightGradientIsRejected() throws {
        var rng = SeededRandom(seed: 305)
        let op = OpCase(Conv2D(pads: Padding2D(1)), [rng.tensor([1, 2, 5, 5]), rng.tensor([3, 2, 3, 3])])
        #expect(throws: EngineError.self) { try op.run(on: Backends.cpu, seed: rng.tensor([1, 3, 5, 5])) }
    }

    @Test func autoPadResolvesLikeONNX() throws {
        // SAME_UPPER, 3×3 stride 1: 1 each side; stride 2 on 10: out 5, total = 4·2 + 3 − 10 = 1 → end.
        #expect(try resolveAutoPad(.sameUpper, input: [7, 7], kernel: [3, 3]) == Padding2D(1))
        #expect(try resolveAutoPad(.sameUpper, input: [10, 9], kernel: [3, 3], strides: [2, 2])
                == Padding2D(top: 0, left: 1, bottom: 1, right: 1))
        #expect(try resolveAutoPad(.sameLower, input: [10, 9], kernel: [3, 3], strides: [2, 2])
                == Padding2D(top: 1, left: 1, bottom: 0, right: 1))
        #expect(try resolveAutoPad(.sameUpper, input: [11, 11], kernel: [4, 4]) == Padding2D(top: 1, left: 1, bottom: 2, right: 2))
        #expect(try resolveAutoPad(.sameLower, input: [11, 11], kernel: [4, 4]) == Padding2D(top: 2, left: 2, bottom: 1, right: 1))
        #expect(try resolveAutoPad(.sameUpper, input: [9, 9], kernel: [3, 3], dilations: [2, 2]) == Padding2D(2))
        #expect(try resolveAutoPad(.valid, input: [9, 9], kernel: [3, 3]) == .zero)
        // The output of a SAME convolution is ceil(in / stride).
        for (size, stride, k) in [(10, 2, 3), (9, 3, 5), (13, 2, 4), (7, 1, 7)] {
            let pads = try resolveAutoPad(.sameLower, input: [size, size], kernel: [k, k], strides: [stride, stride])
            let shape = try Conv2D(strides: [stride, stride], pads: pads).outputShape([[1, 1, size, size], [1, 1, k, k]])
            #expect(shape == [1, 1, (size + stride - 1) / stride, (size + stride - 1) / stride])
        }
    }

    // MARK: - ConvTranspose2D

    struct ConvTransposeCase {
        var x: [Int], w: [Int]
        var strides = [1, 1], dilations = [1, 1]
        var pads = Padding2D.zero
        var outputPadding = [0, 0]
        var groups = 1
    }

    static let convTransposeCases: [ConvTransposeCase] = [
        ConvTransposeCase(x: [1, 3, 5, 7], w: [3, 4, 3, 3], strides: [2, 2], pads: Padding2D(1), outputPadding: [1, 1]),
        ConvTransposeCase(x: [2, 4, 6, 5], w: [4, 3, 4, 4], strides: [2, 3], pads: Padding2D(top: 1, left: 0, bottom: 2, right: 1), groups: 2),
        ConvTransposeCase(x: [1, 5, 7, 7], w: [5, 2, 3, 3], dilations: [2, 2], pads: Padding2D(1)),
        ConvTransposeCase(x: [1, 8, 8, 8], w: [8, 8, 2, 2], strides: [2, 2]),
        ConvTransposeCase(x: [1, 6, 9, 4], w: [6, 1, 5, 3], strides: [3, 1], pads: Padding2D(top: 2, left: 1, bottom: 1, right: 1), outputPadding: [2, 0], groups: 6),
        ConvTransposeCase(x: [1, 7, 6, 9], w: [7, 5, 1, 1]),
        ConvTransposeCase(x: [1, 2, 4, 5], w: [2, 3, 3, 3], strides: [1, 1], dilations: [2, 2], outputPadding: [1, 1]),
    ]

    @Test(arguments: TestBackend.allCases)
    func convTranspose2d(_ backend: TestBackend) throws {
        var rng = SeededRandom(seed: 311)
        for c in Self.convTransposeCases {
            let op = ConvTranspose2D(strides: c.strides, dilations: c.dilations, pads: c.pads, outputPadding: c.outputPadding, groups: c.groups)
            try OpCase(op, [rng.tensor(c.x), rng.tensor(c.w), rng.tensor([c.w[1] * c.groups])],
                       differentiable: [true, false, true]).verify(on: backend, atol: 2e-4, rtol: 2e-4)
        }
    }

    @Test(arguments: TestBackend.allCases)
    func convTranspose2dForwardMatchesNaiveLoop(_ backend: TestBackend) throws {
        guard let b = Backends.get(backend) else { return }
        var rng = SeededRandom(seed: 312)
        for c in Self.convTransposeCases {
            let x = rng.tensor(c.x), w = rng.tensor(c.w), bias = rng.tensor([c.w[1] * c.groups])
            let op = ConvTranspose2D(strides: c.strides, dilations: c.dilations, pads: c.pads, outputPadding: c.outputPadding, groups: c.groups)
            let out = try b.download(b.run(op, b.tensor(x), b.tensor(w), b.tensor(bias)))
            let expected = Self.naiveConvTranspose(x, w, bias, strides: c.strides, dilations: c.dilations, pads: c.pads,
                                                   outputPadding: c.outputPadding, groups: c.groups)
            expectClose(out, expected, atol: 1e-4, rtol: 1e-4, "conv transpose \(c.x)∗\(c.w) vs naive")
        }
    }

    // MARK: - Pooling

    /// Distinct values 0.03 apart, shuffled: max pooling has no near-ties for finite differences.
    static func distinct(_ shape: [Int], _ rng: inout SeededRandom) -> HostTensor {
        let n = shape.reduce(1, *)
        var values = (0..<n).map { Float($0) * 0.03 - Float(n) * 0.015 }
        for i in stride(from: n - 1, to: 0, by: -1) { values.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        return HostTensor(shape: shape, values: values)
    }

    struct PoolCase {
        var x: [Int], kernel: [Int]
        var strides = [1, 1], dilations = [1, 1]
        var pads = Padding2D.zero
        var ceilMode = false
    }

    static let poolCases: [PoolCase] = [
        PoolCase(x: [2, 3, 9, 11], kernel: [3, 3], strides: [2, 2], pads: Padding2D(1)),
        PoolCase(x: [1, 2, 10, 13], kernel: [2, 2], strides: [2, 2], ceilMode: true),
        PoolCase(x: [1, 3, 11, 9], kernel: [3, 2], strides: [3, 2], pads: Padding2D(top: 1, left: 0, bottom: 1, right: 1), ceilMode: true),
        PoolCase(x: [1, 2, 12, 13], kernel: [3, 3], dilations: [2, 2], pads: Padding2D(2)),
        PoolCase(x: [1, 4, 16, 16], kernel: [2, 2], strides: [2, 2]),
        PoolCase(x: [1, 2, 7, 8], kernel: [5, 5], strides: [2, 3], pads: Padding2D(2), ceilMode: true),
        PoolCase(x: [1, 1, 6, 6], kernel: [3, 3], strides: [3, 3], dilations: [1, 2], pads: Padding2D(top: 0, left: 1, bottom: 2, right: 0), ceilMode: true),
    ]

    /// Windows from the definition: the taps (iy, ix) inside the input, and the tap counts inside
    /// the input and inside the padded input [−pT, H + pB) × [−pL, W + pR).
    static func naiveWindows(_ c: PoolCase, oh: Int, ow: Int) -> [[(taps: [(Int, Int)], inside: Int, padded: Int)]] {
        let (h, w) = (c.x[2], c.x[3])
        return (0..<oh).map { oy in (0..<ow).map { ox in
            var taps: [(Int, Int)] = []
            var padded = 0
            for ky in 0..<c.kernel[0] { for kx in 0..<c.kernel[1] {
                let iy = oy * c.strides[0] - c.pads.top + ky * c.dilations[0]
                let ix = ox * c.strides[1] - c.pads.left + kx * c.dilations[1]
                if iy >= 0 && iy < h && ix >= 0 && ix < w { taps.append((iy, ix)) }
                if iy < h + c.pads.bottom && ix < w + c.pads.right { padded += 1 }
            } }
            return (taps, taps.count, padded)
        } }
    }

    @Test(arguments: TestBackend.allCases)
    func maxPool(_ backend: TestBackend) throws {
        var rng = SeededRandom(seed: 321)
        for c in Self.poolCases {
            let op = MaxPool2D(kernel: c.kernel, strides: c.strides, pads: c.pads, dilations: c.dilations, ceilMode: c.ceilMode)
            try OpCase(op, [Self.distinct(c.x, &rng)]).verify(on: backend, atol: 1e-5, rtol: 1e-5)
        }
    }

    /// The max-pool kernels on OpenCL against the CPU reference, bit for bit: inputs drawn from 5 levels
    /// (many ties, so the first-maximum rule is exercised) and overlapping windows (3×3 stride 2, 5×5 stride 2,
    /// dilated), so several windows share an argmax and dx sums several gradients — in the same order on
    /// both backends. Awkward shapes, padding, ceil mode and one power of two (ResNet's 3×3 s2 p1 on 32×32).
    @Test func maxPoolKernelsBitIdenticalToCPU() throws {
        guard let cl = Backends.requireOpenCL() else { return }
        var rng = SeededRandom(seed: 323)
        let cases = [
            PoolCase(x: [2, 3, 32, 32], kernel: [3, 3], strides: [2, 2], pads: Padding2D(1)),
            PoolCase(x: [1, 5, 23, 19], kernel: [3, 3], strides: [2, 2], pads: Padding2D(1), ceilMode: true),
            PoolCase(x: [1, 2, 17, 13], kernel: [5, 5], strides: [2, 2], pads: Padding2D(2)),
            PoolCase(x: [1, 3, 15, 14], kernel: [3, 3], strides: [1, 2], dilations: [2, 1], pads: Padding2D(top: 2, left: 1, bottom: 0, right: 1)),
            PoolCase(x: [1, 2, 11, 9], kernel: [2, 3], strides: [3, 1], pads: Padding2D(top: 1, left: 0, bottom: 1, right: 2), ceilMode: true),
        ]
        for c in cases {
            let g = try poolGeometry("MaxPool", [c.x], kernel: c.kernel, strides: c.strides, dilations: c.dilations,
                                     pads: c.pads, ceilMode: c.ceilMode)
            let x = HostTensor(shape: c.x, values: (0..<c.x.reduce(1, *)).map { _ in Float(rng.next() % 5) * 0.25 - 0.5 })
            let dy = rng.tensorAwayFromZero(g.outputShape)
            let cpu = Backends.cpu
            let (yC, aC) = try cpu.maxPoolForward(cpu.tensor(x), geometry: g)
            let (yO, aO) = try cl.maxPoolForward(cl.tensor(x), geometry: g)
            #expect(try cl.download(yO).values == cpu.download(yC).values, "max pool forward \(c.x) \(c.kernel)")
            #expect(try cl.download(aO).values == cpu.download(aC).values, "max pool argmax \(c.x) \(c.kernel)")
            let dxC = try cpu.download(cpu.maxPoolBackward(cpu.tensor(dy), argmax: aC, geometry: g))
            let dxO = try cl.download(cl.maxPoolBackward(cl.tensor(dy), argmax: aO, geometry: g))
            // Evidence the case is not vacuous: some pixel collects gradient from two or more windows.
            let argmaxes = try cpu.download(aC).values.map(Int.init)
            var hits: [Int: Int] = [:]
            for (o, a) in argmaxes.enumerated() where a >= 0 { hits[(o / (g.oh * g.ow)) * g.h * g.w + a, default: 0] += 1 }
            #expect(hits.values.contains { $0 >= 2 }, "no shared argmax in \(c.x) \(c.kernel)")
            #expect(dxC.values.contains { $0 != 0 })
            let bad = zip(dxO.values, dxC.values).enumerated().first { $0.element.0.bitPattern != $0.element.1.bitPattern }
            #expect(bad == nil, "max pool backward \(c.x) \(c.kernel): first difference at \(bad?.offset ?? -1): OpenCL \(bad?.element.0 ?? 0) vs CPU \(bad?.element.1 ?? 0)")
        }
    }

    @Test(arguments: TestBackend.allCases)
    func averagePool(_ backend: TestBackend) throws {
        var rng = SeededRandom(seed: 322)
        for c in Self.poolCases {
            for include in [false, true] {
                let op = AveragePool2D(kernel: c.kernel, strides: c.strides, pads: c.pads, dilations: c.dilations,
                                       ceilMode: c.ceilMode, countIncludePad: include)
                try OpCase(op, [rng.tensor(c.x)]).verify(on: backend, atol: 1e-5, rtol: 1e-5)
            }
        }
    }

    @Test(arguments: TestBackend.allCases)
    func poolForwardMatchesNaiveLoops(_ backend: TestBackend) throws {
        guard let b = Backends.get(backend) else { return }
        var rng = SeededRandom(seed: 323)
        for c in Self.poolCases {
            let x = rng.tensor(c.x)
            let maxOp = MaxPool2D(kernel: c.kernel, strides: c.strides, pads: c.pads, dilations: c.dilations, ceilMode: c.ceilMode)
            let shape = try maxOp.outputShape([c.x])
            // PyTorch's output size: ⌈ or ⌊(in + pads − extent)/s⌉ + 1, minus a last window starting in the end pad.
            for axis in 0..<2 {
                let size = c.x[2 + axis], pb = axis == 0 ? c.pads.top : c.pads.left, pe = axis == 0 ? c.pads.bottom : c.pads.right
                let span = Double(size + pb + pe - c.dilations[axis] * (c.kernel[axis] - 1) - 1) / Double(c.strides[axis])
                var o = Int(c.ceilMode ? span.rounded(.up) : span.rounded(.down)) + 1
                if c.ceilMode && (o - 1) * c.strides[axis] >= size + pb { o -= 1 }
                #expect(shape[2 + axis] == o, "pooled size of axis \(axis) for \(c.x)")
            }
            let windows = Self.naiveWindows(c, oh: shape[2], ow: shape[3])
            var maxExpected: [Float] = [], avgExpected: [Float] = [], avgPadExpected: [Float] = []
            for p in 0..<(c.x[0] * c.x[1]) {
                for row in windows { for win in row {
                    let vals = win.taps.map { x.values[(p * c.x[2] + $0.0) * c.x[3] + $0.1] }
                    maxExpected.append(vals.max() ?? 0)
                    let sum = vals.reduce(0.0) { $0 + Double($1) }
                    avgExpected.append(Float(sum / Double(win.inside)))
                    avgPadExpected.append(Float(sum / Double(win.padded)))
                } }
            }
            let xt = try b.tensor(x)
            expectClose(try b.download(b.run(maxOp, xt)), HostTensor(shape: shape, values: maxExpected), atol: 0, rtol: 0, "max pool \(c.x) vs naive")
            let avg = AveragePool2D(kernel: c.kernel, strides: c.strides, pads: c.pads, dilations: c.dilations, ceilMode: c.ceilMode)
            expectClose(try b.download(b.run(avg, xt)), HostTensor(shape: shape, values: avgExpected), atol: 1e-6, rtol: 1e-5, "avg pool \(c.x) vs naive")
            var avgPad = avg
            avgPad.countIncludePad = true
            expectClose(try b.download(b.run(avgPad, xt)), HostTensor(shape: shape, values: avgPadExpected), atol: 1e-6, rtol: 1e-5,
                        "avg pool (count_include_pad) \(c.x) vs naive")
        }
    }

    /// Ties go to the first maximum: a constant input sends each window's gradient to its first tap.
    @Test(arguments: TestBackend.allCases)
    func maxPoolTiesRouteToFirstMaximum(_ backend: TestBackend) throws {
        guard let b = Backends.get(backend) else { return }
        let x = HostTensor(shape: [1, 1, 4, 5], values: Array(repeating: 2, count: 20))
        let op = OpCase(MaxPool2D(kernel: [2, 2], strides: [2, 2], pads: Padding2D(top: 0, left: 1, bottom: 0, right: 0)), [x])
        let run = try op.run(on: b, seed: HostTensor(shape: [1, 1, 2, 3], values: [1, 2, 3, 4, 5, 6]))
        #expect(run.output.values == Array(repeating: 2, count: 6))
        // Windows start at columns −1, 1, 3 (first inside tap: column 0, 1, 3) on rows 0 and 2.
        var expected = [Float](repeating: 0, count: 20)
        expected[0] = 1; expected[1] = 2; expected[3] = 3; expected[10] = 4; expected[11] = 5; expected[13] = 6
        #expect(run.grads[0]?.values == expected)
    }

    @Test(arguments: TestBackend.allCases)
    func globalAveragePool(_ backend: TestBackend) throws {
        var rng = SeededRandom(seed: 324)
        for shape in [[2, 3, 7, 9], [1, 16, 8, 8], [1, 5, 1, 13]] {
            try OpCase(GlobalAveragePool(), [rng.tensor(shape)]).verify(on: backend, atol: 1e-5, rtol: 1e-5)
        }
        guard let b = Backends.get(backend) else { return }
        let x = rng.tensor([2, 3, 5, 7])
        let y = try b.download(b.run(GlobalAveragePool(), b.tensor(x)))
        let expected = (0..<6).map { p in Float(x.values[(p * 35)..<((p + 1) * 35)].reduce(0.0) { $0 + Double($1) } / 35) }
        expectClose(y, HostTensor(shape: [2, 3, 1, 1], values: expected), atol: 1e-6, rtol: 1e-5, "global average pool vs naive")
    }

    // MARK: - Batch norm

    static func batchNormParams(_ c: Int, _ rng: inout SeededRandom) -> [HostTensor] {
        [rng.tensor([c], 0.5, 1.5), rng.tensor([c]), rng.tensor([c]), rng.tensor([c], 0.2, 2)]
    }

    @Test(arguments: TestBackend.allCases)
    func batchNorm(_ backend: TestBackend) throws {
        var rng = SeededRandom(seed: 331)
        for shape in [[2, 3, 5, 7], [1, 16, 8, 8], [3, 5], [2, 4, 3, 2, 3]] {
            try OpCase(BatchNorm(epsilon: 1e-3), [rng.tensor(shape)] + Self.batchNormParams(shape[1], &rng),
                       differentiable: [true, false, false, false, false]).verify(on: backend, atol: 1e-5, rtol: 1e-5)
        }
        guard let b = Backends.get(backend) else { return }
        let x = rng.tensor([2, 3, 4, 5])
        let p = Self.batchNormParams(3, &rng)
        let y = try b.download(b.run(BatchNorm(epsilon: 1e-5), [try b.tensor(x)] + p.map { try b.tensor($0) }))
        var expected = x.values
        for i in expected.indices {
            let c = (i / 20) % 3
            expected[i] = (x.values[i] - p[2].values[c]) / (p[3].values[c] + 1e-5).squareRoot() * p[0].values[c] + p[1].values[c]
        }
        expectClose(y, HostTensor(shape: x.shape, values: expected), atol: 1e-5, rtol: 1e-5, "batch norm vs naive")
    }

    /// conv → BN equals the folded conv, on both backends.
    @Test(arguments: TestBackend.allCases)
    func foldedBatchNormMatchesConvThenBatchNorm(_ backend: TestBackend) throws {
        guard let b = Backends.get(backend) else { return }
        var rng = SeededRandom(seed: 332)
        for (xs, ws, groups, withBias) in [([1, 4, 9, 10], [6, 2, 3, 3], 2, true), ([2, 5, 7, 7], [5, 1, 3, 3], 5, false), ([1, 8, 6, 6], [4, 8, 1, 1], 1, true)] {
            let x = rng.tensor(xs), w = rng.tensor(ws), bias = withBias ? rng.tensor([ws[0]]) : nil
            let bn = Self.batchNormParams(ws[0], &rng)
            let conv = Conv2D(pads: Padding2D(ws[2] / 2), groups: groups)
            let z = try b.run(conv, [try b.tensor(x), try b.tensor(w)] + (try bias.map { [try b.tensor($0)] } ?? []))
            let unfolded = try b.download(b.run(BatchNorm(epsilon: 1e-3), [z] + bn.map { try b.tensor($0) }))
            let (fw, fb) = try foldBatchNorm(convWeight: w, convBias: bias, gamma: bn[0], beta: bn[1], mean: bn[2], variance: bn[3], eps: 1e-3)
            let folded = try b.download(b.run(conv, b.tensor(x), b.tensor(fw), b.tensor(fb)))
            expectClose(folded, unfolded, atol: 1e-5, rtol: 1e-4, "folded BN \(ws)")
        }
        #expect(throws: EngineError.self) {
            try foldBatchNorm(convWeight: rng.tensor([3, 2, 1, 1]), convBias: nil, gamma: rng.tensor([2]), beta: rng.tensor([3]),
                              mean: rng.tensor([3]), variance: rng.tensor([3], 1, 2), eps: 1e-5)
        }
    }

    // MARK: - Pad

    @Test(arguments: TestBackend.allCases)
    func pad(_ backend: TestBackend) throws {
        var rng = SeededRandom(seed: 341)
        let cases: [([Int], [Int])] = [
            ([2, 3, 5, 7], [0, 0, 1, 2, 0, 0, 3, 1]),
            ([1, 2, 8, 8], [0, 0, 2, 2, 0, 0, 2, 2]),
            ([3, 4, 6], [1, 2, 3, 2, 0, 1]),
            ([1, 1, 4, 9], [0, 0, 3, 0, 0, 0, 0, 8]),
        ]
        for mode in PadMode.allCases {
            for (shape, pads) in cases {
                try OpCase(Pad(pads: pads, mode: mode, value: 0.75), [rng.tensor(shape)]).verify(on: backend, atol: 1e-5, rtol: 1e-5)
            }
        }
    }

    @Test(arguments: TestBackend.allCases)
    func padForwardValues(_ backend: TestBackend) throws {
        guard let b = Backends.get(backend) else { return }
        let x = try b.tensor(HostTensor(shape: [1, 1, 2, 3], values: [1, 2, 3, 4, 5, 6]))
        let p = Padding2D(top: 1, left: 2, bottom: 0, right: 1)
        let reflect = try b.download(b.run(Pad.spatial(p, mode: .reflect), x))
        #expect(reflect.shape == [1, 1, 3, 6])
        #expect(reflect.values == [6, 5, 4, 5, 6, 5,  3, 2, 1, 2, 3, 2,  6, 5, 4, 5, 6, 5])
        let edge = try b.download(b.run(Pad.spatial(p, mode: .edge), x))
        #expect(edge.values == [1, 1, 1, 2, 3, 3,  1, 1, 1, 2, 3, 3,  4, 4, 4, 5, 6, 6])
        let constant = try b.download(b.run(Pad.spatial(p, value: -1), x))
        #expect(constant.values == [-1, -1, -1, -1, -1, -1,  -1, -1, 1, 2, 3, -1,  -1, -1, 4, 5, 6, -1])
        #expect(throws: EngineError.self) { try Pad(pads: [0, 0, -1, 0, 0, 0, 0, 0]).outputShape([[1, 1, 2, 3]]) }
        #expect(throws: EngineError.self) { try Pad.spatial(Padding2D(2), mode: .reflect).outputShape([[1, 1, 2, 3]]) }
    }

    // MARK: - Resize

    /// Resize from the ONNX definition, written independently of the engine's tables: linear reads
    /// ⌊x⌋ and ⌊x⌋ + 1 of an edge-padded axis.
    static func naiveResize(_ x: HostTensor, _ op: Resize, out: [Int]) -> HostTensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        func coordinate(_ o: Int, _ inSize: Int, _ outSize: Int, _ scale: Double) -> Double {
            switch op.coordinates {
            case .halfPixel: return (Double(o) + 0.5) / scale - 0.5
            case .pytorchHalfPixel: return outSize > 1 ? (Double(o) + 0.5) / scale - 0.5 : 0
            case .alignCorners: return outSize == 1 ? 0 : Double(o) * Double(inSize - 1) / Double(outSize - 1)
            case .asymmetric: return Double(o) / scale
            }
        }
        func taps(_ o: Int, _ inSize: Int, _ outSize: Int, _ scale: Double) -> [(Int, Double)] {
            let xo = coordinate(o, inSize, outSize, scale)
            func clamp(_ i: Int) -> Int { min(max(i, 0), inSize - 1) }
            switch op.mode {
            case .linear:
                let f = Foundation.floor(xo)
                return [(clamp(Int(f)), 1 - (xo - f)), (clamp(Int(f) + 1), xo - f)]
            case .nearest:
                let frac = xo - Foundation.floor(xo)
                let r: Double
                switch op.nearestMode {
                case .roundPreferFloor: r = frac <= 0.5 ? Foundation.floor(xo) : Foundation.ceil(xo)
                case .roundPreferCeil: r = frac < 0.5 ? Foundation.floor(xo) : Foundation.ceil(xo)
                case .floor: r = Foundation.floor(xo)
                case .ceil: r = Foundation.ceil(xo)
                }
                return [(clamp(Int(r)), 1)]
            }
        }
        let sy = op.scales.map { Double($0[0]) } ?? Double(out[0]) / Double(h)
        let sx = op.scales.map { Double($0[1]) } ?? Double(out[1]) / Double(w)
        var values: [Float] = []
        for p in 0..<(n * c) { for oy in 0..<out[0] { for ox in 0..<out[1] {
            var s = 0.0
            for (iy, wy) in taps(oy, h, out[0], sy) { for (ix, wx) in taps(ox, w, out[1], sx) {
                s += wy * wx * Double(x.values[(p * h + iy) * w + ix])
            } }
            values.append(Float(s))
        } } }
        return HostTensor(shape: [n, c, out[0], out[1]], values: values)
    }

    static var resizeOps: [Resize] {
        var ops: [Resize] = []
        for coords in ResizeCoordinates.allCases {
            ops.append(Resize(size: [11, 7], mode: .linear, coordinates: coords))    // up in H, down in W
            ops.append(Resize(size: [1, 3], mode: .linear, coordinates: coords))     // a size-1 output axis
            ops.append(Resize(scales: [2, 2], mode: .linear, coordinates: coords))
            for nearest in ResizeNearestMode.allCases {
                ops.append(Resize(size: [13, 4], mode: .nearest, coordinates: coords, nearestMode: nearest))
                ops.append(Resize(scales: [3, 0.5], mode: .nearest, coordinates: coords, nearestMode: nearest))
            }
        }
        return ops
    }

    @Test(arguments: TestBackend.allCases)
    func resize(_ backend: TestBackend) throws {
        var rng = SeededRandom(seed: 351)
        for op in Self.resizeOps {
            try OpCase(op, [rng.tensor([2, 3, 5, 9])]).verify(on: backend, atol: 1e-5, rtol: 1e-5)
        }
        try OpCase(Resize(scales: [2, 2], mode: .linear, coordinates: .alignCorners), [rng.tensor([1, 2, 8, 8])]).verify(on: backend)
        try OpCase(Resize(size: [4, 4], mode: .linear), [rng.tensor([1, 2, 16, 16])]).verify(on: backend)
    }

    @Test(arguments: TestBackend.allCases)
    func resizeForwardMatchesONNXDefinition(_ backend: TestBackend) throws {
        guard let b = Backends.get(backend) else { return }
        var rng = SeededRandom(seed: 352)
        let x = rng.tensor([2, 3, 5, 9])
        for op in Self.resizeOps {
            let shape = try op.outputShape([x.shape])
            let y = try b.download(b.run(op, b.tensor(x)))
            expectClose(y, Self.naiveResize(x, op, out: [shape[2], shape[3]]), atol: 1e-5, rtol: 1e-5,
                        "resize \(op.mode) \(op.coordinates) \(op.nearestMode) \(op.size ?? []) \(op.scales ?? [])")
        }
        // Known values: [1, 2, 3, 4] upsampled ×2.
        let row = try b.tensor(HostTensor(shape: [1, 1, 1, 4], values: [1, 2, 3, 4]))
        let linear = try b.download(b.run(Resize(scales: [1, 2], mode: .linear), row))
        #expect(linear.values == [1, 1.25, 1.75, 2.25, 2.75, 3.25, 3.75, 4])
        let corners = try b.download(b.run(Resize(size: [1, 7], mode: .linear, coordinates: .alignCorners), row))
        #expect(corners.values == [1, 1.5, 2, 2.5, 3, 3.5, 4])
        let nearest = try b.download(b.run(Resize(scales: [1, 2], mode: .nearest, coordinates: .asymmetric, nearestMode: .floor), row))
        #expect(nearest.values == [1, 1, 2, 2, 3, 3, 4, 4])
    }

    // MARK: - Blocks, differentiated end to end

    /// A folded conv + BN (+ fused activation) node: the BN statistics are random, folded on the host.
    static func convBN(_ g: Graph, _ x: ValueID, _ name: String, cout: Int, kernel: Int, stride: Int = 1, groups: Int = 1,
                       activation: Unary? = nil, rng: inout SeededRandom) throws -> ValueID {
        let cin = g.shape(of: x)[1]
        let fan = Float(cin / groups * kernel * kernel)
        let w = rng.tensor([cout, cin / groups, kernel, kernel], -1 / fan.squareRoot(), 1 / fan.squareRoot())
        let bn = batchNormParams(cout, &rng)
        let (fw, fb) = try foldBatchNorm(convWeight: w, convBias: nil, gamma: bn[0], beta: bn[1], mean: bn[2], variance: bn[3], eps: 1e-5)
        let wv = try g.addConstant(name + ".weight", fw), bv = try g.addConstant(name + ".bias", fb)
        let op = Conv2D(strides: [stride, stride], pads: Padding2D(kernel / 2), groups: groups, activation: activation)
        return try g.add(op, [x, wv, bv], name: name)
    }

    /// ResNet basic block with a projection shortcut: conv3×3/2-BN-ReLU → conv3×3-BN, + conv1×1/2-BN, ReLU,
    /// then a max pool and a global average pool. BNs folded.
    static func resNetBlock() throws -> (Graph, ValueID, ValueID) {
        var rng = SeededRandom(seed: 361)
        let g = Graph()
        let x = try g.addInput("image", shape: [1, 6, 11, 13])
        let a = try convBN(g, x, "conv1", cout: 8, kernel: 3, stride: 2, activation: Unary(.relu), rng: &rng)
        let b = try convBN(g, a, "conv2", cout: 8, kernel: 3, rng: &rng)
        let skip = try convBN(g, x, "downsample", cout: 8, kernel: 1, stride: 2, rng: &rng)
        let sum = try g.add(Binary(.add), [b, skip], name: "add")
        let r = try g.add(Unary(.relu), [sum], name: "relu")
        let m = try g.add(MaxPool2D(kernel: [3, 3], strides: [2, 2], pads: Padding2D(1)), [r], name: "maxpool")
        let out = try g.add(GlobalAveragePool(), [m], name: "pool")
        return (g, x, out)
    }

    /// MBConv: 1×1 expand-BN-ReLU6 → depthwise 3×3-BN-ReLU6 → 1×1 project-BN → + input. BNs folded.
    static func mbConvBlock() throws -> (Graph, ValueID, ValueID) {
        var rng = SeededRandom(seed: 362)
        let g = Graph()
        let x = try g.addInput("image", shape: [1, 8, 10, 9])
        let e = try convBN(g, x, "expand", cout: 24, kernel: 1, activation: .relu6(), rng: &rng)
        let d = try convBN(g, e, "depthwise", cout: 24, kernel: 3, groups: 24, activation: .relu6(), rng: &rng)
        let p = try convBN(g, d, "project", cout: 8, kernel: 1, rng: &rng)
        let out = try g.add(Binary(.add), [p, x], name: "residual")
        return (g, x, out)
    }

    /// Forward value (as Double loss Σ out·seed), output and gradient of a block on one backend.
    static func differentiate(_ block: (Graph, ValueID, ValueID), image: HostTensor, seed: HostTensor,
                              on backend: any Backend) throws -> (loss: Double, output: HostTensor, grad: HostTensor) {
        let (g, x, out) = block
        let ex = Executor(graph: g, backend: backend)
        let pass = try ex.forward(feeds: [x: backend.tensor(image)], targets: [out], differentiable: [x])
        let y = try backend.download(pass.value(out))
        let grads = try ex.backward(pass, seeds: [out: backend.tensor(seed)])
        let loss = zip(y.values, seed.values).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        guard let dx = grads[x] else { throw EngineError.invalidGraph("no gradient for the image") }
        return (loss, y, try backend.download(dx))
    }

    static func checkBlock(_ make: () throws -> (Graph, ValueID, ValueID), _ kind: TestBackend) throws {
        let block = try make()
        var rng = SeededRandom(seed: 363)
        let image = rng.tensor(block.0.shape(of: block.1))
        let seed = rng.tensor(block.0.shape(of: block.2))
        let cpu = Backends.cpu
        let reference = try differentiate(block, image: image, seed: seed, on: cpu)
        #expect(reference.grad.values.contains { $0 != 0 })
        switch kind {
        case .cpu:
            // The shared norm-relative check (`GradientCheck`): 32 positions and 8 random directions over the image.
            let check = GradientCheck(rngSeed: 364)
            let numeric = try check.numeric(inputs: [image], differentiable: [true], seed: seed) { xs in
                try differentiate(block, image: xs[0], seed: seed, on: cpu).output
            }
            for failure in check.failures("block", numeric: numeric, analytic: [reference.grad]) {
                Issue.record("\(failure)")
            }
        case .opencl:
            guard let cl = Backends.get(.opencl) else { return }
            let result = try differentiate(block, image: image, seed: seed, on: cl)
            expectClose(result.output, reference.output, atol: 1e-5, rtol: 1e-4, "block forward on OpenCL")
            expectClose(result.grad, reference.grad, atol: 1e-5, rtol: 1e-4, "block gradient on OpenCL")
        }
    }

    @Test(arguments: TestBackend.allCases)
    func resNetBlockGradient(_ backend: TestBackend) throws {
        try Self.checkBlock(Self.resNetBlock, backend)
    }

    @Test(arguments: TestBackend.allCases)
    func mbConvBlockGradient(_ backend: TestBackend) throws {
        try Self.checkBlock(Self.mbConvBlock, backend)
    }
}
