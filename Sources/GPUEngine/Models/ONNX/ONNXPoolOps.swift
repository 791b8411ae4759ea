/// ONNX pooling, batch normalisation (unfolded), resize and pad.
extension ONNXOpMapping {
    static func addPoolingOp(_ node: Onnx_NodeProto, attr: ONNXAttributes, importer im: Importer) throws {
        guard let output = node.output.first else { return }
        func input(_ i: Int) throws -> ValueID { try im.input(node, i) }
        func windowPads(_ x: ValueID, kernel: [Int], strides: [Int], dilations: [Int]) throws -> Padding2D {
            let s = im.graph.shape(of: x)
            guard s.count == 4 else { throw EngineError.unsupported("\(node.opType) '\(node.name)' needs an NCHW input, got \(s)") }
            let explicit = try attr.ints("pads").map { try Padding2D(onnx: $0) } ?? .zero
            guard let mode = AutoPad(rawValue: attr.string("auto_pad", "NOTSET")) else {
                throw EngineError.unsupported("\(node.opType) '\(node.name)': auto_pad '\(attr.string("auto_pad", ""))'")
            }
            return try resolveAutoPad(mode, input: [s[2], s[3]], kernel: kernel, strides: strides, dilations: dilations, explicit: explicit)
        }
        switch node.opType {
        case "MaxPool", "AveragePool":
            let x = try input(0)
            guard let kernel = attr.ints("kernel_shape"), kernel.count == 2 else {
                throw EngineError.unsupported("\(node.opType) '\(node.name)': only 2-D pooling with kernel_shape is supported")
            }
            let strides = attr.ints("strides") ?? [1, 1], dilations = attr.ints("dilations") ?? [1, 1]
            let pads = try windowPads(x, kernel: kernel, strides: strides, dilations: dilations)
            let ceil = attr.int("ceil_mode", 0) != 0
            if node.opType == "MaxPool" {
                guard node.output.count == 1 || node.output[1].isEmpty else {
                    throw EngineError.unsupported("MaxPool '\(node.name)' with an Indices output")
                }
                try im.emit(MaxPool2D(kernel: kernel, strides: strides, pads: pads, dilations: dilations, ceilMode: ceil),
                            [x], output: output, node: node)
            } else {
                try im.emit(AveragePool2D(kernel: kernel, strides: strides, pads: pads, dilations: dilations, ceilMode: ceil,
                                          countIncludePad: attr.int("count_include_pad", 0) != 0),
                            [x], output: output, node: node)
            }
        case "GlobalAveragePool":
            try im.emit(GlobalAveragePool(), [input(0)], output: output, node: node)
        case "BatchNormalization":
            let ids = try (0..<5).map { try input($0) }
            try im.emit(BatchNorm(epsilon: attr.float("epsilon", 1e-5)), ids, output: output, node: node)
        case "Pad":
            let x = try input(0)
            let pads: [Int]
            if node.input.count > 1, !node.input[1].isEmpty {
                guard let c = im.constant(node.input[1]) else { throw EngineError.unsupported("Pad '\(node.name)': pads must be constant") }
                pads = c.ints
            } else {
                pads = attr.ints("pads") ?? []
            }
            if node.input.count > 3, !node.input[3].isEmpty {
                throw EngineError.unsupported("Pad '\(node.name)' with an axes input")
            }
            let value = node.input.count > 2 ? (im.constant(node.input[2])?.scalar).map(Float.init) ?? 0 : attr.float("value", 0)
            let modeName = attr.string("mode", "constant")
            guard let mode = PadMode(rawValue: modeName) else { throw EngineError.unsupported("Pad '\(node.name)' mode '\(modeName)'") }
            try im.emit(Pad(pads: pads, mode: mode, value: value), [x], output: output, node: node)
        case "Resize":
            let x = try input(0)
            let s = im.graph.shape(of: x)
            guard s.count == 4 else { throw EngineError.unsupported("Resize '\(node.name)' of a non-NCHW value \(s)") }
            let modeName = attr.string("mode", "nearest")
            guard let mode = ResizeMode(rawValue: modeName) else {
                throw EngineError.unsupported("Resize '\(node.name)' mode '\(modeName)' on a value that depends on the image (nearest and linear are supported)")
            }
            let ctmName = attr.string("coordinate_transformation_mode", "half_pixel")
            guard let coordinates = ResizeCoordinates(rawValue: ctmName) else {
                throw EngineError.unsupported("Resize '\(node.name)' coordinate_transformation_mode '\(ctmName)'")
            }
            let nearest = ResizeNearestMode(rawValue: attr.string("nearest_mode", "round_prefer_floor")) ?? .roundPreferFloor
            if node.input.count > 3, let sizes = im.constant(node.input[3]), sizes.count == 4 {
                guard sizes.ints[0] == s[0], sizes.ints[1] == s[1] else {
                    throw EngineError.unsupported("Resize '\(node.name)' of the batch or channel axis")
                }
                try im.emit(Resize(size: [sizes.ints[2], sizes.ints[3]], mode: mode, coordinates: coordinates, nearestMode: nearest),
                            [x], output: output, node: node)
            } else if node.input.count > 2, let scales = im.constant(node.input[2]), scales.count == 4 {
                guard scales.values[0] == 1, scales.values[1] == 1 else {
                    throw EngineError.unsupported("Resize '\(node.name)' of the batch or channel axis")
                }
                try im.emit(Resize(scales: [Float(scales.values[2]), Float(scales.values[3])], mode: mode,
                                   coordinates: coordinates, nearestMode: nearest), [x], output: output, node: node)
            } else {
                throw EngineError.unsupported("Resize '\(node.name)': sizes or scales must be constant")
            }
        default:
            throw EngineError.unsupported("ONNX operator \(node.opType) (node '\(node.name)') on a value that depends on the image")
        }
    }
}
