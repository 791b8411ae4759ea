import Foundation
import Testing
@testable import GPUEngine

/// Tests of the first ops. Each parameterised test runs once per backend: on the CPU it checks the
/// reference's backward by finite differences; on OpenCL it compares forward and backward with the CPU.
@Suite struct CoreOpTests {
    // Shapes mix awkward sizes (not multiples of the 4×8 tiles) with one power of two.
    static let matmulCases: [(a: [Int], b: [Int], ta: Bool, tb: Bool)] = [
        ([5, 7], [7, 3], false, false),
        ([13, 17], [17, 11], false, false),
        ([64, 32], [32, 16], false, false),     // powers of two
        ([9, 6], [10, 9], true, true),           // both transposed: Aᵀ is 6×9, Bᵀ is 9×10
        ([3, 5, 7], [7, 6], false, false),       // batch against a shared matrix
        ([2, 3, 4, 5], [2, 3, 5, 6], false, false),
        ([2, 5, 4], [1, 6, 5], true, true),      // broadcast batch, transposed
        ([2, 1, 3, 4], [1, 3, 4, 2], false, false), // batch dims broadcast both ways
        // The 8×16 OpenCL kernel: row-major B with N % 16 == 0 is read in place, others are packed.
        ([37, 50], [50, 32], false, false),      // B used in place; M not a multiple of 8
        ([20, 33], [48, 33], false, true),       // transposed B (a Linear layer): packed
        ([3, 9, 16], [3, 16, 48], false, false), // batched, B in place
        ([2, 17, 21], [17, 35], true, false),    // Aᵀ with a shared, padded B
        ([64, 128], [128, 64], false, false),    // powers of two
    ]

    @Test(arguments: TestBackend.allCases)
    func matmul(_ backend: TestBackend) throws {
        var rng = SeededRandom(seed: 1)
        for c in Self.matmulCases {
            let op = MatMul(transposeA: c.ta, transposeB: c.tb)
            try OpCase(op, [rng.tensor(c.a), rng.tensor(c.b)]).verify(on: backend)
        }
    }

    @Test(arguments: TestBackend.allCases)
    func matmulWithBiasAndConstantWeight(_ backend: TestBackend) throws {
        var rng = SeededRandom(seed: 2)
        for (m, k, n) in [(7, 13, 9), (16, 32, 64), (1, 5, 3)] {
            try OpCase(MatMul(), [rng.tensor([2, m, k]), rng.tensor([k, n]), rng.tensor([n])],
                       differentiable: [true, false, false]).verify(on: backend)
            try OpCase(MatMul(transposeB: true), [rng.tensor([m, k]), rng.tensor([n, k]), rng.tensor([n])])
                .verify(on: backend)
        }
    }

    /// The forward of matmul against a naive triple loop (the FD check only proves consistency).
    @Test(arguments: TestBackend.allCases)
    func matmulForwardMatchesNaiveProduct(_ backend: TestBackend) throws {
        guard let b = Backends.get(backend) else { return }
        var rng = SeededRandom(seed: 3)
        let (m, k, n) = (11, 19, 13)
        let a = rng.tensor([m, k]), w = rng.tensor([n, k]), bias = rng.tensor([n])
        var expected = [Float](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n {
            var s = Double(bias.values[j])
            for p in 0..<k { s += Double(a.values[i * k + p]) * Double(w.values[j * k + p]) }
            expected[i * n + j] = Float(s)
        } }
        let out = try b.download(b.run(MatMul(transposeB: true), b.tensor(a), b.tensor(w), b.tensor(bias)))
        expectClose(out, HostTensor(shape: [m, n], values: expected), atol: 1e-5, rtol: 1e-5, "matmul vs naive")
    }

