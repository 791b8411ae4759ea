import Foundation

// Small image ops of the AM pipeline. Each replaces a composition of shared ops (slices, concat,
// expand, broadcasting binaries) that costs several strided copies per step on PoCL with one
// kernel forward and one gather kernel backward (no atomics).

/// torch.roll over the last two axes: y[..., j, i] = x[..., (j − shiftY) mod H, (i − shiftX) mod W].
/// x: [..., H, W] (rank ≥ 2) → y of the same shape. Backward: the roll by (−shiftY, −shiftX).
public struct Roll: Operator {
    public var shiftY: Int
    public var shiftX: Int

    public init(shiftY: Int, shiftX: Int) {
        self.shiftY = shiftY
        self.shiftX = shiftX
    }

    public var typeName: String { "Roll" }

    public func outputShape(_ inputShapes: [[Int]]) throws -> [Int] {
        try expectInputs(inputShapes, 1, typeName)
        let s = inputShapes[0]
        guard s.count >= 2, s.allSatisfy({ $0 > 0 }) else {
            throw EngineError.shapeMismatch("Roll needs a non-empty tensor of rank ≥ 2, got \(s)")
        }
        guard s.reduce(1, *) < Int(Int32.max) else { throw EngineError.unsupported("Roll on tensors of more than 2^31 elements") }
        return s
    }

    public func backwardUses(needsGrad: [Bool]) -> (inputs: [Bool], output: Bool) { ([false], false) }

    /// (planes, H, W, shifts normalised into [0, H) and [0, W)).
    func geometry(_ shape: [Int]) -> (planes: Int, height: Int, width: Int, sy: Int, sx: Int) {
        let h = shape[shape.count - 2], w = shape[shape.count - 1]
        return (shape.dropLast(2).reduce(1, *), h, w, ((shiftY % h) + h) % h, ((shiftX % w) + w) % w)
    }

    public func forward(_ inputs: [Tensor], on backend: any Backend) throws -> OpResult {
        let x = inputs[0]
        let g = geometry(try outputShape([x.shape]))
        if g.sy == 0 && g.sx == 0 { return OpResult(x) }
        return OpResult(try backend.kernels.roll(x, planes: g.planes, height: g.height, width: g.width, sy: g.sy, sx: g.sx))
    }

    public func backward(_ context: BackwardContext, on backend: any Backend) throws -> [Tensor?] {
        guard context.needsGrad[0] else { return [nil] }
        return [try Roll(shiftY: -shiftY, shiftX: -shiftX).forward([context.gradOutput], on: backend).output]
    }
}

/// Per-(image, channel) affine map with optional repetition of the batch:
/// x: [N, C, H, W] → y: [N·copies, C, H, W],
///   y[n·copies + k, c] = scale[r, c] · x[n, c] + shift[r, c],  r = n·copies + k,
/// where `scale` and `shift` hold either C values (shared by every row) or N·copies·C values.
/// Backward: dx[n, c] = Σ_k scale[n·copies + k, c] · dy[n·copies + k, c] (a gather over the copies).
public struct ChannelAffine: Operator {
    public var copies: Int
    public var scale: [Float]
    public var shift: [Float]

    public init(copies: Int = 1, scale: [Float], shift: [Float]) {
        self.copies = copies
        self.scale = scale
        self.shift = shift
    }

    public var typeName: String { "ChannelAffine" }

    public func outputShape(_ inputShapes: [[Int]]) throws -> [Int] {
        try expectInputs(inputShapes, 1, typeName)
        let s = inputShapes[0]
        guard s.count == 4, s.allSatisfy({ $0 > 0 }) else {
            throw EngineError.shapeMismatch("ChannelAffine needs a non-empty [N, C, H, W] tensor, got \(s)")
        }
        guard copies >= 1 else { throw EngineError.invalidAttribute("ChannelAffine: copies must be ≥ 1, got \(copies)") }
        let rows = s[0] * copies
        guard scale.count == shift.count, scale.count == s[1] || scale.count == rows * s[1] else {
            throw EngineError.invalidAttribute("ChannelAffine: \(scale.count) scales and \(shift.count) shifts for \(rows) rows of \(s[1]) channels (give \(s[1]) or \(rows * s[1]) of each)")
        }
        guard rows * s[1] * s[2] * s[3] < Int(Int32.max) else {
            throw EngineError.unsupported("ChannelAffine on tensors of more than 2^31 elements")
        }
        return [rows, s[1], s[2], s[3]]
    }

    public func backwardUses(needsGrad: [Bool]) -> (inputs: [Bool], output: Bool) { ([false], false) }

