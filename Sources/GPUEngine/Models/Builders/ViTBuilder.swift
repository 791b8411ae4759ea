import Foundation

/// timm's `VisionTransformer` (class token, absolute position embedding, pre-norm blocks,
/// LayerNorm eps 1e-6, exact GELU, token pooling) and its DINOv2 variant (layer-scale, no head,
/// 518² position grid resampled to the image size).
///
/// Graph, for tokens [B, T, D] with T = 1 + (S/p)²:
///
///     patch_embed  = im2col(image) · patch_embed.proj.weightᵀ + bias          [B, N, D]
///     cls_token    = concat(cls_token, patch_embed)                           [B, T, D]
///     pos_embed    = cls_token + pos_embed (resampled when S/p ≠ the checkpoint's grid)
///     blocks.i     = x + ls2(fc2(GELU(fc1(norm2(x′))))),  x′ = x + ls1(attn(norm1(x)))
///     norm         = LayerNorm(blocks.last)
///     pre_logits   = norm[:, 0]                                               [B, D]
///     head         = pre_logits · head.weightᵀ + head.bias                    [B, classes]
///
/// Tensor names (timm): `cls_token` [1,1,D], `pos_embed` [1,T₀,D], `patch_embed.proj.{weight,bias}`,
/// `blocks.{i}.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}.{weight,bias}`,
/// `blocks.{i}.{ls1,ls2}.gamma` (DINOv2), `norm.{weight,bias}`, `head.{weight,bias}`.
final class ViTBuilder: BuilderBase {
    struct Config: Sendable {
        var dim: Int
        var depth: Int
        var heads: Int
        var patch: Int
        /// The default input size S.
        var imageSize: Int
        /// The image size of the checkpoint's position grid (random weights are made at it).
        var checkpointSize: Int
        var layerScale: Bool = false
        /// Whether random weights include a 1000-class head (a file decides by itself).
        var head: Bool = true
        /// ImageNet mean/std (DINOv2) instead of timm's augreg 0.5/0.5.
        var imagenetNorm: Bool = false
        /// Extra file tensors that are ignored.
        var tolerated: Set<String> = []
    }

    static let configs: [String: Config] = {
        var c: [String: Config] = [:]
        let sizes: [(String, Int, Int, Int)] = [("tiny", 192, 12, 3), ("small", 384, 12, 6), ("base", 768, 12, 12),
                                                ("large", 1024, 24, 16)]
        for (size, dim, depth, heads) in sizes {
            for s in [224, 384] {
                c["vit_\(size)_patch16_\(s)"] = Config(dim: dim, depth: depth, heads: heads, patch: 16, imageSize: s, checkpointSize: s)
            }
        }
        c["vit_huge_patch14_224"] = Config(dim: 1280, depth: 32, heads: 16, patch: 14, imageSize: 224, checkpointSize: 224)
        // The ViT-H/16 of earlier timm releases (same blocks, 16-pixel patches).
        c["vit_huge_patch16_224"] = Config(dim: 1280, depth: 32, heads: 16, patch: 16, imageSize: 224, checkpointSize: 224)
        for (size, dim, depth, heads) in [("small", 384, 12, 6), ("base", 768, 12, 12), ("large", 1024, 24, 16)] {
            c["vit_\(size)_patch14_dinov2"] = Config(dim: dim, depth: depth, heads: heads, patch: 14, imageSize: 224,
                                                     checkpointSize: 518, layerScale: true, head: false,
                                                     imagenetNorm: true, tolerated: ["mask_token"])
        }
        return c
    }()

    let config: Config

    init(config: Config, name: String, weights: WeightSource) {
        self.config = config
        super.init(name: name, weights: weights)
    }

