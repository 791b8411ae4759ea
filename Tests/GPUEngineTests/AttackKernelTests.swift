import Foundation
import Testing
@testable import GPUEngine

/// The attack kernels (Sources/Kernels/attack.cl, Adversarial/AttackKernels.swift): the CPU reference
/// against the host arithmetic of `Perturbation` (bit for bit: it is what the former host loop did), and
/// OpenCL against the CPU reference, on awkward shapes and one power of two. These kernels update δ in
/// place and are not part of any graph, so they have no backward (the attack differentiates the model
/// and the AttackGraph, whose operators are checked in ImageSideTests and by the objective's finite
/// differences in AdversarialTests).
@Suite struct AttackKernelTests {
    static let shapes: [[Int]] = [[1, 3, 7, 5], [1, 3, 13, 11], [1, 3, 16, 16]]

    /// x0: 8-bit values /255 with many at 0 and 255 (so the box clips); δ in ±0.1 (beyond ε);
    /// g: random with a few exact zeros (sign(0) = 0).
    static func inputs(_ shape: [Int], seed: UInt64) -> (x0: HostTensor, delta: HostTensor, g: HostTensor) {
        var rng = SeededRandom(seed: seed)
        let n = shape.reduce(1, *)
        let x0 = (0..<n).map { _ -> Float in
            let r = rng.next() % 8
            return r == 0 ? 0 : (r == 1 ? 1 : Float(rng.next() % 256) / 255)
        }
        let delta = (0..<n).map { _ in rng.uniform(-0.1, 0.1) }
        let g = (0..<n).map { i -> Float in i % 17 == 3 ? 0 : rng.uniform(-2, 2) }
        return (HostTensor(shape: shape, values: x0), HostTensor(shape: shape, values: delta), HostTensor(shape: shape, values: g))
    }

    static func image(_ x0: HostTensor) -> RGBImage {
        let (h, w) = (x0.shape[2], x0.shape[3]), plane = h * w
        var pixels = [UInt8](repeating: 0, count: 3 * plane)
        for c in 0..<3 { for i in 0..<plane { pixels[i * 3 + c] = UInt8((x0.values[c * plane + i] * 255).rounded()) } }
        return RGBImage(width: w, height: h, pixels: pixels)
    }

    /// Every kernel's result on `backend` for one input set.
    static func results(on backend: any Backend, _ x0: HostTensor, _ delta: HostTensor, _ g: HostTensor)
        throws -> [String: HostTensor] {
        var out: [String: HostTensor] = [:]
        let alpha: Float = 2.0 / 255
        let gt = try backend.tensor(g), x0t = try backend.tensor(x0)
        let d1 = try backend.tensor(delta)
        try AttackKernels.signStep(d1, gradient: gt, alpha: alpha, on: backend)
        out["sign"] = try backend.download(d1)
        let d2 = try backend.tensor(delta)
        try AttackKernels.normalizedStep(d2, gradient: gt, alpha: 0.2, on: backend)
        out["normalized"] = try backend.download(d2)
        let d3 = try backend.tensor(delta)
        try AttackKernels.project(d3, original: x0t, norm: .linf, eps: 8.0 / 255, on: backend)
        out["linf"] = try backend.download(d3)
        // ε at half ‖δ‖₂, so the ball scales δ by about 1/2.
        let eps2 = Perturbation.l2Norm(delta.values) / 2
        let d4 = try backend.tensor(delta)
        try AttackKernels.project(d4, original: x0t, norm: .l2, eps: eps2, on: backend)
        out["l2"] = try backend.download(d4)
        let x = HostTensor(shape: delta.shape, values: zip(x0.values, delta.values).map { $0 + $1 })
        out["quantize"] = try backend.download(AttackKernels.quantizeLinf(backend.tensor(x), original: x0t, eps: 4.0 / 255, on: backend))
        return out
    }

    @Test(arguments: shapes)
    func cpuReferenceMatchesHostArithmetic(shape: [Int]) throws {
        let (x0, delta, g) = Self.inputs(shape, seed: UInt64(shape.reduce(0, +)))
        let r = try Self.results(on: Backends.cpu, x0, delta, g)
        var sign = delta.values, normalized = delta.values
        let n = Float(Perturbation.l2Norm(g.values) + 1e-10)
        for i in sign.indices {
            sign[i] += 2.0 / 255 * Perturbation.signum(g.values[i])
            normalized[i] += 0.2 * g.values[i] / n
        }
        var linf = delta.values, l2 = delta.values
        Perturbation.project(&linf, original: x0.values, norm: .linf, eps: 8.0 / 255)
        Perturbation.project(&l2, original: x0.values, norm: .l2, eps: Perturbation.l2Norm(delta.values) / 2)
        let x = zip(x0.values, delta.values).map { $0 + $1 }
        let q = Perturbation.planar(try Perturbation.quantize(x, original: Self.image(x0), norm: .linf, eps: 4.0 / 255))
        let expected: [String: [Float]] = ["sign": sign, "normalized": normalized, "linf": linf, "l2": l2, "quantize": q]
        for (name, values) in expected {
            let got = r[name]?.values ?? []
            let first = zip(got, values).enumerated().first { $0.element.0 != $0.element.1 }?.offset
            #expect(got == values, "\(name) \(shape): first difference at \(first.map(String.init) ?? "count \(got.count)")")
        }
        // The inputs exercise what they should: the steps move every value with g ≠ 0, the projections clip.
        #expect(zip(sign, delta.values).filter { $0 != $1 }.count == g.values.filter { $0 != 0 }.count)
        #expect(zip(linf, delta.values).filter { $0 != $1 }.count > delta.count / 2)
        #expect(abs(Perturbation.l2Norm(l2) - Perturbation.l2Norm(delta.values) / 2) < 0.1 * Perturbation.l2Norm(delta.values))
        #expect(zip(q, x).filter { abs($0 - $1) > 1e-6 }.count > delta.count / 4)
        #expect(zip(q, x0.values).allSatisfy { abs($0 - $1) <= 4.0 / 255 + 1e-6 })
    }

    @Test(arguments: shapes + [[2, 3, 9, 6]])
    func openCLMatchesCPU(shape: [Int]) throws {
        guard let cl = Backends.requireOpenCL() else { return }
        let (x0, delta, g) = Self.inputs(shape, seed: 100 + UInt64(shape.reduce(0, +)))
        let cpu = try Self.results(on: Backends.cpu, x0, delta, g)
        let gpu = try Self.results(on: cl, x0, delta, g)
        for name in ["sign", "normalized", "linf", "l2"] {
            guard let a = gpu[name], let e = cpu[name] else { Issue.record("\(name) missing"); continue }
            // fp32 sums on the device vs Double on the host for the norms: a few ulp of the values.
            expectClose(a, e, atol: 1e-6, rtol: 1e-5, "\(name) \(shape) OpenCL vs CPU")
        }
        // The quantized image: the same 8-bit values exactly.
        if let a = gpu["quantize"], let e = cpu["quantize"] {
            let pa = a.values.map { Int(($0 * 255).rounded()) }, pe = e.values.map { Int(($0 * 255).rounded()) }
            let first = zip(pa, pe).enumerated().first { $0.element.0 != $0.element.1 }?.offset
            #expect(pa == pe, "quantize \(shape): first differing value at \(first.map(String.init) ?? "-")")
            expectClose(a, e, atol: 1e-7, rtol: 0, "quantize \(shape) OpenCL vs CPU")
        }
    }
}
