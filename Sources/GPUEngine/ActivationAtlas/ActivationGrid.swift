import Foundation

/// One non-empty cell of an activation atlas grid.
public struct ActivationGridCell: Codable, Sendable, Equatable {
    /// Grid row (0 = top, the largest second coordinate) and column (0 = left, the smallest first coordinate).
    public var row: Int
    public var column: Int
    /// row · grid + column: the cell's file name under `OUT/cells/`.
    public var index: Int
    /// Samples that fell in the cell.
    public var count: Int
    /// The mean of their vectors (length d): the direction the cell is rendered toward.
    public var mean: [Float]
    /// Sample indices, nearest the mean first (Euclidean distance), at most `ActivationGrid.keptMembers`.
    public var nearest: [Int]
    /// Every sample index in the cell, ascending (`count` of them).
    public var members: [Int]
}

/// Bins a 2-D layout into a grid × grid lattice and averages each cell's vectors (Carter et al. 2019).
///
/// With uᵢ = (pᵢ − min p) / (max p − min p) per axis (a zero range maps to 0.5), point i goes to
/// column ⌊uᵢ₀ · g⌋ and row g − 1 − ⌊uᵢ₁ · g⌋ (clamped to 0…g−1), so larger second coordinates are higher up.
/// A cell with at least `minCount` points keeps count, mean vector (1/count Σ xᵢ) and the members nearest its mean.
public enum ActivationGrid {
    public static let keptMembers = 16

    /// `layout`: [n, 2] row-major; `vectors`: [n, d] row-major. Cells in row-major order.
    public static func bin(layout: [Float], vectors: [Float], count n: Int, dimension d: Int, grid g: Int,
                           minCount: Int = 1) throws -> [ActivationGridCell] {
        guard g >= 1 else { throw EngineError.invalidInput("the grid must be at least 1×1, got \(g)") }
        guard layout.count == n * 2, vectors.count == n * d else {
            throw EngineError.shapeMismatch("grid: \(layout.count / 2) layout points for \(n) vectors of \(d)")
        }
        guard layout.allSatisfy(\.isFinite) else { throw EngineError.invalidInput("the layout holds NaN or infinite coordinates") }
        var lo = [Float.infinity, .infinity], hi = [-Float.infinity, -Float.infinity]
        for i in 0..<n { for a in 0..<2 { lo[a] = min(lo[a], layout[i * 2 + a]); hi[a] = max(hi[a], layout[i * 2 + a]) } }
        func bucket(_ v: Float, _ a: Int) -> Int {
            let range = hi[a] - lo[a]
            let u = range > 0 ? Double(v - lo[a]) / Double(range) : 0.5
            return min(max(Int((u * Double(g)).rounded(.down)), 0), g - 1)
        }
        var members = [Int: [Int]]()
        for i in 0..<n {
            let column = bucket(layout[i * 2], 0), row = g - 1 - bucket(layout[i * 2 + 1], 1)
            members[row * g + column, default: []].append(i)
        }
        var cells: [ActivationGridCell] = []
        for index in members.keys.sorted() {
            guard let list = members[index], list.count >= max(minCount, 1) else { continue }
            var sum = [Double](repeating: 0, count: d)
            for i in list { for j in 0..<d { sum[j] += Double(vectors[i * d + j]) } }
            let mean = sum.map { Float($0 / Double(list.count)) }
            func distance(_ i: Int) -> Double {
                var s = 0.0
                for j in 0..<d { let t = Double(vectors[i * d + j] - mean[j]); s += t * t }
                return s
            }
            let distances: [(index: Int, distance: Double)] = list.map { (index: $0, distance: distance($0)) }
            let ordered = distances.sorted { (a, b) -> Bool in a.distance != b.distance ? a.distance < b.distance : a.index < b.index }
            let nearest: [Int] = ordered.prefix(keptMembers).map { $0.index }
            cells.append(ActivationGridCell(row: index / g, column: index % g, index: index, count: list.count, mean: mean,
                                            nearest: Array(nearest), members: list))
        }
        return cells
    }
}
