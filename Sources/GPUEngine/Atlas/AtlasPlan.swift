import Foundation

/// One unit of an atlas: a layer (as named by `amgpu layers`) and a unit index in it
/// (a CNN channel, a ViT token dimension, or a logit).
public struct AtlasUnit: Hashable, Codable, Sendable, CustomStringConvertible {
    public var layer: String
    public var unit: Int

    public init(layer: String, unit: Int) {
        self.layer = layer
        self.unit = unit
    }

    public var description: String { "\(layer):\(unit)" }
}

/// A layer of an atlas and how its units are maximized.
public struct AtlasLayer: Codable, Sendable, Equatable {
    public var name: String
    /// The folder under the atlas root (`safeFileName(name)`).
    public var directory: String
    /// The layer's output shape at batch 1.
    public var shape: [Int]
    /// Units in the layer (channels [1,C,H,W] → C, tokens [1,T,D] → D, logits [1,K] → K).
    public var unitCount: Int
    /// The objective: `channel` (spatial mean for CNNs, patch-token mean for ViTs) or `logit` on the model output.
    public var objective: ObjectiveTerm.Kind
}

/// The ordered unit list of an atlas: layers in the order given, units ascending within each.
public enum AtlasPlan {
    /// Units per layer for a value of shape `shape` (batch first).
    public static func unitCount(of shape: [Int]) -> Int {
        shape.count == 4 ? shape[1] : (shape.last ?? 1)
    }

    /// Resolves `layers` (names as in `amgpu layers`; "output" for the logits) on `model`.
    public static func layers(_ names: [String], of model: Model) throws -> [AtlasLayer] {
        guard !names.isEmpty else { throw EngineError.invalidInput("no layers given: pass \(SettingName.layers.mention) L1,L2 (see `amgpu layers \(model.name)`)") }
        var seen = Set<String>(), dirs = [String: String]()
        var out: [AtlasLayer] = []
        for name in names {
            guard seen.insert(name).inserted else { throw EngineError.invalidInput("layer '\(name)' is listed twice in \(SettingName.layers.mention)") }
            let id = try model.resolve(layer: name)
            let shape = model.graph.shape(of: id)
            guard shape.count >= 2 else { throw EngineError.invalidInput("layer '\(name)' has shape \(shape): it has no units to visualize") }
            let directory = safeFileName(name)
            if let other = dirs[directory] {
                throw EngineError.invalidInput("layers '\(other)' and '\(name)' would share the folder '\(directory)': render them into different folders (\(SettingName.outputFolder.mention))")
            }
            dirs[directory] = name
            let kind: ObjectiveTerm.Kind = id == model.output && shape.count == 2 ? .logit : .channel
            out.append(AtlasLayer(name: name, directory: directory, shape: shape, unitCount: unitCount(of: shape), objective: kind))
        }
        return out
    }

    /// Every selected unit, in order: for each layer, `units` (all of the layer's units when nil).
    /// Throws when a unit is out of range for a layer.
    public static func units(of layers: [AtlasLayer], selecting units: [Int]?) throws -> [AtlasUnit] {
        var out: [AtlasUnit] = []
        for layer in layers {
            let selected = units.map { Array(Set($0)).sorted() } ?? Array(0..<layer.unitCount)
            if let bad = selected.first(where: { $0 >= layer.unitCount }) {
                throw EngineError.invalidInput("unit \(bad) is out of range for layer '\(layer.name)' (\(layer.unitCount) units, 0–\(layer.unitCount - 1)): narrow \(SettingName.units.mention)")
            }
            out.append(contentsOf: selected.map { AtlasUnit(layer: layer.name, unit: $0) })
        }
        return out
    }
}

/// A deterministic slice of the unit list: shard `index` of `count` takes the units at positions
/// p with p mod count = index. Interleaving keeps shards balanced across layers of different cost;
/// the n shards together hold every unit exactly once.
public struct AtlasShard: Equatable, Sendable, CustomStringConvertible {
    public var index: Int
    public var count: Int

    public init(index: Int, count: Int) throws {
        guard count >= 1, index >= 0, index < count else {
            throw EngineError.invalidInput("bad shard \(index)/\(count): the index must be in 0..<count (e.g. \(SettingName.shard.mention) 0/4 … \(SettingName.shard.mention) 3/4)")
        }
        self.index = index
        self.count = count
    }

    /// Parses "i/n".
    public init(parsing text: String) throws {
        let parts = text.split(separator: "/").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 2, let i = parts[0], let n = parts[1] else {
            throw EngineError.invalidInput("bad shard '\(text)': use i/n, e.g. \(SettingName.shard.mention) 0/4 (shard 0 of 4)")
        }
        try self.init(index: i, count: n)
    }

    public static let whole = AtlasShard(unchecked: 0, 1)
    init(unchecked index: Int, _ count: Int) { self.index = index; self.count = count }

    public var description: String { "\(index)/\(count)" }

    /// The shard a scheduler assigned, or nil when none did:
    /// - Slurm job arrays: `SLURM_ARRAY_TASK_ID` and `SLURM_ARRAY_TASK_COUNT` (the index is taken relative to
    ///   `SLURM_ARRAY_TASK_MIN`, so `--array=1-4` works like `--array=0-3`);
    /// - Kubernetes Indexed Jobs: `JOB_COMPLETION_INDEX`, with the count from `count` (`--shard-count`) or
    ///   `AMGPU_SHARD_COUNT` (the Job's `completions`).
    public static func fromEnvironment(_ environment: [String: String], count: Int? = nil) throws -> AtlasShard? {
        func int(_ key: String) throws -> Int? {
            guard let text = environment[key], !text.isEmpty else { return nil }
            guard let value = Int(text) else { throw EngineError.invalidInput("\(key)='\(text)' is not an integer") }
            return value
        }
        if let id = try int("SLURM_ARRAY_TASK_ID") {
            guard let n = try count ?? int("SLURM_ARRAY_TASK_COUNT") else {
                throw EngineError.invalidInput("SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not: pass \(SettingName.shardCount.mention) N")
            }
            let minimum = try int("SLURM_ARRAY_TASK_MIN") ?? 0
            return try AtlasShard(index: id - minimum, count: n)
        }
        if let index = try int("JOB_COMPLETION_INDEX") {
            guard let n = try count ?? int("AMGPU_SHARD_COUNT") else {
                throw EngineError.invalidInput("JOB_COMPLETION_INDEX is set but the number of shards is not: pass \(SettingName.shardCount.mention) N (the Job's completions) or set AMGPU_SHARD_COUNT")
            }
            return try AtlasShard(index: index, count: n)
        }
        return nil
    }

    /// The items at positions p with p mod count = index, in order.
    public func select<T>(_ items: [T]) -> [T] {
        stride(from: index, to: items.count, by: count).map { items[$0] }
    }
}
