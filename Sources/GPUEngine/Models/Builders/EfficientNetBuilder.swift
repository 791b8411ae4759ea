import Foundation

/// timm's `EfficientNet` class as used by `efficientnet_lite0` and `mobilenetv2_100`: ReLU6
/// everywhere, no squeeze-excitation, BN folded into every convolution.
///
///     bn1 = ReLU6(BN(conv_stem(x)))  3×3 s2  (alias stem)
///     blocks.{s}.{i}:
///       DepthwiseSeparableConv (first stage):  bn2(conv_pw(ReLU6(bn1(conv_dw(x)))))
///       InvertedResidual:  bn3(conv_pwl(ReLU6(bn2(conv_dw(ReLU6(bn1(conv_pw(x))))))))
///       + x when stride 1 and the channels do not change
///     bn2 = ReLU6(BN(conv_head(x)))  1×1 → 1280  (alias conv_head) · global_pool (mean) · classifier
///
/// Tensor names: `conv_stem.weight`, `bn1.*`, `blocks.{s}.{i}.{conv_dw,conv_pw,conv_pwl}.weight`,
/// `blocks.{s}.{i}.{bn1,bn2,bn3}.{weight,bias,running_mean,running_var}`, `conv_head.weight`, `bn2.*`,
/// `classifier.{weight,bias}`.
///
/// As timm builds them (checked against timm by `scripts/check-timm` and TimmOracleTests):
/// `efficientnet_lite0` and `mobilenetv2_100` use PyTorch symmetric padding and BN eps 1e-5;
/// `tf_efficientnet_lite0` (weights ported from TensorFlow, like the checkpoint `scripts/fetch-models`
/// converts) TF "SAME" padding and BN eps 1e-3.
final class EfficientNetBuilder: BuilderBase {
    struct Stage: Sendable {
        var repeats: Int, kernel: Int, stride: Int, expansion: Int, channels: Int
    }

    struct Config: Sendable {
        var stages: [Stage]
        var stem = 32
        var headChannels = 1280
        var padding: ConvPadding
        var eps: Float
    }

    static let configs: [String: Config] = {
        let lite0 = Config(stages: [
            Stage(repeats: 1, kernel: 3, stride: 1, expansion: 1, channels: 16),
            Stage(repeats: 2, kernel: 3, stride: 2, expansion: 6, channels: 24),
            Stage(repeats: 2, kernel: 5, stride: 2, expansion: 6, channels: 40),
            Stage(repeats: 3, kernel: 3, stride: 2, expansion: 6, channels: 80),
            Stage(repeats: 3, kernel: 5, stride: 1, expansion: 6, channels: 112),
            Stage(repeats: 4, kernel: 5, stride: 2, expansion: 6, channels: 192),
            Stage(repeats: 1, kernel: 3, stride: 1, expansion: 6, channels: 320),
        ], padding: .symmetric, eps: 1e-5)
        var tfLite0 = lite0
        tfLite0.padding = .tfSame
        tfLite0.eps = 1e-3
        let mobilenetV2 = Config(stages: [
            Stage(repeats: 1, kernel: 3, stride: 1, expansion: 1, channels: 16),
            Stage(repeats: 2, kernel: 3, stride: 2, expansion: 6, channels: 24),
            Stage(repeats: 3, kernel: 3, stride: 2, expansion: 6, channels: 32),
            Stage(repeats: 4, kernel: 3, stride: 2, expansion: 6, channels: 64),
            Stage(repeats: 3, kernel: 3, stride: 1, expansion: 6, channels: 96),
            Stage(repeats: 3, kernel: 3, stride: 2, expansion: 6, channels: 160),
            Stage(repeats: 1, kernel: 3, stride: 1, expansion: 6, channels: 320),
        ], padding: .symmetric, eps: 1e-5)
        return ["efficientnet_lite0": lite0, "tf_efficientnet_lite0": tfLite0, "mobilenetv2_100": mobilenetV2]
    }()

    let config: Config

