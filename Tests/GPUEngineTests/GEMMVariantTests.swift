import Foundation
import Testing
@testable import GPUEngine

/// The GPU-style GEMM variant (`matmul_tiled` and the implicit-GEMM convolutions, gemm.cl) selected through
/// `TiledGEMMBackend`: for several parameter sets (register blocks 1×1 to 4×4, vector widths 1 to 4, work-groups
/// 8 to 256 threads, plus every set a shipped GPU default uses), the matmul in every operand order, the pointwise
/// convolutions and the k×k / strided / dilated / grouped ones, forward and backward, against the CPU
/// reference at awkward shapes (no size a multiple of a tile) and one power of two. The CPU reference's
/// backward is checked by finite differences in CoreOpTests/CNNOpTests; here the variant's gradients are
/// compared with it. Sizes stay small: PoCL runs these GPU-style kernels slowly.
@Suite struct GEMMVariantTests {
    /// An OpenCL backend of the test's own (nil where `Backends.requireOpenCL` skips): launch counts are per
    /// backend, and other tests running the same parameter sets in parallel on the shared backend would change them.
    static func privateOpenCL() throws -> OpenCLBackend? {
        guard Backends.requireOpenCL() != nil, let device = try OpenCLRuntime.devices().first else { return nil }
        return try OpenCLBackend(device: device)
    }

    static let parameterSets: [GEMMParameters] = [
        GEMMParameters(mwg: 8, nwg: 16, kwg: 4, mdimc: 2, ndimc: 4, vwm: 1, vwn: 1),
        GEMMParameters(mwg: 16, nwg: 16, kwg: 8, mdimc: 4, ndimc: 4, vwm: 2, vwn: 4),
        GEMMParameters(mwg: 32, nwg: 64, kwg: 8, mdimc: 8, ndimc: 8, vwm: 1, vwn: 2),
        GEMMParameters(mwg: 64, nwg: 64, kwg: 16, mdimc: 16, ndimc: 16, vwm: 4, vwn: 4),
    ] + ShippedTuning.tiledParameterSets   // the shipped GPU defaults run untuned: check them here too

    /// (operator, inputs, differentiable): A·B batched, A·Bᵀ, Aᵀ·B, A broadcast over B's batch, with bias,
    /// a K of 1, and a 64×64×64 power of two.
    static func matmulCases(_ rng: inout SeededRandom) -> [(MatMul, [HostTensor], [Bool])] {
        [
            (MatMul(), [rng.tensor([2, 33, 45]), rng.tensor([2, 45, 19])], [true, true]),
            (MatMul(transposeB: true), [rng.tensor([3, 17, 29]), rng.tensor([11, 29])], [true, true]),
            (MatMul(transposeA: true), [rng.tensor([13, 6]), rng.tensor([13, 21])], [true, true]),
            (MatMul(transposeA: true, transposeB: true), [rng.tensor([9, 7]), rng.tensor([5, 9])], [true, true]),
            (MatMul(), [rng.tensor([37, 20]), rng.tensor([3, 20, 18])], [true, true]),
            (MatMul(), [rng.tensor([7, 9]), rng.tensor([9, 70]), rng.tensor([70])], [true, false, false]),
            (MatMul(), [rng.tensor([5, 1]), rng.tensor([1, 3])], [true, true]),
            (MatMul(), [rng.tensor([64, 64]), rng.tensor([64, 64])], [true, true]),
        ]
    }

    @Test(arguments: parameterSets)
    func matmulMatchesCPU(_ parameters: GEMMParameters) throws {
        guard let cl = try Self.privateOpenCL() else { return }
        let variant = try TiledGEMMBackend(base: cl, parameters: parameters)
        var rng = SeededRandom(seed: 1601)
        for (op, inputs, differentiable) in Self.matmulCases(&rng) {
            let c = OpCase(op, inputs, differentiable: differentiable)
            let seed = try c.lossSeed()
            let before = variant.gemmLaunches
            let got = try c.run(on: variant, seed: seed), want = try c.run(on: Backends.cpu, seed: seed)
            let label = "\(parameters) \(op.transposeA ? "Aᵀ" : "A")·\(op.transposeB ? "Bᵀ" : "B") \(inputs.map(\.shape))"
            // Forward plus one product per gradient, each on matmul_tiled.
            #expect(variant.gemmLaunches == before + 1 + differentiable.filter { $0 }.count, "\(label): not every product ran on matmul_tiled")
            #expect(got.output.values.contains { $0 != 0 })
            expectClose(got.output, want.output, atol: 1e-4, rtol: 1e-4, "\(label) forward")
            for (i, (g, w)) in zip(got.grads, want.grads).enumerated() {
                guard let w else { continue }
                let g = try #require(g)
                expectClose(g, w, atol: 1e-4, rtol: 1e-4, "\(label) d input \(i)")
            }
        }
    }

