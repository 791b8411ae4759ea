import Foundation

/// Settings shared by every batch of an atlas run.
public struct AtlasRenderOptions: Sendable {
    public var preset: AMPreset
    public var seed: UInt64
    /// Units optimized together in one batch (one image each, all of one layer).
    public var batch: Int
    /// Natural photos for the per-unit baseline in the JSON (empty: no baseline).
    public var baselinePhotos: [RGBImage]
    public var modelSHA256: String?
    public var amgpuVersion: String
    /// Snapshots every this many steps (see `AMRunSettings.snapshotEvery`); 0 = off.
    public var snapshotEvery: Int = 0

    public init(preset: AMPreset, seed: UInt64, batch: Int, baselinePhotos: [RGBImage] = [], modelSHA256: String?, amgpuVersion: String) {
        self.preset = preset
        self.seed = seed
        self.batch = batch
        self.baselinePhotos = baselinePhotos
        self.modelSHA256 = modelSHA256
        self.amgpuVersion = amgpuVersion
    }
}

/// A unit that could not be rendered, and why.
public struct AtlasFailure: Sendable, Codable, Equatable {
    public var unit: AtlasUnit
    public var reason: String
}

/// The outcome of an atlas run.
public struct AtlasSummary: Sendable {
    /// Units of this shard.
    public var selected: Int
    /// Units already done before the run (skipped).
    public var skipped: Int
    public var rendered: Int
    public var failed: [AtlasFailure]
    public var seconds: Double
    /// Units rendered per device.
    public var perDevice: [String: Int]
    /// Hidden temporaries of killed runs that were removed at the start.
    public var removedTemporaries: Int
}

/// Renders atlas units with `AMBatchRunner`: one job per unit, batches of units of one layer, seeds per batch
/// (`AMSeeding.perBatch`), on one or more devices; a failed batch marks its units failed and the run goes on.
/// Each finished image is written as `<unit>.png` then `<unit>.json`, both atomically; units already done are
/// skipped and the hidden temporaries of killed runs removed first.
public final class AtlasRenderer: @unchecked Sendable {
    public let layout: AtlasLayout
    public let layers: [String: AtlasLayer]
    public let options: AtlasRenderOptions
    public let devices: [DeviceSelection]
    let runner: AMBatchRunner

    /// `loadModel(batch)` loads the model with batch size `batch` (called once per batch size and device).
    public init(layout: AtlasLayout, layers: [AtlasLayer], options: AtlasRenderOptions, devices: [DeviceSelection],
                loadModel: @escaping @Sendable (Int) throws -> Model) throws {
        guard options.batch >= 1 else { throw EngineError.invalidInput("the atlas batch must be at least 1 unit, got \(options.batch)") }
        self.layout = layout
        self.layers = Dictionary(layers.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        self.options = options
        self.devices = devices
        let settings = AMRunSettings(preset: options.preset, batchSize: options.batch, seeding: .perBatch(options.seed),
                                     baselinePhotos: options.baselinePhotos, recordedObjective: .unit, failurePolicy: .markFailed,
                                     modelSHA256: options.modelSHA256, amgpuVersion: options.amgpuVersion,
                                     snapshotEvery: options.snapshotEvery)
        runner = try AMBatchRunner(settings: settings, devices: devices, loadModel: loadModel)
    }

    /// Splits `units` into batches of at most `size` consecutive units of one layer.
    public static func batches(_ units: [AtlasUnit], size: Int) -> [[AtlasUnit]] {
        var out: [[AtlasUnit]] = []
        for u in units {
            if let last = out.last, last.count < size, last[0].layer == u.layer { out[out.count - 1].append(u) }
            else { out.append([u]) }
        }
        return out
    }

    /// The seed of a batch: the run's seed mixed (FNV-1a) with the layer and the batch's units, so a batch is
    /// reproducible whatever the shard or device that renders it (`AMSeeding.perBatch`).
    public static func batchSeed(_ seed: UInt64, _ batch: [AtlasUnit]) -> UInt64 {
        AMSeeding.hashed(seed, layer: batch.first?.layer ?? "", units: batch.map(\.unit))
    }

    /// The job of a unit of one of the atlas's layers.
    public func job(_ u: AtlasUnit, layer: AtlasLayer) -> AMJob {
        AMJob(term: ObjectiveTerm(kind: layer.objective, layer: layer.name, units: []), unit: u.unit,
              imagePath: layout.imagePath(u), imageName: layout.imageName(u.unit), recordPath: layout.recordPath(u))
    }

    /// Renders `units` (skipping those already done), calling `progress` as it goes. Never throws: a batch
    /// that fails marks its units failed with the reason, and the other batches go on.
    public func run(units: [AtlasUnit], log: AtlasLog? = nil,
                    progress: @escaping @Sendable (AMRunProgress) -> Void = { _ in }) -> AtlasSummary {
        let start = Date()
        let removed = layout.removeStaleTemporaries(layers: Array(layers.values))
        let done = layout.doneUnits(units)
        let pending = units.filter { !done.contains($0) }
        var failed: [AtlasFailure] = []
        var jobs: [AMJob] = []
        for u in pending {
            if let layer = layers[u.layer] { jobs.append(job(u, layer: layer)) }
            else { failed.append(AtlasFailure(unit: u, reason: "unknown atlas layer '\(u.layer)'")) }
        }
        let summary: AMRunSummary
        do {
            summary = try runner.run(jobs, progress: progress) { report in
                for job in report.jobs {
                    if let failure = report.failure { log?.append("failed \(job.term.layer) \(job.unit): \(failure)") }
                    else { log?.append("done \(job.term.layer) \(job.unit) on \(report.device ?? "?")") }
                }
            }
        } catch {
            // Unreachable with `.markFailed` (the runner records failures instead of throwing); kept total.
            summary = AMRunSummary(rendered: 0, failed: jobs.map { ($0, "\(error)") }, seconds: 0, perDevice: [:], images: [])
        }
        failed += summary.failed.map { AtlasFailure(unit: AtlasUnit(layer: $0.job.term.layer, unit: $0.job.unit), reason: $0.reason) }
        return AtlasSummary(selected: units.count, skipped: units.count - pending.count, rendered: summary.rendered,
                            failed: failed, seconds: Date().timeIntervalSince(start),
                            perDevice: summary.perDevice, removedTemporaries: removed)
    }
}

extension DeviceSelection {
    /// Parses a device list for several workers: "opencl:0,opencl:1", "opencl:0,cpu", or "all" (every OpenCL
    /// device; the CPU backend when there is none). A device may be listed twice (two workers on it).
    public static func list(parsing text: String) throws -> [DeviceSelection] {
        let t = text.lowercased().trimmingCharacters(in: .whitespaces)
        if t == "all" {
            let devices = (try? OpenCLRuntime.devices()) ?? []
            return devices.isEmpty ? [.cpu] : devices.map { .opencl($0.index) }
        }
        let parts = t.split(separator: ",", omittingEmptySubsequences: false).map { String($0).trimmingCharacters(in: .whitespaces) }
        guard !parts.isEmpty, !parts.contains(where: \.isEmpty) else {
            throw EngineError.invalidInput("bad device list '\(text)': use e.g. opencl:0,opencl:1, opencl:0,cpu or all")
        }
        return try parts.map { try DeviceSelection(parsing: $0) }
    }
}
