import Foundation

/// A box of input pixels, half-open: columns x0 ..< x1, rows y0 ..< y1, in the coordinates of the
/// model input (the preprocessed H×W image), clipped to it. JSON: `[x0, y0, x1, y1]`.
public struct PixelBox: Codable, Sendable, Equatable, CustomStringConvertible {
    public var x0: Int, y0: Int, x1: Int, y1: Int

    public init(x0: Int, y0: Int, x1: Int, y1: Int) {
        self.x0 = x0
        self.y0 = y0
        self.x1 = x1
        self.y1 = y1
    }

    public var width: Int { x1 - x0 }
    public var height: Int { y1 - y0 }
    public var description: String { "[\(x0), \(y0), \(x1), \(y1)]" }

    public init(from decoder: any Decoder) throws {
        var c = try decoder.unkeyedContainer()
        let v = try (0..<4).map { _ in try c.decode(Int.self) }
        self.init(x0: v[0], y0: v[1], x1: v[2], y1: v[3])
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.unkeyedContainer()
        try c.encode(contentsOf: [x0, y0, x1, y1])
    }
}

/// How positions along one spatial axis of a layer map to input pixels: position i sees the input
/// pixels i·jump + start … i·jump + end (inclusive, before clipping to the image).
///
/// Composition through a window op (convolution or pooling) with kernel k, stride s, padding p
/// (before), dilation d, whose input axis is (jump J, start a, end b): output position i reads the
/// input positions i·s − p … i·s − p + d·(k − 1), so
///
///     J' = J·s,   a' = a − p·J,   b' = b + (d·(k − 1) − p)·J.
///
/// The graph input is (1, 0, 0). A global pool gives (0, 0, size − 1): its single position sees the
/// whole axis.
public struct AxisField: Sendable, Equatable {
    public var jump: Int
    public var start: Int
    public var end: Int

    public init(jump: Int, start: Int, end: Int) {
        self.jump = jump
        self.start = start
        self.end = end
    }

    /// The axis after a window op (kernel, stride, padding before it, dilation).
    public func through(kernel k: Int, stride s: Int, padBefore p: Int, dilation d: Int) -> AxisField {
        AxisField(jump: jump * s, start: start - p * jump, end: end + (d * (k - 1) - p) * jump)
    }

    /// The half-open input interval of position i, clipped to 0 ..< size.
    public func interval(_ i: Int, size: Int) -> (Int, Int) {
        let lo = i * jump + start, hi = i * jump + end + 1
        return (min(max(lo, 0), size), min(max(hi, 0), size))
    }
}

/// The receptive field of every position of a 4-D [N, C, H, W] value: one `AxisField` per axis.
public struct SpatialField: Sendable, Equatable {
    public var y: AxisField
    public var x: AxisField
    /// The value's spatial size.
    public var height: Int
    public var width: Int

    /// The input box of position (row, column) in an input of inputHeight × inputWidth pixels.
    public func box(row: Int, column: Int, inputHeight: Int, inputWidth: Int) -> PixelBox {
        let (y0, y1) = y.interval(row, size: inputHeight)
        let (x0, x1) = x.interval(column, size: inputWidth)
        return PixelBox(x0: x0, y0: y0, x1: x1, y1: y1)
    }
}

/// What one layer's activations look like for a probe, and where each position looks in the input.
///
/// - `spatial`: a CNN feature map [B, C, H, W]; positions are (row, column), boxes from `field`.
/// - `tokens`: ViT tokens [B, T, D]: the first `prefix` tokens (class / register tokens) see the whole
///   image; token t ≥ prefix is patch p = t − prefix of the `gridHeight`×`gridWidth` patch grid, and its box
///   is that patch (the patch embedding's field at row p / gridWidth, column p mod gridWidth). Attention
///   mixes all tokens, so this is the token's own patch, not what the token depends on.
/// - `vector`: [B, D] (pooled features, logits): one position, the whole image.
public enum LayerGeometry: Sendable, Equatable {
    case spatial(channels: Int, field: SpatialField)
    case tokens(count: Int, dimension: Int, prefix: Int, gridHeight: Int, gridWidth: Int, patch: SpatialField)
    case vector(dimension: Int)

    /// Units (channels or features).
    public var units: Int {
        switch self {
        case .spatial(let c, _): return c
        case .tokens(_, let d, _, _, _, _): return d
        case .vector(let d): return d
        }
    }
}

