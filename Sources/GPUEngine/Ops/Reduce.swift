/// Sum, mean or Euclidean norm over `axes` (negative axes count from the end). `keepDims` keeps
/// reduced axes as 1. Empty `axes` reduces nothing (identity for sum and mean, |x| for l2).
///
///     sum: y = Σ_r x[r]      mean: y = Σ_r x[r] / R      l2: y = √(Σ_r x[r]²)   (ONNX ReduceL2)
///
/// Backward: broadcast dy back over the reduced axes (times 1/R for the mean); for l2,
/// dx = dy · x / y with dx = 0 where y = 0 (the subgradient of ‖·‖ at 0 chosen by PyTorch).
/// Kernels: `reduce.cl` (`reduce_sum`; l2 runs square, `reduce_sum`, sqrt forward and
/// `reduce_l2_backward_x` backward); CPU reference in `Backends/CPU/CPUKernels.swift`.
public struct Reduce: Operator {
    public enum Kind: String, Sendable { case sum, mean, l2 }
    public var kind: Kind
    public var axes: [Int]
    public var keepDims: Bool

    public init(_ kind: Kind, axes: [Int], keepDims: Bool = false) {
        self.kind = kind
        self.axes = axes
        self.keepDims = keepDims
    }

    public var typeName: String {
        switch kind {
        case .sum: return "ReduceSum"
        case .mean: return "ReduceMean"
        case .l2: return "ReduceL2"
        }
    }

    func normalizedAxes(rank: Int) throws -> [Int] {
        let a = try axes.map { try normalizeAxis($0, rank: rank, op: typeName) }
        guard Set(a).count == a.count else { throw EngineError.invalidAttribute("\(typeName): repeated axes \(axes)") }
        return a.sorted()
    }

    public func outputShape(_ inputShapes: [[Int]]) throws -> [Int] {
        try expectInputs(inputShapes, 1, typeName)
        let shape = inputShapes[0]
        let reduced = Set(try normalizedAxes(rank: shape.count))
        var out: [Int] = []
        for (i, d) in shape.enumerated() {
            if reduced.contains(i) { if keepDims { out.append(1) } } else { out.append(d) }
        }
        return out
    }

    public func backwardUses(needsGrad: [Bool]) -> (inputs: [Bool], output: Bool) {
        kind == .l2 ? ([needsGrad[0]], needsGrad[0]) : ([false], false)
    }

    public func forward(_ inputs: [Tensor], on backend: any Backend) throws -> OpResult {
        if kind == .l2 {
            let squares = try backend.run(Unary(.square), inputs[0])
            let sum = try Reduce(.sum, axes: axes, keepDims: keepDims).forward([squares], on: backend).output
            return OpResult(try backend.run(Unary(.sqrt), sum))
        }
        let x = inputs[0]
        let reduced = Set(try normalizedAxes(rank: x.rank))
        let strides = contiguousStrides(x.shape)
        var keptDims: [Int] = [], keptStrides: [Int] = [], redDims: [Int] = [], redStrides: [Int] = []
        for axis in x.shape.indices {
            if reduced.contains(axis) { redDims.append(x.shape[axis]); redStrides.append(strides[axis]) }
            else { keptDims.append(x.shape[axis]); keptStrides.append(strides[axis]) }
        }
        let redCount = redDims.reduce(1, *)
        let scale: Float = kind == .mean ? 1 / Float(max(redCount, 1)) : 1
        let kept = try IndexMap(dims: keptDims, strides0: keptStrides, strides1: keptStrides).simplified()
        let red = try IndexMap(dims: redDims, strides0: redStrides, strides1: redStrides).simplified()
        let outShape = try outputShape([x.shape])
        return OpResult(try backend.kernels.reduceSum(x, outShape: outShape, kept: kept, reduced: red, scale: scale))
    }

    public func backward(_ context: BackwardContext, on backend: any Backend) throws -> [Tensor?] {
        let inShape = context.inputShapes[0]
        let reduced = Set(try normalizedAxes(rank: inShape.count))
        let keptShape = inShape.enumerated().map { reduced.contains($0.offset) ? 1 : $0.element }
        var g = try context.gradOutput.reshaped(keptShape)
        if kind == .l2 {
            let x = try context.input(0)
            let norm = try backend.run(Expand(shape: inShape), context.requireOutput().reshaped(keptShape))
            let gFull = try backend.run(Expand(shape: inShape), g)
            return [try backend.kernels.reduceL2Backward(gradOutput: gFull, input: x, norm: norm)]
        }
        if kind == .mean {
            let n = reduced.map { inShape[$0] }.reduce(1, *)
            g = try backend.run(Unary.scale(1 / Float(max(n, 1))), g)
        }
        return [try backend.run(Expand(shape: inShape), g)]
    }
}
