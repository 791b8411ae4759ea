import Foundation

// Graph-building helpers for Vision Transformers (timm's VisionTransformer, DeiT, DINOv2): patch
// embedding, prefix tokens, position embeddings (with host-side bicubic resampling), layer-scale,
// token selection, and whole pre-norm blocks. Each helper adds nodes made of existing operators
// (Reshape, Transpose, MatMul, Expand, Concat, Slice, Binary, LayerNorm, Attention, Unary) and
// weights as graph constants, and returns the output value. Names follow timm's module paths:
// a helper called with name "blocks.3" names its output "blocks.3" and its parts "blocks.3.attn", ….
// Tokens are laid out [B, T, D] (batch, tokens, embedding).

/// Patch embedding, a convolution with kernel = stride = `patch`, as im2col + GEMM:
///
///     image [B, C, H, W] → reshape [B, C, H/p, p, W/p, p] → transpose [B, H/p, W/p, C, p, p]
///           → reshape [B, N, C·p·p] (N = H/p · W/p, row-major over the patch grid)
///     tokens [B, N, D] = patches · weightᵀ + bias,   weight [D, C, p, p] seen as [D, C·p·p]
///
/// Same values as timm's `PatchEmbed` (Conv2d + flatten(2).transpose(1, 2)).
/// - Parameters:
///   - weight: the convolution weight [D, C, p, p] (timm `patch_embed.proj.weight`).
///   - bias: [D] or nil.
///   - name: the output's name (e.g. "patch_embed"); constants are "<name>.weight", "<name>.bias".
/// - Throws: when H or W is not a multiple of `patch` (resize the image first) or shapes disagree.
@discardableResult
public func addPatchEmbedding(_ graph: Graph, _ input: ValueID, weight: HostTensor, bias: HostTensor?,
                              patch: Int, name: String) throws -> ValueID {
    let shape = graph.shape(of: input)
    guard shape.count == 4 else {
        throw EngineError.shapeMismatch("patch embedding '\(name)' needs an image [B, C, H, W], got \(shape)")
    }
    let (b, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
    guard patch > 0, h % patch == 0, w % patch == 0 else {
        throw EngineError.shapeMismatch("patch embedding '\(name)': image \(h)×\(w) is not a multiple of the patch size \(patch); resize it to a multiple (e.g. \(max(1, h / max(patch, 1)) * patch)×\(max(1, w / max(patch, 1)) * patch))")
    }
    guard weight.shape.count == 4, weight.shape[1] == c, weight.shape[2] == patch, weight.shape[3] == patch else {
        throw EngineError.shapeMismatch("patch embedding '\(name)': weight must be [D, \(c), \(patch), \(patch)], got \(weight.shape)")
    }
    let d = weight.shape[0], k = c * patch * patch
    if let bias, bias.shape != [d] {
        throw EngineError.shapeMismatch("patch embedding '\(name)': bias must be [\(d)], got \(bias.shape)")
    }
    let (gh, gw) = (h / patch, w / patch)
    let split = try graph.add(Reshape(shape: [b, c, gh, patch, gw, patch]), [input], name: "\(name).split")
    let moved = try graph.add(Transpose(perm: [0, 2, 4, 1, 3, 5]), [split], name: "\(name).im2col")
    let patches = try graph.add(Reshape(shape: [b, gh * gw, k]), [moved], name: "\(name).patches")
    var operands = [patches, try graph.addConstant("\(name).weight", HostTensor(shape: [d, k], values: weight.values))]
    if let bias { operands.append(try graph.addConstant("\(name).bias", bias)) }
    return try graph.add(MatMul(transposeB: true), operands, name: name)
}

/// Prepends learned tokens: out = concat([prefix expanded over the batch, tokens], axis 1).
/// - Parameters:
///   - tokens: [B, N, D].
///   - prefix: [1, n, D] (timm `cls_token` [1, 1, D]; for a class token and registers pass them
///     concatenated in timm's order, class token first).
///   - name: the output's name; the constant is "<name>.tokens".
/// - Returns: [B, n + N, D].
@discardableResult
public func addPrefixTokens(_ graph: Graph, _ tokens: ValueID, prefix: HostTensor, name: String) throws -> ValueID {
    let shape = graph.shape(of: tokens)
    guard shape.count == 3, prefix.shape.count == 3, prefix.shape[0] == 1, prefix.shape[2] == shape[2] else {
        throw EngineError.shapeMismatch("prefix tokens '\(name)': need tokens [B, N, D] and prefix [1, n, D], got \(shape) and \(prefix.shape)")
    }
    let constant = try graph.addConstant("\(name).tokens", prefix)
    let expanded = try graph.add(Expand(shape: [shape[0], prefix.shape[1], shape[2]]), [constant], name: "\(name).expand")
    return try graph.add(Concat(axis: 1), [expanded, tokens], name: name)
}

/// Prepends a class token [1, 1, D] (timm `cls_token`): [B, N, D] → [B, 1 + N, D].
@discardableResult
public func addClassToken(_ graph: Graph, _ tokens: ValueID, classToken: HostTensor, name: String) throws -> ValueID {
    try addPrefixTokens(graph, tokens, prefix: classToken, name: name)
}

/// Adds a position embedding: out = tokens + pos (pos [1, T, D] or [T, D], broadcast over the batch).
/// When the image size differs from the training size, resample `pos` first with
/// `resamplePositionEmbedding`. The constant is "<name>.pos_embed".
@discardableResult
public func addPositionEmbedding(_ graph: Graph, _ tokens: ValueID, pos: HostTensor, name: String) throws -> ValueID {
    let shape = graph.shape(of: tokens)
    guard shape.count == 3, Array(pos.shape.suffix(2)) == Array(shape.suffix(2)),
          pos.shape.count == 2 || (pos.shape.count == 3 && pos.shape[0] == 1) else {
        throw EngineError.shapeMismatch("position embedding '\(name)': tokens \(shape) need a position embedding [1, \(shape.count == 3 ? shape[1] : 0), \(shape.last ?? 0)], got \(pos.shape) (resample it with resamplePositionEmbedding when the image size differs from training)")
    }
    let constant = try graph.addConstant("\(name).pos_embed", pos)
    return try graph.add(Binary(.add), [tokens, constant], name: name)
}

/// Layer-scale (CaiT/DINOv2 `ls1`/`ls2`): out = x ⊙ gamma, gamma [D] over the last axis.
/// The constant is "<name>.gamma".
@discardableResult
public func addLayerScale(_ graph: Graph, _ x: ValueID, gamma: HostTensor, name: String) throws -> ValueID {
    let shape = graph.shape(of: x)
    guard gamma.shape == [shape.last ?? -1] else {
        throw EngineError.shapeMismatch("layer scale '\(name)': gamma must be [\(shape.last ?? 0)] for \(shape), got \(gamma.shape)")
    }
    let constant = try graph.addConstant("\(name).gamma", gamma)
    return try graph.add(Binary(.mul), [x, constant], name: name)
}

/// Tokens `range` of x [B, T, D] → [B, range.count, D] (e.g. patch tokens: numPrefix..<T).
@discardableResult
public func addTokenSlice(_ graph: Graph, _ x: ValueID, tokens range: Range<Int>, name: String) throws -> ValueID {
    let shape = graph.shape(of: x)
    guard shape.count == 3, range.lowerBound >= 0, range.upperBound <= shape[1], !range.isEmpty else {
        throw EngineError.shapeMismatch("token slice '\(name)': tokens \(range) are not inside \(shape)")
    }
    return try graph.add(Slice(starts: [range.lowerBound], ends: [range.upperBound], axes: [1]), [x], name: name)
}

/// One token of x [B, T, D] as [B, D] (index 0 is the class token: timm's `x[:, 0]` pooling).
@discardableResult
public func addSelectToken(_ graph: Graph, _ x: ValueID, index: Int = 0, name: String) throws -> ValueID {
    let shape = graph.shape(of: x)
    guard shape.count == 3, index >= 0, index < shape[1] else {
        throw EngineError.shapeMismatch("select token '\(name)': token \(index) is not inside \(shape)")
    }
    let token = try addTokenSlice(graph, x, tokens: index..<(index + 1), name: "\(name).slice")
    return try graph.add(Reshape(shape: [shape[0], shape[2]]), [token], name: name)
}

/// The patch tokens of x [B, numPrefixTokens + N, D] → [B, N, D].
@discardableResult
public func addPatchTokens(_ graph: Graph, _ x: ValueID, numPrefixTokens: Int, name: String) throws -> ValueID {
    let shape = graph.shape(of: x)
    guard shape.count == 3, numPrefixTokens >= 0, numPrefixTokens < shape[1] else {
        throw EngineError.shapeMismatch("patch tokens '\(name)': \(numPrefixTokens) prefix tokens leave no patch tokens in \(shape)")
    }
    return try addTokenSlice(graph, x, tokens: numPrefixTokens..<shape[1], name: name)
}

/// A linear layer with PyTorch's weight layout: out = x · weightᵀ + bias, weight [out, in], bias [out].
/// Constants "<name>.weight", "<name>.bias".
@discardableResult
public func addLinear(_ graph: Graph, _ x: ValueID, weight: HostTensor, bias: HostTensor?, name: String) throws -> ValueID {
    var operands = [x, try graph.addConstant("\(name).weight", weight)]
    if let bias { operands.append(try graph.addConstant("\(name).bias", bias)) }
    return try graph.add(MatMul(transposeB: true), operands, name: name)
}

/// Layer norm over the last axis with constant weight and bias [D] ("<name>.weight", "<name>.bias").
@discardableResult
public func addLayerNorm(_ graph: Graph, _ x: ValueID, weight: HostTensor, bias: HostTensor?, epsilon: Float,
                         name: String) throws -> ValueID {
    var operands = [x, try graph.addConstant("\(name).weight", weight)]
    if let bias { operands.append(try graph.addConstant("\(name).bias", bias)) }
    return try graph.add(LayerNorm(epsilon: epsilon), operands, name: name)
}

/// Multi-head self-attention as in timm's `Attention` (fused path):
///
///     qkv = x·Wqkvᵀ + b [B, T, 3D] → reshape [B, T, 3, H, Dh] → transpose [3, B, H, T, Dh] → q, k, v
///     o = Attention(scale: Dh^−½)(q, k, v) [B, H, T, Dh] → transpose [B, T, H, Dh] → reshape [B, T, D]
///     out = o·Wprojᵀ + bproj
///
/// Also adds "<name>.probs" = AttentionProbabilities(q, k) [B, H, T, T], which runs only when a
/// target needs it (the attention map for objectives). Parts: "<name>.qkv", "<name>.q", "<name>.k",
/// "<name>.v", "<name>.sdpa", "<name>.proj" (the output is named `name`).
@discardableResult
public func addSelfAttention(_ graph: Graph, _ x: ValueID, qkvWeight: HostTensor, qkvBias: HostTensor?,
                             projWeight: HostTensor, projBias: HostTensor?, heads: Int, name: String) throws -> ValueID {
    let shape = graph.shape(of: x)
    guard shape.count == 3, heads > 0, shape[2] % heads == 0 else {
        throw EngineError.shapeMismatch("self-attention '\(name)': needs tokens [B, T, D] with D a multiple of \(heads) heads, got \(shape)")
    }
    let (b, t, d) = (shape[0], shape[1], shape[2])
    let dh = d / heads
    let qkv = try addLinear(graph, x, weight: qkvWeight, bias: qkvBias, name: "\(name).qkv")
    guard graph.shape(of: qkv) == [b, t, 3 * d] else {
        throw EngineError.shapeMismatch("self-attention '\(name)': qkv weight must be [\(3 * d), \(d)], got \(qkvWeight.shape)")
    }
    let split = try graph.add(Reshape(shape: [b, t, 3, heads, dh]), [qkv], name: "\(name).qkv_split")
    let heads5 = try graph.add(Transpose(perm: [2, 0, 3, 1, 4]), [split], name: "\(name).qkv_heads")
    var qkvValues: [ValueID] = []
    for (i, part) in ["q", "k", "v"].enumerated() {
        let s = try graph.add(Slice(starts: [i], ends: [i + 1], axes: [0]), [heads5], name: "\(name).\(part)_slice")
        qkvValues.append(try graph.add(Reshape(shape: [b, heads, t, dh]), [s], name: "\(name).\(part)"))
    }
    let scale = Attention.defaultScale(headDim: dh)
    _ = try graph.add(AttentionProbabilities(scale: scale), [qkvValues[0], qkvValues[1]], name: "\(name).probs")
    let o = try graph.add(Attention(scale: scale), qkvValues, name: "\(name).sdpa")
    let merged = try graph.add(Transpose(perm: [0, 2, 1, 3]), [o], name: "\(name).merge")
    let flat = try graph.add(Reshape(shape: [b, t, d]), [merged], name: "\(name).merge_flat")
    let out = try addLinear(graph, flat, weight: projWeight, bias: projBias, name: "\(name).proj")
    try graph.rename(out, to: name)
    return out
}

/// The weights of one pre-norm transformer block, in PyTorch layouts (Linear weights [out, in]).
public struct TransformerBlockWeights: Sendable {
    public var norm1Weight: HostTensor, norm1Bias: HostTensor?
    public var qkvWeight: HostTensor, qkvBias: HostTensor?
    public var projWeight: HostTensor, projBias: HostTensor?
    /// Layer-scale after attention ([D]; DINOv2 `ls1.gamma`), nil for none.
    public var layerScale1: HostTensor?
    public var norm2Weight: HostTensor, norm2Bias: HostTensor?
    public var fc1Weight: HostTensor, fc1Bias: HostTensor?
    public var fc2Weight: HostTensor, fc2Bias: HostTensor?
    /// Layer-scale after the MLP ([D]; DINOv2 `ls2.gamma`), nil for none.
    public var layerScale2: HostTensor?

    public init(norm1Weight: HostTensor, norm1Bias: HostTensor?, qkvWeight: HostTensor, qkvBias: HostTensor?,
                projWeight: HostTensor, projBias: HostTensor?, layerScale1: HostTensor? = nil,
                norm2Weight: HostTensor, norm2Bias: HostTensor?, fc1Weight: HostTensor, fc1Bias: HostTensor?,
                fc2Weight: HostTensor, fc2Bias: HostTensor?, layerScale2: HostTensor? = nil) {
        self.norm1Weight = norm1Weight; self.norm1Bias = norm1Bias
        self.qkvWeight = qkvWeight; self.qkvBias = qkvBias
        self.projWeight = projWeight; self.projBias = projBias
        self.layerScale1 = layerScale1
        self.norm2Weight = norm2Weight; self.norm2Bias = norm2Bias
        self.fc1Weight = fc1Weight; self.fc1Bias = fc1Bias
        self.fc2Weight = fc2Weight; self.fc2Bias = fc2Bias
        self.layerScale2 = layerScale2
    }
}

/// One pre-norm transformer block (timm `Block`):
///
///     x = x + ls1(attn(norm1(x)))
///     x = x + ls2(fc2(GELU(fc1(norm2(x)))))
///
/// GELU is the exact (erf) form unless `tanhGELU`. Parts are named after timm's module paths:
/// "<name>.norm1", "<name>.attn" (see `addSelfAttention`), "<name>.ls1", "<name>.norm2",
/// "<name>.mlp.fc1", "<name>.mlp.act", "<name>.mlp.fc2", "<name>.ls2"; the output is `name`.
@discardableResult
public func addTransformerBlock(_ graph: Graph, _ x: ValueID, weights w: TransformerBlockWeights, heads: Int,
                                epsilon: Float = 1e-6, tanhGELU: Bool = false, name: String) throws -> ValueID {
    let n1 = try addLayerNorm(graph, x, weight: w.norm1Weight, bias: w.norm1Bias, epsilon: epsilon, name: "\(name).norm1")
    var a = try addSelfAttention(graph, n1, qkvWeight: w.qkvWeight, qkvBias: w.qkvBias, projWeight: w.projWeight,
                                 projBias: w.projBias, heads: heads, name: "\(name).attn")
    if let g = w.layerScale1 { a = try addLayerScale(graph, a, gamma: g, name: "\(name).ls1") }
    let r1 = try graph.add(Binary(.add), [x, a], name: "\(name).residual1")
    let n2 = try addLayerNorm(graph, r1, weight: w.norm2Weight, bias: w.norm2Bias, epsilon: epsilon, name: "\(name).norm2")
    let h = try addLinear(graph, n2, weight: w.fc1Weight, bias: w.fc1Bias, name: "\(name).mlp.fc1")
    let act = try graph.add(Unary(tanhGELU ? .geluTanh : .geluErf), [h], name: "\(name).mlp.act")
    var m = try addLinear(graph, act, weight: w.fc2Weight, bias: w.fc2Bias, name: "\(name).mlp.fc2")
    if let g = w.layerScale2 { m = try addLayerScale(graph, m, gamma: g, name: "\(name).ls2") }
    return try graph.add(Binary(.add), [r1, m], name: name)
}

/// Resamples the grid part of an absolute position embedding to a new patch grid, on the host,
/// like timm's `resample_abs_pos_embed` (F.interpolate, mode 'bicubic', align_corners=False):
///
///     pos [1, P + h·w, D] (or [P + h·w, D]) → [1, P + h'·w', D]: the P prefix tokens (class,
///     registers) are kept; the grid [h, w, D] is resized per channel to [h', w', D].
///
/// - antialias true (timm's default, PyTorch's separable antialiased path, same as PIL BICUBIC):
///   cubic a = −0.5, support widened by the scale when shrinking, taps outside the grid dropped and
///   the weights renormalised.
/// - antialias false (PyTorch's plain bicubic, same as OpenCV INTER_CUBIC): cubic A = −0.75,
///   source x = (i + ½)·in/out − ½, 4 taps with indices clamped to the grid.
/// Returns `pos` unchanged when the grid size does not change. Weights are computed in Double.
public func resamplePositionEmbedding(_ pos: HostTensor, numPrefixTokens: Int, from: (h: Int, w: Int),
                                      to: (h: Int, w: Int), antialias: Bool = true) throws -> HostTensor {
    guard pos.shape.count == 2 || (pos.shape.count == 3 && pos.shape[0] == 1) else {
        throw EngineError.shapeMismatch("position embedding must be [1, T, D] or [T, D], got \(pos.shape)")
    }
    let t = pos.shape[pos.shape.count - 2], d = pos.shape[pos.shape.count - 1]
    guard numPrefixTokens >= 0, from.h > 0, from.w > 0, to.h > 0, to.w > 0,
          t == numPrefixTokens + from.h * from.w else {
        throw EngineError.shapeMismatch("position embedding \(pos.shape) does not hold \(numPrefixTokens) prefix tokens and a \(from.h)×\(from.w) grid")
    }
    if from == to { return pos }
    let wy = bicubicWeights(input: from.h, output: to.h, antialias: antialias)
    let wx = bicubicWeights(input: from.w, output: to.w, antialias: antialias)
    var out = [Float](repeating: 0, count: (numPrefixTokens + to.h * to.w) * d)
    for i in 0..<(numPrefixTokens * d) { out[i] = pos.values[i] }
    // Width pass into [h, w', D], then height pass into [h', w', D] (PyTorch's order).
    var rowPass = [Double](repeating: 0, count: from.h * to.w * d)
    for y in 0..<from.h {
        for x in 0..<to.w {
            for (src, weight) in wx[x] {
                let s = (numPrefixTokens + y * from.w + src) * d
                let o = (y * to.w + x) * d
                for c in 0..<d { rowPass[o + c] += weight * Double(pos.values[s + c]) }
            }
        }
    }
    for y in 0..<to.h {
        for x in 0..<to.w {
            let o = (numPrefixTokens + y * to.w + x) * d
            for c in 0..<d {
                var sum = 0.0
                for (src, weight) in wy[y] { sum += weight * rowPass[(src * to.w + x) * d + c] }
                out[o + c] = Float(sum)
            }
        }
    }
    let shape = pos.shape.count == 3 ? [1, numPrefixTokens + to.h * to.w, d] : [numPrefixTokens + to.h * to.w, d]
    return HostTensor(shape: shape, values: out)
}

/// Per output index along one axis, the (input index, weight) taps of PyTorch's bicubic resize
/// (align_corners = False), antialiased or not (see `resamplePositionEmbedding`).
func bicubicWeights(input n: Int, output m: Int, antialias: Bool) -> [[(Int, Double)]] {
    func cubic(_ x: Double, _ a: Double) -> Double {
        let x = abs(x)
        if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
        if x < 2 { return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a }
        return 0
    }
    let scale = Double(n) / Double(m)
    return (0..<m).map { i -> [(Int, Double)] in
        if antialias {
            let support = scale >= 1 ? 2 * scale : 2
            let inverse = scale >= 1 ? 1 / scale : 1
            let center = scale * (Double(i) + 0.5)
            let first = max(Int(center - support + 0.5), 0)
            let last = min(Int(center + support + 0.5), n)
            var taps: [(Int, Double)] = []
            for j in first..<max(first, last) {
                taps.append((j, cubic((Double(j) - center + 0.5) * inverse, -0.5)))
            }
            let total = taps.reduce(0) { $0 + $1.1 }
            return total == 0 ? taps : taps.map { ($0.0, $0.1 / total) }
        } else {
            let real = scale * (Double(i) + 0.5) - 0.5
            let index = min(Int(real.rounded(.down)), n - 1)
            let lambda = min(max(real - Double(index), 0), 1)
            let a = -0.75
            let coefficients = [cubic(lambda + 1, a), cubic(lambda, a), cubic(1 - lambda, a), cubic(2 - lambda, a)]
            return (0..<4).map { j in (min(max(index - 1 + j, 0), n - 1), coefficients[j]) }
        }
    }
}
