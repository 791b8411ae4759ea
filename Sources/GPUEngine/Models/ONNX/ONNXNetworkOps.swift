/// ONNX operators of whole networks: convolutions, pooling, normalisation, softmax, resize, pad.
extension ONNXOpMapping {
    static func addNetworkOp(_ node: Onnx_NodeProto, attr: ONNXAttributes, importer im: Importer) throws {
        guard let output = node.output.first else { return }
        func input(_ i: Int) throws -> ValueID { try im.input(node, i) }
        switch node.opType {
        case "Softmax":
            try im.emit(Softmax(axis: attr.int("axis", -1)), [input(0)], output: output, node: node)
        case "LogSoftmax":
            try im.emit(LogSoftmax(axis: attr.int("axis", -1)), [input(0)], output: output, node: node)
        case "LayerNormalization":
            let x = try input(0)
            let rank = im.graph.shape(of: x).count
            guard try normalizeAxis(attr.int("axis", -1), rank: rank, op: "LayerNormalization") == rank - 1 else {
                throw EngineError.unsupported("LayerNormalization '\(node.name)' over more than the last axis")
            }
            var inputs = [x, try input(1)]
            if node.input.count > 2, !node.input[2].isEmpty { inputs.append(try input(2)) }
            try im.emit(LayerNorm(epsilon: attr.float("epsilon", 1e-5)), inputs, output: output, node: node)
        case "InstanceNormalization":
            // y = (x − μ_nc)/√(σ²_nc + ε) · scale[c] + bias[c], μ and σ² over the spatial axes of
            // x [N, C, D1, …]: a LayerNorm (no affine) over the flattened spatial axis, then the
            // per-channel scale and shift (PoolFormer's GroupNorm(1, C) exports this way).
            let x = try input(0)
            let shape = im.graph.shape(of: x)
            guard shape.count >= 3 else {
                throw EngineError.invalidGraph("InstanceNormalization '\(node.name)': input shape \(shape) needs rank ≥ 3 ([N, C, D1, …])")
            }
            let c = shape[1], spatial = shape[2...].reduce(1, *)
            guard spatial > 0 else { throw EngineError.invalidGraph("InstanceNormalization '\(node.name)': empty spatial axes in \(shape)") }
            let epsilon = attr.float("epsilon", 1e-5)
            let flat = try im.emitInternal(Reshape(shape: [shape[0], c, spatial]), [x], name: output + "/flat")
            let normed = try im.emitInternal(LayerNorm(epsilon: epsilon), [flat], name: output + "/norm")
            var y = try im.emitInternal(Reshape(shape: shape), [normed], name: output + "/unflat")
            let channelShape = [c] + Array(repeating: 1, count: shape.count - 2)
            for (i, f) in [(1, BinaryFunction.mul), (2, .add)] {
                guard i < node.input.count, let p = im.constant(node.input[i]) else {
                    throw EngineError.unsupported("InstanceNormalization '\(node.name)': the \(i == 1 ? "scale" : "bias") must be a constant")
                }
                guard p.count == c else {
                    throw EngineError.invalidGraph("InstanceNormalization '\(node.name)': \(i == 1 ? "scale" : "bias") has \(p.count) values for \(c) channels")
                }
                let id = try im.addConstant(HostTensor(shape: channelShape, values: p.values.map { Float($0) }), name: node.input[i] + "/channels")
                y = try im.emitInternal(Binary(f), [y, id], name: output + (i == 1 ? "/scale" : "/bias"))
            }
            try im.emit(Reshape(shape: shape), [y], output: output, node: node)
        default:
            try addConvolutionalOp(node, attr: attr, importer: im)
        }
    }
}