    @Test(arguments: TestBackend.allCases)
    func binaryWithBroadcasting(_ backend: TestBackend) throws {
        var rng = SeededRandom(seed: 4)
        let shapes: [([Int], [Int])] = [([3, 5], [3, 5]), ([2, 3, 7], [7]), ([4, 1, 5], [1, 6, 1]),
                                         ([8, 16], [8, 1]), ([1], [3, 2]), ([2, 3, 4, 5, 3], [3, 1, 5, 1])]
        for function in BinaryFunction.allCases {
            for (sa, sb) in shapes {
                var a: HostTensor, b: HostTensor
                switch function {
                case .div: a = rng.tensor(sa); b = rng.tensor(sb, 0.5, 2)
                case .pow: a = rng.tensor(sa, 0.5, 2); b = rng.tensor(sb, -1.5, 1.5)
                case .max, .min:
                    // a on a grid offset by 0.05 from b's grid: |a − b| ≥ 0.05 ≫ the FD step, no ties.
                    a = rng.tensor(sa); b = rng.tensor(sb)
                    a.values = a.values.map { ($0 * 10).rounded() / 10 + 0.05 }
                    b.values = b.values.map { ($0 * 10).rounded() / 10 }
                case .mod, .fmod:
                    // |a| in [1.3, 1.8], |b| in [1, 1.1] with either sign: |a/b| in [1.18, 1.8], so
                    // trunc(a/b) = ±1 (fmod's ∂/∂b = −trunc is exercised) and floor(a/b) is 1 or −2;
                    // |a| stays ≥ 0.2 from the jumps at |a| = |b| and |a| = 2|b|.
                    a = rng.tensor(sa, 1.3, 1.8); b = rng.tensor(sb, 1, 1.1)
                    a.values = a.values.enumerated().map { $0.offset % 2 == 0 ? -$0.element : $0.element }
                    b.values = b.values.enumerated().map { $0.offset % 3 == 1 ? -$0.element : $0.element }
                default: a = rng.tensor(sa); b = rng.tensor(sb)
                }
                try OpCase(Binary(function), [a, b]).verify(on: backend, atol: 2e-4, rtol: 2e-4)
            }
        }
    }

    @Test(arguments: TestBackend.allCases)
    func unaryFunctions(_ backend: TestBackend) throws {
        var rng = SeededRandom(seed: 5)
        for function in UnaryFunction.allCases {
            var op = Unary(function)
            let shape = [3, 37]
            var x = rng.tensorAwayFromZero(shape)
            switch function {
            case .leakyRelu: op.alpha = 0.1
            case .clip: op.alpha = -0.5; op.beta = 0.6
            case .hardSigmoid: op.alpha = 0.2; op.beta = 0.5
            case .affine: op.alpha = 1.7; op.beta = -0.3
            case .log, .sqrt: x = rng.tensor(shape, 0.2, 2)
            case .hardSwish: x = rng.tensor(shape, -5, 5)
            case .reciprocal: x = rng.tensor(shape, 0.3, 2)
            default: break
            }
            // Keep inputs away from kinks so finite differences are well defined.
            if function == .clip {
                x.values = x.values.map { abs($0 + 0.5) < 0.05 || abs($0 - 0.6) < 0.05 ? $0 + 0.12 : $0 }
            }
            if function == .hardSwish {
                x.values = x.values.map { abs(abs($0) - 3) < 0.05 ? $0 * 1.1 : $0 }
            }
            if function == .hardSigmoid {
                x.values = x.values.map { abs($0 * 0.2 + 0.5) < 0.01 || abs($0 * 0.2 - 0.5) < 0.01 ? $0 + 0.2 : $0 }
            }
            try OpCase(op, [x]).verify(on: backend, atol: 1e-5, rtol: 1e-4)
        }
    }

    /// Mod's two conventions on known values, over several periods (the gradient test above keeps |a/b| < 1).
    @Test(arguments: TestBackend.allCases)
    func modForwardValues(_ kind: TestBackend) throws {
        guard let b = Backends.get(kind) else { return }
        let a = HostTensor(shape: [6], values: [7, -7, 7, -7, 5.5, -0.25])
        let d = HostTensor(shape: [6], values: [3, 3, -3, -3, 2, 0.75])
        let mod = try b.download(b.run(Binary(.mod), b.tensor(a), b.tensor(d)))
        let fmod = try b.download(b.run(Binary(.fmod), b.tensor(a), b.tensor(d)))
        expectClose(mod, HostTensor(shape: [6], values: [1, 2, -2, -1, 1.5, 0.5]), atol: 1e-6, rtol: 0, "mod (divisor's sign)")
        expectClose(fmod, HostTensor(shape: [6], values: [1, -1, 1, -1, 1.5, -0.25]), atol: 1e-6, rtol: 0, "fmod (dividend's sign)")
    }

