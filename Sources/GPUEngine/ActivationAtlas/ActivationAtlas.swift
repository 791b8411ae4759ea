import Foundation

/// How the samples are laid out in 2-D.
public enum ActivationAtlasLayoutSource: Sendable, Equatable {
    /// PCA through LAPACK (built in).
    case pca
    /// A [n, 2] `.npy` of coordinates computed elsewhere (e.g. UMAP by `scripts/activation-atlas-umap`),
    /// one row per sample of `OUT/samples.npy`, in its order.
    case file(String)

    /// "pca", or the file's path.
    public var description: String {
        switch self {
        case .pca: return "pca"
        case .file(let path): return path
        }
    }
}

/// What an activation atlas is computed from. Runs (and shards) writing into one folder must agree on all of it.
public struct ActivationAtlasSettings: Codable, Sendable, Equatable {
    /// The model as given (`--model`), its name and file hash.
    public var model: String
    public var modelName: String
    public var modelSHA256: String?
    public var layer: String
    /// The photo folder (`--images`).
    public var images: String
    public var samples: Int
    public var seed: UInt64
    /// `--class`: the class name and index, or nil.
    public var className: String?
    public var classIndex: Int?
    public var grid: Int
    public var minCount: Int
    /// "pca", or the path of the layout `.npy`.
    public var layout: String
    public var preset: AMPreset

    public init(model: String, modelName: String, modelSHA256: String?, layer: String, images: String, samples: Int, seed: UInt64,
                className: String?, classIndex: Int?, grid: Int, minCount: Int, layout: String, preset: AMPreset) {
        self.model = model
        self.modelName = modelName
        self.modelSHA256 = modelSHA256
        self.layer = layer
        self.images = images
        self.samples = samples
        self.seed = seed
        self.className = className
        self.classIndex = classIndex
        self.grid = grid
        self.minCount = minCount
        self.layout = layout
        self.preset = preset
    }

    /// The fields the sample depends on (`OUT/samples.json` is reused when they agree).
    var samplingKey: [String] {
        [model, modelSHA256 ?? "", layer, images, String(samples), String(seed), className ?? "", String(classIndex ?? -1)]
    }

    /// The checks of `validate()` in the CLI, for engine callers.
    public func validate() throws {
        guard grid >= 1 else { throw EngineError.invalidInput("--grid must be at least 1 (a grid × grid lattice), got \(grid)") }
        guard samples >= 2 else { throw EngineError.invalidInput("--samples must be at least 2, got \(samples)") }
        guard minCount >= 1 else { throw EngineError.invalidInput("--min-count must be at least 1, got \(minCount)") }
    }
}

/// Which layout an atlas used, and with what.
public struct ActivationAtlasLayoutRecord: Codable, Sendable, Equatable {
    /// "pca" (LAPACK ssyevd on the covariance, built in) or "file" (coordinates read from `source`).
    public var method: String
    public var source: String?
    /// PCA: the two eigenvalues and the total variance; file: its parameters when a sidecar `FILE.json` says them.
    public var explainedVariance: [Float]?
    public var totalVariance: Float?
    public var parameters: [String: String]?
}

/// A sampled position as shown in the atlas: the photo path and the input-pixel box.
public struct ActivationAtlasPatch: Codable, Sendable, Equatable {
    public var image: String
    public var y: Int
    public var x: Int
    public var box: [Int]
    /// File name under `OUT/patches/` once assembled.
    public var file: String?
}

/// One non-empty cell.
public struct ActivationAtlasCell: Codable, Sendable {
    public var row: Int
    public var column: Int
    public var index: Int
    public var count: Int
    /// The mean activation vector of the cell's samples: the rendered direction.
    public var mean: [Float]
    /// The samples nearest the mean (Euclidean), nearest first.
    public var nearest: [ActivationAtlasPatch]
    /// The classifier's top classes on the cell's rendered image (after assembly; nil without a classifier).
    public var topClasses: [ClassScore]?
    /// The classes the model assigns (top-1) to the photos the cell's samples come from, most frequent first
    /// (at most 3): `samples` of the cell's `count` samples come from a photo of that class (after assembly, from
    /// OUT/samples.json and OUT/layout.npy; nil without a classifier).
    public var photoClasses: [ActivationAtlasClassShare]?
    /// The classifier's top 3 classes for the cell's mean vector: the rest of the network after the layer
    /// (`LayerHead`) applied to the map whose every position holds the mean (after assembly; CNN layers with
    /// a classifier only — see `ActivationAtlasPlan.meanClassesNote`).
    public var meanClasses: [ClassScore]?
}