    init(config: Config, name: String, weights: WeightSource) {
        self.config = config
        super.init(name: name, weights: weights)
    }

    func build(batch: Int, imageSize: Int?) throws -> Model {
        let c = config
        let size = imageSize ?? 224
        guard size >= 32 else {
            throw EngineError.invalidInput("\(name) needs images of at least 32×32 pixels (its output stride is 32), got \(size)")
        }
        let relu6 = Unary.relu6()
        let input = try graph.addInput("input", shape: [batch, 3, size, size])
        var x = try conv(input, "conv_stem", bn: "bn1", eps: c.eps, out: c.stem, kernel: 3, stride: 2, padding: c.padding,
                         activation: relu6, name: "bn1")
        alias("stem", x)
        alias("conv_stem", x)
        var channels = c.stem
        // Blocks with a skip connection: all but the first of each stage, and the first when it
        // keeps stride 1 and the channel count.
        var residualBlocks = 0
        var previous = c.stem
        for stage in c.stages {
            residualBlocks += stage.repeats - 1 + (stage.stride == 1 && previous == stage.channels ? 1 : 0)
            previous = stage.channels
        }
        let lastGain: Float = 1 / Float(max(residualBlocks, 1))
        for (s, stage) in c.stages.enumerated() {
            for i in 0..<stage.repeats {
                let p = "blocks.\(s).\(i)"
                let stride = i == 0 ? stage.stride : 1
                let out = stage.channels
                let skip = stride == 1 && channels == out
                var h: ValueID
                let lastName = skip ? "\(p).\(stage.expansion == 1 ? "bn2" : "bn3")" : p
                if stage.expansion == 1 {
                    h = try conv(x, "\(p).conv_dw", bn: "\(p).bn1", eps: c.eps, out: channels, kernel: stage.kernel, stride: stride,
                                 groups: channels, padding: c.padding, activation: relu6, name: "\(p).bn1")
                    h = try conv(h, "\(p).conv_pw", bn: "\(p).bn2", eps: c.eps, out: out, kernel: 1, padding: c.padding,
                                 gain: skip ? 2 * lastGain : 2, name: lastName)
                    if !skip { alias("\(p).bn2", h) }
                } else {
                    let mid = channels * stage.expansion
                    h = try conv(x, "\(p).conv_pw", bn: "\(p).bn1", eps: c.eps, out: mid, kernel: 1, padding: c.padding,
                                 activation: relu6, name: "\(p).bn1")
                    h = try conv(h, "\(p).conv_dw", bn: "\(p).bn2", eps: c.eps, out: mid, kernel: stage.kernel, stride: stride,
                                 groups: mid, padding: c.padding, activation: relu6, name: "\(p).bn2")
                    h = try conv(h, "\(p).conv_pwl", bn: "\(p).bn3", eps: c.eps, out: out, kernel: 1, padding: c.padding,
                                 gain: skip ? 2 * lastGain : 2, name: lastName)
                    if !skip { alias("\(p).bn3", h) }
                }
                if skip { h = try graph.add(Binary(.add), [h, x], name: p) }
                x = h
                alias(p, x, recommend: true)
                channels = out
            }
            alias("blocks.\(s)", x, recommend: true)
        }
        x = try conv(x, "conv_head", bn: "bn2", eps: c.eps, out: c.headChannels, kernel: 1, padding: c.padding,
                     activation: relu6, name: "bn2")
        alias("conv_head", x, recommend: true)
        let pooled = try globalAveragePool(x, name: "global_pool")
        alias("global_pool", pooled)
        let classes = classCount("classifier.weight", features: c.headChannels)
        let logits = try classifier(pooled, "classifier", classes: classes, name: "classifier")
        alias("classifier", logits, recommend: true)
        try weights.finish()
        return Model(name: name, graph: graph, input: input, output: logits, family: .cnn, preprocessing: .imagenet(size),
                     classNames: classNames(classes), aliases: aliases, recommended: recommended, source: "")
    }
}
