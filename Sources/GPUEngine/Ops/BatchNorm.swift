import Foundation

/// Batch normalization in inference form (ONNX BatchNormalization with running statistics):
///
///     y[n, c, ...] = (x[n, c, ...] − mean[c]) / √(var[c] + ε) · gamma[c] + beta[c]
///
/// Inputs (ONNX order): x [N, C, ...] (rank ≥ 2, channels on axis 1), gamma [C], beta [C],
/// mean [C], var [C]. Output shaped like x.
/// Backward (to x only): dx = dy · gamma[c] / √(var[c] + ε). The per-channel parameters are
/// constants: asking for their gradient throws `EngineError.unsupported`.
/// A BN right after a convolution can be folded into it with `foldBatchNorm`.
public struct BatchNorm: Operator {
    public var epsilon: Float

    public init(epsilon: Float = 1e-5) { self.epsilon = epsilon }

    public var typeName: String { "BatchNorm" }

    public func outputShape(_ inputShapes: [[Int]]) throws -> [Int] {
        try expectInputs(inputShapes, 5, typeName)
        let x = inputShapes[0]
        guard x.count >= 2 else { throw EngineError.shapeMismatch("BatchNorm needs an input [N, C, ...], got \(x)") }
        for (i, name) in [(1, "gamma"), (2, "beta"), (3, "mean"), (4, "var")] where inputShapes[i] != [x[1]] {
            throw EngineError.shapeMismatch("BatchNorm \(name) must have shape [\(x[1])] (one value per channel), got \(inputShapes[i])")
        }
        guard epsilon >= 0 else { throw EngineError.invalidAttribute("BatchNorm: epsilon must be ≥ 0, got \(epsilon)") }
        return x
    }

    public func backwardUses(needsGrad: [Bool]) -> (inputs: [Bool], output: Bool) {
        ([false, needsGrad[0], false, false, needsGrad[0]], false)
    }

    /// (channels, inner) of x: the size of axis 1 and the product of the axes after it.
    func layout(_ shape: [Int]) -> (channels: Int, inner: Int) {
        (shape[1], shape.dropFirst(2).reduce(1, *))
    }

    public func forward(_ inputs: [Tensor], on backend: any Backend) throws -> OpResult {
        _ = try outputShape(inputs.map(\.shape))
        let (c, inner) = layout(inputs[0].shape)
        return OpResult(try backend.kernels.batchNormForward(inputs[0], gamma: inputs[1], beta: inputs[2], mean: inputs[3],
                                                             variance: inputs[4], epsilon: epsilon, channels: c, inner: inner))
    }

    public func backward(_ context: BackwardContext, on backend: any Backend) throws -> [Tensor?] {
        if context.needsGrad.dropFirst().contains(true) {
            throw EngineError.unsupported("BatchNorm: gradients with respect to gamma, beta, mean or var are not supported (they must be constants)")
        }
        let (c, inner) = layout(context.inputShapes[0])
        let gamma = try context.input(1), variance = try context.input(4)
        let dx = try backend.kernels.batchNormBackward(context.gradOutput, gamma: gamma, variance: variance, epsilon: epsilon,
                                                       channels: c, inner: inner)
        return [dx, nil, nil, nil, nil]
    }
}

/// Folds an inference batch norm into the convolution before it (conv → BN ≡ one conv):
///
///     s[c] = gamma[c] / √(var[c] + ε)
///     W'[c, ...] = W[c, ...] · s[c]          b'[c] = (b[c] − mean[c]) · s[c] + beta[c]
///
/// `convWeight` is a `Conv2D` weight [Cout, Cin/groups, kH, kW] (any shape whose first axis is the
/// output channel); `convBias` [Cout] or nil (zero). Returns (W', b'), b' always present.
/// The statistics are combined in Double.
public func foldBatchNorm(convWeight: HostTensor, convBias: HostTensor?, gamma: HostTensor, beta: HostTensor,
                          mean: HostTensor, variance: HostTensor, eps: Float) throws -> (HostTensor, HostTensor) {
    guard let cout = convWeight.shape.first, cout > 0 else {
        throw EngineError.shapeMismatch("foldBatchNorm: the convolution weight needs an output-channel axis, got \(convWeight.shape)")
    }
    for (name, t) in [("gamma", gamma), ("beta", beta), ("mean", mean), ("variance", variance)] + (convBias.map { [("conv bias", $0)] } ?? [])
    where t.shape != [cout] {
        throw EngineError.shapeMismatch("foldBatchNorm: \(name) must have shape [\(cout)] to match the convolution's output channels, got \(t.shape)")
    }
    let perChannel = convWeight.count / cout
    var w = convWeight.values
    var b = [Float](repeating: 0, count: cout)
    for c in 0..<cout {
        let s = Double(gamma.values[c]) / (Double(variance.values[c]) + Double(eps)).squareRoot()
        guard s.isFinite else {
            throw EngineError.numerical("foldBatchNorm: channel \(c) has variance \(variance.values[c]) + eps \(eps) ≤ 0")
        }
        for i in (c * perChannel)..<((c + 1) * perChannel) { w[i] = Float(Double(w[i]) * s) }
        let bias = Double(convBias?.values[c] ?? 0)
        b[c] = Float((bias - Double(mean.values[c])) * s + Double(beta.values[c]))
    }
    return (HostTensor(shape: convWeight.shape, values: w), HostTensor(shape: [cout], values: b))
}
