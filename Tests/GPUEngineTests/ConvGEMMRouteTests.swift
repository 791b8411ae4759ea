import Foundation
import Testing
@testable import GPUEngine

/// The GEMM route of the CPU-style convolutions (`ConvRoute.gemm`: conv.cl's `conv2d_im2col` + `conv2d_gemm_8x16`
/// forward, `conv2d_gemm_8x16` (Wᵀ·dy) + `conv2d_col2im` backward-to-input) against the CPU reference, forward and
/// backward, at awkward shapes (odd channels, 13×11, 7×7 windows, stride 2, asymmetric padding, dilation,
/// pointwise with and without P % 16 == 0, strided 1×1, ConvTranspose2D with bias) and a power of two; finite
/// differences through the route itself; launch counts on an OpenCL backend of each test's own.
@Suite struct ConvGEMMRouteTests {
    /// A CPU-style OpenCL backend of the test's own with `route` (nil where `Backends.requireOpenCL` skips).
    static func privateOpenCL(_ route: ConvRoute) throws -> OpenCLBackend? {
        guard Backends.requireOpenCL() != nil, let device = try OpenCLRuntime.devices().first else { return nil }
        let cl = try OpenCLBackend(device: device)
        cl.gemmChoice = .cpuStyle
        cl.convRoute = route
        return cl
    }

    static func cases() -> [OpCase] {
        var rng = SeededRandom(seed: 1701)
        return [
            // 3×3, padded, odd channels, 13×11, bias + fused ReLU, batch 2.
            OpCase(Conv2D(pads: Padding2D(1), activation: Unary(.relu)),
                   [rng.tensor([2, 5, 13, 11]), rng.tensor([7, 5, 3, 3]), rng.tensor([7])], differentiable: [true, false, false]),
            // 7×7 stride 2 (a stem), asymmetric padding.
            OpCase(Conv2D(strides: [2, 2], pads: Padding2D(top: 3, left: 2, bottom: 3, right: 3)),
                   [rng.tensor([1, 3, 23, 19]), rng.tensor([9, 3, 7, 7])], differentiable: [true, false]),
            // Dilated, stride (2, 1), activation outside the fused set (a separate unary kernel).
            OpCase(Conv2D(strides: [2, 1], dilations: [2, 2], pads: Padding2D(2), activation: Unary(.geluErf)),
                   [rng.tensor([1, 4, 9, 10]), rng.tensor([11, 4, 3, 3]), rng.tensor([11])], differentiable: [true, false, false]),
            // Pointwise, P = 64 (a power of two, P % 16 == 0: x is the panel as is), bias + sigmoid.
            OpCase(Conv2D(activation: Unary(.sigmoid)),
                   [rng.tensor([2, 16, 8, 8]), rng.tensor([32, 16, 1, 1]), rng.tensor([32])], differentiable: [true, false, false]),
            // Pointwise, P = 49 (padded panel), 13 output channels.
            OpCase(Conv2D(), [rng.tensor([1, 9, 7, 7]), rng.tensor([13, 9, 1, 1])], differentiable: [true, false]),
            // Strided 1×1 (a ResNet downsample).
            OpCase(Conv2D(strides: [2, 2]), [rng.tensor([1, 6, 9, 9]), rng.tensor([10, 6, 1, 1])], differentiable: [true, false]),
            // ConvTranspose2D with bias: its forward is the route's backward (+ bias), its backward the route's forward.
            OpCase(ConvTranspose2D(strides: [2, 2], pads: Padding2D(1)),
                   [rng.tensor([1, 6, 5, 7]), rng.tensor([6, 4, 3, 3]), rng.tensor([4])], differentiable: [true, false, false]),
        ]
    }

