import Foundation

/// Maps ONNX nodes (after constant folding) to engine operators.
enum ONNXOpMapping {
    /// ONNX op types that can run on non-constant inputs.
    static let supported: Set<String> = [
        "Conv", "ConvTranspose", "BatchNormalization", "MaxPool", "AveragePool", "GlobalAveragePool",
        "Relu", "Sigmoid", "Tanh", "Erf", "Exp", "Log", "Sqrt", "Neg", "Abs", "Reciprocal", "Clip", "LeakyRelu",
        "HardSigmoid", "HardSwish", "Gelu", "Identity", "Dropout",
        "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "MatMul", "Gemm",
        "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Concat", "Slice", "Gather", "Expand",
        "ReduceMean", "ReduceSum", "ReduceL2", "Softmax", "LogSoftmax", "LayerNormalization", "Resize", "Pad",
        "Cos", "Sin", "Mod", "Split", "InstanceNormalization", "Tile",
    ]

    /// ONNX op types that are folded at load time but have no run-time mapping: on a value that depends
    /// on the image they are refused up front, with the unsupported operators (ONNXImporter.run).
    static let loadTimeOnly: Set<String> = [
        "CumSum", "GatherND", "ConstantOfShape", "Equal", "Less", "Greater", "Not", "And", "Or", "Where", "Range",
        "Floor", "Ceil", "ReduceProd",
    ]

    /// Tile's repeats split into stages that each keep the intermediate rank ≤ `maxRank`: every stage
    /// repeats at most maxRank − rank axes that need a split (r > 1 and size > 1); the size-1 axes are
    /// repeated in the first stage (they need no split). One stage (all ones) when nothing is repeated.
    /// Throws for a rank-`maxRank` input that needs a split.
    static func tileStages(shape: [Int], repeats: [Int], node: String) throws -> [[Int]] {
        let rank = shape.count
        let splitAxes = shape.indices.filter { repeats[$0] > 1 && shape[$0] > 1 }
        let perStage = maxRank - rank
        if !splitAxes.isEmpty && perStage < 1 {
            throw EngineError.unsupported("Tile '\(node)': repeating a rank-\(rank) tensor \(shape) needs rank \(rank + 1); amgpu supports tensors of rank at most \(maxRank)")
        }
        var first = Array(repeating: 1, count: rank)
        for i in shape.indices where shape[i] == 1 { first[i] = repeats[i] }
        var stages: [[Int]] = []
        var start = 0
        repeat {
            var stage = stages.isEmpty ? first : Array(repeating: 1, count: rank)
            for i in splitAxes[start..<min(start + max(perStage, 1), splitAxes.count)] { stage[i] = repeats[i] }
            stages.append(stage)
            start += max(perStage, 1)
        } while start < splitAxes.count
        return stages
    }

