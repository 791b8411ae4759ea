import Foundation
import Testing
@testable import GPUEngine

/// An operator whose forward always throws: placed after a target, it proves the executor stops early.
struct ExplodingOp: Operator {
    var typeName: String { "Exploding" }
    func outputShape(_ s: [[Int]]) throws -> [Int] { s[0] }
    func forward(_ inputs: [Tensor], on backend: any Backend) throws -> OpResult {
        throw EngineError.invalidGraph("this node must never run")
    }
    func backward(_ context: BackwardContext, on backend: any Backend) throws -> [Tensor?] { [nil] }
}

@Suite struct GraphTests {
    /// x[2,5,8] → (x·W1 + b1) → tanh → ·W2 → + x·S → transpose → slice → concat → mean → scalar-ish output.
    static func smallNetwork(seed: UInt64) throws -> (Graph, ValueID, ValueID, ValueID) {
        var rng = SeededRandom(seed: seed)
        let g = Graph()
        let x = try g.addInput("image", shape: [2, 5, 8])
        let w1 = try g.addConstant("fc1.weight", rng.tensor([8, 12]))
        let b1 = try g.addConstant("fc1.bias", rng.tensor([12]))
        let h = try g.add(MatMul(), [x, w1, b1], name: "fc1")
        let a = try g.add(Unary(.tanh), [h], name: "act")
        let w2 = try g.addConstant("fc2.weight", rng.tensor([8, 12]))
        let y = try g.add(MatMul(transposeB: true), [a, w2], name: "fc2")
        let skip = try g.add(Binary(.mul), [x, x], name: "square")
        let sum = try g.add(Binary(.add), [y, skip], name: "residual")
        let t = try g.add(Transpose(perm: [0, 2, 1]), [sum], name: "swap")
        let s1 = try g.add(Slice(starts: [1], ends: [7], axes: [1]), [t], name: "middle")
        let s2 = try g.add(Slice(starts: [0], ends: [2], axes: [1]), [t], name: "head")
        let c = try g.add(Concat(axis: 1), [s1, s2], name: "joined")
        let r = try g.add(Reshape(shape: [2, -1]), [c], name: "flat")
        let sig = try g.add(Unary(.sigmoid), [r], name: "gate")
        let out = try g.add(Binary(.mul), [sig, r], name: "gated")
        let m = try g.add(Reduce(.mean, axes: [1]), [out], name: "mean")
        _ = try g.add(ExplodingOp(), [m], name: "after-target")
        return (g, x, out, m)
    }

    static func gradient(on backend: any Backend, image: HostTensor, seed: HostTensor) throws -> (HostTensor, HostTensor) {
        let (g, x, _, m) = try smallNetwork(seed: 11)
        let ex = Executor(graph: g, backend: backend)
        let pass = try ex.forward(feeds: [x: backend.tensor(image)], targets: [m], differentiable: [x])
        let value = try backend.download(pass.value(m))
        let grads = try ex.backward(pass, seeds: [m: backend.tensor(seed)])
        return (value, try backend.download(grads[x]!))
    }

    @Test(arguments: TestBackend.allCases)
    func networkGradient(_ kind: TestBackend) throws {
        var rng = SeededRandom(seed: 12)
        let image = rng.tensor([2, 5, 8])
        let seed = HostTensor(shape: [2], values: [1, -0.5])
        let cpu = Backends.cpu
        let (cpuValue, cpuGrad) = try Self.gradient(on: cpu, image: image, seed: seed)
        switch kind {
        case .cpu:
            // Finite differences of L = seed · mean(...) against the analytic gradient, at all 80 positions
            // (the shared norm-relative `GradientCheck`).
            let check = GradientCheck()
            let numeric = try check.numeric(inputs: [image], differentiable: [true], seed: seed) { xs in
                try Self.gradient(on: cpu, image: xs[0], seed: seed).0
            }
            for failure in check.failures("network", numeric: numeric, analytic: [cpuGrad]) {
                Issue.record("\(failure)")
            }
        case .opencl:
            guard let cl = Backends.get(.opencl) else { return }
            let (clValue, clGrad) = try Self.gradient(on: cl, image: image, seed: seed)
            expectClose(clValue, cpuValue, atol: 1e-5, rtol: 1e-4, "network forward")
            expectClose(clGrad, cpuGrad, atol: 1e-5, rtol: 1e-4, "network gradient to the image")
        }
        #expect(cpuGrad.values.contains { $0 != 0 })
    }

    @Test func forwardStopsAtTargetsAndFreesActivations() throws {
        let (g, x, out, m) = try Self.smallNetwork(seed: 11)
        var rng = SeededRandom(seed: 13)
        let cpu = Backends.cpu
        let ex = Executor(graph: g, backend: cpu)
        // The ExplodingOp after `mean` would throw if the executor ran past the target.
        let pass = try ex.forward(feeds: [x: cpu.tensor(rng.tensor([2, 5, 8]))], targets: [m])
        #expect(Array(pass.values.keys) == [m], "only the target is kept without backward")
        // Targeting an earlier value also works and keeps only it.
        let early = try ex.forward(feeds: [x: cpu.tensor(rng.tensor([2, 5, 8]))], targets: [out])
        #expect(early.values.count == 1 && early.values[out]?.shape == [2, 40])
        // With backward, add/sub/reshape do not keep their inputs; matmul keeps what it reads.
        let withGrad = try ex.forward(feeds: [x: cpu.tensor(rng.tensor([2, 5, 8]))], targets: [m], differentiable: [x])
        #expect(withGrad.values.count < g.values.count - g.constants.count)
        #expect(withGrad.values[g.value(named: "residual")!] == nil)
    }

    @Test func unknownNamesSuggestClosest() throws {
        let (g, _, _, _) = try Self.smallNetwork(seed: 11)
        #expect(throws: EngineError.self) { try g.requireValue(named: "fc3") }
        do {
            _ = try g.requireValue(named: "gatd")
        } catch let error as EngineError {
            #expect(error.description.contains("gate"))
        }
    }

    @Test func badShapesAreRejectedWhenNodesAreAdded() throws {
        let g = Graph()
        let a = try g.addInput("a", shape: [3, 4])
        let b = try g.addInput("b", shape: [5, 6])
        #expect(throws: EngineError.self) { try g.add(MatMul(), [a, b], name: "bad") }
        #expect(throws: EngineError.self) { try g.add(Binary(.add), [a, b], name: "bad2") }
        #expect(throws: EngineError.self) { try g.add(Transpose(perm: [0, 0]), [a], name: "bad3") }
    }
}