/// A class and how many of a cell's samples come from photos the model assigns that class (top-1).
public struct ActivationAtlasClassShare: Codable, Sendable, Equatable {
    public var index: Int
    public var name: String
    /// Samples of the cell whose photo is assigned this class, and their fraction of the cell's count.
    public var samples: Int
    public var fraction: Float
}

/// `OUT/atlas.json`: the plan (samples, layout, grid, cells) that every shard renders from, and after
/// assembly the top classes of each cell.
public struct ActivationAtlasPlan: Codable, Sendable {
    public var settings: ActivationAtlasSettings
    public var family: ModelFamily
    public var layerShape: [Int]
    public var dimension: Int
    /// ViT: tokens before the patch tokens (the direction objective averages the tokens after them).
    public var prefixTokens: Int
    /// Photos read, photos whose positions were sampled (after `--class`), positions seen, samples kept.
    public var imagesRead: Int
    public var imagesUsed: Int
    public var positionsSeen: Int
    public var sampleCount: Int
    public var skipped: [ImageFolder.Skipped]
    public var layout: ActivationAtlasLayoutRecord
    /// How each cell is rendered: the direction objective at the layer toward the cell mean.
    public var objective: String
    /// How positions' boxes are computed.
    public var boxes: String
    /// What `topClasses` is.
    public var classes: String?
    /// What `photoClasses` is, or why there are none (after assembly; nil without a classifier).
    public var photoClassesNote: String?
    /// What `meanClasses` is, or why there are none (after assembly).
    public var meanClassesNote: String?
    public var cells: [ActivationAtlasCell]
    public var amgpuVersion: String
}

/// The summary of rendering a shard.
public struct ActivationAtlasRenderSummary: Sendable {
    public var cells: Int
    public var selected: Int
    public var skipped: Int
    public var rendered: Int
    public var failed: [AtlasFailure]
    public var seconds: Double
    public var removedTemporaries: Int
}

/// Carter et al.'s activation atlas (2019) of one layer over a folder of photos:
///
///     OUT/atlas.json           the plan (`ActivationAtlasPlan`): settings, layout used, cells (count, mean, nearest samples)
///     OUT/samples.npy          the sampled vectors [n, d]; OUT/samples.json their positions (reused by later runs)
///     OUT/layout.npy           the 2-D coordinates used [n, 2]
///     OUT/cells/<i>.png, .json each non-empty cell i = row·grid + column rendered by AM (direction objective)
///     OUT/patches/<i>-<k>.png  crops of the photos at the samples nearest each cell mean
///     OUT/atlas.png, OUT/index.html   the assembled grid and its page
///
/// Cells are rendered with `AMBatchRunner` (one direction per image, `AMSeeding.perBatch`), sharded like
/// `amgpu atlas` (`AtlasShard`: cell list position p mod n), each cell written atomically (PNG, then JSON) and
/// skipped when done (`AtlasLayout` with the folder `cells` as its one layer), so a killed run is resumed by
/// running it again.
public enum ActivationAtlas {
    public static let cellsLayer = "cells"
    public static let version = 1

    public static func layout(_ out: String) -> AtlasLayout { AtlasLayout(root: out) }
    static func cellsAtlasLayer(dimension: Int) -> AtlasLayer {
        AtlasLayer(name: cellsLayer, directory: cellsLayer, shape: [1, dimension], unitCount: 0, objective: .direction)
    }

    // MARK: - Samples

    struct SamplesRecord: Codable {
        var key: [String]
        var dimension: Int
        var images: [String]
        var predictedClass: [Int?]
        var skipped: [ImageFolder.Skipped]
        var positionsSeen: Int
        var imagesUsed: Int
        var positions: [ActivationSamplePosition]
    }