    /// 1×1 convolutions (forward with bias and a fused-on-OpenCL activation, backward to the input) and a 1×1
    /// ConvTranspose2D (its forward is the backward-to-input product, with bias per input channel).
    @Test(arguments: parameterSets)
    func pointwiseConvMatchesCPU(_ parameters: GEMMParameters) throws {
        guard let cl = try Self.privateOpenCL() else { return }
        let variant = try TiledGEMMBackend(base: cl, parameters: parameters)
        var rng = SeededRandom(seed: 1602)
        let cases: [(any Operator, [HostTensor], [Bool])] = [
            (Conv2D(), [rng.tensor([2, 5, 7, 9]), rng.tensor([6, 5, 1, 1]), rng.tensor([6])], [true, false, false]),
            (Conv2D(activation: Unary(.relu)), [rng.tensor([1, 13, 5, 11]), rng.tensor([21, 13, 1, 1]), rng.tensor([21])], [true, false, false]),
            (Conv2D(activation: Unary(.silu)), [rng.tensor([1, 16, 8, 8]), rng.tensor([32, 16, 1, 1])], [true, false]),
            (ConvTranspose2D(), [rng.tensor([2, 6, 3, 7]), rng.tensor([6, 4, 1, 1]), rng.tensor([4])], [true, false, false]),
        ]
        for (op, inputs, differentiable) in cases {
            let c = OpCase(op, inputs, differentiable: differentiable)
            let seed = try c.lossSeed()
            let before = variant.gemmLaunches
            let got = try c.run(on: variant, seed: seed), want = try c.run(on: Backends.cpu, seed: seed)
            let label = "\(parameters) \(op.typeName) \(inputs.map(\.shape))"
            #expect(variant.gemmLaunches == before + 2, "\(label): forward and backward did not both run on matmul_tiled")
            #expect(got.output.values.contains { $0 != 0 })
            expectClose(got.output, want.output, atol: 1e-4, rtol: 1e-4, "\(label) forward")
            let g = try #require(got.grads[0]), w = try #require(want.grads[0])
            expectClose(g, w, atol: 1e-4, rtol: 1e-4, "\(label) d x")
        }
    }

