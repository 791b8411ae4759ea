import Foundation

/// One dataset example of a unit: an image, the unit's value on it (the layer's reduction: the maximum over
/// positions), where that maximum is, and the input box of that position.
public struct ProbeExample: Codable, Sendable, Equatable {
    /// The image's path, as found in the folder listing.
    public var image: String
    public var value: Float
    /// [row, column] of the maximum in a feature map, [token] for tokens, [] for a vector.
    public var position: [Int]
    /// The position's receptive field in the model input (the fitted image), half-open [x0, y0, x1, y1].
    public var box: PixelBox

    public init(image: String, value: Float, position: [Int], box: PixelBox) {
        self.image = image
        self.value = value
        self.position = position
        self.box = box
    }

    /// The ranking of examples: larger value first; ties by image path (UTF-8 bytes), then position.
    /// A total order on distinct (image, position), so top-k is the same whatever order images arrive in.
    public static func ranks(_ a: ProbeExample, before b: ProbeExample) -> Bool {
        if a.value != b.value { return a.value > b.value }
        if a.image != b.image { return Array(a.image.utf8).lexicographicallyPrecedes(Array(b.image.utf8)) }
        return a.position.lexicographicallyPrecedes(b.position)
    }
}

/// What a probe keeps per unit: the top-k examples and two mergeable summaries over the images — of the
/// per-image value (the maximum over positions) and of the per-image mean over positions (what the AM
/// `channel` objective measures: the spatial mean for CNNs, the patch-token mean for ViTs).
public struct ProbeUnitState: Codable, Sendable, Equatable {
    public var unit: Int
    public var top: [ProbeExample] = []
    public var maximum = RunningSummary()
    public var mean = RunningSummary()

    public init(unit: Int) { self.unit = unit }

    /// Adds one image's example, keeping the best `k` in rank order.
    public mutating func add(_ example: ProbeExample, mean m: Double, k: Int) {
        maximum.add(Double(example.value))
        mean.add(m)
        insert(example, k: k)
    }

    mutating func insert(_ example: ProbeExample, k: Int) {
        if top.count == k, let last = top.last, !ProbeExample.ranks(example, before: last) { return }
        let at = top.firstIndex { ProbeExample.ranks(example, before: $0) } ?? top.count
        top.insert(example, at: at)
        if top.count > k { top.removeLast() }
    }

    /// Exact merge: the union's top k (a superset of the true top k is in the two lists) and merged summaries.
    public mutating func merge(_ other: ProbeUnitState, k: Int) {
        for e in other.top { insert(e, k: k) }
        maximum.merge(other.maximum)
        mean.merge(other.mean)
    }
}

/// A probed layer: its name, shape at batch 1, kind, and the units kept.
public struct ProbeLayer: Codable, Sendable, Equatable {
    public var name: String
    public var shape: [Int]
    /// "spatial" (a feature map), "tokens" (ViT tokens) or "vector".
    public var kind: String
    /// How a unit's value on an image is computed, in words.
    public var reduction: String
    /// What `position` holds.
    public var position: String
    /// The folder of the unit montages under the output (`safeFileName(name)`).
    public var directory: String
    public var units: [Int]
}

/// A shard's partial (or finished) probe, written atomically every few batches to
/// OUT/shards/shard-i-of-n.json; the unit of resume and of merging.
public struct ProbeState: Codable, Sendable, Equatable {
    public static let format = "amgpu-probe-state/1"
    public var format = ProbeState.format
    public var model: String
    public var modelSHA256: String?
    public var preprocessing: Preprocessing
    public var top: Int
    /// The batch size B: shards hold whole batches, so every shard of a run must use the same B.
    public var batch: Int
    public var layers: [ProbeLayer]
    /// SHA-256 of the whole folder listing (every image path, in order): shards of one run share it.
    public var listingSHA256: String
    /// Images in the whole listing, and the files the listing skipped (not JPEG/PNG), for every shard.
    public var listed: Int
    public var listingSkipped: [ImageFolder.Skipped]
    public var shardIndex: Int
    public var shardCount: Int
    /// This shard's images (whole batches: listing positions p with ⌊p / batch⌋ mod count = index).
    public var shardImages: Int
    /// How many of them are done (read or skipped), in order; `complete` when all are.
    public var consumed: Int
    public var complete: Bool
    public var read: Int
    /// This shard's files that could not be decoded.
    public var skipped: [ImageFolder.Skipped]
    /// Per layer (aligned with `layers`), per unit (aligned with the layer's `units`).
    public var units: [[ProbeUnitState]]

    /// The run this state belongs to, without what changes as it proceeds or differs between shards.
    var runKey: String {
        "\(model)|\(modelSHA256 ?? "-")|\(top)|\(batch)|\(listingSHA256)|\(listed)|\(shardCount)|"
            + layers.map { "\($0.name):\($0.shape):\($0.units)" }.joined(separator: ";")
            + "|\(preprocessing.height)x\(preprocessing.width)|\(preprocessing.mean)|\(preprocessing.std)|\(preprocessing.cropFraction)|\(preprocessing.interpolation)|\(preprocessing.fit)"
    }

    /// Reads a state file; a file that is not one is a clear error.
    public static func read(_ path: String) throws -> ProbeState {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw EngineError.io("cannot read probe state '\(path)': \(error.localizedDescription)")
        }
        do {
            let s = try JSONDecoder().decode(ProbeState.self, from: data)
            guard s.format == format else { throw EngineError.invalidInput("format '\(s.format)'") }
            guard s.units.count == s.layers.count, zip(s.units, s.layers).allSatisfy({ $0.count == $1.units.count }),
                  s.shardIndex >= 0, s.shardIndex < s.shardCount, s.consumed <= s.shardImages, s.top >= 1 else {
                throw EngineError.invalidInput("inconsistent contents")
            }
            return s
        } catch {
            throw EngineError.invalidInput("'\(path)' is not an amgpu probe state (\(error)); it is written by `amgpu probe` under OUT/shards/")
        }
    }

    public func write(to path: String) throws {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        try writeAtomically(try e.encode(self), to: path)
    }
}