    /// The samples of `settings` in `out`: read from `OUT/samples.json` + `.npy` when they were made with the
    /// same model, layer, folder, count, seed and class; otherwise computed by `compute` and written there.
    public static func samples(out: String, settings: ActivationAtlasSettings,
                               compute: () throws -> ActivationSamples) throws -> ActivationSamples {
        let jsonPath = (out as NSString).appendingPathComponent("samples.json")
        let npyPath = (out as NSString).appendingPathComponent("samples.npy")
        if let data = FileManager.default.contents(atPath: jsonPath),
           let record = try? JSONDecoder().decode(SamplesRecord.self, from: data), record.key == settings.samplingKey,
           let vectors = try? NPYFile.read(npyPath), vectors.shape == [record.positions.count, record.dimension] {
            return ActivationSamples(layer: settings.layer, dimension: record.dimension, images: record.images,
                                     predictedClass: record.predictedClass, skipped: record.skipped, positionsSeen: record.positionsSeen,
                                     imagesUsed: record.imagesUsed, positions: record.positions, vectors: vectors.values)
        }
        let s = try compute()
        try NPYFile.write(HostTensor(shape: [s.count, s.dimension], values: s.vectors), to: npyPath)
        let record = SamplesRecord(key: settings.samplingKey, dimension: s.dimension, images: s.images, predictedClass: s.predictedClass,
                                   skipped: s.skipped, positionsSeen: s.positionsSeen, imagesUsed: s.imagesUsed, positions: s.positions)
        try writeAtomically(JSONEncoder().encode(record), to: jsonPath)
        return s
    }

    // MARK: - Plan

