import Foundation

/// A penalty on the image X [N, C, H, W], one value per image, built from graph ops
/// (Unary, Reduce and, for TV, `NeighborDifferences` — one kernel in place of the eight slices
/// and subtractions a slice-based TV costs on PoCL) so its gradient comes from the executor's backward.
/// The loop subtracts Σ weight·value from the objective it maximizes (see `ImageGenerator`).
///
/// Kinds (per image n; Δx, Δy: differences of horizontal and vertical neighbours; sums over c, h, w):
/// - `tv`  (lucid / TF `tf.image.total_variation`, p = 1): Σ |Δx| + Σ |Δy|.
/// - `tv2` (Ghiasi et al. `loss/regularizers/image.py`, p = 2, with diagonals):
///     (1/C) Σ_c ( ‖Δx_c‖₂ + ‖Δy_c‖₂ + ‖Δd1_c‖₂ + ‖Δd2_c‖₂ ),  ‖·‖₂ = √(Σ_{h,w} (·)² + 1e-8),
///     Δd1 = x[1:, 1:] − x[:−1, :−1], Δd2 = x[1:, :−1] − x[:−1, 1:]. Ghiasi averages this over the batch
///     and channels, so the batch mean of ours equals theirs; their ×(H·W)/size² factor is 1 at the
///     rendered size. (They evaluate it on the augmented copies; amgpu evaluates it on X itself.)
/// - `l1` (lucid `L1`): Σ |x − center|.
/// - `l2` (lucid `L2`): √(1e-6 + Σ (x − center)²).
///   `center` is 0 (lucid's default, penalises brightness) or 0.5 (penalises deviation from grey).
public struct Regularizer: Codable, Equatable, Sendable {
    public enum Kind: String, Codable, Sendable, CaseIterable { case tv, tv2, l1, l2 }

    public var kind: Kind
    public var weight: Float
    /// L1/L2 only: the value the penalty pulls the pixels toward.
    public var center: Float

    public init(_ kind: Kind, weight: Float, center: Float = 0) {
        self.kind = kind
        self.weight = weight
        self.center = center
    }

    public func validate() throws {
        guard weight.isFinite, center.isFinite else {
            throw EngineError.invalidAttribute("regularizer \(kind.rawValue): weight \(weight) and center \(center) must be finite")
        }
    }

    /// Adds the unweighted penalty of every image of `image` [N, C, H, W] (H, W ≥ 2); returns a value of shape [N].
    public func addToGraph(_ graph: Graph, image: ValueID, name: String) throws -> ValueID {
        try validate()
        let shape = graph.shape(of: image)
        guard shape.count == 4, shape[2] >= 2, shape[3] >= 2 else {
            throw EngineError.shapeMismatch("regularizer \(kind.rawValue) needs images [N, C, H ≥ 2, W ≥ 2], got \(shape)")
        }
        switch kind {
        case .tv:
            let sums = try graph.add(NeighborDifferences(kinds: [.horizontal, .vertical], power: 1), [image],
                                     name: "\(name).abs_differences")                                   // [N, C, 2]
            return try graph.add(Reduce(.sum, axes: [1, 2]), [sums], name: "\(name).value")
        case .tv2:
            let sums = try graph.add(NeighborDifferences(kinds: [.horizontal, .vertical, .diagonal, .antiDiagonal], power: 2),
                                     [image], name: "\(name).squared_differences")                       // [N, C, 4]
            let shifted = try graph.add(Unary(.affine, alpha: 1, beta: 1e-8), [sums], name: "\(name).eps")
            let norms = try graph.add(Unary(.sqrt), [shifted], name: "\(name).norms")
            let perChannel = try graph.add(Reduce(.sum, axes: [2]), [norms], name: "\(name).per_channel")   // [N, C]
            return try graph.add(Reduce(.mean, axes: [1]), [perChannel], name: "\(name).value")
        case .l1:
            let centered = try graph.add(Unary(.affine, alpha: 1, beta: -center), [image], name: "\(name).centered")
            let a = try graph.add(Unary(.abs), [centered], name: "\(name).abs")
            return try graph.add(Reduce(.sum, axes: [1, 2, 3]), [a], name: "\(name).value")
        case .l2:
            let centered = try graph.add(Unary(.affine, alpha: 1, beta: -center), [image], name: "\(name).centered")
            let sq = try graph.add(Unary(.square), [centered], name: "\(name).square")
            let sum = try graph.add(Reduce(.sum, axes: [1, 2, 3]), [sq], name: "\(name).sum")
            let shifted = try graph.add(Unary(.affine, alpha: 1, beta: 1e-6), [sum], name: "\(name).eps")
            return try graph.add(Unary(.sqrt), [shifted], name: "\(name).value")
        }
    }
}

/// Adds Σ_i weight_i · regularizer_i(image) (shape [N]); nil when `regularizers` is empty or all weights are 0.
public func addRegularizers(_ regularizers: [Regularizer], to graph: Graph, image: ValueID,
                            name: String = "penalty") throws -> ValueID? {
    var total: ValueID? = nil
    for (i, r) in regularizers.enumerated() where r.weight != 0 {
        let value = try r.addToGraph(graph, image: image, name: "\(name).\(i).\(r.kind.rawValue)")
        let weighted = try graph.add(Unary.scale(r.weight), [value], name: "\(name).\(i).weighted")
        total = try total.map { try graph.add(Binary(.add), [$0, weighted], name: "\(name).\(i).sum") } ?? weighted
    }
    return total
}
