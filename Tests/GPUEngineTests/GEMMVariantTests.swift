import Foundation
import Testing
@testable import GPUEngine

/// The GPU-style GEMM variant (`matmul_tiled`, gemm.cl) selected through `TiledGEMMBackend`: for several
/// parameter sets (register blocks 1×1 to 4×4, vector widths 1 to 4, work-groups 8 to 256 threads, plus every
/// set a shipped GPU default uses), the
/// matmul in every operand order and the pointwise convolutions, forward and backward, against the CPU
/// reference at awkward shapes (no size a multiple of a tile) and one power of two. The CPU reference's
/// backward is checked by finite differences in CoreOpTests/CNNOpTests; here the variant's gradients are
/// compared with it. Sizes stay small: PoCL runs these GPU-style kernels slowly.
@Suite struct GEMMVariantTests {
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
        guard let cl = Backends.requireOpenCL() else { return }
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
        guard let cl = Backends.requireOpenCL() else { return }
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
