import Foundation

/// The image input of an imported model and the end of its graph.
///
/// amgpu feeds every model an NCHW RGB image x [batch, 3, H, W] (normalized per channel); models
/// that take something else get a prologue in front of their own graph:
/// - grey (1 channel): g = 0.299·x_R + 0.587·x_G + 0.114·x_B  → [batch, 1, H, W] (ITU-R 601 luma, as PIL's "L");
/// - NHWC ([batch, H, W, C], TensorFlow/Keras/TFLite exports): Transpose(perm [0, 2, 3, 1]); when
///   the model's first node is tf2onnx's Transpose(perm [0, 3, 1, 2]) back to NCHW, both cancel and
///   neither is emitted.
/// A symbolic batch takes `batch`; symbolic H, W take the card's input size (flags, config.json, metadata).
extension Importer {
    struct AdaptedInput {
        /// The engine's input [batch, 3, H, W].
        var input: ValueID
        /// What the ONNX graph's input name maps to (the model's own layout).
        var value: ValueID
        var layout: InputLayout
        var channels: Int
    }

    func addImageInput(_ proto: Onnx_ValueInfoProto, dims: [Int?]) throws -> AdaptedInput {
        let name = proto.name
        let shapeText = "[" + dims.map { $0.map(String.init) ?? "?" }.joined(separator: ", ") + "]"
        func isChannelCount(_ d: Int?) -> Bool { d == 1 || d == 3 }
        let consumers = graphProto.node.filter { $0.input.contains(name) }
        func isToNCHW(_ n: Onnx_NodeProto) -> Bool { n.opType == "Transpose" && ONNXAttributes(n).ints("perm") == [0, 3, 1, 2] }
        let transposedToNCHW = consumers.contains(where: isToNCHW)

        // 1. Layout: the card's (flag, metadata), else from the shape and the first consumers.
        if let forced = cardLayers.first(where: { $0.layout != nil }), let l = forced.layout {
            layout = l
            layoutSource = forced.source("layout")
        } else if transposedToNCHW && (dims[3] == nil || isChannelCount(dims[3])) {
            layout = .nhwc
            layoutSource = "the model's input shape \(shapeText) and its Transpose(perm [0, 3, 1, 2])"
        } else if isChannelCount(dims[1]) {
            layout = .nchw
            layoutSource = "the model's input shape \(shapeText)"
        } else if isChannelCount(dims[3]) {
            layout = .nhwc
            layoutSource = "the model's input shape \(shapeText) (channels last)"
        } else {
            layout = .nchw
        }
        let c = (layout == .nchw ? dims[1] : dims[3]) ?? 3
        guard c == 3 || c == 1 else {
            throw EngineError.unsupported("input '\(name)' \(shapeText) has \(c) channels as \(layout.rawValue); amgpu feeds RGB (3) or grey (1) images"
                + (layout == .nchw ? "; if the input is channels-last [N, H, W, C], pass --layout nhwc" : ""))
        }
        channels = c

        // 2. Size: static dimensions win; symbolic ones take the card's size.
        let hDim = layout == .nchw ? dims[2] : dims[1], wDim = layout == .nchw ? dims[3] : dims[2]
        var requested: (h: Int, w: Int, source: String, fromFlag: Bool)?
        if let imageSize { requested = (imageSize, imageSize, "flag: --size", true) }
        else if let l = cardLayers.first(where: { $0.height != nil }), let h = l.height {
            requested = (h, l.width ?? h, l.source("input_size"), l.origin == "flag")
        }
        if let hDim, let wDim {
            if let r = requested, (r.h, r.w) != (hDim, wDim) {
                if r.fromFlag {
                    throw EngineError.invalidInput("this model takes \(hDim)×\(wDim) images; --size \(r.h == r.w ? "\(r.h)" : "\(r.h),\(r.w)") does not fit it")
                }
                layoutNotes.append("\(r.source) asks for \(r.h)×\(r.w), but the model's input is fixed at \(hDim)×\(wDim): using \(hDim)×\(wDim)")
            }
            inputHeight = hDim; inputWidth = wDim
            inputSizeSource = "the model's input shape \(shapeText)"
        } else {
            guard let r = requested else {
                throw EngineError.invalidInput("input '\(name)' \(shapeText) has a symbolic size; pass the image size (e.g. --size 224, or --size H,W)")
            }
            inputHeight = hDim ?? r.h; inputWidth = wDim ?? r.w
            inputSizeSource = r.source
        }
        if dims[0] == nil { layoutNotes.append("dynamic batch: the graph is built for batch \(batch)") }

        // 3. The engine input and the prologue.
        let adapted = layout != .nchw || channels != 3
        let input = try graph.addInput(adapted ? uniqueConstantName(name + "/rgb_nchw") : name,
                                       shape: [batch, 3, inputHeight, inputWidth])
        var nchw = input
        if channels == 1 {
            let luma = try addConstant(HostTensor(shape: [1, 3, 1, 1], values: [0.299, 0.587, 0.114]), name: name + "/luma_weights")
            let weighted = try emitInternal(Binary(.mul), [input, luma], name: name + "/luma_weighted")
            nchw = try emitInternal(Reduce(.sum, axes: [1], keepDims: true), [weighted], name: name + "/grey")
        }
        nchwInput = nchw
        var value = nchw
        if layout == .nhwc && consumers.contains(where: { !isToNCHW($0) }) {
            value = try emitInternal(Transpose(perm: [0, 2, 3, 1]), [nchw], name: name + "/nhwc")
        }
        return AdaptedInput(input: input, value: value, layout: layout, channels: channels)
    }

    /// When the graph's output is Softmax or LogSoftmax of class scores over the class axis
    /// (followed by nothing but reshapes; Identity/Flatten/Squeeze import as reshapes), returns
    /// the scores before it, shaped like the output [batch, K], and which activation it was;
    /// otherwise the output itself.
    func logitsBeforeSoftmax(_ graphOutput: ValueID) throws -> (ValueID, OutputActivation?) {
        let outShape = graph.shape(of: graphOutput)
        guard outShape.count == 2, outShape[1] > 1 else { return (graphOutput, nil) }
        var v = graphOutput
        for _ in 0..<16 {
            guard let p = graph.values[v.index].producer else { break }
            let node = graph.nodes[p]
            if node.op is Reshape { v = node.inputs[0]; continue }
            let kind: OutputActivation
            let axis: Int
            if let sm = node.op as? Softmax { kind = .softmax; axis = sm.axis }
            else if let sm = node.op as? LogSoftmax { kind = .logSoftmax; axis = sm.axis }
            else { break }
            let x = node.inputs[0]
            let xs = graph.shape(of: x)
            let a = try normalizeAxis(axis, rank: xs.count, op: kind.rawValue)
            // Over the classes only: every other axis but the batch has extent 1.
            guard xs[a] == outShape[1], xs.indices.allSatisfy({ $0 == a || $0 == 0 || xs[$0] == 1 }) else { break }
            if xs == outShape { return (x, kind) }
            return (try graph.add(Reshape(shape: outShape), [x], name: uniqueConstantName(graph.name(of: x) + "/logits")), kind)
        }
        return (graphOutput, nil)
    }
}