    func build(batch: Int, imageSize: Int?) throws -> Model {
        let c = config
        let d = c.dim, p = c.patch
        let size = imageSize ?? c.imageSize
        guard size >= p, size % p == 0 else {
            let lower = max(p, size / p * p)
            throw EngineError.invalidInput("\(name) needs an image size that is a multiple of its \(p)-pixel patches, got \(size) (use \(lower) or \(lower + p))")
        }
        let input = try graph.addInput("input", shape: [batch, 3, size, size])
        func t(_ n: String, _ shape: [Int], _ i: WeightInit) throws -> HostTensor { try weights.tensor(n, shape, i) }

        // Patch embedding, class token, position embedding.
        let pw = try t("patch_embed.proj.weight", [d, 3, p, p], .scaled(fanIn: 3 * p * p, gain: 1))
        let pb = try t("patch_embed.proj.bias", [d], .zeros)
        var x = try addPatchEmbedding(graph, input, weight: pw, bias: pb, patch: p, name: "patch_embed")
        alias("patch_embed", x)
        x = try addClassToken(graph, x, classToken: try t("cls_token", [1, 1, d], .std(0.02)), name: "cls_token")
        var grid0 = c.checkpointSize / p
        if let s = weights.fileShape("pos_embed"), s.count == 3, s[0] == 1, s[2] == d, s[1] > 1 {
            let g = Int(Double(s[1] - 1).squareRoot().rounded())
            if g * g == s[1] - 1 { grid0 = g }
        }
        let grid = size / p
        let pos = try t("pos_embed", [1, 1 + grid0 * grid0, d], .std(0.02))
        let resampled = try resamplePositionEmbedding(pos, numPrefixTokens: 1, from: (grid0, grid0), to: (grid, grid))
        x = try addPositionEmbedding(graph, x, pos: resampled, name: "pos_embed")

        // Blocks.
        let hidden = 4 * d
        for i in 0..<c.depth {
            let b = "blocks.\(i)"
            let w = TransformerBlockWeights(
                norm1Weight: try t("\(b).norm1.weight", [d], .ones), norm1Bias: try t("\(b).norm1.bias", [d], .zeros),
                qkvWeight: try t("\(b).attn.qkv.weight", [3 * d, d], .scaled(fanIn: d, gain: 1)),
                qkvBias: try t("\(b).attn.qkv.bias", [3 * d], .zeros),
                projWeight: try t("\(b).attn.proj.weight", [d, d], .scaled(fanIn: d, gain: 1)),
                projBias: try t("\(b).attn.proj.bias", [d], .zeros),
                layerScale1: c.layerScale ? try t("\(b).ls1.gamma", [d], .ones) : nil,
                norm2Weight: try t("\(b).norm2.weight", [d], .ones), norm2Bias: try t("\(b).norm2.bias", [d], .zeros),
                fc1Weight: try t("\(b).mlp.fc1.weight", [hidden, d], .scaled(fanIn: d, gain: 1)),
                fc1Bias: try t("\(b).mlp.fc1.bias", [hidden], .zeros),
                fc2Weight: try t("\(b).mlp.fc2.weight", [d, hidden], .scaled(fanIn: hidden, gain: 2)),
                fc2Bias: try t("\(b).mlp.fc2.bias", [d], .zeros),
                layerScale2: c.layerScale ? try t("\(b).ls2.gamma", [d], .ones) : nil)
            x = try addTransformerBlock(graph, x, weights: w, heads: c.heads, epsilon: 1e-6, name: b)
            alias(b, x, recommend: true)
            for part in ["attn", "attn.probs", "mlp.act", "mlp.fc2", "norm1", "norm2"] {
                if let v = graph.value(named: "\(b).\(part)") { alias("\(b).\(part)", v) }
            }
            if let v = graph.value(named: "\(b).mlp.fc1") { alias("\(b).mlp.fc1", v, recommend: true) }
        }
        let norm = try addLayerNorm(graph, x, weight: try t("norm.weight", [d], .ones), bias: try t("norm.bias", [d], .zeros),
                                    epsilon: 1e-6, name: "norm")
        alias("norm", norm)

        // Classifier head on the class token (timm global_pool = 'token').
        let hasHead = weights.isRandom ? c.head : (weights.fileHas("head.weight") || weights.fileHas("head.bias"))
        var output = norm
        var classes: Int? = nil
        if hasHead {
            let n = classCount("head.weight", features: d)
            let token = try addSelectToken(graph, norm, index: 0, name: "pre_logits")
            alias("pre_logits", token)
            output = try addLinear(graph, token, weight: try t("head.weight", [n, d], .scaled(fanIn: d, gain: 1)),
                                   bias: try t("head.bias", [n], .zeros), name: "head")
            alias("head", output, recommend: true)
            classes = n
        } else {
            recommended.insert("norm")
        }
        try weights.finish(tolerating: c.tolerated)
        let pre = c.imagenetNorm ? Preprocessing.imagenet(size) : Preprocessing.inception(size)
        return Model(name: name, graph: graph, input: input, output: output, family: .vit, preprocessing: pre,
                     classNames: classNames(classes), aliases: aliases, recommended: recommended, source: "")
    }
}