/// Receptive fields of a graph's values, computed from its convolutions, pools, pads and patch embeddings.
///
/// Rules, walking the nodes in order from the input (field (1, 0, 0) on both axes):
/// - `Conv2D`, `MaxPool2D`, `AveragePool2D`: the window rule of `AxisField` (kernel from the weight's
///   shape for a convolution; strides, top/left padding and dilations from the op). Exact.
/// - `Pad` of the two spatial axes: start and end shift by −pad·jump.
/// - `GlobalAveragePool`, or any op whose [N, C, 1, 1] output comes from a larger mapped input: the whole image.
/// - Any other op with a 4-D output (batch norm, activations, residual adds, concatenation of channels)
///   whose mapped 4-D inputs have the output's H × W: the union of those inputs' fields (the same jump is
///   required). Inputs of spatial size 1 × 1 broadcast over the map (squeeze-excitation gates) are not
///   counted: their global view would make every box the whole image.
/// - A patch embedding: a convolution (the rule above), or a reshape into a patch grid (`patchGrids`).
/// - `Reshape`, `Transpose`, resizes, transposed convolutions and everything else: no field (a layer
///   after them has no spatial box).
public struct ReceptiveFields {
    public let graph: Graph
    public let input: ValueID
    /// Fields of the 4-D values that have one.
    public private(set) var fields: [ValueID: SpatialField] = [:]
    /// Patch grids cut by reshaping: a mapped [B, C, H, W] value reshaped to [B, C, gh, ph, gw, pw]
    /// (gh·ph = H, gw·pw = W; the im2col patch embedding of the native ViT builders) → the field of patch
    /// (row, column) of the gh × gw grid: jump ph·J, start a, end b + (ph − 1)·J on each axis.
    public private(set) var patchGrids: [ValueID: SpatialField] = [:]

    public init(graph: Graph, input: ValueID) {
        self.graph = graph
        self.input = input
        let s = graph.shape(of: input)
        guard s.count == 4 else { return }
        fields[input] = SpatialField(y: AxisField(jump: 1, start: 0, end: 0), x: AxisField(jump: 1, start: 0, end: 0),
                                     height: s[2], width: s[3])
        for node in graph.nodes {
            let out = graph.shape(of: node.output)
            if node.op is Reshape, out.count == 6, let f = fields[node.inputs[0]], out[2] * out[3] == f.height, out[4] * out[5] == f.width {
                let (ph, pw) = (out[3], out[5])
                patchGrids[node.output] = SpatialField(
                    y: AxisField(jump: f.y.jump * ph, start: f.y.start, end: f.y.end + (ph - 1) * f.y.jump),
                    x: AxisField(jump: f.x.jump * pw, start: f.x.start, end: f.x.end + (pw - 1) * f.x.jump),
                    height: out[2], width: out[4])
                continue
            }
            guard out.count == 4, let f = field(of: node, outputShape: out) else { continue }
            fields[node.output] = f
        }
    }

    public init(model: Model) { self.init(graph: model.graph, input: model.input) }

    private func field(of node: Node, outputShape out: [Int]) -> SpatialField? {
        let (oh, ow) = (out[2], out[3])
        let mapped = node.inputs.compactMap { fields[$0] }
        guard !mapped.isEmpty else { return nil }
        func window(_ f: SpatialField, kernel: [Int], strides: [Int], pads: Padding2D, dilations: [Int]) -> SpatialField? {
            guard kernel.count == 2, strides.count == 2, dilations.count == 2 else { return nil }
            return SpatialField(y: f.y.through(kernel: kernel[0], stride: strides[0], padBefore: pads.top, dilation: dilations[0]),
                                x: f.x.through(kernel: kernel[1], stride: strides[1], padBefore: pads.left, dilation: dilations[1]),
                                height: oh, width: ow)
        }
        if let conv = node.op as? Conv2D {
            guard node.inputs.count >= 2, let f = fields[node.inputs[0]] else { return nil }
            let w = graph.shape(of: node.inputs[1])
            guard w.count == 4 else { return nil }
            return window(f, kernel: [w[2], w[3]], strides: conv.strides, pads: conv.pads, dilations: conv.dilations)
        }
        if let pool = node.op as? any WindowPool2D {
            guard let f = fields[node.inputs[0]] else { return nil }
            return window(f, kernel: pool.kernel, strides: pool.strides, pads: pool.pads, dilations: pool.dilations)
        }
        if let pad = node.op as? Pad {
            guard let f = fields[node.inputs[0]], pad.pads.count == 8,
                  pad.pads[0] == 0, pad.pads[1] == 0, pad.pads[4] == 0, pad.pads[5] == 0 else { return nil }
            return SpatialField(y: AxisField(jump: f.y.jump, start: f.y.start - pad.pads[2] * f.y.jump, end: f.y.end - pad.pads[2] * f.y.jump),
                                x: AxisField(jump: f.x.jump, start: f.x.start - pad.pads[3] * f.x.jump, end: f.x.end - pad.pads[3] * f.x.jump),
                                height: oh, width: ow)
        }
        if node.op is Reshape || node.op is Transpose || node.op is ConvTranspose2D || node.op is Resize { return nil }
        if oh == 1, ow == 1, mapped.contains(where: { $0.height > 1 || $0.width > 1 }) {
            // A global reduction: one position that sees the whole input.
            let s = graph.shape(of: input)
            return SpatialField(y: AxisField(jump: 0, start: 0, end: s[2] - 1), x: AxisField(jump: 0, start: 0, end: s[3] - 1),
                                height: 1, width: 1)
        }
        let same = mapped.filter { $0.height == oh && $0.width == ow }
        guard let first = same.first,
              same.allSatisfy({ $0.y.jump == first.y.jump && $0.x.jump == first.x.jump }) else { return nil }
        return SpatialField(y: AxisField(jump: first.y.jump, start: same.map(\.y.start).min()!, end: same.map(\.y.end).max()!),
                            x: AxisField(jump: first.x.jump, start: same.map(\.x.start).min()!, end: same.map(\.x.end).max()!),
                            height: oh, width: ow)
    }

