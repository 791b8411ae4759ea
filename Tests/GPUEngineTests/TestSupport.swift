import Foundation
import Testing
@testable import GPUEngine

/// The backends every op test runs on (candle-style: one test body per backend).
enum TestBackend: String, CaseIterable, Sendable, CustomStringConvertible {
    case cpu, opencl
    var description: String { rawValue }
}

/// Shared backends. The OpenCL one is nil only where no OpenCL platform exists.
enum Backends {
    static let cpu = CPUBackend()
    static let opencl: OpenCLBackend? = {
        guard let devices = try? OpenCLRuntime.devices(), let first = devices.first else {
            print("amgpu-test: NOTE no OpenCL platform on this machine: OpenCL tests are skipped")
            return nil
        }
        return try? OpenCLBackend(device: first)
    }()

    /// The backend for `kind`, or nil (with a printed note) when OpenCL is absent.
    static func get(_ kind: TestBackend, test: String = #function) -> (any Backend)? {
        switch kind {
        case .cpu: return cpu
        case .opencl:
            guard let cl = opencl else {
                print("amgpu-test: SKIPPED \(test) on OpenCL: no OpenCL platform")
                return nil
            }
            print("amgpu-test: OPENCL \(test) ran on \(cl.name)")
            return cl
        }
    }
}

/// Deterministic random numbers (SplitMix64).
struct SeededRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed &+ 0x9E3779B97F4A7C15 }
    mutating func next() -> UInt64 {
        state &+= 0x9E3779B97F4A7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return z ^ (z >> 31)
    }
    /// Uniform in [lo, hi).
    mutating func uniform(_ lo: Float = -1, _ hi: Float = 1) -> Float {
        lo + (hi - lo) * Float(next() >> 40) / Float(1 << 24)
    }
    mutating func tensor(_ shape: [Int], _ lo: Float = -1, _ hi: Float = 1) -> HostTensor {
        let n = shape.reduce(1, *)
        return HostTensor(shape: shape, values: (0..<n).map { _ in uniform(lo, hi) })
    }
    /// Values away from 0 (|v| in [0.1, 1]), random sign: for kinks at zero.
    mutating func tensorAwayFromZero(_ shape: [Int]) -> HostTensor {
        let n = shape.reduce(1, *)
        return HostTensor(shape: shape, values: (0..<n).map { _ in
            let m = uniform(0.1, 1)
            return next() & 1 == 0 ? m : -m
        })
    }
}

/// Fails with the max error and the first bad index unless |a − e| ≤ atol + rtol·|e| everywhere.
func expectClose(_ actual: HostTensor, _ expected: HostTensor, atol: Float = 1e-5, rtol: Float = 1e-4,
                 _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
    guard actual.shape == expected.shape else {
        Issue.record("\(what): shape \(actual.shape) != expected \(expected.shape)", sourceLocation: sourceLocation)
        return
    }
    var maxError: Float = 0
    var firstBad: Int? = nil
    var bad = 0
    for i in 0..<actual.count {
        let a = actual.values[i], e = expected.values[i]
        let err = abs(a - e)
        if !(err <= atol + rtol * abs(e)) {
            bad += 1
            if firstBad == nil { firstBad = i }
        }
        if err > maxError || err.isNaN { maxError = err }
    }
    if let i = firstBad {
        let coord = unravel(i, actual.shape)
        Issue.record("\(what): \(bad) of \(actual.count) values differ; max error \(maxError); first bad index \(i) \(coord): got \(actual.values[i]), expected \(expected.values[i]) (atol \(atol), rtol \(rtol))",
                     sourceLocation: sourceLocation)
    }
}

func unravel(_ index: Int, _ shape: [Int]) -> [Int] {
    var i = index
    var coord = [Int](repeating: 0, count: shape.count)
    for axis in stride(from: shape.count - 1, through: 0, by: -1) where shape[axis] > 0 {
        coord[axis] = i % shape[axis]
        i /= shape[axis]
    }
    return coord
}

/// One operator applied to given inputs; inputs with `differentiable` true get gradients.
struct OpCase {
    var op: any Operator
    var inputs: [HostTensor]
    var differentiable: [Bool]

    init(_ op: any Operator, _ inputs: [HostTensor], differentiable: [Bool]? = nil) {
        self.op = op
        self.inputs = inputs
        self.differentiable = differentiable ?? inputs.map { _ in true }
    }

    /// Builds a one-node graph (differentiable inputs are graph inputs, the rest constants).
    func graph() throws -> (Graph, [ValueID], ValueID) {
        let g = Graph()
        var ids: [ValueID] = []
        for (i, x) in inputs.enumerated() {
            ids.append(differentiable[i] ? try g.addInput("x\(i)", shape: x.shape) : try g.addConstant("c\(i)", x))
        }
        let out = try g.add(op, ids, name: "out")
        return (g, ids, out)
    }