    /// The convolutions the implicit-GEMM kernels (`conv2d_forward_tiled`, `conv2d_backward_input_tiled`) run:
    /// odd channel counts and sizes (no tile multiple), 3×3 / 5×5 / 7×7, stride 2 and 3, asymmetric padding,
    /// dilation 2 (with stride 2: phases no tap reaches, dx = 0 there), groups 2, batch 2, a grouped 1×1 and a
    /// strided 1×1, one input channel, the ViT patch embeddings 16×16/s16 and 14×14/s14, a power of two
    /// (8→16 channels at 16×16), fused activations with and without a saved pre-activation, a non-fused one
    /// (GELU), and ConvTranspose2D (its forward is the backward kernel, its backward the forward one).
    static func implicitConvCases(_ rng: inout SeededRandom) -> [(name: String, op: any Operator, inputs: [HostTensor])] {
        [
            ("3x3 p1 relu", Conv2D(pads: Padding2D(1), activation: Unary(.relu)),
             [rng.tensor([2, 5, 9, 11]), rng.tensor([7, 5, 3, 3]), rng.tensor([7])]),
            ("5x5 s2 asym-pad silu", Conv2D(strides: [2, 2], pads: Padding2D(top: 2, left: 1, bottom: 0, right: 2), activation: Unary(.silu)),
             [rng.tensor([1, 3, 13, 10]), rng.tensor([6, 3, 5, 5]), rng.tensor([6])]),
            ("7x7 s2 p3 stem", Conv2D(strides: [2, 2], pads: Padding2D(3)),
             [rng.tensor([2, 3, 15, 17]), rng.tensor([9, 3, 7, 7])]),
            ("3x3 d2 p2 g2 gelu", Conv2D(dilations: [2, 2], pads: Padding2D(2), groups: 2, activation: Unary(.geluErf)),
             [rng.tensor([1, 6, 8, 9]), rng.tensor([4, 3, 3, 3]), rng.tensor([4])]),
            ("3x3 s2 d2 p1 (phases without taps)", Conv2D(strides: [2, 2], dilations: [2, 2], pads: Padding2D(top: 1, left: 2, bottom: 1, right: 0)),
             [rng.tensor([1, 4, 11, 10]), rng.tensor([5, 4, 3, 3])]),
            ("3x2 s3x1 d2x1 hswish", Conv2D(strides: [3, 1], dilations: [2, 1], pads: Padding2D(top: 0, left: 1, bottom: 2, right: 0), activation: Unary(.hardSwish)),
             [rng.tensor([1, 3, 14, 7]), rng.tensor([5, 3, 3, 2]), rng.tensor([5])]),
            ("1x1 g2", Conv2D(groups: 2), [rng.tensor([2, 6, 5, 7]), rng.tensor([10, 3, 1, 1]), rng.tensor([10])]),
            ("1x1 s2", Conv2D(strides: [2, 2]), [rng.tensor([1, 5, 9, 8]), rng.tensor([7, 5, 1, 1])]),
            ("3x3 one input channel", Conv2D(pads: Padding2D(1), activation: Unary(.leakyRelu, alpha: 0.1)),
             [rng.tensor([1, 1, 7, 9]), rng.tensor([6, 1, 3, 3])]),
            ("patch 16x16 s16", Conv2D(strides: [16, 16]), [rng.tensor([1, 3, 32, 48]), rng.tensor([10, 3, 16, 16]), rng.tensor([10])]),
            ("patch 14x14 s14", Conv2D(strides: [14, 14]), [rng.tensor([2, 3, 28, 28]), rng.tensor([5, 3, 14, 14]), rng.tensor([5])]),
            ("3x3 p1 8>16 @16x16", Conv2D(pads: Padding2D(1), activation: Unary(.tanh)),
             [rng.tensor([2, 8, 16, 16]), rng.tensor([16, 8, 3, 3]), rng.tensor([16])]),
            ("ConvTranspose 3x3 s2 p1 op1 g2", ConvTranspose2D(strides: [2, 2], pads: Padding2D(1), outputPadding: [1, 1], groups: 2),
             [rng.tensor([2, 4, 5, 6]), rng.tensor([4, 3, 3, 3]), rng.tensor([6])]),
        ]
    }

    /// Every implicit-GEMM convolution case, forward and backward-to-input, on the tiled kernels (one launch
    /// each, counted) against the CPU reference (im2col + OpenBLAS), for every parameter set.
    @Test(arguments: parameterSets)
    func implicitConvMatchesCPU(_ parameters: GEMMParameters) throws {
        guard let cl = try Self.privateOpenCL() else { return }
        let variant = try TiledGEMMBackend(base: cl, parameters: parameters)
        var rng = SeededRandom(seed: 1604)
        for (name, op, inputs) in Self.implicitConvCases(&rng) {
            let differentiable = [true] + Array(repeating: false, count: inputs.count - 1)
            let c = OpCase(op, inputs, differentiable: differentiable)
            let seed = try c.lossSeed()
            let before = variant.gemmLaunches
            let got = try c.run(on: variant, seed: seed), want = try c.run(on: Backends.cpu, seed: seed)
            let label = "\(parameters) \(name) \(inputs.map(\.shape))"
            #expect(variant.gemmLaunches == before + 2, "\(label): forward and backward did not both run on the tiled kernels")
            #expect(want.output.values.contains { $0 != 0 } && got.output.values.contains { $0 != 0 })
            expectClose(got.output, want.output, atol: 1e-4, rtol: 1e-4, "\(label) forward")
            let g = try #require(got.grads[0]), w = try #require(want.grads[0])
            #expect(w.values.contains { $0 != 0 })
            expectClose(g, w, atol: 1e-4, rtol: 1e-4, "\(label) d x")
        }
    }