    /// The probe geometry of `layer`: a mapped [B, C, H, W] map, [B, T, D] tokens after a patch embedding,
    /// or a [B, D] vector. Throws `unsupported` (naming the layer and its shape) for anything else.
    public func geometry(of layer: ValueID, name: String) throws -> LayerGeometry {
        let s = graph.shape(of: layer)
        switch s.count {
        case 2:
            return .vector(dimension: s[1])
        case 4:
            guard let f = fields[layer] else {
                throw EngineError.unsupported("layer '\(name)' \(s) is not a feature map reached from the image through convolutions, pools and elementwise ops (it follows a reshape, transpose or resize), so its positions have no box in the image; probe a convolutional layer, a token layer [B, T, D] or a vector [B, D]")
            }
            return .spatial(channels: s[1], field: f)
        case 3:
            let (t, d) = (s[1], s[2])
            // The patch embedding: the latest mapped 4-D ancestor whose H·W patches fill all but a few tokens.
            var best: (ValueID, SpatialField)?
            var stack = [layer], seen: Set<ValueID> = [layer]
            while let v = stack.popLast() {
                if let f = fields[v] ?? patchGrids[v], f.height * f.width <= t, t - f.height * f.width <= 16, f.height * f.width > 1 {
                    if v.index > (best?.0.index ?? -1) { best = (v, f) }
                    continue
                }
                guard let p = graph.values[v.index].producer else { continue }
                for i in graph.nodes[p].inputs where !seen.contains(i) {
                    seen.insert(i)
                    stack.append(i)
                }
            }
            guard let (_, patch) = best else {
                throw EngineError.unsupported("layer '\(name)' \(s) does not come from a patch embedding (no convolution output with H·W patches among its inputs), so its tokens have no box in the image; probe a token layer of a ViT, a convolutional layer or a vector [B, D]")
            }
            return .tokens(count: t, dimension: d, prefix: t - patch.height * patch.width,
                           gridHeight: patch.height, gridWidth: patch.width, patch: patch)
        default:
            throw EngineError.unsupported("layer '\(name)' has shape \(s); probe reads feature maps [B, C, H, W], tokens [B, T, D] and vectors [B, D]")
        }
    }
}

extension LayerGeometry {
    /// Positions per image: H·W for a map, T for tokens, 1 for a vector.
    public var positions: Int {
        switch self {
        case .spatial(_, let f): return f.height * f.width
        case .tokens(let t, _, _, _, _, _): return t
        case .vector: return 1
        }
    }

    /// The input box of flat position `p` (row-major h·W + w for a map, the token index for tokens) in an
    /// input of inputHeight × inputWidth pixels.
    public func box(position p: Int, inputHeight: Int, inputWidth: Int) -> PixelBox {
        let whole = PixelBox(x0: 0, y0: 0, x1: inputWidth, y1: inputHeight)
        switch self {
        case .spatial(_, let f):
            return f.box(row: p / f.width, column: p % f.width, inputHeight: inputHeight, inputWidth: inputWidth)
        case .tokens(_, _, let prefix, _, let gw, let patch):
            guard p >= prefix else { return whole }
            let q = p - prefix
            return patch.box(row: q / gw, column: q % gw, inputHeight: inputHeight, inputWidth: inputWidth)
        case .vector:
            return whole
        }
    }
}
