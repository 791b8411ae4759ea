/// Softmax along one axis, numerically stable (the maximum is subtracted first):
///
///     y_k = exp(x_k − max_j x_j) / Σ_j exp(x_j − max_j x_j)        (k, j along `axis`)
///
/// - Input: x of any shape; `axis` may be negative (counted from the end; default the last).
/// - Output: shaped like x.
/// - Backward from the saved output: dx = y ⊙ (dy − Σ_axis dy ⊙ y).
///
/// Kernels: `softmax.cl` (`softmax_forward`, `softmax_backward_x`); CPU reference in
/// `Backends/CPU/Softmax+CPU.swift`.
public struct Softmax: AxisSoftmaxOperator {
    public var axis: Int
    public init(axis: Int = -1) { self.axis = axis }
    public var typeName: String { "Softmax" }
    var isLog: Bool { false }
}

/// Log-softmax along one axis (for cross-entropy objectives), numerically stable:
///
///     y_k = x_k − max_j x_j − log Σ_j exp(x_j − max_j x_j)
///
/// - Input: x of any shape; `axis` may be negative (default the last). Output: shaped like x.
/// - Backward from the saved output: dx = dy − exp(y) · Σ_axis dy.
///
/// Kernels: `softmax.cl` (`log_softmax_forward`, `log_softmax_backward_x`); CPU reference in
/// `Backends/CPU/Softmax+CPU.swift`.
public struct LogSoftmax: AxisSoftmaxOperator {
    public var axis: Int
    public init(axis: Int = -1) { self.axis = axis }
    public var typeName: String { "LogSoftmax" }
    var isLog: Bool { true }
}

/// The one implementation of `Softmax` and `LogSoftmax`: shape check, forward and backward from the saved
/// output differ only in `isLog`, which selects the kernel pair (and the CPU reference's formula).
protocol AxisSoftmaxOperator: Operator {
    var axis: Int { get }
    var isLog: Bool { get }
}

extension AxisSoftmaxOperator {
    public func outputShape(_ inputShapes: [[Int]]) throws -> [Int] {
        try expectInputs(inputShapes, 1, typeName)
        _ = try normalizeAxis(axis, rank: inputShapes[0].count, op: typeName)
        return inputShapes[0]
    }

    public func backwardUses(needsGrad: [Bool]) -> (inputs: [Bool], output: Bool) { ([false], true) }

    public func forward(_ inputs: [Tensor], on backend: any Backend) throws -> OpResult {
        let view = try SoftmaxView(inputs[0].shape, axis: axis, op: typeName)
        return OpResult(try backend.kernels.softmaxForward(inputs[0], view: view, log: isLog))
    }

    public func backward(_ context: BackwardContext, on backend: any Backend) throws -> [Tensor?] {
        let y = try context.requireOutput()
        let view = try SoftmaxView(y.shape, axis: axis, op: typeName)
        return [try backend.kernels.softmaxBackward(context.gradOutput, output: y, view: view, log: isLog)]
    }
}

/// A tensor seen as [outer, n, inner] around the softmax axis (length n, stride inner).
struct SoftmaxView {
    var outer: Int, n: Int, inner: Int

    init(_ shape: [Int], axis: Int, op: String) throws {
        let a = try normalizeAxis(axis, rank: shape.count, op: op)
        if shape.isEmpty {
            (outer, n, inner) = (1, 1, 1)
        } else {
            outer = shape[..<a].reduce(1, *)
            n = shape[a]
            inner = shape[(a + 1)...].reduce(1, *)
        }
        guard outer * n * inner < Int(Int32.max) else {
            throw EngineError.unsupported("\(op) on tensors of more than 2^31 elements")
        }
    }
}