    /// The 2-D coordinates of the samples ([n, 2]) and their record.
    public static func layoutCoordinates(_ s: ActivationSamples, source: ActivationAtlasLayoutSource) throws -> ([Float], ActivationAtlasLayoutRecord) {
        switch source {
        case .pca:
            let pca = try PCA.fit(s.vectors, count: s.count, dimension: s.dimension, components: 2)
            return (pca.coordinates, ActivationAtlasLayoutRecord(method: "pca", source: nil, explainedVariance: pca.explainedVariance,
                                                                 totalVariance: pca.totalVariance,
                                                                 parameters: ["components": "2", "centered": "true", "lapack": "ssyevd (OpenBLAS)"]))
        case .file(let path):
            let t = try NPYFile.read(path)
            guard t.shape == [s.count, 2] else {
                throw EngineError.invalidInput("the layout '\(path)' has shape \(t.shape) but the atlas has \(s.count) samples: it must be [\(s.count), 2], one row per row of samples.npy (made from the same --samples, --seed and photos)")
            }
            guard t.values.allSatisfy(\.isFinite) else { throw EngineError.invalidInput("the layout '\(path)' holds NaN or infinite coordinates") }
            var parameters: [String: String]? = nil
            let sidecar = (path as NSString).deletingPathExtension + ".json"
            if let data = FileManager.default.contents(atPath: sidecar),
               let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
                parameters = object.mapValues { "\($0)" }
            }
            return (t.values, ActivationAtlasLayoutRecord(method: "file", source: path, explainedVariance: nil, totalVariance: nil, parameters: parameters))
        }
    }

    /// Lays out the samples, bins them and builds the plan.
    public static func plan(samples s: ActivationSamples, settings: ActivationAtlasSettings, layer: SpatialLayer, layerShape: [Int],
                            family: ModelFamily, source: ActivationAtlasLayoutSource, amgpuVersion: String) throws -> (ActivationAtlasPlan, [Float]) {
        let (coordinates, record) = try layoutCoordinates(s, source: source)
        let grid = try ActivationGrid.bin(layout: coordinates, vectors: s.vectors, count: s.count, dimension: s.dimension,
                                          grid: settings.grid, minCount: settings.minCount)
        guard !grid.isEmpty else {
            throw EngineError.invalidInput("no grid cell holds \(settings.minCount) or more samples: lower --min-count or --grid, or sample more")
        }
        let cells = grid.map { c in
            ActivationAtlasCell(row: c.row, column: c.column, index: c.index, count: c.count, mean: c.mean,
                                nearest: c.nearest.map { i in
                                    let p = s.positions[i]
                                    return ActivationAtlasPatch(image: s.images[p.image], y: p.y, x: p.x, box: p.box, file: nil)
                                }, topClasses: nil, photoClasses: nil, meanClasses: nil)
        }
        let objective = layer.kind == .cnn
            ? "direction at \(settings.layer) toward the cell's mean vector v: score = (a·v̂)·max(cos(a,v),0.1), a = the spatial mean of the layer's [C,H,W] map"
            : "direction at \(settings.layer) toward the cell's mean vector v: score = (a·v̂)·max(cos(a,v),0.1), a = the mean of the patch tokens (CLS excluded)"
        let boxes = layer.boxDescription
        let plan = ActivationAtlasPlan(settings: settings, family: family, layerShape: layerShape, dimension: s.dimension,
                                       prefixTokens: layer.prefixTokens,
                                       imagesRead: s.images.count, imagesUsed: s.imagesUsed, positionsSeen: s.positionsSeen,
                                       sampleCount: s.count, skipped: s.skipped, layout: record, objective: objective, boxes: boxes,
                                       classes: nil,
                                       photoClassesNote: nil, meanClassesNote: nil, cells: cells, amgpuVersion: amgpuVersion)
        return (plan, coordinates)
    }

    static let photoClassesNote = "per cell, the classes the model assigns (top-1) to the photos its samples come from, most frequent first: samples of the cell from a photo of that class, and their fraction of the cell"

    /// The 3 most frequent top-1 classes of the photos of `members` (ties: smaller class index first).
    /// Samples of photos without a prediction are not counted.
    static func photoClasses(members: [Int], samples s: ActivationSamples, className: (Int) -> String) -> [ActivationAtlasClassShare] {
        photoClasses(members: members, positions: s.positions, predictedClass: s.predictedClass, className: className)
    }

    static func photoClasses(members: [Int], positions: [ActivationSamplePosition], predictedClass: [Int?],
                             className: (Int) -> String) -> [ActivationAtlasClassShare] {
        var counts: [Int: Int] = [:]
        for i in members where i < positions.count {
            let photo = positions[i].image
            if photo < predictedClass.count, let k = predictedClass[photo] { counts[k, default: 0] += 1 }
        }
        let order = counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
        return order.prefix(3).map {
            ActivationAtlasClassShare(index: $0.key, name: className($0.key), samples: $0.value,
                                      fraction: members.isEmpty ? 0 : Float($0.value) / Float(members.count))
        }
    }

    /// The plan in `out` when one exists (throws when it was made with other settings), else `make()`'s,
    /// written to `OUT/atlas.json` (and the coordinates to `OUT/layout.npy`).
    public static func loadOrCreatePlan(out: String, settings: ActivationAtlasSettings,
                                        make: () throws -> (ActivationAtlasPlan, [Float])) throws -> (plan: ActivationAtlasPlan, created: Bool) {
        let path = (out as NSString).appendingPathComponent("atlas.json")
        if FileManager.default.fileExists(atPath: path) {
            let existing = try readPlan(out)
            guard existing.settings == settings else {
                throw EngineError.invalidInput("'\(out)' already holds an activation atlas made with other settings (\(differences(existing.settings, settings).joined(separator: ", "))): use another --out, or remove the folder to start over")
            }
            return (existing, false)
        }
        let (plan, coordinates) = try make()
        try NPYFile.write(HostTensor(shape: [coordinates.count / 2, 2], values: coordinates), to: (out as NSString).appendingPathComponent("layout.npy"))
        try writePlan(plan, out: out)
        return (plan, true)
    }

    static func differences(_ a: ActivationAtlasSettings, _ b: ActivationAtlasSettings) -> [String] {
        var out: [String] = []
        if a.model != b.model || a.modelSHA256 != b.modelSHA256 { out.append("model") }
        if a.layer != b.layer { out.append("layer \(a.layer) vs \(b.layer)") }
        if a.images != b.images { out.append("images") }
        if a.samples != b.samples { out.append("samples \(a.samples) vs \(b.samples)") }
        if a.seed != b.seed { out.append("seed") }
        if a.className != b.className { out.append("class") }
        if a.grid != b.grid { out.append("grid \(a.grid) vs \(b.grid)") }
        if a.minCount != b.minCount { out.append("min-count") }
        if a.layout != b.layout { out.append("layout \(a.layout) vs \(b.layout)") }
        if a.preset != b.preset { out.append("preset / steps / image options") }
        return out.isEmpty ? ["model name"] : out
    }

    public static func readPlan(_ out: String) throws -> ActivationAtlasPlan {
        let path = (out as NSString).appendingPathComponent("atlas.json")
        do {
            return try JSONDecoder().decode(ActivationAtlasPlan.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw EngineError.io("cannot read the activation atlas plan '\(path)': \(error.localizedDescription) (is this a folder written by `amgpu activation-atlas`?)")
        }
    }

    public static func writePlan(_ plan: ActivationAtlasPlan, out: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try writeAtomically(encoder.encode(plan), to: (out as NSString).appendingPathComponent("atlas.json"))
    }

    // MARK: - Rendering

    /// The AM job of a cell: the direction objective at the layer toward the cell mean.
    public static func job(_ cell: ActivationAtlasCell, plan: ActivationAtlasPlan, out: String) -> AMJob {
        var term = ObjectiveTerm(kind: .direction, layer: plan.settings.layer, units: [])
        term.direction = cell.mean
        if plan.layerShape.count == 2 {   // [T, D] tokens
            term.patchTokens = true
            term.prefixTokens = plan.prefixTokens
        }
        let unit = AtlasUnit(layer: cellsLayer, unit: cell.index)
        let l = layout(out)
        return AMJob(term: term, unit: cell.index, imagePath: l.imagePath(unit), imageName: l.imageName(cell.index), recordPath: l.recordPath(unit))
    }

    /// The cells of shard `shard` (positions p ≡ index mod count of the plan's cell list).
    public static func cells(of plan: ActivationAtlasPlan, shard: AtlasShard) -> [ActivationAtlasCell] { shard.select(plan.cells) }

    /// Cells whose PNG and JSON both exist.
    public static func doneCells(_ plan: ActivationAtlasPlan, out: String) -> Set<Int> {
        Set(layout(out).doneUnits(plan.cells.map { AtlasUnit(layer: cellsLayer, unit: $0.index) }).map(\.unit))
    }

    /// Renders the shard's cells that are not done, `batch` cells per AM batch (one direction per image).
    /// Never throws for a failed batch: its cells are listed in `failed` and the next run retries them.
    public static func render(plan: ActivationAtlasPlan, out: String, shard: AtlasShard, batch: Int, devices: [DeviceSelection],
                              seed: UInt64, amgpuVersion: String, log: AtlasLog? = nil,
                              progress: @escaping @Sendable (AMRunProgress) -> Void = { _ in },
                              loadModel: @escaping @Sendable (Int) throws -> Model) throws -> ActivationAtlasRenderSummary {
        let start = Date()
        let l = layout(out)
        try l.prepare(layers: [cellsAtlasLayer(dimension: plan.dimension)])
        let removed = l.removeStaleTemporaries(layers: [cellsAtlasLayer(dimension: plan.dimension)])
        let mine = cells(of: plan, shard: shard)
        let done = doneCells(plan, out: out)
        let pending = mine.filter { !done.contains($0.index) }
        let settings = AMRunSettings(preset: plan.settings.preset, batchSize: batch, seeding: .perBatch(seed), recordedObjective: .unit,
                                     failurePolicy: .markFailed, modelSHA256: plan.settings.modelSHA256, amgpuVersion: amgpuVersion)
        let runner = try AMBatchRunner(settings: settings, devices: devices, loadModel: loadModel)
        let summary = try runner.run(pending.map { job($0, plan: plan, out: out) }, progress: progress) { report in
            for job in report.jobs {
                if let failure = report.failure { log?.append("failed cell \(job.unit): \(failure)") }
                else { log?.append("done cell \(job.unit) on \(report.device ?? "?")") }
            }
        }
        return ActivationAtlasRenderSummary(cells: plan.cells.count, selected: mine.count, skipped: mine.count - pending.count,
                                            rendered: summary.rendered,
                                            failed: summary.failed.map { AtlasFailure(unit: AtlasUnit(layer: cellsLayer, unit: $0.job.unit), reason: $0.reason) },
                                            seconds: Date().timeIntervalSince(start), removedTemporaries: removed)
    }
}
