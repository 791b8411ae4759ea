/// Backend-neutral entry points to the few data-movement kernels that many operators share.
/// Each switches to the backend's own implementation (Backends/CPU, Backends/OpenCL).

/// For each index i over `map.dims`: dst[dstOffset + off0(i)] = src[srcOffset + off1(i)].
func copyStrided(into dst: Tensor, dstOffset: Int, from src: Tensor, srcOffset: Int, map: IndexMap,
                 on backend: any Backend) throws {
    let m = map.simplified()
    try backend.kernels.copyStrided(into: dst, dstOffset: dstOffset, from: src, srcOffset: srcOffset, map: m)
}

/// A new tensor of `shape` whose element i is src[srcOffset + off1(i)] (map over `shape`, s0 ignored).
func gatherStrided(_ src: Tensor, shape: [Int], srcOffset: Int, srcStrides: [Int], on backend: any Backend) throws -> Tensor {
    let out = try backend.zeros(shape)
    let map = try IndexMap(dims: shape, strides0: contiguousStrides(shape), strides1: srcStrides)
    try copyStrided(into: out, dstOffset: 0, from: src, srcOffset: srcOffset, map: map, on: backend)
    return out
}

/// Normalises an axis that may be negative (counted from the end) against `rank`.
func normalizeAxis(_ axis: Int, rank: Int, op: String) throws -> Int {
    let a = axis < 0 ? axis + rank : axis
    // ONNX axes index an existing dimension: rank-0 tensors have none (the old `max(rank, 1)` let
    // axis 0 through for scalars, and Concat then indexed an empty shape; found by fuzzing).
    guard a >= 0, a < rank else {
        throw EngineError.invalidAttribute("\(op): axis \(axis) is out of range for rank \(rank)")
    }
    return a
}

/// ONNX Unsqueeze: `shape` with a 1 inserted at each of `axes` (indices into the output, rank
/// shape.count + axes.count, negative from the end). The axes must be distinct: a repeated axis
/// would insert past the end (found reading the folding code after fuzz crash 8 next to it).
func unsqueezedShape(_ shape: [Int], axes: [Int]) throws -> [Int] {
    let rank = shape.count + axes.count
    let normalized = try axes.map { try normalizeAxis($0, rank: rank, op: "Unsqueeze") }.sorted()
    guard Set(normalized).count == normalized.count else {
        throw EngineError.invalidAttribute("Unsqueeze: axes \(axes) repeat an axis (output rank \(rank))")
    }
    var out = shape
    for a in normalized { out.insert(1, at: a) }
    return out
}
