import Foundation

/// How a builder pads a k×k convolution with stride s.
enum ConvPadding {
    /// PyTorch / timm default: ((s − 1) + (k − 1)) / 2 on every side (k / 2 for odd k).
    case symmetric
    /// TensorFlow "SAME" (`resolveAutoPad(.sameUpper, …)`): output ⌈in / s⌉, an odd total padding
    /// puts the extra pixel at the bottom/right. Needed for weights trained in TensorFlow.
    case tfSame
}

/// Convolutional building blocks shared by the CNN builders. Weights come from `weights` under
/// timm's names; batch norms (inference form y = γ·(x − μ)/√(σ² + ε) + β) are folded into the
/// convolution before them on the host, and the activation runs fused in the convolution.
extension BuilderBase {
    /// The four tensors of a BatchNorm2d module `bn` with `channels` channels: γ, β, running mean,
    /// running variance (random weights: 1, 0, 0, 1 — an identity).
    func batchNorm(_ bn: String, channels: Int) throws -> (gamma: HostTensor, beta: HostTensor, mean: HostTensor, variance: HostTensor) {
        (try weights.tensor("\(bn).weight", [channels], .ones),
         try weights.tensor("\(bn).bias", [channels], .zeros),
         try weights.tensor("\(bn).running_mean", [channels], .zeros),
         try weights.tensor("\(bn).running_var", [channels], .ones))
    }

    /// y = activation(BN(conv(x))) as one Conv2D node named `name`:
    ///
    ///     W′[co] = W[co] · γ[co] / √(σ²[co] + ε),   b′[co] = (b[co] − μ[co]) · γ[co] / √(σ²[co] + ε) + β[co]
    ///
    /// - Parameters:
    ///   - conv: the conv module's name; its weight `<conv>.weight` is [out, Cin/groups, k, k]
    ///     (and `<conv>.bias` [out] when `bias`).
    ///   - bn: the BatchNorm2d module that follows, or nil for none.
    ///   - gain: random-init variance gain (default 2 before an activation, 1 without); the weight has
    ///     variance gain / fan_in, fan_in = Cin/groups · k² (uniform, see `WeightInit`).
    /// - Returns: [N, out, ⌊(H + pads − k) / s⌋ + 1, …].
    @discardableResult
    func conv(_ x: ValueID, _ conv: String, bn: String?, eps: Float, out: Int, kernel k: Int, stride s: Int = 1,
              groups: Int = 1, padding: ConvPadding = .symmetric, activation: Unary? = nil, gain: Float? = nil,
              bias: Bool = false, name: String) throws -> ValueID {
        let shape = graph.shape(of: x)
        guard shape.count == 4, shape[1] % groups == 0 else {
            throw EngineError.invalidGraph("\(self.name): '\(conv)' needs an NCHW input whose channels divide into \(groups) groups, got \(shape)")
        }
        let cinG = shape[1] / groups
        var w = try weights.tensor("\(conv).weight", [out, cinG, k, k],
                                   .scaled(fanIn: cinG * k * k, gain: gain ?? (activation == nil ? 1 : 2)))
        var b: HostTensor? = bias ? try weights.tensor("\(conv).bias", [out], .zeros) : nil
        if let bn {
            let p = try batchNorm(bn, channels: out)
            (w, b) = try foldBatchNorm(convWeight: w, convBias: b, gamma: p.gamma, beta: p.beta, mean: p.mean,
                                       variance: p.variance, eps: eps)
        }
        let pads: Padding2D
        switch padding {
        case .symmetric: pads = Padding2D(((s - 1) + (k - 1)) / 2)
        case .tfSame: pads = try resolveAutoPad(.sameUpper, input: [shape[2], shape[3]], kernel: [k, k], strides: [s, s])
        }
        var inputs = [x, try graph.addConstant("\(conv).weight", w)]
        if let b { inputs.append(try graph.addConstant("\(conv).bias", b)) }
        return try graph.add(Conv2D(strides: [s, s], pads: pads, groups: groups, activation: activation), inputs, name: name)
    }

    /// A batch norm that does not follow a convolution (ResNetV2's pre-activation), with ReLU:
    /// y = max(0, γ·(x − μ)/√(σ² + ε) + β), run as a depthwise 1×1 convolution with the per-channel
    /// scale as weight [C, 1, 1, 1], the shift as bias and the ReLU fused.
    @discardableResult
    func batchNormReLU(_ x: ValueID, _ bn: String, eps: Float, name: String) throws -> ValueID {
        let c = graph.shape(of: x)[1]
        let p = try batchNorm(bn, channels: c)
        let ones = HostTensor(shape: [c, 1, 1, 1], values: [Float](repeating: 1, count: c))
        let (scale, shift) = try foldBatchNorm(convWeight: ones, convBias: nil, gamma: p.gamma, beta: p.beta, mean: p.mean,
                                               variance: p.variance, eps: eps)
        let w = try graph.addConstant("\(bn).scale", scale)
        let b = try graph.addConstant("\(bn).shift", shift)
        return try graph.add(Conv2D(groups: c, activation: Unary(.relu)), [x, w, b], name: name)
    }

    /// Mean over the spatial axes: [N, C, H, W] → [N, C].
    func globalAveragePool(_ x: ValueID, name: String) throws -> ValueID {
        try graph.add(Reduce(.mean, axes: [2, 3]), [x], name: name)
    }

    /// 3×3 max pooling with stride 2 and padding 1 (padding never wins: it is −∞).
    func maxPool3x3(_ x: ValueID, name: String) throws -> ValueID {
        try graph.add(MaxPool2D(kernel: [3, 3], strides: [2, 2], pads: Padding2D(1)), [x], name: name)
    }

    /// A classifier y = x · Wᵀ + b on features x [N, F]: W from `<module>.weight` [classes, F] (or
    /// [classes, F, 1, 1] for timm's 1×1-conv heads), b from `<module>.bias`. Variance 1/F at random.
    func classifier(_ x: ValueID, _ module: String, classes: Int, convShaped: Bool = false, name: String) throws -> ValueID {
        let f = graph.shape(of: x)[1]
        let w = try weights.tensor("\(module).weight", convShaped ? [classes, f, 1, 1] : [classes, f], .scaled(fanIn: f, gain: 1))
        let b = try weights.tensor("\(module).bias", [classes], .zeros)
        return try addLinear(graph, x, weight: HostTensor(shape: [classes, f], values: w.values), bias: b, name: name)
    }
}
