import Foundation

/// Attributes of one ONNX node, decoded.
struct ONNXAttributes {
    var values: [String: Onnx_AttributeProto] = [:]

    init(_ node: Onnx_NodeProto) {
        for a in node.attribute { values[a.name] = a }
    }

    /// Integer attributes are clamped to ±2³¹ (beyond any tensor dimension amgpu accepts, and still
    /// "to the end" for Slice), so shape arithmetic on them cannot overflow.
    static func clamped(_ v: Int64) -> Int { Int(max(min(v, 1 << 31), -(1 << 31))) }
    func int(_ name: String, _ defaultValue: Int) -> Int { values[name].map { Self.clamped($0.i) } ?? defaultValue }
    func float(_ name: String, _ defaultValue: Float) -> Float { values[name]?.f ?? defaultValue }
    func ints(_ name: String) -> [Int]? { values[name].map { $0.ints.map(Self.clamped) } }
    func floats(_ name: String) -> [Float]? { values[name]?.floats }
    func string(_ name: String, _ defaultValue: String) -> String {
        values[name].map { String(decoding: $0.s, as: UTF8.self) } ?? defaultValue
    }
    func tensor(_ name: String) -> Onnx_TensorProto? { values[name]?.t }
    var names: [String] { values.keys.sorted() }
}

/// Evaluates ONNX nodes whose inputs are all constants, on the host, at load time. This folds the
/// shape arithmetic exporters emit (Shape → Gather → Unsqueeze → Concat → Reshape …) and
/// constant preprocessing (e.g. a Resize of a position embedding) into constants.
enum ONNXFolding {
    /// Op types this evaluator handles.
    static let foldable: Set<String> = [
        "Constant", "Identity", "Shape", "Size", "Gather", "Unsqueeze", "Squeeze", "Concat", "ConstantOfShape",
        "Equal", "Less", "Greater", "Not", "And", "Or", "Where", "Expand", "Cast", "Range",
        "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Neg", "Abs", "Floor", "Ceil", "Min", "Max", "Reciprocal", "Exp", "Erf",
        "Reshape", "Flatten", "Slice", "Transpose", "Resize", "ReduceProd", "ReduceSum", "ReduceMean", "Tile",
        "Mod", "Cos", "Sin", "ReduceL2", "Split", "CumSum", "GatherND",
    ]

    /// The sizes of ONNX Split's outputs along an axis of length `dimension`: the `split` input
    /// (opset 13+) or attribute (before 13); else opset 18's `num_outputs` (chunks of ⌈d/n⌉, the
    /// last one smaller); else equal parts, one per output.
    static func splitSizes(_ node: Onnx_NodeProto, _ attr: ONNXAttributes, dimension: Int, split: ConstTensor?) throws -> [Int] {
        let outputs = node.output.count
        var sizes: [Int]
        if let given = split?.ints ?? attr.ints("split") {
            sizes = given
        } else {
            let n = attr.values["num_outputs"] != nil ? attr.int("num_outputs", outputs) : outputs
            guard n > 0, n == outputs else {
                throw EngineError.invalidGraph("Split '\(node.name)': num_outputs \(n) does not match its \(outputs) outputs")
            }
            let chunk = (dimension + n - 1) / n
            if attr.values["num_outputs"] == nil, dimension % n != 0 {
                throw EngineError.invalidGraph("Split '\(node.name)': axis of size \(dimension) does not split into \(n) equal parts")
            }
            sizes = (0..<n).map { max(0, min(chunk, dimension - $0 * chunk)) }
        }
        guard sizes.count == outputs, sizes.allSatisfy({ $0 >= 0 }), sizes.reduce(0, +) == dimension else {
            throw EngineError.invalidGraph("Split '\(node.name)': sizes \(sizes) do not split an axis of size \(dimension) into \(outputs) outputs")
        }
        return sizes
    }