    /// Cos and Sin over several periods, on a power-of-two shape and an awkward one.
    @Test(arguments: TestBackend.allCases)
    func trigonometry(_ backend: TestBackend) throws {
        var rng = SeededRandom(seed: 11)
        for function in [UnaryFunction.cos, .sin] {
            for shape in [[4, 8, 16], [3, 7, 5]] {
                try OpCase(Unary(function), [rng.tensor(shape, -7, 7)]).verify(on: backend, atol: 1e-5, rtol: 1e-4)
            }
        }
        let x = HostTensor(shape: [3], values: [0, Float.pi / 3, -Float.pi / 2])
        let cpu = Backends.cpu
        expectClose(try cpu.download(cpu.run(Unary(.cos), cpu.tensor(x))), HostTensor(shape: [3], values: [1, 0.5, 0]), atol: 1e-6, "cos values")
        expectClose(try cpu.download(cpu.run(Unary(.sin), cpu.tensor(x))), HostTensor(shape: [3], values: [0, 0.8660254, -1]), atol: 1e-6, "sin values")
    }

    /// ReduceL2: values, and the gradient x/‖x‖ with 0 (not NaN) where the norm is 0.
    @Test(arguments: TestBackend.allCases)
    func reduceL2ZeroNormGradient(_ kind: TestBackend) throws {
        guard let b = Backends.get(kind) else { return }
        let x = HostTensor(shape: [3, 2], values: [3, -4, 0, 0, 0.6, 0.8])
        let seed = HostTensor(shape: [3, 1], values: [2, 5, -1])
        let (y, grads) = try OpCase(Reduce(.l2, axes: [1], keepDims: true), [x]).run(on: b, seed: seed)
        expectClose(y, HostTensor(shape: [3, 1], values: [5, 0, 1]), atol: 1e-6, rtol: 1e-6, "ReduceL2 values")
        let g = try #require(grads[0])
        expectClose(g, HostTensor(shape: [3, 2], values: [1.2, -1.6, 0, 0, -0.6, -0.8]), atol: 1e-6, rtol: 1e-6, "ReduceL2 gradient")
    }

    @Test(arguments: TestBackend.allCases)
    func reductions(_ backend: TestBackend) throws {
        var rng = SeededRandom(seed: 6)
        let cases: [([Int], [Int], Bool)] = [([3, 5, 7], [1], false), ([3, 5, 7], [0, 2], true), ([4, 8, 16], [-1], true),
                                              ([2, 3, 5], [0, 1, 2], false), ([6, 1, 9], [1], false), ([5, 7], [], false)]
        for kind in [Reduce.Kind.sum, .mean, .l2] {
            // l2 over no axes, or over axes of extent 1 only ([6, 1, 9] over axis 1), is |x|, whose kink at 0 the
            // random inputs straddle (the norm-relative checker caught it: 0.022 > 0.01): sum and mean only.
            for (shape, axes, keep) in cases where kind != .l2 || axes.contains(where: { shape[($0 + shape.count) % shape.count] > 1 }) {
                try OpCase(Reduce(kind, axes: axes, keepDims: keep), [rng.tensor(shape)]).verify(on: backend, atol: 1e-4, rtol: 1e-4)
            }
        }
    }

    @Test func reduceForwardValues() throws {
        let x = HostTensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        let cpu = Backends.cpu
        let sum0 = try cpu.download(cpu.run(Reduce(.sum, axes: [0]), cpu.tensor(x)))
        #expect(sum0.values == [5, 7, 9])
        let mean1 = try cpu.download(cpu.run(Reduce(.mean, axes: [1], keepDims: true), cpu.tensor(x)))
        #expect(mean1.shape == [2, 1] && mean1.values == [2, 5])
    }

