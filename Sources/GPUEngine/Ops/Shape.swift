/// Broadcasts the input to `shape` (numpy rules, like ONNX Expand with a static shape).
/// Backward: sum over the broadcast axes.
public struct Expand: Operator {
    public var shape: [Int]
    public init(shape: [Int]) { self.shape = shape }
    public var typeName: String { "Expand" }

    public func outputShape(_ inputShapes: [[Int]]) throws -> [Int] {
        try expectInputs(inputShapes, 1, typeName)
        return try broadcastShapes(inputShapes[0], shape)
    }

    public func backwardUses(needsGrad: [Bool]) -> (inputs: [Bool], output: Bool) { ([false], false) }

    public func forward(_ inputs: [Tensor], on backend: any Backend) throws -> OpResult {
        let x = inputs[0]
        let out = try outputShape([x.shape])
        if out == x.shape { return OpResult(x) }
        return OpResult(try gatherStrided(x, shape: out, srcOffset: 0, srcStrides: broadcastStrides(x.shape, to: out), on: backend))
    }

    public func backward(_ context: BackwardContext, on backend: any Backend) throws -> [Tensor?] {
        [try sumToShape(context.gradOutput, context.inputShapes[0], on: backend)]
    }
}

/// Same values, new shape (no copy). One entry of `shape` may be -1 (inferred); 0 copies the
/// input's dimension (ONNX rule). Backward: reshape back.
public struct Reshape: Operator {
    public var shape: [Int]
    public init(shape: [Int]) { self.shape = shape }
    public var typeName: String { "Reshape" }

    public func outputShape(_ inputShapes: [[Int]]) throws -> [Int] {
        try expectInputs(inputShapes, 1, typeName)
        let input = inputShapes[0]
        let total = input.reduce(1, *)
        var out = shape.enumerated().map { $0.element == 0 && $0.offset < input.count ? input[$0.offset] : $0.element }
        let unknown = out.indices.filter { out[$0] == -1 }
        guard unknown.count <= 1, out.allSatisfy({ $0 >= -1 }) else {
            throw EngineError.invalidAttribute("Reshape: bad target shape \(shape)")
        }
        // Target sizes come from model files: multiply with overflow checks (a product past Int.max cannot match).
        if let u = unknown.first {
            guard let known = checkedProduct(out.enumerated().filter { $0.offset != u }.map(\.element)), known > 0, total % known == 0 else {
                throw EngineError.shapeMismatch("cannot reshape \(input) to \(shape)")
            }
            out[u] = total / known
        }
        guard checkedProduct(out) == total else { throw EngineError.shapeMismatch("cannot reshape \(input) to \(shape)") }
        return out
    }

    public func backwardUses(needsGrad: [Bool]) -> (inputs: [Bool], output: Bool) { ([false], false) }

    public func forward(_ inputs: [Tensor], on backend: any Backend) throws -> OpResult {
        OpResult(try inputs[0].reshaped(outputShape([inputs[0].shape])))
    }

    public func backward(_ context: BackwardContext, on backend: any Backend) throws -> [Tensor?] {
        [try context.gradOutput.reshaped(context.inputShapes[0])]
    }
}

/// Permutes axes: out.shape[i] = in.shape[perm[i]]. Backward: the inverse permutation.
public struct Transpose: Operator {
    public var perm: [Int]
    public init(perm: [Int]) { self.perm = perm }
    public var typeName: String { "Transpose" }

    public func outputShape(_ inputShapes: [[Int]]) throws -> [Int] {
        try expectInputs(inputShapes, 1, typeName)
        let shape = inputShapes[0]
        guard perm.count == shape.count, perm.sorted() == Array(0..<shape.count) else {
            throw EngineError.invalidAttribute("Transpose: perm \(perm) is not a permutation of \(shape.count) axes")
        }
        return perm.map { shape[$0] }
    }

    public func backwardUses(needsGrad: [Bool]) -> (inputs: [Bool], output: Bool) { ([false], false) }

    public func forward(_ inputs: [Tensor], on backend: any Backend) throws -> OpResult {
        let x = inputs[0]
        let out = try outputShape([x.shape])
        let strides = contiguousStrides(x.shape)
        return OpResult(try gatherStrided(x, shape: out, srcOffset: 0, srcStrides: perm.map { strides[$0] }, on: backend))
    }

    public func backward(_ context: BackwardContext, on backend: any Backend) throws -> [Tensor?] {
        var inverse = [Int](repeating: 0, count: perm.count)
        for (i, p) in perm.enumerated() { inverse[p] = i }
        return [try backend.run(Transpose(perm: inverse), context.gradOutput)]
    }
}

/// Joins inputs along `axis` (all other dimensions equal). Backward: slices of dy.
public struct Concat: Operator {
    public var axis: Int
    public init(axis: Int) { self.axis = axis }
    public var typeName: String { "Concat" }

    public func outputShape(_ inputShapes: [[Int]]) throws -> [Int] {
        guard let first = inputShapes.first else { throw EngineError.invalidGraph("Concat needs at least one input") }
        let a = try normalizeAxis(axis, rank: first.count, op: typeName)
        var out = first
        out[a] = 0
        for s in inputShapes {
            guard s.count == first.count, s.indices.allSatisfy({ $0 == a || s[$0] == first[$0] }) else {
                throw EngineError.shapeMismatch("Concat along axis \(axis): shapes \(inputShapes) differ off that axis")
            }
            out[a] += s[a]
        }
        return out
    }