    static func broadcastBinary(_ a: ConstTensor, _ b: ConstTensor, isInteger: Bool,
                                _ f: (Double, Double) -> Double) throws -> ConstTensor {
        let shape = try broadcastShapes(a.shape, b.shape)
        let map = try IndexMap(dims: shape, strides0: broadcastStrides(a.shape, to: shape), strides1: broadcastStrides(b.shape, to: shape))
        var out: [Double] = []
        out.reserveCapacity(map.count)
        map.forEach { i, j in out.append(f(a.values[i], b.values[j])) }
        if shape.isEmpty && out.isEmpty { out = [f(a.values.first ?? 0, b.values.first ?? 0)] }
        return ConstTensor(shape: shape, values: out, isInteger: isInteger)
    }

    static func gather(_ x: ConstTensor, shape: [Int], strides: [Int], offset: Int = 0) throws -> [Double] {
        let map = try IndexMap(dims: shape, strides0: contiguousStrides(shape), strides1: strides)
        var out = [Double](repeating: 0, count: map.count)
        map.forEach { o, i in out[o] = x.values[offset + i] }
        if shape.isEmpty { return [x.values[offset]] }
        return out
    }

    /// Evaluates `node` given its (constant) inputs; `shapeOf` gives static shapes of non-constant
    /// inputs (for Shape/Size). Returns the outputs, or nil when the node is not foldable.
    static func evaluate(_ node: Onnx_NodeProto, _ inputs: [ConstTensor?], shapeOf: [[Int]?],
                         modelDirectory: URL?) throws -> [ConstTensor]? {
        let attr = ONNXAttributes(node)
        let op = node.opType
        func input(_ i: Int) throws -> ConstTensor {
            guard i < inputs.count, let t = inputs[i] else {
                throw EngineError.invalidGraph("node '\(node.name)' (\(op)) is missing input \(i)")
            }
            return t
        }
        func optional(_ i: Int) -> ConstTensor? { i < inputs.count ? inputs[i] : nil }
        switch op {
        case "Constant":
            if let t = attr.tensor("value") { return [try ConstTensor(proto: t, modelDirectory: modelDirectory)] }
            if let v = attr.values["value_float"] { return [ConstTensor(shape: [], values: [Double(v.f)], isInteger: false)] }
            if let v = attr.values["value_floats"] { return [ConstTensor(shape: [v.floats.count], values: v.floats.map(Double.init), isInteger: false)] }
            if let v = attr.values["value_int"] { return [ConstTensor(shape: [], values: [Double(v.i)], isInteger: true)] }
            if let v = attr.values["value_ints"] { return [ConstTensor(shape: [v.ints.count], values: v.ints.map(Double.init), isInteger: true)] }
            throw EngineError.unsupported("Constant node '\(node.name)' has no value amgpu reads")
        case "Identity":
            return [try input(0)]
        case "Shape":
            guard let shape = shapeOf.first ?? nil else { return nil }
            var start = attr.int("start", 0), end = attr.int("end", shape.count)
            if start < 0 { start += shape.count }
            if end < 0 { end += shape.count }
            start = min(max(start, 0), shape.count); end = min(max(end, start), shape.count)
            return [ConstTensor(ints: Array(shape[start..<end]))]
        case "Size":
            guard let shape = shapeOf.first ?? nil else { return nil }
            return [ConstTensor(ints: [shape.reduce(1, *)], shape: [])]
        case "Gather":
            let x = try input(0), idx = try input(1)
            let axis = try normalizeAxis(attr.int("axis", 0), rank: x.shape.count, op: "Gather")
            let dim = x.shape[axis]
            let outer = x.shape[..<axis].reduce(1, *), inner = x.shape[(axis + 1)...].reduce(1, *)
            var out: [Double] = []
            for o in 0..<outer {
                for raw in idx.ints {
                    let k = raw < 0 ? raw + dim : raw
                    guard k >= 0, k < dim else { throw EngineError.invalidGraph("Gather '\(node.name)': index \(raw) out of range \(dim)") }
                    let base = (o * dim + k) * inner
                    out.append(contentsOf: x.values[base..<(base + inner)])
                }
            }
            let shape = Array(x.shape[..<axis]) + idx.shape + Array(x.shape[(axis + 1)...])
            return [ConstTensor(shape: shape, values: out, isInteger: x.isInteger)]
        case "Unsqueeze":
            var x = try input(0)
            let axes = optional(1)?.ints ?? attr.ints("axes") ?? []
            x.shape = try unsqueezedShape(x.shape, axes: axes)
            return [x]
        case "Squeeze":
            var x = try input(0)
            if let axes = optional(1)?.ints ?? attr.ints("axes") {
                let normalized = Set(try axes.map { try normalizeAxis($0, rank: x.shape.count, op: "Squeeze") })
                x.shape = x.shape.enumerated().filter { !normalized.contains($0.offset) }.map(\.element)
            } else {
                x.shape = x.shape.filter { $0 != 1 }
            }
            return [x]
        case "Concat":
            let parts = try (0..<inputs.count).map { try input($0) }
            guard let first = parts.first else { return nil }
            let axis = try normalizeAxis(attr.int("axis", 0), rank: first.shape.count, op: "Concat")
            // Every part: the same rank, the same sizes off the axis, and as many values as its shape says.
            for p in parts {
                let sameShapeOffAxis = p.shape.count == first.shape.count
                    && zip(p.shape, first.shape).enumerated().allSatisfy { $0.offset == axis || $0.element.0 == $0.element.1 }
                let count = try checkedElementCount(p.shape, what: "Concat '\(node.name)' input", limit: maxFoldedElements)
                let fits = sameShapeOffAxis && count == p.values.count
                guard fits else {
                    throw EngineError.invalidGraph("Concat '\(node.name)': input shapes \(parts.map(\.shape)) do not join along axis \(axis) (ranks and the other sizes must match)")
                }
            }
            let outer = first.shape[..<axis].reduce(1, *)
            var out: [Double] = []
            var total = 0
            for o in 0..<outer {
                for p in parts {
                    let inner = p.shape[axis...].reduce(1, *)
                    out.append(contentsOf: p.values[(o * inner)..<((o + 1) * inner)])
                }
            }
            for p in parts { total += p.shape[axis] }
            var shape = first.shape
            shape[axis] = total
            return [ConstTensor(shape: shape, values: out, isInteger: first.isInteger)]
        case "ConstantOfShape":
            let shape = try input(0).ints
            let count = try checkedElementCount(shape, what: "ConstantOfShape '\(node.name)'", limit: maxFoldedElements)
            var value = 0.0, isInt = false
            if let t = attr.tensor("value") {
                let c = try ConstTensor(proto: t, modelDirectory: nil)
                value = c.values.first ?? 0
                isInt = c.isInteger
            }
            return [ConstTensor(shape: shape, values: Array(repeating: value, count: count), isInteger: isInt)]
        case "Equal": return [try broadcastBinary(input(0), input(1), isInteger: true) { $0 == $1 ? 1 : 0 }]
        case "Less": return [try broadcastBinary(input(0), input(1), isInteger: true) { $0 < $1 ? 1 : 0 }]
        case "Greater": return [try broadcastBinary(input(0), input(1), isInteger: true) { $0 > $1 ? 1 : 0 }]
        case "And": return [try broadcastBinary(input(0), input(1), isInteger: true) { ($0 != 0 && $1 != 0) ? 1 : 0 }]
        case "Or": return [try broadcastBinary(input(0), input(1), isInteger: true) { ($0 != 0 || $1 != 0) ? 1 : 0 }]
        case "Not":
            var x = try input(0); x.values = x.values.map { $0 == 0 ? 1 : 0 }; return [x]
        case "Where":
            let c = try input(0), a = try input(1), b = try input(2)
            let ab = try broadcastBinary(a, b, isInteger: a.isInteger) { x, _ in x }
            let shape = try broadcastShapes(c.shape, ab.shape)
            let cc = try gather(c, shape: shape, strides: broadcastStrides(c.shape, to: shape))
            let aa = try gather(a, shape: shape, strides: broadcastStrides(a.shape, to: shape))
            let bb = try gather(b, shape: shape, strides: broadcastStrides(b.shape, to: shape))
            return [ConstTensor(shape: shape, values: (0..<cc.count).map { cc[$0] != 0 ? aa[$0] : bb[$0] }, isInteger: a.isInteger)]
        case "Expand":
            let x = try input(0)
            let shape = try broadcastShapes(x.shape, input(1).ints)
            _ = try checkedElementCount(shape, what: "Expand '\(node.name)'", limit: maxFoldedElements)
            return [ConstTensor(shape: shape, values: try gather(x, shape: shape, strides: broadcastStrides(x.shape, to: shape)), isInteger: x.isInteger)]
        case "Tile":
            let x = try input(0), reps = try input(1).ints
            guard reps.count == x.shape.count, reps.allSatisfy({ $0 >= 0 }) else {
                throw EngineError.invalidGraph("Tile '\(node.name)': repeats \(reps) do not fit input shape \(x.shape)")
            }
            let tiled = zip(x.shape, reps).map { $0.multipliedReportingOverflow(by: $1) }
            guard !tiled.contains(where: \.overflow) else { throw EngineError.invalidGraph("Tile '\(node.name)': repeats \(reps) overflow") }
            _ = try checkedElementCount(tiled.map(\.partialValue), what: "Tile '\(node.name)'", limit: maxFoldedElements)
            var current = x
            for axis in 0..<x.shape.count where reps[axis] != 1 {
                let parts = Array(repeating: current, count: reps[axis])
                let outer = current.shape[..<axis].reduce(1, *)
                var out: [Double] = []
                for o in 0..<outer { for p in parts {
                    let inner = p.shape[axis...].reduce(1, *)
                    out.append(contentsOf: p.values[(o * inner)..<((o + 1) * inner)])
                } }
                current.shape[axis] *= reps[axis]
                current.values = out
            }
            return [current]
        case "Cast":
            var x = try input(0)
            let to = attr.int("to", 1)
            let type = ONNXDataType(rawValue: Int32(to)) ?? .float
            x.isInteger = type.isInteger
            if type.isInteger { x.values = x.values.map { type == .bool ? ($0 != 0 ? 1 : 0) : $0.rounded(.towardZero) } }
            if type == .float { x.values = x.values.map { Double(Float($0)) } }
            return [x]
        case "Range":
            guard let start = try input(0).values.first, let limit = try input(1).values.first, let delta = try input(2).values.first,
                  start.isFinite, limit.isFinite, delta.isFinite else {
                throw EngineError.invalidGraph("Range '\(node.name)' needs finite scalar start, limit and delta")
            }
            guard delta != 0 else { throw EngineError.invalidGraph("Range '\(node.name)' with delta 0") }
            let length = max(0, ((limit - start) / delta).rounded(.up))
            guard length <= Double(maxFoldedElements) else { throw EngineError.invalidGraph("Range '\(node.name)' is too long (\(length) elements)") }
            let n = Int(length)
            return [ConstTensor(shape: [n], values: (0..<n).map { start + Double($0) * delta }, isInteger: try input(0).isInteger)]
        case "Split":
            let x = try input(0)
            let axis = try normalizeAxis(attr.int("axis", 0), rank: x.shape.count, op: "Split")
            let sizes = try splitSizes(node, attr, dimension: x.shape[axis], split: optional(1))
            var start = 0
            return try sizes.map { size in
                defer { start += size }
                let l = try Slice(starts: [start], ends: [start + size], axes: [axis]).layout(x.shape)
                return ConstTensor(shape: l.dims, values: try gather(x, shape: l.dims, strides: l.strides, offset: l.offset), isInteger: x.isInteger)
            }
        case "GatherND":
            // out[i…] = data[indices[i…, 0], …, indices[i…, k−1], :…] (batch_dims 0): the dynamo
            // exporter's form of `attention_biases[:, attention_bias_idxs]` (LeViT), on constants.
            let data = try input(0), indices = try input(1)
            guard attr.int("batch_dims", 0) == 0 else {
                throw EngineError.unsupported("GatherND '\(node.name)' with batch_dims \(attr.int("batch_dims", 0)) (only 0 is supported)")
            }
            guard let k = indices.shape.last, k >= 1, k <= data.shape.count else {
                throw EngineError.invalidGraph("GatherND '\(node.name)': indices \(indices.shape) do not index data \(data.shape)")
            }
            let sliceShape = Array(data.shape[k...]), sliceSize = sliceShape.reduce(1, *)
            let strides = contiguousStrides(data.shape)
            let tuples = indices.count / k
            let outShape = Array(indices.shape.dropLast()) + sliceShape
            _ = try checkedElementCount(outShape, what: "GatherND '\(node.name)'", limit: maxFoldedElements)
            // The clamped integer view: an int64 index of 2^63 − 1 (2^63 as a Double) or a NaN
            // would trap in Int(_:), and is out of range anyway.
            let indexInts = indices.ints
            var out: [Double] = []
            out.reserveCapacity(tuples * sliceSize)
            for t in 0..<tuples {
                var offset = 0
                for j in 0..<k {
                    let raw = indexInts[t * k + j], dim = data.shape[j]
                    let i = raw < 0 ? raw + dim : raw
                    guard i >= 0, i < dim else {
                        throw EngineError.invalidGraph("GatherND '\(node.name)': index \(indices.values[t * k + j]) out of range for axis \(j) of size \(dim)")
                    }
                    offset += i * strides[j]
                }
                out.append(contentsOf: data.values[offset..<(offset + sliceSize)])
            }
            return [ConstTensor(shape: outShape, values: out, isInteger: data.isInteger)]
        case "CumSum":
            // Running sums along an axis (EdgeNeXt's Fourier position encoding sums a mask of ones):
            // y[…, i, …] = Σ_{j ≤ i} x[…, j, …]; `exclusive` drops the j = i term, `reverse` runs from the end.
            var x = try input(0)
            guard let axisValue = try input(1).ints.first else { throw EngineError.invalidGraph("CumSum '\(node.name)' needs an axis") }
            let axis = try normalizeAxis(axisValue, rank: x.shape.count, op: "CumSum")
            let exclusive = attr.int("exclusive", 0) != 0, reverse = attr.int("reverse", 0) != 0
            let n = x.shape[axis], inner = x.shape[(axis + 1)...].reduce(1, *), outer = x.shape[..<axis].reduce(1, *)
            var out = x.values
            for o in 0..<outer {
                for k in 0..<inner {
                    var sum = 0.0
                    for step in 0..<n {
                        let i = reverse ? n - 1 - step : step
                        let at = (o * n + i) * inner + k
                        if exclusive { out[at] = sum; sum += x.values[at] } else { sum += x.values[at]; out[at] = sum }
                    }
                }
            }
            x.values = out
            return [x]
        case "Mod":
            let a = try input(0), b = try input(1)
            let isInt = a.isInteger && b.isInteger, truncated = attr.int("fmod", 0) != 0
            return [try broadcastBinary(a, b, isInteger: isInt) { x, y in
                if isInt && y == 0 { return 0 }
                let q = x / y
                return x - y * (truncated ? q.rounded(.towardZero) : q.rounded(.down))
            }]
        case "Add", "Sub", "Mul", "Div", "Pow", "Min", "Max":
            let a = try input(0), b = try input(1)
            let isInt = a.isInteger && b.isInteger
            return [try broadcastBinary(a, b, isInteger: isInt) { x, y in
                switch op {
                case "Add": return x + y
                case "Sub": return x - y
                case "Mul": return x * y
                case "Div": return isInt ? (y == 0 ? 0 : (x / y).rounded(.towardZero)) : x / y
                case "Pow": return Foundation.pow(x, y)
                case "Min": return Swift.min(x, y)
                default: return Swift.max(x, y)
                }
            }]
        case "Sqrt", "Neg", "Abs", "Floor", "Ceil", "Reciprocal", "Exp", "Erf", "Cos", "Sin":
            var x = try input(0)
            x.values = x.values.map { v in
                switch op {
                case "Cos": return Foundation.cos(v)
                case "Sin": return Foundation.sin(v)
                case "Sqrt": return v.squareRoot()
                case "Neg": return -v
                case "Abs": return Swift.abs(v)
                case "Floor": return v.rounded(.down)
                case "Ceil": return v.rounded(.up)
                case "Reciprocal": return 1 / v
                case "Exp": return Foundation.exp(v)
                default: return Foundation.erf(v)
                }
            }
            return [x]
        case "Reshape":
            var x = try input(0)
            let target = try input(1).ints
            let allowZero = attr.int("allowzero", 0) != 0
            x.shape = try Reshape(shape: allowZero ? target : target).outputShape([x.shape])
            return [x]
        case "Flatten":
            var x = try input(0)
            let axis = try normalizeAxis(attr.int("axis", 1), rank: x.shape.count + 1, op: "Flatten")
            x.shape = [x.shape[..<axis].reduce(1, *), x.shape[axis...].reduce(1, *)]
            return [x]
        case "Slice":
            let x = try input(0)
            let starts = try input(1).ints, ends = try input(2).ints
            let axes = optional(3)?.ints, steps = optional(4)?.ints
            let slice = Slice(starts: starts, ends: ends, axes: axes, steps: steps)
            let l = try slice.layout(x.shape)
            return [ConstTensor(shape: l.dims, values: try gather(x, shape: l.dims, strides: l.strides, offset: l.offset), isInteger: x.isInteger)]
        case "Transpose":
            let x = try input(0)
            let perm = attr.ints("perm") ?? Array((0..<x.shape.count).reversed())
            let t = Transpose(perm: perm)
            let shape = try t.outputShape([x.shape])
            let strides = contiguousStrides(x.shape)
            return [ConstTensor(shape: shape, values: try gather(x, shape: shape, strides: perm.map { strides[$0] }), isInteger: x.isInteger)]
        case "ReduceProd", "ReduceSum", "ReduceMean", "ReduceL2":
            let x = try input(0)
            // Axes: input 1 from opset 18 (ReduceSum from 13), else the attribute; none: all axes.
            var axes = optional(1)?.ints ?? attr.ints("axes") ?? []
            if axes.isEmpty && attr.int("noop_with_empty_axes", 0) == 0 { axes = Array(0..<x.shape.count) }
            let keep = attr.int("keepdims", 1) != 0
            let reduce = Reduce(.sum, axes: axes, keepDims: keep)
            let outShape = try reduce.outputShape([x.shape])
            let norm = Set(try reduce.normalizedAxes(rank: x.shape.count))
            var out = [Double](repeating: op == "ReduceProd" ? 1 : 0, count: outShape.reduce(1, *))
            let keptShape = x.shape.enumerated().map { norm.contains($0.offset) ? 1 : $0.element }
            let keptStrides = contiguousStrides(keptShape)
            let xs = contiguousStrides(x.shape)
            for i in 0..<x.count {
                var rem = i, o = 0
                for axis in 0..<x.shape.count {
                    let c = rem / xs[axis]; rem %= xs[axis]
                    if !norm.contains(axis) { o += c * keptStrides[axis] }
                }
                switch op {
                case "ReduceProd": out[o] *= x.values[i]
                case "ReduceL2": out[o] += x.values[i] * x.values[i]
                default: out[o] += x.values[i]
                }
            }
            if op == "ReduceL2" { out = out.map { $0.squareRoot() } }
            if op == "ReduceMean" {
                let n = Double(norm.map { x.shape[$0] }.reduce(1, *))
                out = out.map { $0 / n }
            }
            return [ConstTensor(shape: outShape, values: out, isInteger: x.isInteger)]
        case "Resize":
            return [try resize(node, attr, try input(0), roi: optional(1), scales: optional(2), sizes: optional(3))]
        default:
            return nil
        }
    }