    /// scale and shift interleaved per (row or shared, channel): [s0, b0, s1, b1, …].
    var packed: [Float] { zip(scale, shift).flatMap { [$0, $1] } }

    public func forward(_ inputs: [Tensor], on backend: any Backend) throws -> OpResult {
        let x = inputs[0]
        let out = try outputShape([x.shape])
        let shared = scale.count == x.shape[1]
        let ab = try backend.tensor(HostTensor(shape: [scale.count, 2], values: packed))
        return OpResult(try backend.kernels.channelAffineForward(x, outShape: out, copies: copies, packed: ab, shared: shared),
                        saved: [ab])
    }

    public func backward(_ context: BackwardContext, on backend: any Backend) throws -> [Tensor?] {
        guard context.needsGrad[0] else { return [nil] }
        let inShape = context.inputShapes[0]
        let shared = scale.count == inShape[1]
        let ab = try context.saved.first ?? backend.tensor(HostTensor(shape: [scale.count, 2], values: packed))
        return [try backend.kernels.channelAffineBackward(context.gradOutput, inputShape: inShape, copies: copies, packed: ab,
                                                          shared: shared)]
    }
}

/// Sums of powers of neighbour differences, per image and channel — the core of total variation:
/// x: [N, C, H, W] → y: [N, C, K] with, for each kind k (pixel pair offsets a_k, b_k),
///   y[n, c, k] = Σ_{p : p + a_k, p + b_k inside} |x[p + a_k] − x[p + b_k]|^power,  power ∈ {1, 2}.
/// Kinds: horizontal x[j, i+1] − x[j, i]; vertical x[j+1, i] − x[j, i];
/// diagonal x[j+1, i+1] − x[j, i]; antiDiagonal x[j+1, i] − x[j, i+1].
/// Backward (gather): dx[p] = Σ_k g[k] · (f′(d(p − a_k)) − f′(d(p − b_k))) over the pairs that exist,
/// f′(d) = sign(d) for power 1 (0 at d = 0) and 2d for power 2.
public struct NeighborDifferences: Operator {
    public enum Kind: Int, Sendable, CaseIterable {
        case horizontal = 0, vertical, diagonal, antiDiagonal

        /// (a_y, a_x, b_y, b_x).
        var offsets: (Int, Int, Int, Int) {
            switch self {
            case .horizontal: return (0, 1, 0, 0)
            case .vertical: return (1, 0, 0, 0)
            case .diagonal: return (1, 1, 0, 0)
            case .antiDiagonal: return (1, 0, 0, 1)
            }
        }
    }

    public var kinds: [Kind]
    public var power: Int

    public init(kinds: [Kind], power: Int) {
        self.kinds = kinds
        self.power = power
    }

    public var typeName: String { "NeighborDifferences" }

    public func outputShape(_ inputShapes: [[Int]]) throws -> [Int] {
        try expectInputs(inputShapes, 1, typeName)
        let s = inputShapes[0]
        guard s.count == 4, s.allSatisfy({ $0 > 0 }) else {
            throw EngineError.shapeMismatch("NeighborDifferences needs a non-empty [N, C, H, W] tensor, got \(s)")
        }
        guard power == 1 || power == 2 else { throw EngineError.invalidAttribute("NeighborDifferences: power must be 1 or 2, got \(power)") }
        guard !kinds.isEmpty, kinds.count <= 4 else { throw EngineError.invalidAttribute("NeighborDifferences needs 1…4 kinds") }
        guard s.reduce(1, *) < Int(Int32.max) else { throw EngineError.unsupported("NeighborDifferences on more than 2^31 elements") }
        return [s[0], s[1], kinds.count]
    }

    /// Backward reads x (to recompute the differences).
    public func backwardUses(needsGrad: [Bool]) -> (inputs: [Bool], output: Bool) { ([needsGrad[0]], false) }

    /// The 4 offsets of each kind, flattened (a_y, a_x, b_y, b_x per kind).
    var offsetTable: [Int32] { kinds.flatMap { k -> [Int32] in let o = k.offsets; return [o.0, o.1, o.2, o.3].map(Int32.init) } }

    public func forward(_ inputs: [Tensor], on backend: any Backend) throws -> OpResult {
        let x = inputs[0]
        let out = try outputShape([x.shape])
        return OpResult(try backend.kernels.neighborDifferencesForward(self, x, outShape: out))
    }

    public func backward(_ context: BackwardContext, on backend: any Backend) throws -> [Tensor?] {
        guard context.needsGrad[0] else { return [nil] }
        let x = try context.input(0)
        return [try backend.kernels.neighborDifferencesBackward(self, gradOutput: context.gradOutput, x)]
    }
}