    @Test(arguments: TestBackend.allCases)
    func reshapeAndTranspose(_ backend: TestBackend) throws {
        var rng = SeededRandom(seed: 8)
        try OpCase(Reshape(shape: [5, -1]), [rng.tensor([3, 5, 2])]).verify(on: backend)
        for (shape, perm) in [([3, 5], [1, 0]), ([2, 3, 4, 5], [0, 2, 1, 3]), ([4, 8, 16], [2, 0, 1]),
                              ([2, 3, 1, 5, 7], [4, 3, 2, 1, 0])] {
            try OpCase(Transpose(perm: perm), [rng.tensor(shape)]).verify(on: backend)
        }
    }

    @Test func transposeForwardValues() throws {
        let cpu = Backends.cpu
        let x = HostTensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        let t = try cpu.download(cpu.run(Transpose(perm: [1, 0]), cpu.tensor(x)))
        #expect(t.shape == [3, 2] && t.values == [1, 4, 2, 5, 3, 6])
    }

    @Test(arguments: TestBackend.allCases)
    func concatAndSlice(_ backend: TestBackend) throws {
        var rng = SeededRandom(seed: 9)
        try OpCase(Concat(axis: 1), [rng.tensor([2, 3, 5]), rng.tensor([2, 1, 5]), rng.tensor([2, 4, 5])]).verify(on: backend)
        try OpCase(Concat(axis: -1), [rng.tensor([4, 8]), rng.tensor([4, 8])]).verify(on: backend)
        try OpCase(Concat(axis: 0), [rng.tensor([1, 7]), rng.tensor([3, 7])], differentiable: [false, true]).verify(on: backend)
        let slices: [Slice] = [
            Slice(starts: [1], ends: [4], axes: [1]),
            Slice(starts: [0, 1], ends: [-1, 100], axes: [0, 2], steps: [2, 3]),
            Slice(starts: [-1], ends: [-100], axes: [2], steps: [-2]),
            Slice(starts: [0], ends: [1], axes: [0]),
        ]
        for s in slices { try OpCase(s, [rng.tensor([5, 6, 16])]).verify(on: backend) }
        // Copies whose inner axis is contiguous on both sides and ≥ 16 long take OpenCL's row kernel
        // (16-float vectors plus a remainder): a head split, a concat of rows, a power of two.
        try OpCase(Transpose(perm: [0, 2, 1, 3]), [rng.tensor([2, 5, 3, 20])]).verify(on: backend)
        try OpCase(Concat(axis: 1), [rng.tensor([2, 3, 17]), rng.tensor([2, 2, 17])]).verify(on: backend)
        try OpCase(Transpose(perm: [1, 0, 2]), [rng.tensor([4, 8, 32])]).verify(on: backend)
    }

    @Test func sliceForwardValues() throws {
        let cpu = Backends.cpu
        let x = HostTensor(shape: [1, 6], values: [0, 1, 2, 3, 4, 5])
        let s = try cpu.download(cpu.run(Slice(starts: [-1], ends: [-100], axes: [1], steps: [-2]), cpu.tensor(x)))
        #expect(s.shape == [1, 3] && s.values == [5, 3, 1])
        let c = try cpu.download(cpu.run(Concat(axis: 0), cpu.tensor(x), cpu.tensor(x)))
        #expect(c.shape == [2, 6] && Array(c.values[6...]) == x.values)
    }

    @Test(arguments: TestBackend.allCases)
    func expand(_ backend: TestBackend) throws {
        var rng = SeededRandom(seed: 10)
        try OpCase(Expand(shape: [4, 3, 5]), [rng.tensor([3, 1])]).verify(on: backend)
        try OpCase(Expand(shape: [2, 8, 16]), [rng.tensor([8, 1])]).verify(on: backend)
    }
}

/// A kernel variant as one conformance: replaces `softmaxForward` (here by a naive two-pass loop that
/// counts its calls) and forwards every other entry point to `base`.
private final class SoftmaxVariantBackend: KernelBackendWrapper, @unchecked Sendable {
    let base: any KernelBackend
    var softmaxCalls = 0
    var name: String { "softmax-variant(\(base.name))" }

    init(base: any KernelBackend) { self.base = base }