    /// Forward output and the gradients of L = Σ out ⊙ seed to each differentiable input.
    func run(on backend: any Backend, seed: HostTensor?) throws -> (output: HostTensor, grads: [HostTensor?]) {
        let (g, ids, out) = try graph()
        let ex = Executor(graph: g, backend: backend)
        var feeds: [ValueID: Tensor] = [:]
        var diff = Set<ValueID>()
        for (i, x) in inputs.enumerated() where differentiable[i] {
            feeds[ids[i]] = try backend.tensor(x)
            diff.insert(ids[i])
        }
        let pass = try ex.forward(feeds: feeds, targets: [out], differentiable: seed == nil ? [] : diff)
        let output = try backend.download(pass.value(out))
        guard let seed else { return (output, inputs.map { _ in nil }) }
        let grads = try ex.backward(pass, seeds: [out: backend.tensor(seed)])
        return (output, try ids.enumerated().map { i, id in
            differentiable[i] ? try backend.download(grads[id]!) : nil
        })
    }

    /// Checks the CPU reference's backward against central finite differences of
    /// L(x) = Σ out(x) ⊙ seed, accumulated in Double, at up to `samples` elements per input.
    /// Tolerance: |numeric − analytic| ≤ atol + rtol·max(|numeric|, |analytic|).
    func checkGradients(h: Float = 1e-2, atol: Double = 2e-3, rtol: Double = 2e-2, samples: Int = 24,
                        seed rngSeed: UInt64 = 7, sourceLocation: SourceLocation = #_sourceLocation) throws {
        var rng = SeededRandom(seed: rngSeed)
        let cpu = Backends.cpu
        let outShape = try op.outputShape(inputs.map(\.shape))
        let seedTensor = rng.tensor(outShape, -1, 1)
        let analytic = try run(on: cpu, seed: seedTensor).grads
        func loss(_ xs: [HostTensor]) throws -> Double {
            let out = try OpCase(op, xs, differentiable: differentiable).run(on: cpu, seed: nil).output
            var sum = 0.0
            for i in 0..<out.count { sum += Double(out.values[i]) * Double(seedTensor.values[i]) }
            return sum
        }
        for (k, x) in inputs.enumerated() where differentiable[k] {
            guard let grad = analytic[k] else { continue }
            let positions: [Int] = x.count <= samples ? Array(0..<x.count)
                : (0..<samples).map { _ in Int(rng.next() % UInt64(x.count)) }
            for p in positions {
                var plus = inputs, minus = inputs
                plus[k].values[p] += h
                minus[k].values[p] -= h
                let numeric = (try loss(plus) - loss(minus)) / (2 * Double(h))
                let a = Double(grad.values[p])
                let err = abs(numeric - a)
                if !(err <= atol + rtol * max(abs(numeric), abs(a))) {
                    Issue.record("\(op.typeName): gradient of input \(k) at \(p) \(unravel(p, x.shape)): analytic \(a), finite difference \(numeric)",
                                 sourceLocation: sourceLocation)
                    return
                }
            }
        }
    }

    /// Compares forward and backward on `backend` with the CPU reference.
    func compareWithCPU(on backend: any Backend, atol: Float = 1e-4, rtol: Float = 1e-4,
                        sourceLocation: SourceLocation = #_sourceLocation) throws {
        var rng = SeededRandom(seed: 99)
        let seedTensor = rng.tensor(try op.outputShape(inputs.map(\.shape)))
        let expected = try run(on: Backends.cpu, seed: seedTensor)
        let actual = try run(on: backend, seed: seedTensor)
        expectClose(actual.output, expected.output, atol: atol, rtol: rtol, "\(op.typeName) forward on \(backend.name)",
                    sourceLocation: sourceLocation)
        for k in inputs.indices {
            if let a = actual.grads[k], let e = expected.grads[k] {
                expectClose(a, e, atol: atol, rtol: rtol, "\(op.typeName) backward to input \(k) on \(backend.name)",
                            sourceLocation: sourceLocation)
            }
        }
    }

    /// Runs the right check for the backend: finite differences on the CPU, CPU comparison on OpenCL.
    func verify(on kind: TestBackend, atol: Float = 1e-4, rtol: Float = 1e-4, fdTolerance: Double = 2e-2,
                test: String = #function, sourceLocation: SourceLocation = #_sourceLocation) throws {
        switch kind {
        case .cpu:
            try checkGradients(rtol: fdTolerance, sourceLocation: sourceLocation)
        case .opencl:
            guard let backend = Backends.get(.opencl, test: test) else { return }
            try compareWithCPU(on: backend, atol: atol, rtol: rtol, sourceLocation: sourceLocation)
        }
    }
}
