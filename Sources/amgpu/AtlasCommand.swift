import ArgumentParser
import Foundation
import GPUEngine

struct Atlas: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Render every unit of some layers into an atlas folder (resumable, shardable, several devices).",
        discussion: """
        Writes DIR/<layer>/<unit>.png and .json, each atomically, and skips units already done: a killed run
        (even kill -9) loses nothing when rerun. --shard i/n (or Slurm array / Kubernetes Indexed Job variables)
        renders a deterministic slice; every shard writes into the same DIR. --devices spreads batches over
        several devices. `amgpu atlas-index DIR` (or --index) builds the static HTML atlas. See docs/atlas.md.
        """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var presetOptions: PresetOptions

    @Option(name: .long, help: "Layers to render, comma-separated (see `amgpu layers`); 'output' for the logits.",
            transform: { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } })
    var layers: [String]

    @Option(name: .long, help: "Units of every layer, e.g. 0-15 or 3,7,9 (default: all units).", transform: parseUnitList)
    var units: [Int]?

    @Option(name: .long, help: "The atlas folder (shared by all shards).")
    var out: String = "out/atlas"

    @OptionGroup var sharding: ShardOptions

    @Option(name: [.customLong("devices"), .customLong("device")],
            help: "Devices to spread batches over: opencl:0,opencl:1, opencl:0,cpu, or all (default: $AMGPU_DEVICE or auto).",
            completion: .list(["all", "cpu", "opencl:0", "opencl:0,cpu"]), transform: { try DeviceSelection.list(parsing: $0) })
    var devices: [DeviceSelection]?

    @Option(name: .long, help: "Units optimized together per batch (one image each).")
    var batch: Int = 8

    @Option(name: .long, help: "Random seed (mixed with each batch's layer and units).")
    var seed: UInt64 = 0

    @Flag(name: .long, help: "Record each unit's mean objective over the fetched natural photos in its JSON.")
    var photoBaseline = false

    @Option(name: .long, help: ArgumentHelp("A probe of the same model (OUT/probe.json of `amgpu probe`): each unit's dataset statistics and best example go into its JSON; with --index, its pages show the dataset examples.", valueName: "probe.json"))
    var baseline: String?

    @Flag(name: .long, help: "Build the HTML atlas (DIR/index.html) after rendering.")
    var index = false

    @Option(name: .long, help: "With --index: a folder of photos (JPEG or PNG); each unit's page shows the photos that activate it most.")
    var probeImages: String?

    @OptionGroup var imageOptions: ImageOptions

    @Flag(name: .long, help: "No progress bar.")
    var quiet = false

    func validate() throws {
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1, got \(batch)") }
    }

    func run() throws {
        try runReportingErrors {
            let background = imageOptions.backgroundColor()
            let model = try modelOptions.load(batch: 1)
            // A probe of another model fails here, before any work.
            let dataset = try baseline.map { path in
                let result = try ProbeResult.read(path)
                try result.checkModel(model, path: path)
                return (path: path, result: result)
            }
            let atlasLayers = try AtlasPlan.layers(layers, of: model)
            let all = try AtlasPlan.units(of: atlasLayers, selecting: units)
            let slice = try sharding.slice()
            let mine = slice.select(all)
            let preset = try presetOptions.resolve(family: model.family)
            let deviceList = try devices ?? [DeviceSelection.fromEnvironment()]
            let layout = AtlasLayout(root: out)
            try layout.prepare(layers: atlasLayers)
            let sha = model.fileSHA256()
            // A model file is recorded by absolute path, so that atlas-index can load it from anywhere.
            let reference = FileManager.default.fileExists(atPath: modelOptions.model)
                ? URL(fileURLWithPath: modelOptions.model).standardizedFileURL.path : modelOptions.model
            let manifest = AtlasManifest(modelReference: reference, architecture: modelOptions.arch, weightSeed: modelOptions.weightSeed,
                                         inputSize: modelOptions.card.squareSize, modelName: model.name, modelSHA256: sha, family: model.family,
                                         layers: atlasLayers, preset: preset, seed: seed, amgpuVersion: AMGPU.configuration.version,
                                         card: model.cardRecord)
            try manifest.merge(into: layout)
            let logName = slice.count == 1 ? "run-\(currentHostName())-\(getpid()).log" : "shard-\(slice.index)-of-\(slice.count).log"
            let log = try AtlasLog(path: layout.path("logs", logName))
            var options = AtlasRenderOptions(preset: preset, seed: seed, batch: batch, baselinePhotos: photoBaseline ? naturalPhotos() : [],
                                             modelSHA256: sha, amgpuVersion: AMGPU.configuration.version)
            options.snapshotEvery = presetOptions.snapshotEvery
            let modelOptions = self.modelOptions
            let renderer = try AtlasRenderer(layout: layout, layers: atlasLayers, options: options, devices: deviceList) { batch in
                try modelOptions.load(batch: batch)
            }
            if !quiet {
                printError("atlas: \(model.name), \(atlasLayers.count) layer(s), \(all.count) units; shard \(slice) has \(mine.count); devices \(deviceList.map(\.description).joined(separator: ",")); \(preset.steps) steps, batch \(batch) → \(out)")
            }
            let bar = ProgressReporter(quiet: quiet, label: "atlas", interval: 2)
            let summary = renderer.run(units: mine, log: log) { bar.update($0) }
            bar.finish()
            log.append("summary: rendered \(summary.rendered), skipped \(summary.skipped), failed \(summary.failed.count)")
            print(Self.describe(summary, shard: slice, total: all.count))
            if let dataset {
                let n = try dataset.result.annotate(sidecars: mine.map { layout.recordPath($0) }, probePath: dataset.path)
                print("atlas: \(n) of \(mine.count) unit JSONs have the dataset reference of \(dataset.path)")
            }
            if index {
                let result = try buildIndex(layout: layout, probeImages: probeImages, device: deviceList.first ?? .auto,
                                            background: background, dataset: baseline)
                print("atlas index: \(result.units) units on \(result.pages.count - 1) layer page(s): \(layout.path("index.html"))")
            }
            if !summary.failed.isEmpty { throw ExitCode(1) }
        }
    }

    static func describe(_ s: AtlasSummary, shard: AtlasShard, total: Int) -> String {
        let rate = Double(s.rendered) / max(s.seconds, 1e-9) * 60
        var lines = ["atlas: shard \(shard) — \(s.selected) of \(total) units: rendered \(s.rendered), skipped \(s.skipped) (already done), failed \(s.failed.count) in \(String(format: "%.1f", s.seconds)) s (\(String(format: "%.1f", rate)) units/min)"]
        for (device, n) in s.perDevice.sorted(by: { $0.key < $1.key }) { lines.append("  \(device): \(n) units") }
        if s.removedTemporaries > 0 { lines.append("  removed \(s.removedTemporaries) temporary file(s) left by a killed run") }
        let byReason = Dictionary(grouping: s.failed, by: \.reason)
        for (reason, failures) in byReason.sorted(by: { $0.key < $1.key }) {
            let names = failures.prefix(8).map(\.unit.description).joined(separator: ", ") + (failures.count > 8 ? ", …" : "")
            lines.append("  failed \(failures.count) (\(names)): \(flagged(reason))")
        }
        if !s.failed.isEmpty { lines.append("  rerun the same command to retry the failed units (finished ones are skipped)") }
        return lines.joined(separator: "\n")
    }
}