    static func add(_ node: Onnx_NodeProto, importer im: Importer) throws {
        let attr = ONNXAttributes(node)
        guard let output = node.output.first else { return }
        func input(_ i: Int) throws -> ValueID { try im.input(node, i) }
        func constInput(_ i: Int, _ what: String) throws -> ConstTensor {
            guard i < node.input.count, let c = im.constant(node.input[i]) else {
                throw EngineError.unsupported("node '\(node.name)' (\(node.opType)): \(what) must be a constant (it depends on the image)")
            }
            return c
        }
        func optionalConst(_ i: Int) -> ConstTensor? { i < node.input.count ? im.constant(node.input[i]) : nil }
        func unary(_ op: Unary) throws { try im.emit(op, [input(0)], output: output, node: node) }
        func rank(_ i: Int) throws -> Int { im.graph.shape(of: try input(i)).count }

        switch node.opType {
        case "Identity", "Dropout":
            im.values[output] = try input(0)
        case "Cast":
            // Casting the (float) image to float is the identity; other casts of image data are not supported.
            guard attr.int("to", 1) == 1 else {
                throw EngineError.unsupported("Cast '\(node.name)' of a value that depends on the image to ONNX type \(attr.int("to", 1))")
            }
            im.values[output] = try input(0)
        case "Relu": try unary(Unary(.relu))
        case "Sigmoid": try unary(Unary(.sigmoid))
        case "Tanh": try unary(Unary(.tanh))
        case "Erf": try unary(Unary(.erf))
        case "Exp": try unary(Unary(.exp))
        case "Log": try unary(Unary(.log))
        case "Sqrt": try unary(Unary(.sqrt))
        case "Neg": try unary(Unary(.neg))
        case "Abs": try unary(Unary(.abs))
        case "Reciprocal": try unary(Unary(.reciprocal))
        case "Cos": try unary(Unary(.cos))
        case "Sin": try unary(Unary(.sin))
        case "Mod":
            try im.emit(Binary(attr.int("fmod", 0) != 0 ? .fmod : .mod), [input(0), input(1)], output: output, node: node)
        case "LeakyRelu": try unary(Unary(.leakyRelu, alpha: attr.float("alpha", 0.01)))
        case "HardSigmoid": try unary(Unary(.hardSigmoid, alpha: attr.float("alpha", 0.2), beta: attr.float("beta", 0.5)))
        case "HardSwish": try unary(Unary(.hardSwish))
        case "Gelu": try unary(Unary(attr.string("approximate", "none") == "tanh" ? .geluTanh : .geluErf))
        case "Clip":
            let lo = optionalConst(1)?.scalar.map(Float.init) ?? attr.values["min"].map { $0.f } ?? -Float.greatestFiniteMagnitude
            let hi = optionalConst(2)?.scalar.map(Float.init) ?? attr.values["max"].map { $0.f } ?? Float.greatestFiniteMagnitude
            try unary(lo == 0 && hi >= Float.greatestFiniteMagnitude ? Unary(.relu) : Unary(.clip, alpha: lo, beta: hi))
        case "Add", "Sub", "Mul", "Div", "Max", "Min":
            let f: BinaryFunction = ["Add": .add, "Sub": .sub, "Mul": .mul, "Div": .div, "Max": .max, "Min": .min][node.opType] ?? .add
            // x / c and x * c with a scalar constant become one affine kernel.
            if let c = optionalConst(1)?.scalar, im.isRuntime(node.input[0]), f == .mul || f == .div || f == .add || f == .sub {
                let v = Float(c)
                let op: Unary = f == .mul ? .scale(v) : f == .div ? .scale(1 / v) : Unary(.affine, alpha: 1, beta: f == .add ? v : -v)
                try im.emit(op, [input(0)], output: output, node: node)
            } else {
                try im.emit(Binary(f), [input(0), input(1)], output: output, node: node)
            }
        case "Pow":
            if let e = optionalConst(1)?.scalar, e == 2 {
                try unary(Unary(.square))
            } else if let e = optionalConst(1)?.scalar, e == 0.5 {
                try unary(Unary(.sqrt))
            } else {
                try im.emit(Binary(.pow), [input(0), input(1)], output: output, node: node)
            }
        case "MatMul":
            let a = try input(0), b = try input(1)
            var sa = im.graph.shape(of: a), sb = im.graph.shape(of: b)
            // ONNX MatMul promotes rank-1 operands.
            var av = a, bv = b
            if sa.count == 1 { av = try im.emitInternal(Reshape(shape: [1, sa[0]]), [a], name: output + "/lhs"); sa = [1, sa[0]] }
            if sb.count == 1 { bv = try im.emitInternal(Reshape(shape: [sb[0], 1]), [b], name: output + "/rhs"); sb = [sb[0], 1] }
            let product = try im.emitInternal(MatMul(), [av, bv], name: output + "/matmul")
            let expected = try onnxMatMulShape(im.graph.shape(of: a), im.graph.shape(of: b))
            try im.emit(Reshape(shape: expected), [product], output: output, node: node)
        case "Gemm":
            let transA = attr.int("transA", 0) != 0, transB = attr.int("transB", 0) != 0
            let alpha = attr.float("alpha", 1), beta = attr.float("beta", 1)
            var inputs = [try input(0), try input(1)]
            for (i, v) in inputs.enumerated() where im.graph.shape(of: v).count != 2 {
                throw EngineError.invalidGraph("Gemm '\(node.name)': input \(i) has shape \(im.graph.shape(of: v)), but Gemm multiplies 2-D matrices")
            }
            var biasAdd: ValueID? = nil
            if node.input.count > 2, !node.input[2].isEmpty {
                let n = im.graph.shape(of: inputs[1])[transB ? 0 : 1]
                if alpha == 1, let c = im.constant(node.input[2]), c.count == n {
                    inputs.append(try im.addConstant(HostTensor(shape: [n], values: c.values.map { Float($0) * beta }), name: node.input[2] + "/bias"))
                } else {
                    biasAdd = try input(2)
                }
            }
            var result = try im.emitInternal(MatMul(transposeA: transA, transposeB: transB), inputs, name: output + "/gemm")
            if alpha != 1 { result = try im.emitInternal(Unary.scale(alpha), [result], name: output + "/alpha") }
            if let biasAdd {
                var c = biasAdd
                if beta != 1 { c = try im.emitInternal(Unary.scale(beta), [c], name: output + "/beta") }
                result = try im.emitInternal(Binary(.add), [result, c], name: output + "/bias")
            }
            try im.emit(Reshape(shape: im.graph.shape(of: result)), [result], output: output, node: node)
        case "Reshape":
            let target = try constInput(1, "the target shape").ints
            try im.emit(Reshape(shape: target), [input(0)], output: output, node: node)
        case "Flatten":
            let shape = im.graph.shape(of: try input(0))
            let axis = try normalizeAxis(attr.int("axis", 1), rank: shape.count + 1, op: "Flatten")
            try im.emit(Reshape(shape: [shape[..<axis].reduce(1, *), shape[axis...].reduce(1, *)]), [input(0)], output: output, node: node)
        case "Squeeze", "Unsqueeze":
            let x = try input(0)
            var shape = im.graph.shape(of: x)
            let axes = optionalConst(1)?.ints ?? attr.ints("axes")
            if node.opType == "Squeeze" {
                if let axes {
                    let norm = Set(try axes.map { try normalizeAxis($0, rank: shape.count, op: "Squeeze") })
                    shape = shape.enumerated().filter { !norm.contains($0.offset) }.map(\.element)
                } else {
                    shape = shape.filter { $0 != 1 }
                }
            } else {
                shape = try unsqueezedShape(shape, axes: axes ?? [])
            }
            try im.emit(Reshape(shape: shape), [x], output: output, node: node)
        case "Transpose":
            let r = try rank(0)
            try im.emit(Transpose(perm: attr.ints("perm") ?? Array((0..<r).reversed())), [input(0)], output: output, node: node)
        case "Concat":
            let ids = try (0..<node.input.count).map { try input($0) }
            try im.emit(Concat(axis: attr.int("axis", 0)), ids, output: output, node: node)
        case "Slice":
            let starts = try constInput(1, "starts").ints, ends = try constInput(2, "ends").ints
            let axes = optionalConst(3)?.ints, steps = optionalConst(4)?.ints
            try im.emit(Slice(starts: starts, ends: ends, axes: axes, steps: steps), [input(0)], output: output, node: node)
        case "Gather":
            // Gather of constant indices along an axis of a runtime tensor: slices (+ concat).
            let x = try input(0)
            let shape = im.graph.shape(of: x)
            let axis = try normalizeAxis(attr.int("axis", 0), rank: shape.count, op: "Gather")
            let idx = try constInput(1, "the indices")
            let picks = try idx.ints.map { i -> ValueID in
                let k = i < 0 ? i + shape[axis] : i
                guard k >= 0, k < shape[axis] else { throw EngineError.invalidGraph("Gather '\(node.name)': index \(i) out of range") }
                return try im.emitInternal(Slice(starts: [k], ends: [k + 1], axes: [axis]), [x], name: output + "/pick\(k)")
            }
            let joined = picks.count == 1 ? picks[0] : try im.emitInternal(Concat(axis: axis), picks, name: output + "/concat")
            let outShape = Array(shape[..<axis]) + idx.shape + Array(shape[(axis + 1)...])
            try im.emit(Reshape(shape: outShape), [joined], output: output, node: node)
        case "Tile":
            // out[k·s + j] = x[j] per axis (repeats r, size s). An axis with r > 1 and s > 1 is split:
            // x as [.., 1, s, ..] broadcast to [.., r, s, ..] and merged to [.., r·s, ..]; an axis with s = 1
            // broadcasts to r directly; r = 1 stays. Splitting adds one dimension per split axis, so at most
            // maxRank − rank axes are split per stage (a rank-5 input with 4 such axes takes two stages).
            // Backward sums the copies (Expand).
            let x = try input(0)
            let shape = im.graph.shape(of: x)
            let reps = try constInput(1, "the repeats").ints
            guard reps.count == shape.count, reps.allSatisfy({ $0 >= 1 }) else {
                throw EngineError.invalidGraph("Tile '\(node.name)': repeats \(reps) do not fit input shape \(shape)")
            }
            let stages = try ONNXOpMapping.tileStages(shape: shape, repeats: reps, node: node.name)
            var current = x, cur = shape
            for (k, stageReps) in stages.enumerated() {
                let splitAxis = cur.indices.map { stageReps[$0] > 1 && cur[$0] > 1 }
                let split = cur.indices.flatMap { splitAxis[$0] ? [1, cur[$0]] : [cur[$0]] }
                let wide = cur.indices.flatMap { splitAxis[$0] ? [stageReps[$0], cur[$0]] : [cur[$0] * stageReps[$0]] }
                let merged = zip(cur, stageReps).map { $0 * $1 }
                let s = try im.emitInternal(Reshape(shape: split), [current], name: output + "/stage\(k)/split")
                let e = try im.emitInternal(Expand(shape: wide), [s], name: output + "/stage\(k)/expand")
                if k == stages.count - 1 {
                    try im.emit(Reshape(shape: merged), [e], output: output, node: node)
                } else {
                    current = try im.emitInternal(Reshape(shape: merged), [e], name: output + "/stage\(k)/merge")
                }
                cur = merged
            }
        case "Expand":
            let target = try constInput(1, "the shape").ints
            try im.emit(Expand(shape: target), [input(0)], output: output, node: node)
        case "ReduceMean", "ReduceSum", "ReduceL2":
            let x = try input(0)
            let r = im.graph.shape(of: x).count
            // Opset 18 moved `axes` from an attribute to input 1 (ReduceSum did so at opset 13).
            if node.input.count > 1, !node.input[1].isEmpty, im.constant(node.input[1]) == nil {
                throw EngineError.unsupported("node '\(node.name)' (\(node.opType)): the axes must be a constant (they depend on the image)")
            }
            let axesInput = node.opType == "ReduceSum" || attr.values["axes"] == nil ? optionalConst(1)?.ints : nil
            var axes = attr.ints("axes") ?? axesInput ?? []
            if axes.isEmpty && attr.int("noop_with_empty_axes", 0) == 0 { axes = Array(0..<r) }
            let kind: Reduce.Kind = ["ReduceMean": .mean, "ReduceL2": .l2][node.opType] ?? .sum
            try im.emit(Reduce(kind, axes: axes, keepDims: attr.int("keepdims", 1) != 0), [x], output: output, node: node)
        case "Split":
            // Each output is a Slice of the input along `axis` (PyTorch exports `qkv.unbind(0)` and
            // `torch.split`/`chunk` this way).
            let x = try input(0)
            let shape = im.graph.shape(of: x)
            let axis = try normalizeAxis(attr.int("axis", 0), rank: shape.count, op: "Split")
            if node.input.count > 1, !node.input[1].isEmpty, im.constant(node.input[1]) == nil {
                throw EngineError.unsupported("Split '\(node.name)': the split sizes must be a constant (they depend on the image)")
            }
            let sizes = try ONNXFolding.splitSizes(node, attr, dimension: shape[axis], split: optionalConst(1))
            var start = 0
            for (name, size) in zip(node.output, sizes) {
                defer { start += size }
                guard !name.isEmpty else { continue }
                try im.emit(Slice(starts: [start], ends: [start + size], axes: [axis]), [x], output: name, node: node)
            }
        default:
            try ONNXOpMapping.addNetworkOp(node, attr: attr, importer: im)
        }
    }

    /// ONNX MatMul output shape (numpy matmul, rank-1 promotion removed again).
    static func onnxMatMulShape(_ a: [Int], _ b: [Int]) throws -> [Int] {
        let a2 = a.count == 1 ? [1, a[0]] : a
        let b2 = b.count == 1 ? [b[0], 1] : b
        var out = try broadcastShapes(Array(a2.dropLast(2)), Array(b2.dropLast(2))) + [a2[a2.count - 2], b2[b2.count - 1]]
        if a.count == 1 { out.remove(at: out.count - 2) }
        if b.count == 1 { out.removeLast() }
        return out
    }
}
