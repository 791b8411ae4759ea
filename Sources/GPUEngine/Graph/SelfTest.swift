/// A quick end-to-end check of a backend: a small two-layer network is run forward and
/// differentiated to its input on `backend` and on the CPU reference, and the results compared.
public struct SelfTestReport: Sendable {
    public var backendName: String
    public var maxForwardError: Float
    public var maxGradientError: Float
    public var passed: Bool { maxForwardError < 1e-3 && maxGradientError < 1e-3 }
}

public func runSelfTest(on backend: any Backend) throws -> SelfTestReport {
    func values(_ n: Int, _ seed: Int) -> [Float] {
        (0..<n).map { i in Float(((i * 7919 + seed * 104_729) % 2001) - 1000) / 1000 }
    }
    let g = Graph()
    let x = try g.addInput("x", shape: [3, 17])
    let w1 = try g.addConstant("w1", HostTensor(shape: [17, 23], values: values(17 * 23, 1)))
    let b1 = try g.addConstant("b1", HostTensor(shape: [23], values: values(23, 2)))
    let h = try g.add(MatMul(), [x, w1, b1], name: "fc1")
    let a = try g.add(Unary(.tanh), [h], name: "act")
    let s = try g.add(Reduce(.mean, axes: [1]), [a], name: "mean")
    let input = HostTensor(shape: [3, 17], values: values(51, 3))
    let seed = HostTensor(shape: [3], values: [1, -2, 0.5])
    func evaluate(_ b: any Backend) throws -> (HostTensor, HostTensor) {
        let ex = Executor(graph: g, backend: b)
        let pass = try ex.forward(feeds: [x: b.tensor(input)], targets: [s], differentiable: [x])
        let out = try b.download(pass.value(s))
        let grads = try ex.backward(pass, seeds: [s: b.tensor(seed)])
        guard let gx = grads[x] else { throw EngineError.invalidGraph("self-test: no gradient reached the input") }
        return (out, try b.download(gx))
    }
    let (out, grad) = try evaluate(backend)
    let (refOut, refGrad) = try evaluate(CPUBackend())
    func maxError(_ a: HostTensor, _ b: HostTensor) -> Float {
        zip(a.values, b.values).map { abs($0 - $1) }.max() ?? 0
    }
    return SelfTestReport(backendName: backend.name, maxForwardError: maxError(out, refOut),
                          maxGradientError: maxError(grad, refGrad))
}
