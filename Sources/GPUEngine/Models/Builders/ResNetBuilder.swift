import Foundation

/// ResNets with timm's (= torchvision's) tensor names, and timm's pre-activation ResNetV2.
///
/// `resnet18/34/50/101/152` (timm `ResNet`, v1.5: the stride on the 3×3 conv):
///
///     act1 = ReLU(bn1(conv1(x)))  7×7 s2 · maxpool 3×3 s2 (alias stem)
///     layer{n}.{b} = ReLU(bn3(conv3(ReLU(bn2(conv2(ReLU(bn1(conv1(x))))))) + shortcut)    (bottleneck)
///                  = ReLU(bn2(conv2(ReLU(bn1(conv1(x))))) + shortcut)                      (basic)
///     shortcut = downsample.1(downsample.0(x)) on each stage's first block (1×1 conv stride s + BN), else x
///     global_pool = mean over H, W · fc (logits)
///
/// `resnetv2_50/101` (timm `ResNetV2` with `conv_layer=create_conv2d, norm_layer=BatchNormAct2d`,
/// `PreActBottleneck`, stem_type ''):
///
///     stem.conv 7×7 s2 (no norm) · stem.pool max 3×3 s2 p1
///     stages.{s}.blocks.{b}:  p = ReLU(norm1(x));  shortcut = downsample.conv(p) (first block) or x
///                             y = conv3(ReLU(norm3(conv2(ReLU(norm2(conv1(p)))))))  + shortcut
///     norm = ReLU(BN(x)) · head.global_pool (mean) · head.fc (a 1×1 conv with bias = a linear layer)
///
/// BatchNorm eps 1e-5; norm2/norm3 are folded into conv1/conv2, norm1 and the final norm run as a
/// per-channel affine + ReLU. Convs have no bias; padding is PyTorch's symmetric k/2.
final class ResNetBuilder: BuilderBase {
    struct Config: Sendable {
        var layers: [Int]
        var bottleneck: Bool
        var preActivation: Bool
        /// Output channels of the stem convolution (timm: 64 for both classes).
        var stem = 64
        /// Each stage's bottleneck width w: a basic block outputs w channels, a bottleneck 4w (v1:
        /// timm's `channels`; v2: timm's `channels` / 4). timm's named models: 64, 128, 256, 512.
        var widths = [64, 128, 256, 512]
    }

    static let configs: [String: Config] = [
        "resnet18": Config(layers: [2, 2, 2, 2], bottleneck: false, preActivation: false),
        "resnet34": Config(layers: [3, 4, 6, 3], bottleneck: false, preActivation: false),
        "resnet50": Config(layers: [3, 4, 6, 3], bottleneck: true, preActivation: false),
        "resnet101": Config(layers: [3, 4, 23, 3], bottleneck: true, preActivation: false),
        "resnet152": Config(layers: [3, 8, 36, 3], bottleneck: true, preActivation: false),
        "resnetv2_50": Config(layers: [3, 4, 6, 3], bottleneck: true, preActivation: true),
        "resnetv2_101": Config(layers: [3, 4, 23, 3], bottleneck: true, preActivation: true),
    ]

    let config: Config
    let eps: Float = 1e-5

    init(config: Config, name: String, weights: WeightSource) {
        self.config = config
        super.init(name: name, weights: weights)
    }

    /// Random-init variance gain of the last conv of each residual branch: 1/(number of blocks), so
    /// the residual stream grows by at most ≈ e over the network (Fixup-style) with identity BNs.
    var lastGain: Float { 1 / Float(config.layers.reduce(0, +)) }

    func build(batch: Int, imageSize: Int?) throws -> Model {
        let size = imageSize ?? 224
        guard size >= 32 else {
            throw EngineError.invalidInput("\(name) needs images of at least 32×32 pixels (its output stride is 32), got \(size)")
        }
        guard config.widths.count == config.layers.count, config.widths.allSatisfy({ $0 >= 1 }), config.stem >= 1 else {
            throw EngineError.invalidGraph("\(name): \(config.layers.count) stages need as many positive widths, got \(config.widths)")
        }
        let input = try graph.addInput("input", shape: [batch, 3, size, size])
        let (output, head): (ValueID, Int)
        if config.preActivation {
            (output, head) = try buildV2(input)
        } else {
            (output, head) = try buildV1(input)
        }
        try weights.finish()
        let pre = config.preActivation ? Preprocessing.inception(size) : Preprocessing.imagenet(size)
        return Model(name: name, graph: graph, input: input, output: output, family: .cnn, preprocessing: pre,
                     classNames: classNames(head), aliases: aliases, recommended: recommended, source: "")
    }

