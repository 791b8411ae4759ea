import Foundation

/// A unit's "natural" reference from a probe of a data set (`visualize`/`atlas --baseline OUT/probe.json`),
/// recorded in the AM image's sidecar beside its final objective.
///
/// `mean` is the distribution over the probed images of the unit's mean over positions — the quantity the AM
/// `channel` objective maximizes (spatial mean for CNNs, patch-token mean for ViTs; the value itself for
/// logits) — so `finalObjective` can be read against it (e.g. above its 0.99 quantile). `max` is the distribution
/// of the per-image maximum (the probe's ranking value), and `topValue`/`topImage` the best dataset example.
public struct DatasetBaseline: Codable, Sendable, Equatable {
    /// The probe.json it came from.
    public var probe: String
    public var images: Int
    public var layer: String
    public var unit: Int
    public var mean: UnitStatistics
    public var max: UnitStatistics
    public var topValue: Float
    public var topImage: String
    public var topBox: PixelBox
}

extension ProbeResult {
    /// Throws unless this probe was made with `model` (same name and, when both are files, same SHA-256).
    public func checkModel(_ model: Model, path: String) throws {
        let sha = model.fileSHA256()
        let sameFile = modelSHA256 == nil || sha == nil || modelSHA256 == sha
        guard self.model == model.name, sameFile else {
            let theirs = modelSHA256.map { " (SHA-256 \($0.prefix(12))…)" } ?? ""
            let ours = sha.map { " (SHA-256 \($0.prefix(12))…)" } ?? ""
            throw EngineError.invalidInput("'\(path)' is a probe of \(self.model)\(theirs), not of \(model.name)\(ours): give the probe.json of the same model, or probe it first (`amgpu probe --model … --images DIR --layers … --out OUT`)")
        }
    }

    /// The reference of `unit` of `layer`, or nil when the probe did not keep that unit.
    public func baseline(layer: String, unit: Int, path: String) -> DatasetBaseline? {
        guard let stats = statistics[layer]?[String(unit)], let best = layers[layer]?[String(unit)]?.first else { return nil }
        return DatasetBaseline(probe: path, images: images, layer: layer, unit: unit, mean: stats.mean, max: stats.max,
                               topValue: best.value, topImage: best.image, topBox: best.box)
    }

    /// Adds each unit's reference to the sidecars at `paths` (rewritten atomically); returns how many got one.
    /// Sidecars of units the probe did not keep are left as they are.
    @discardableResult
    public func annotate(sidecars paths: [String], probePath: String) throws -> Int {
        var count = 0
        for path in paths where FileManager.default.fileExists(atPath: path) {
            let data: Data
            do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
                throw EngineError.io("cannot read '\(path)': \(error.localizedDescription)")
            }
            guard var record = try? JSONDecoder().decode(VisualizationSidecar.self, from: data) else { continue }
            guard let b = baseline(layer: record.layer, unit: record.unit, path: probePath) else { continue }
            if record.datasetBaseline == b { count += 1; continue }
            record.datasetBaseline = b
            let e = JSONEncoder()
            e.outputFormatting = [.prettyPrinted, .sortedKeys]   // as AMBatchRunner writes them
            try writeAtomically(try e.encode(record), to: path)
            count += 1
        }
        return count
    }
}