    /// Forward and backward-to-input on the GEMM route match the CPU reference, each product on `conv2d_gemm_8x16`.
    @Test func gemmRouteMatchesCPU() throws {
        guard let cl = try Self.privateOpenCL(.gemm) else { return }
        for c in Self.cases() {
            let seed = try c.lossSeed()
            let before = cl.convGEMMLaunches
            let got = try c.run(on: cl, seed: seed), want = try c.run(on: Backends.cpu, seed: seed)
            #expect(cl.convGEMMLaunches == before + 2, "\(c.name): forward and backward did not both run conv2d_gemm_8x16")
            #expect(want.output.values.contains { $0 != 0 })
            expectClose(got.output, want.output, atol: 1e-4, rtol: 1e-4, "\(c.name) forward")
            expectClose(try #require(got.grads[0]), try #require(want.grads[0]), atol: 1e-4, rtol: 1e-4, "\(c.name) d x")
        }
    }

    /// Finite differences through the route itself: L(x) = Σ conv(x) ⊙ r by the route's forward, against the gradient
    /// its backward gives (GradientCheck's norm-relative criterion: a zeroed, sign-flipped or permuted gradient fails).
    @Test func gemmRouteGradientByFiniteDifferences() throws {
        guard let cl = try Self.privateOpenCL(.gemm) else { return }
        for c in Self.cases() where !(c.name.contains("Conv2D+") && c.name.contains("relu")) {
            let seed = try c.lossSeed()
            let before = cl.convGEMMLaunches
            let analytic = try c.run(on: cl, seed: seed).grads
            let check = GradientCheck(h: 1e-2, tolerance: 1e-2, samples: 24, rngSeed: 9)
            let numeric = try check.numeric(inputs: c.inputs, differentiable: c.differentiable, seed: seed) { xs in
                var moved = c
                moved.inputs = xs
                return try moved.run(on: cl, seed: nil).output
            }
            #expect(cl.convGEMMLaunches > before + 4, "\(c.name): the finite differences did not run the GEMM route")
            for failure in check.failures("\(c.name) (GEMM route)", numeric: numeric, analytic: analytic) {
                Issue.record("\(failure)")
            }
        }
    }

    /// `.direct` never launches the GEMM kernel; `.auto` sends the forward of ungrouped convolutions with at most
    /// 14×14 output pixels to it (one launch per forward+backward case; the backward stays direct) and keeps larger
    /// ones, depthwise and grouped ones on the direct kernels (all still matching the CPU).
    @Test func routeRuleAndFallbacks() throws {
        guard let direct = try Self.privateOpenCL(.direct), let auto = try Self.privateOpenCL(.auto) else { return }
        var rng = SeededRandom(seed: 1702)
        let cases: [(OpCase, Bool)] = [
            (OpCase(Conv2D(pads: Padding2D(1)), [rng.tensor([1, 4, 57, 56]), rng.tensor([5, 4, 3, 3])], differentiable: [true, false]), false),
            (OpCase(Conv2D(pads: Padding2D(1)), [rng.tensor([1, 4, 14, 14]), rng.tensor([5, 4, 3, 3])], differentiable: [true, false]), true),
            (OpCase(Conv2D(), [rng.tensor([1, 8, 40, 40]), rng.tensor([6, 8, 1, 1])], differentiable: [true, false]), false),
            (OpCase(Conv2D(strides: [2, 2]), [rng.tensor([1, 8, 27, 27]), rng.tensor([6, 8, 1, 1])], differentiable: [true, false]), true),
            (OpCase(Conv2D(pads: Padding2D(1), groups: 6), [rng.tensor([1, 6, 7, 9]), rng.tensor([6, 1, 3, 3])], differentiable: [true, false]), false),
            (OpCase(Conv2D(pads: Padding2D(1), groups: 2), [rng.tensor([1, 6, 7, 9]), rng.tensor([4, 3, 3, 3])], differentiable: [true, false]), false),
        ]
        // A convolution whose column panel would pass 2³¹ elements (the kernels' 32-bit offsets) stays direct even
        // when the route is forced: 128 · 64·3·3 · round_up(200·200, 16) ≈ 2.9e9 > 2³¹.
        let huge = ConvGeometry(n: 128, cin: 64, h: 200, w: 200, cout: 64, oh: 200, ow: 200, kh: 3, kw: 3, sh: 1, sw: 1,
                                dh: 1, dw: 1, pt: 1, pl: 1, groups: 1)
        #expect(!ConvRoute.gemm.usesGEMM(huge) && !ConvRoute.gemm.usesGEMM(huge, backward: true))
        var small = huge
        small.n = 1
        #expect(ConvRoute.gemm.usesGEMM(small) && ConvRoute.gemm.usesGEMM(small, backward: true))
        for (c, onGEMM) in cases {
            let seed = try c.lossSeed()
            let want = try c.run(on: Backends.cpu, seed: seed)
            for cl in [direct, auto] {
                let before = cl.convGEMMLaunches
                let got = try c.run(on: cl, seed: seed)
                let expected = cl.convRoute == .auto && onGEMM ? before + 1 : before
                #expect(cl.convGEMMLaunches == expected, "\(c.name) \(c.inputs.map(\.shape)) route \(cl.convRoute)")
                expectClose(got.output, want.output, atol: 1e-4, rtol: 1e-4, "\(c.name) \(cl.convRoute) forward")
                expectClose(try #require(got.grads[0]), try #require(want.grads[0]), atol: 1e-4, rtol: 1e-4,
                            "\(c.name) \(cl.convRoute) d x")
            }
        }
    }
}