    private func buildV1(_ input: ValueID) throws -> (ValueID, Int) {
        let relu = Unary(.relu)
        var x = try conv(input, "conv1", bn: "bn1", eps: eps, out: config.stem, kernel: 7, stride: 2, activation: relu, name: "act1")
        alias("conv1", x)
        x = try maxPool3x3(x, name: "maxpool")
        alias("stem", x)
        var channels = config.stem
        let expansion = config.bottleneck ? 4 : 1
        for (stage, depth) in config.layers.enumerated() {
            let width = config.widths[stage]
            let out = width * expansion
            for b in 0..<depth {
                let p = "layer\(stage + 1).\(b)"
                let stride = b == 0 && stage > 0 ? 2 : 1
                var h: ValueID
                if config.bottleneck {
                    h = try conv(x, "\(p).conv1", bn: "\(p).bn1", eps: eps, out: width, kernel: 1, activation: relu, name: "\(p).act1")
                    h = try conv(h, "\(p).conv2", bn: "\(p).bn2", eps: eps, out: width, kernel: 3, stride: stride,
                                 activation: relu, name: "\(p).act2")
                    h = try conv(h, "\(p).conv3", bn: "\(p).bn3", eps: eps, out: out, kernel: 1, gain: 2 * lastGain, name: "\(p).bn3")
                } else {
                    h = try conv(x, "\(p).conv1", bn: "\(p).bn1", eps: eps, out: width, kernel: 3, stride: stride,
                                 activation: relu, name: "\(p).act1")
                    h = try conv(h, "\(p).conv2", bn: "\(p).bn2", eps: eps, out: out, kernel: 3, gain: 2 * lastGain, name: "\(p).bn2")
                }
                var shortcut = x
                if stride != 1 || channels != out {
                    shortcut = try conv(x, "\(p).downsample.0", bn: "\(p).downsample.1", eps: eps, out: out, kernel: 1,
                                        stride: stride, gain: 2, name: "\(p).downsample")
                }
                let sum = try graph.add(Binary(.add), [h, shortcut], name: "\(p).add")
                x = try graph.add(Unary(.relu), [sum], name: p)
                alias(p, x, recommend: true)
                alias("\(p).act\(config.bottleneck ? 3 : 2)", x)
                channels = out
            }
            alias("layer\(stage + 1)", x, recommend: true)
        }
        let pooled = try globalAveragePool(x, name: "global_pool")
        alias("global_pool", pooled)
        let classes = classCount("fc.weight", features: channels)
        let logits = try classifier(pooled, "fc", classes: classes, name: "fc")
        alias("fc", logits, recommend: true)
        return (logits, classes)
    }

    private func buildV2(_ input: ValueID) throws -> (ValueID, Int) {
        let relu = Unary(.relu)
        var x = try conv(input, "stem.conv", bn: nil, eps: eps, out: config.stem, kernel: 7, stride: 2, name: "stem.conv")
        x = try maxPool3x3(x, name: "stem.pool")
        alias("stem", x)
        var channels = config.stem
        for (stage, depth) in config.layers.enumerated() {
            let mid = config.widths[stage]
            let out = 4 * mid
            for b in 0..<depth {
                let p = "stages.\(stage).blocks.\(b)"
                let stride = b == 0 && stage > 0 ? 2 : 1
                let pre = try batchNormReLU(x, "\(p).norm1", eps: eps, name: "\(p).norm1")
                var shortcut = x
                if b == 0 {
                    shortcut = try conv(pre, "\(p).downsample.conv", bn: nil, eps: eps, out: out, kernel: 1, stride: stride,
                                        gain: 2, name: "\(p).downsample")
                }
                var h = try conv(pre, "\(p).conv1", bn: "\(p).norm2", eps: eps, out: mid, kernel: 1, activation: relu,
                                 name: "\(p).norm2")
                h = try conv(h, "\(p).conv2", bn: "\(p).norm3", eps: eps, out: mid, kernel: 3, stride: stride,
                             activation: relu, name: "\(p).norm3")
                h = try conv(h, "\(p).conv3", bn: nil, eps: eps, out: out, kernel: 1, gain: 2 * lastGain, name: "\(p).conv3")
                x = try graph.add(Binary(.add), [h, shortcut], name: p)
                alias(p, x, recommend: true)
                channels = out
            }
            alias("stages.\(stage)", x, recommend: true)
        }
        let normed = try batchNormReLU(x, "norm", eps: eps, name: "norm")
        alias("norm", normed)
        let pooled = try globalAveragePool(normed, name: "head.global_pool")
        alias("global_pool", pooled)
        alias("head.global_pool", pooled)
        let classes = classCount("head.fc.weight", features: channels, trailing: [1, 1])
        let logits = try classifier(pooled, "head.fc", classes: classes, convShaped: true, name: "head.fc")
        alias("head.fc", logits, recommend: true)
        alias("head", logits)
        return (logits, classes)
    }
}