    func softmaxForward(_ x: Tensor, view: SoftmaxView, log: Bool) throws -> Tensor {
        softmaxCalls += 1
        let host = try base.download(x)
        var y = host.values
        for o in 0..<view.outer {
            for i in 0..<view.inner {
                let idx = (0..<view.n).map { (o * view.n + $0) * view.inner + i }
                let m = idx.map { host.values[$0] }.max() ?? 0
                let s = idx.map { Foundation.exp(Double(host.values[$0] - m)) }.reduce(0, +)
                for j in idx {
                    let z = Double(host.values[j] - m)
                    y[j] = Float(log ? z - Foundation.log(s) : Foundation.exp(z) / s)
                }
            }
        }
        return try base.tensor(HostTensor(shape: x.shape, values: y))
    }
}

/// A backend that holds tensors but implements no kernels.
private final class KernelFreeBackend: Backend, @unchecked Sendable {
    let name = "kernel-free"
    func tensor(_ host: HostTensor) throws -> Tensor { try Backends.cpu.tensor(host) }
    func full(_ shape: [Int], value: Float) throws -> Tensor { try Backends.cpu.full(shape, value: value) }
    func download(_ tensor: Tensor) throws -> HostTensor { try Backends.cpu.download(tensor) }
    func synchronize() throws {}
}

/// Operators reach kernels only through `KernelBackend`: a wrapper that replaces one entry point
/// changes what the operator runs, and a backend without kernels fails with a clear error.
@Suite struct KernelBackendDispatchTests {
    @Test(arguments: TestBackend.allCases)
    func oneConformanceReplacesOneKernel(_ kind: TestBackend) throws {
        guard let backend = Backends.get(kind) as? any KernelBackend else { return }
        let variant = SoftmaxVariantBackend(base: backend)
        var rng = SeededRandom(seed: 41)
        for (shape, axis) in [([3, 7], -1), ([2, 5, 4], 1), ([4, 16], -1)] {
            let x = rng.tensor(shape, -3, 3)
            for log in [false, true] {
                let op: any Operator = log ? LogSoftmax(axis: axis) : Softmax(axis: axis)
                let before = variant.softmaxCalls
                let viaVariant = try variant.download(variant.run(op, variant.tensor(x)))
                #expect(variant.softmaxCalls == before + 1, "\(op) on \(variant.name) did not call the variant's softmaxForward")
                // The variant and the backend's own kernel agree (they are independent implementations).
                let own = try backend.download(backend.run(op, backend.tensor(x)))
                expectClose(viaVariant, own, atol: 1e-6, rtol: 1e-5, "\(op) \(shape) axis \(axis): variant vs \(backend.name)")
                // Entry points the variant does not implement (the backward) run on the base, through the executor.
                let c = OpCase(op, [x])
                let seed = try c.lossSeed()
                let v = try c.run(on: variant, seed: seed), own2 = try c.run(on: backend, seed: seed)
                let gv = try #require(v.grads[0]), go = try #require(own2.grads[0])
                #expect(gv.values.contains { $0 != 0 })
                expectClose(gv, go, atol: 1e-6, rtol: 1e-5, "\(op) \(shape) axis \(axis): gradient through the variant")
            }
        }
        // Other operators run unchanged through the wrapper.
        let a = rng.tensor([5, 7]), b = rng.tensor([7, 3])
        let product = try variant.download(variant.run(MatMul(), variant.tensor(a), variant.tensor(b)))
        let expected = try backend.download(backend.run(MatMul(), backend.tensor(a), backend.tensor(b)))
        #expect(product.values == expected.values && product.values.contains { $0 != 0 })
    }

    @Test func backendWithoutKernelsFailsClearly() throws {
        let bare = KernelFreeBackend()
        let x = try bare.tensor(HostTensor(shape: [2, 3], values: [1, -2, 3, 0.5, 4, -1]))
        #expect {
            _ = try bare.run(Softmax(), x)
        } throws: { error in
            guard case EngineError.unsupported(let message) = error else { return false }
            return message.contains("kernel-free") && message.contains("implements no amgpu kernels")
        }
    }
}
