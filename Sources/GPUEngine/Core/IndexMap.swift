/// The largest tensor rank the strided kernels handle.
public let maxRank = 8

/// Maps a linear index over `dims` (row-major) to two element offsets, one per operand:
/// offset_k(i) = Σ_axis coord_axis(i) · strides_k[axis]. A stride of 0 broadcasts an axis,
/// a negative stride walks it backwards. Passed to kernels by value as `index_map`
/// (struct of 1 + 3·8 ints, see Sources/Kernels/common.h in each .cl file).
public struct IndexMap: Sendable, Equatable {
    public var dims: [Int]
    public var strides0: [Int]
    public var strides1: [Int]

    public init(dims: [Int], strides0: [Int], strides1: [Int]) throws {
        guard dims.count <= maxRank, strides0.count == dims.count, strides1.count == dims.count else {
            throw EngineError.unsupported("tensors of rank \(dims.count) (at most \(maxRank) is supported)")
        }
        guard dims.reduce(1, *) < Int(Int32.max) else {
            throw EngineError.unsupported("tensors of more than 2^31 elements")
        }
        self.dims = dims
        self.strides0 = strides0
        self.strides1 = strides1
    }

    public var count: Int { dims.reduce(1, *) }

    /// Drops size-1 axes and merges axes that are contiguous in both operands, so kernels loop less.
    public func simplified() -> IndexMap {
        var d: [Int] = [], s0: [Int] = [], s1: [Int] = []
        for axis in dims.indices where dims[axis] != 1 {
            if let last = d.indices.last, s0[last] == strides0[axis] * dims[axis], s1[last] == strides1[axis] * dims[axis] {
                d[last] *= dims[axis]
                s0[last] = strides0[axis]
                s1[last] = strides1[axis]
            } else {
                d.append(dims[axis]); s0.append(strides0[axis]); s1.append(strides1[axis])
            }
        }
        if d.isEmpty { d = [1]; s0 = [0]; s1 = [0] }
        // Cannot fail: the result has no more axes and no more elements than self.
        return (try? IndexMap(dims: d, strides0: s0, strides1: s1)) ?? self
    }

    /// The by-value kernel argument: rank, dims[8], strides0[8], strides1[8] as 32-bit ints.
    var argumentBytes: [UInt8] {
        var ints = [Int32](repeating: 0, count: 1 + 3 * maxRank)
        ints[0] = Int32(dims.count)
        for i in dims.indices {
            ints[1 + i] = Int32(dims[i])
            ints[1 + maxRank + i] = Int32(strides0[i])
            ints[1 + 2 * maxRank + i] = Int32(strides1[i])
        }
        return ints.withUnsafeBytes { Array($0) }
    }

    /// Calls `body(offset0, offset1)` for every linear index in order (CPU reference).
    func forEach(_ body: (Int, Int) -> Void) {
        let rank = dims.count
        let total = count
        if total == 0 { return }
        if rank == 0 { body(0, 0); return }
        var coord = [Int](repeating: 0, count: rank)
        var o0 = 0, o1 = 0
        let inner = rank - 1
        let innerDim = dims[inner], innerS0 = strides0[inner], innerS1 = strides1[inner]
        var done = 0
        while done < total {
            var a = o0, b = o1
            for _ in 0..<innerDim {
                body(a, b)
                a += innerS0; b += innerS1
            }
            done += innerDim
            // Advance the outer coordinates (odometer).
            var axis = inner - 1
            while axis >= 0 {
                coord[axis] += 1
                o0 += strides0[axis]; o1 += strides1[axis]
                if coord[axis] < dims[axis] { break }
                o0 -= strides0[axis] * dims[axis]; o1 -= strides1[axis] * dims[axis]
                coord[axis] = 0
                axis -= 1
            }
        }
    }
}

/// Numpy-style broadcast of two shapes; throws if they are incompatible.
public func broadcastShapes(_ a: [Int], _ b: [Int]) throws -> [Int] {
    let rank = max(a.count, b.count)
    var out = [Int](repeating: 1, count: rank)
    for i in 0..<rank {
        let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
        let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
        guard da == db || da == 1 || db == 1 else {
            throw EngineError.shapeMismatch("shapes \(a) and \(b) do not broadcast")
        }
        out[i] = da == 1 ? db : da
    }
    return out
}

/// Strides that read a tensor of `shape` as if it had `target` shape (broadcast axes get stride 0).
public func broadcastStrides(_ shape: [Int], to target: [Int]) -> [Int] {
    let own = contiguousStrides(shape)
    let offset = target.count - shape.count
    return target.indices.map { i in
        i < offset ? 0 : (shape[i - offset] == 1 && target[i] != 1 ? 0 : own[i - offset])
    }
}

/// Π factors, or nil when a factor is negative or the product overflows Int (sizes from model
/// files must not trap the shape checks that are meant to reject them).
func checkedProduct(_ factors: [Int]) -> Int? {
    var p = 1
    for f in factors {
        guard f >= 0 else { return nil }
        let (r, overflow) = p.multipliedReportingOverflow(by: f)
        if overflow { return nil }
        p = r
    }
    return p
}
