/// ONNX convolution-family operators.
extension ONNXPatterns {
    /// Conv (→ BatchNormalization folded into its weights) (→ Relu/Clip/… fused as its epilogue).
    func convolution(_ i: Int, _ im: Importer) throws -> Match? {
        let node = nodes[i]
        // The input may be a folded constant too (EdgeNeXt projects its Fourier position encoding
        // with a Conv): it then enters the graph as a constant and the Conv runs on it.
        guard node.input.count >= 2, im.isRuntime(node.input[0]) || constants(node.input[0]) != nil,
              var w = constants(node.input[1])?.host,
              var out = node.output.first else { return nil }
        let attr = ONNXAttributes(node)
        let x = try im.value(node.input[0], node: node)
        let xs = im.graph.shape(of: x)
        guard xs.count == 4, w.shape.count == 4 else {
            throw EngineError.unsupported("Conv '\(node.name)': only 2-D convolutions (NCHW input, 4-D weight) are supported")
        }
        let kernel = attr.ints("kernel_shape") ?? [w.shape[2], w.shape[3]]
        let strides = attr.ints("strides") ?? [1, 1], dilations = attr.ints("dilations") ?? [1, 1]
        let explicit = try attr.ints("pads").map { try Padding2D(onnx: $0) } ?? .zero
        guard let mode = AutoPad(rawValue: attr.string("auto_pad", "NOTSET")) else {
            throw EngineError.unsupported("Conv '\(node.name)': auto_pad '\(attr.string("auto_pad", ""))'")
        }
        let pads = try resolveAutoPad(mode, input: [xs[2], xs[3]], kernel: kernel, strides: strides,
                                      dilations: dilations, explicit: explicit)
        var bias = node.input.count > 2 ? constants(node.input[2])?.host : nil
        var consumed: Set<Int> = [i]
        // Fold a following inference-mode BatchNormalization.
        if fuse, let bnI = onlyConsumer(out, ["BatchNormalization"]), nodes[bnI].input.count == 5,
           let gamma = constants(nodes[bnI].input[1])?.host, let beta = constants(nodes[bnI].input[2])?.host,
           let mean = constants(nodes[bnI].input[3])?.host, let variance = constants(nodes[bnI].input[4])?.host,
           let bnOut = nodes[bnI].output.first {
            let eps = ONNXAttributes(nodes[bnI]).float("epsilon", 1e-5)
            (w, bias) = try foldBatchNorm(convWeight: w, convBias: bias, gamma: gamma, beta: beta, mean: mean,
                                          variance: variance, eps: eps)
            consumed.insert(bnI)
            out = bnOut
        }
        // Fuse a following activation.
        var activation: Unary? = nil
        if fuse, let actI = onlyConsumer(out, ["Relu", "Clip", "LeakyRelu", "HardSwish", "HardSigmoid", "Sigmoid"]),
           let actOut = nodes[actI].output.first {
            let a = nodes[actI], aa = ONNXAttributes(a)
            switch a.opType {
            case "Relu": activation = Unary(.relu)
            case "Sigmoid": activation = Unary(.sigmoid)
            case "HardSwish": activation = Unary(.hardSwish)
            case "LeakyRelu": activation = Unary(.leakyRelu, alpha: aa.float("alpha", 0.01))
            case "HardSigmoid": activation = Unary(.hardSigmoid, alpha: aa.float("alpha", 0.2), beta: aa.float("beta", 0.5))
            default:
                let lo = (a.input.count > 1 ? constants(a.input[1])?.scalar : nil).map(Float.init) ?? aa.values["min"]?.f
                let hi = (a.input.count > 2 ? constants(a.input[2])?.scalar : nil).map(Float.init) ?? aa.values["max"]?.f
                if let lo, let hi { activation = Unary(.clip, alpha: lo, beta: hi) }
            }
            if activation != nil { consumed.insert(actI); out = actOut }
        }
        var inputs = [x, try im.addConstant(w, name: node.input[1])]
        if let bias { inputs.append(try im.addConstant(bias, name: node.input.count > 2 ? node.input[2] : node.input[1] + ".bias")) }
        let op = Conv2D(strides: strides, dilations: dilations, pads: pads, groups: attr.int("group", 1), activation: activation)
        try im.emit(op, inputs, output: out, node: nodes[consumed.max() ?? i])
        return Match(consumed: consumed)
    }
}

extension ONNXOpMapping {
    static func addConvolutionalOp(_ node: Onnx_NodeProto, attr: ONNXAttributes, importer im: Importer) throws {
        guard let output = node.output.first else { return }
        func input(_ i: Int) throws -> ValueID { try im.input(node, i) }
        func spatialShape(_ v: ValueID) throws -> [Int] {
            let s = im.graph.shape(of: v)
            guard s.count == 4 else { throw EngineError.unsupported("\(node.opType) '\(node.name)' needs an NCHW input, got \(s)") }
            return [s[2], s[3]]
        }
        switch node.opType {
        case "ConvTranspose":
            let x = try input(0)
            let explicit = try attr.ints("pads").map { try Padding2D(onnx: $0) } ?? .zero
            guard attr.string("auto_pad", "NOTSET") == "NOTSET" else {
                throw EngineError.unsupported("ConvTranspose '\(node.name)' with auto_pad (give explicit pads)")
            }
            var inputs = [x, try input(1)]
            if node.input.count > 2, !node.input[2].isEmpty { inputs.append(try input(2)) }
            _ = try spatialShape(x)
            try im.emit(ConvTranspose2D(strides: attr.ints("strides") ?? [1, 1], dilations: attr.ints("dilations") ?? [1, 1],
                                        pads: explicit, outputPadding: attr.ints("output_padding") ?? [0, 0],
                                        groups: attr.int("group", 1)), inputs, output: output, node: node)
        default:
            try addPoolingOp(node, attr: attr, importer: im)
        }
    }
}