    public func backwardUses(needsGrad: [Bool]) -> (inputs: [Bool], output: Bool) { (needsGrad.map { _ in false }, false) }

    public func forward(_ inputs: [Tensor], on backend: any Backend) throws -> OpResult {
        let shapes = inputs.map(\.shape)
        let outShape = try outputShape(shapes)
        let a = try normalizeAxis(axis, rank: outShape.count, op: typeName)
        let out = try backend.zeros(outShape)
        let outStrides = contiguousStrides(outShape)
        var position = 0
        for x in inputs {
            let map = try IndexMap(dims: x.shape, strides0: outStrides, strides1: contiguousStrides(x.shape))
            try copyStrided(into: out, dstOffset: position * outStrides[a], from: x, srcOffset: 0, map: map, on: backend)
            position += x.shape[a]
        }
        return OpResult(out)
    }

    public func backward(_ context: BackwardContext, on backend: any Backend) throws -> [Tensor?] {
        let g = context.gradOutput
        let a = try normalizeAxis(axis, rank: g.rank, op: typeName)
        let strides = contiguousStrides(g.shape)
        var position = 0
        var grads: [Tensor?] = []
        for (i, shape) in context.inputShapes.enumerated() {
            if context.needsGrad[i] {
                grads.append(try gatherStrided(g, shape: shape, srcOffset: position * strides[a], srcStrides: strides, on: backend))
            } else {
                grads.append(nil)
            }
            position += shape[a]
        }
        return grads
    }
}

/// ONNX Slice with static starts/ends/axes/steps: along each listed axis take
/// start, start+step, … while before end (negative indices count from the end; out-of-range
/// values are clamped as ONNX specifies; steps may be negative). Backward: dy scattered into zeros.
public struct Slice: Operator {
    public var starts: [Int]
    public var ends: [Int]
    public var axes: [Int]
    public var steps: [Int]

    public init(starts: [Int], ends: [Int], axes: [Int]? = nil, steps: [Int]? = nil) {
        self.starts = starts
        self.ends = ends
        self.axes = axes ?? Array(0..<starts.count)
        self.steps = steps ?? Array(repeating: 1, count: starts.count)
    }

    public var typeName: String { "Slice" }

    /// Per axis of the input: first index, step and number of elements taken.
    func resolve(_ shape: [Int]) throws -> [(start: Int, step: Int, count: Int)] {
        guard starts.count == ends.count, axes.count == starts.count, steps.count == starts.count else {
            throw EngineError.invalidAttribute("Slice: starts, ends, axes and steps must have equal lengths")
        }
        var spec = shape.map { (start: 0, step: 1, count: $0) }
        for (k, rawAxis) in axes.enumerated() {
            let axis = try normalizeAxis(rawAxis, rank: shape.count, op: typeName)
            let dim = shape[axis]
            let step = steps[k]
            guard step != 0 else { throw EngineError.invalidAttribute("Slice: step 0 on axis \(rawAxis)") }
            var start = starts[k] < 0 ? starts[k] + dim : starts[k]
            var end = ends[k] < 0 ? ends[k] + dim : ends[k]
            if step > 0 {
                start = min(max(start, 0), dim)
                end = min(max(end, 0), dim)
                spec[axis] = (start, step, max(0, (end - start + step - 1) / step))
            } else {
                start = min(max(start, -1), dim - 1)
                end = min(max(end, -1), dim - 1)
                spec[axis] = (start, step, max(0, (start - end + (-step) - 1) / (-step)))
            }
        }
        return spec
    }

    public func outputShape(_ inputShapes: [[Int]]) throws -> [Int] {
        try expectInputs(inputShapes, 1, typeName)
        return try resolve(inputShapes[0]).map(\.count)
    }

    public func backwardUses(needsGrad: [Bool]) -> (inputs: [Bool], output: Bool) { ([false], false) }

    /// Offset of the first element and the strides of the slice inside a tensor of `shape`.
    func layout(_ shape: [Int]) throws -> (offset: Int, strides: [Int], dims: [Int]) {
        let spec = try resolve(shape)
        let strides = contiguousStrides(shape)
        var offset = 0
        for i in spec.indices where spec[i].count > 0 { offset += spec[i].start * strides[i] }
        return (offset, spec.indices.map { strides[$0] * spec[$0].step }, spec.map(\.count))
    }

    public func forward(_ inputs: [Tensor], on backend: any Backend) throws -> OpResult {
        let x = inputs[0]
        let l = try layout(x.shape)
        return OpResult(try gatherStrided(x, shape: l.dims, srcOffset: l.offset, srcStrides: l.strides, on: backend))
    }

    public func backward(_ context: BackwardContext, on backend: any Backend) throws -> [Tensor?] {
        let inShape = context.inputShapes[0]
        let l = try layout(inShape)
        let dx = try backend.zeros(inShape)
        let map = try IndexMap(dims: l.dims, strides0: l.strides, strides1: contiguousStrides(l.dims))
        try copyStrided(into: dx, dstOffset: l.offset, from: context.gradOutput, srcOffset: 0, map: map, on: backend)
        return [dx]
    }
}
