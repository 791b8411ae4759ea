/// How `Pad` fills the border (ONNX Pad modes).
public enum PadMode: String, Sendable, CaseIterable {
    /// A constant `value`.
    case constant
    /// Mirror without repeating the edge: for x = [a, b, c], 2 pads before give [c, b | a, b, c].
    case reflect
    /// Repeat the edge value: [a, a | a, b, c].
    case edge
}

/// Pads every axis of a tensor (ONNX Pad with static pads):
///
///     y[c_0, ..., c_{r−1}] = x[src(c_0 − b_0), ..., src(c_{r−1} − b_{r−1})]
///
/// where src maps an index outside [0, n) by the mode (reflect: −i or 2(n − 1) − i; edge: clamp to
/// 0 or n − 1); in `.constant` mode any outside index gives `value`. `pads` uses ONNX's layout
/// [b_0, ..., b_{r−1}, e_0, ..., e_{r−1}] (begin then end pads per axis), so y's axis k has
/// n_k + b_k + e_k elements. Use `Pad.spatial` for the H and W axes of NCHW. Negative pads (crops)
/// are rejected; reflect needs pads < n and edge needs n ≥ 1 on every padded axis.
/// Backward: dx[i] = Σ of dy over the output positions that read x[i] — one gather kernel per padded
/// axis (no atomics).
public struct Pad: Operator {
    public var pads: [Int]
    public var mode: PadMode
    public var value: Float

    public init(pads: [Int], mode: PadMode = .constant, value: Float = 0) {
        self.pads = pads
        self.mode = mode
        self.value = value
    }

    /// Pads the H and W axes of an NCHW tensor.
    public static func spatial(_ p: Padding2D, mode: PadMode = .constant, value: Float = 0) -> Pad {
        Pad(pads: [0, 0, p.top, p.left, 0, 0, p.bottom, p.right], mode: mode, value: value)
    }

    public var typeName: String { "Pad.\(mode.rawValue)" }

    /// Begin and end pads per axis for an input of `shape`, validated.
    func beginEnd(_ shape: [Int]) throws -> (begin: [Int], end: [Int]) {
        let rank = shape.count
        guard pads.count == 2 * rank else {
            throw EngineError.invalidAttribute("Pad: pads must have 2 × rank = \(2 * rank) entries [begins..., ends...] for input \(shape), got \(pads.count)")
        }
        guard rank <= maxRank else { throw EngineError.unsupported("Pad: tensors of rank \(rank) (at most \(maxRank))") }
        let begin = Array(pads[0..<rank]), end = Array(pads[rank...])
        guard pads.allSatisfy({ $0 >= 0 }) else {
            throw EngineError.invalidAttribute("Pad: negative pads \(pads) (crops) are not supported; use Slice to crop")
        }
        for axis in 0..<rank where begin[axis] > 0 || end[axis] > 0 {
            switch mode {
            case .constant: break
            case .edge:
                guard shape[axis] >= 1 else {
                    throw EngineError.invalidAttribute("Pad: edge padding of axis \(axis) needs at least one element, input is \(shape)")
                }
            case .reflect:
                guard begin[axis] < shape[axis], end[axis] < shape[axis] else {
                    throw EngineError.invalidAttribute("Pad: reflect pads of axis \(axis) (\(begin[axis]), \(end[axis])) must be smaller than its size \(shape[axis])")
                }
            }
        }
        return (begin, end)
    }

    public func outputShape(_ inputShapes: [[Int]]) throws -> [Int] {
        try expectInputs(inputShapes, 1, typeName)
        let (begin, end) = try beginEnd(inputShapes[0])
        let out = inputShapes[0].indices.map { inputShapes[0][$0] + begin[$0] + end[$0] }
        guard let count = checkedProduct(out), count < Int(Int32.max) else { throw EngineError.unsupported("Pad: tensors of more than 2^31 elements") }
        return out
    }

    public func backwardUses(needsGrad: [Bool]) -> (inputs: [Bool], output: Bool) { ([false], false) }

    /// The input index that output index `c` of an axis of size n reads, or nil for the constant.
    static func source(_ c: Int, begin: Int, n: Int, mode: PadMode) -> Int? {
        let i = c - begin
        if i >= 0 && i < n { return i }
        switch mode {
        case .constant: return nil
        case .edge: return i < 0 ? 0 : n - 1
        case .reflect: return i < 0 ? -i : 2 * (n - 1) - i
        }
    }

    public func forward(_ inputs: [Tensor], on backend: any Backend) throws -> OpResult {
        let x = inputs[0]
        let out = try outputShape([x.shape])
        let (begin, _) = try beginEnd(x.shape)
        return OpResult(try backend.kernels.padForward(x, outShape: out, begin: begin, mode: mode, value: value))
    }

    public func backward(_ context: BackwardContext, on backend: any Backend) throws -> [Tensor?] {
        let inShape = context.inputShapes[0]
        let (begin, end) = try beginEnd(inShape)
        return [try backend.kernels.padBackward(context.gradOutput, inShape: inShape, begin: begin, end: end, mode: mode)]
    }
}