    /// Depthwise convolutions stay on conv.cl's direct kernels (no tiled launch) and still match the CPU.
    @Test func depthwiseConvFallsBackToDirect() throws {
        guard let cl = try Self.privateOpenCL() else { return }
        let variant = try TiledGEMMBackend(base: cl, parameters: Self.parameterSets[1])
        var rng = SeededRandom(seed: 1605)
        let c = OpCase(Conv2D(pads: Padding2D(1), groups: 6), [rng.tensor([1, 6, 7, 9]), rng.tensor([6, 1, 3, 3])],
                       differentiable: [true, false])
        let seed = try c.lossSeed()
        let before = variant.gemmLaunches
        let got = try c.run(on: variant, seed: seed), want = try c.run(on: Backends.cpu, seed: seed)
        #expect(variant.gemmLaunches == before, "a depthwise convolution ran on the tiled kernels")
        expectClose(got.output, want.output, atol: 1e-4, rtol: 1e-4, "depthwise forward")
        expectClose(try #require(got.grads[0]), try #require(want.grads[0]), atol: 1e-4, rtol: 1e-4, "depthwise d x")
    }

    /// Finite differences through the tiled variant itself: L(x) = Σ conv(x) ⊙ r evaluated by the tiled forward
    /// kernel, against the gradient its backward kernel gives (GradientCheck's norm-relative criterion, so a zeroed,
    /// sign-flipped or permuted gradient fails), for a strided, padded, dilated and grouped case and a patch embedding.
    @Test(arguments: [parameterSets[1], ShippedTuning.tiledParameterSets[0]])
    func implicitConvGradientByFiniteDifferences(_ parameters: GEMMParameters) throws {
        guard let cl = try Self.privateOpenCL() else { return }
        let variant = try TiledGEMMBackend(base: cl, parameters: parameters)
        var rng = SeededRandom(seed: 1606)
        let cases: [OpCase] = [
            OpCase(Conv2D(strides: [2, 2], dilations: [1, 2], pads: Padding2D(top: 1, left: 2, bottom: 0, right: 1), groups: 2,
                          activation: Unary(.sigmoid)),
                   [rng.tensor([1, 4, 7, 8]), rng.tensor([6, 2, 3, 3]), rng.tensor([6])], differentiable: [true, false, false]),
            OpCase(Conv2D(strides: [4, 4]), [rng.tensor([1, 3, 8, 12]), rng.tensor([5, 3, 4, 4])], differentiable: [true, false]),
        ]
        for c in cases {
            let seed = try c.lossSeed()
            let before = variant.gemmLaunches
            let analytic = try c.run(on: variant, seed: seed).grads
            #expect(variant.gemmLaunches == before + 2, "\(c.name): not on the tiled kernels")
            let check = GradientCheck(h: 1e-2, tolerance: 1e-2, samples: 32, rngSeed: 8)
            let numeric = try check.numeric(inputs: c.inputs, differentiable: c.differentiable, seed: seed) { xs in
                var moved = c
                moved.inputs = xs
                return try moved.run(on: variant, seed: nil).output
            }
            #expect(variant.gemmLaunches > before + 4, "\(c.name): the finite differences did not run the tiled forward")
            for failure in check.failures("\(parameters) \(c.name) (tiled)", numeric: numeric, analytic: analytic) {
                Issue.record("\(failure)")
            }
        }
    }

    /// Parameter sets that cannot build are refused before any kernel is built, with the rule they break.
    @Test func invalidParameterSetsAreRefused() throws {
        let bad: [(GEMMParameters, String)] = [
            (GEMMParameters(mwg: 30, nwg: 16, kwg: 8, mdimc: 8, ndimc: 4, vwm: 1, vwn: 1), "multiple of MDIMC"),
            (GEMMParameters(mwg: 16, nwg: 16, kwg: 8, mdimc: 4, ndimc: 4, vwm: 3, vwn: 1), "VWM and VWN"),
            (GEMMParameters(mwg: 16, nwg: 16, kwg: 2, mdimc: 4, ndimc: 4, vwm: 4, vwn: 1), "divide evenly"),
            (GEMMParameters(mwg: 128, nwg: 128, kwg: 32, mdimc: 16, ndimc: 16, vwm: 1, vwn: 1), "local memory"),
            (GEMMParameters(mwg: 64, nwg: 64, kwg: 32, mdimc: 32, ndimc: 16, vwm: 1, vwn: 1), "work-group"),
        ]
        for (p, rule) in bad {
            let why = try #require(p.invalidReason, "\(p) was accepted")
            #expect(why.contains(rule), "\(p): \(why)")
        }
        for p in Self.parameterSets { #expect(p.invalidReason == nil, "\(p): \(p.invalidReason ?? "")") }
        guard let cl = Backends.requireOpenCL() else { return }
        #expect(throws: EngineError.self) { _ = try TiledGEMMBackend(base: cl, parameters: bad[0].0) }
    }
}