struct AtlasIndexCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "atlas-index",
        abstract: "Build the static HTML atlas of an atlas folder (index.html, one page per layer, thumbnails).")

    @Argument(help: "The atlas folder (the --out of `amgpu atlas`).")
    var dir: String

    @Option(name: .long, help: "A folder of photos (JPEG or PNG): each unit shows the photos (and patches) that activate it most.")
    var probeImages: String?

    @Option(name: .long, help: ArgumentHelp("An `amgpu probe` of the same model (its OUT folder or probe.json): each probed unit shows its dataset examples beside its image.", valueName: "probe.json"))
    var baseline: String?

    @OptionGroup var imageOptions: ImageOptions

    @OptionGroup var deviceOptions: DeviceOptions

    func run() throws {
        try runReportingErrors {
            let layout = AtlasLayout(root: dir)
            guard FileManager.default.fileExists(atPath: layout.manifestPath) else {
                throw EngineError.invalidInput("'\(dir)' has no atlas.json: pass the --out folder of `amgpu atlas`")
            }
            let result = try buildIndex(layout: layout, probeImages: probeImages, device: deviceOptions.selection(),
                                        background: imageOptions.backgroundColor(), dataset: baseline)
            print("atlas index: \(result.units) units on \(result.pages.count - 1) layer page(s), \(result.thumbnails) new thumbnail(s): \(layout.path("index.html"))")
        }
    }
}

/// Probes the photos (if any) and writes the HTML pages.
func buildIndex(layout: AtlasLayout, probeImages: String?, device: DeviceSelection,
                background: BackgroundColor = .white, dataset: String? = nil) throws -> AtlasIndex.Result {
    var probes: [String: [[AtlasProbeHit]]]? = nil
    if let probeImages {
        let manifest = try AtlasManifest.read(layout.manifestPath)
        let fm = FileManager.default
        let listing = try ImageFolder.list(probeImages, recursive: false)
        reportSkipped(listing.skipped)
        let model = try manifest.loadModel()
        if let want = manifest.modelSHA256, let have = model.fileSHA256(), want != have {
            throw EngineError.invalidInput("the model file '\(manifest.modelReference)' changed since the atlas was rendered (SHA-256 differs)")
        }
        try fm.createDirectory(atPath: layout.path("probe"), withIntermediateDirectories: true)
        var photos: [(name: String, image: RGBImage)] = []
        for path in listing.images {
            let image = try ImageFile.read(path, background: background)
            // The probe copy is a PNG whatever the photo was (photo.jpg → photo.jpg.png keeps names unique).
            let name = (path as NSString).lastPathComponent
            let shown = safeFileName(name.lowercased().hasSuffix(".png") ? name : name + ".png")
            try PNGFile.write(ImagePreprocessing.fitted(image, model.preprocessing), to: layout.path("probe", shown))
            photos.append((shown, image))
        }
        probes = try AtlasProbe.compute(model: model, backend: device.makeBackend(notice: { printError($0) }),
                                        layers: manifest.layers, photos: photos)
    }
    let probe = try dataset.map { path -> (result: ProbeResult, folder: String) in
        var isDirectory: ObjCBool = false
        let folder = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue ? path : (path as NSString).deletingLastPathComponent
        return (try ProbeResult.read(path), folder.isEmpty ? "." : folder)
    }
    return try AtlasIndex.build(layout: layout, probes: probes, dataset: probe)
}
