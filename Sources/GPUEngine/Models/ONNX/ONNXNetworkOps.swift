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
        default:
            try addConvolutionalOp(node, attr: attr, importer: im)
        }
    }
}