    /// ONNX Resize of a constant NCHW (or any-rank, resizing the axes whose size changes) tensor:
    /// nearest, linear and cubic (coefficient A = cubic_coeff_a, exclude_outside 0), with the
    /// coordinate transformation modes half_pixel, pytorch_half_pixel, align_corners, asymmetric.
    static func resize(_ node: Onnx_NodeProto, _ attr: ONNXAttributes, _ x: ConstTensor,
                       roi: ConstTensor?, scales: ConstTensor?, sizes: ConstTensor?) throws -> ConstTensor {
        let rank = x.shape.count
        var outShape = x.shape
        var scaleValues = [Double](repeating: 1, count: rank)
        if let sizes, sizes.count == rank {
            outShape = sizes.ints
            for i in 0..<rank { scaleValues[i] = Double(outShape[i]) / Double(max(x.shape[i], 1)) }
        } else if let scales, scales.count == rank {
            scaleValues = scales.values
            for i in 0..<rank {
                let size = (Double(x.shape[i]) * scales.values[i]).rounded(.down)
                guard size.isFinite, size >= 0, size <= Double(1 << 31) else {
                    throw EngineError.invalidGraph("Resize '\(node.name)': scale \(scales.values[i]) on axis \(i) of size \(x.shape[i]) gives no valid size")
                }
                outShape[i] = Int(size)
            }
        } else {
            throw EngineError.unsupported("Resize '\(node.name)' needs scales or sizes for every axis")
        }
        let mode = attr.string("mode", "nearest")
        let ctm = attr.string("coordinate_transformation_mode", "half_pixel")
        let a = Double(attr.float("cubic_coeff_a", -0.75))
        let nearestMode = attr.string("nearest_mode", "round_prefer_floor")
        guard ["nearest", "linear", "cubic"].contains(mode) else {
            throw EngineError.unsupported("Resize '\(node.name)' mode '\(mode)'")
        }
        guard ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"].contains(ctm) else {
            throw EngineError.unsupported("Resize '\(node.name)' coordinate_transformation_mode '\(ctm)'")
        }
        _ = try checkedElementCount(outShape, what: "Resize '\(node.name)'")
        var current = x
        for axis in 0..<rank where outShape[axis] != x.shape[axis] || scaleValues[axis] != 1 {
            let inSize = current.shape[axis], outSize = outShape[axis], scale = scaleValues[axis]
            // Weights per output index: list of (input index, weight).
            var taps: [[(Int, Double)]] = []
            for o in 0..<outSize {
                let xo: Double
                switch ctm {
                case "align_corners": xo = outSize > 1 ? Double(o) * Double(inSize - 1) / Double(outSize - 1) : 0
                case "asymmetric": xo = Double(o) / scale
                case "pytorch_half_pixel": xo = outSize > 1 ? (Double(o) + 0.5) / scale - 0.5 : 0
                default: xo = (Double(o) + 0.5) / scale - 0.5
                }
                func clampIndex(_ i: Int) -> Int { min(max(i, 0), inSize - 1) }
                switch mode {
                case "nearest":
                    let i: Int
                    switch nearestMode {
                    case "floor": i = Int(xo.rounded(.down))
                    case "ceil": i = Int(xo.rounded(.up))
                    case "round_prefer_ceil": i = Int((xo + 0.5).rounded(.down))
                    default: i = xo == xo.rounded(.down) + 0.5 ? Int(xo.rounded(.down)) : Int(xo.rounded())
                    }
                    taps.append([(clampIndex(i), 1)])
                case "linear":
                    let xc = min(max(xo, 0), Double(inSize - 1))
                    let i0 = Int(xc.rounded(.down)), t = xc - Double(i0)
                    taps.append([(clampIndex(i0), 1 - t), (clampIndex(i0 + 1), t)])
                default:
                    let i0 = Int(xo.rounded(.down)), t = xo - Double(i0)
                    func w(_ d: Double) -> Double {
                        let ad = Swift.abs(d)
                        if ad <= 1 { return ((a + 2) * ad - (a + 3)) * ad * ad + 1 }
                        if ad < 2 { return ((a * ad - 5 * a) * ad + 8 * a) * ad - 4 * a }
                        return 0
                    }
                    taps.append((-1...2).map { k in (clampIndex(i0 + k), w(t - Double(k))) })
                }
            }
            let outer = current.shape[..<axis].reduce(1, *), inner = current.shape[(axis + 1)...].reduce(1, *)
            var out = [Double](repeating: 0, count: outer * outSize * inner)
            for o in 0..<outer {
                for (j, tapList) in taps.enumerated() {
                    for (i, weight) in tapList {
                        let src = (o * inSize + i) * inner, dst = (o * outSize + j) * inner
                        for k in 0..<inner { out[dst + k] += weight * current.values[src + k] }
                    }
                }
            }
            current.shape[axis] = outSize
            current.values = out
        }
        return current
    }
}
