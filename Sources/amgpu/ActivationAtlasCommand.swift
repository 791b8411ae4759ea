import ArgumentParser
import Foundation
import GPUEngine

struct ActivationAtlasCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "activation-atlas",
        abstract: "Activation atlas of a layer over your photos: sample, lay out (PCA or a UMAP file), grid, render each cell, assemble.",
        discussion: """
        Samples spatial activation vectors of --layer (CNN positions, or ViT patch tokens) over the photos under
        --images, lays them out in 2-D (PCA through LAPACK, or --layout-2d FILE.npy, e.g. UMAP from
        scripts/activation-atlas-umap), bins them into a --grid × --grid lattice, renders each non-empty cell with
        the direction objective toward its mean vector, and assembles OUT/atlas.png and OUT/index.html.
        OUT/atlas.json is the plan every shard renders from; cells are written atomically and skipped when done,
        so a killed run (even kill -9) is resumed by running it again. --shard i/n (or Slurm array / Kubernetes
        Indexed Job variables) renders a slice; the run that completes the last cell assembles (or --assemble).
        See docs/activation-atlas.md.
        """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var presetOptions: PresetOptions

    @Option(name: .long, help: "Folder of JPEG/PNG photos (searched recursively; other files are skipped and listed).")
    var images: String?

    @Option(name: .long, help: "The layer (see `amgpu layers`): a CNN map [C,H,W] or a ViT block [T,D].")
    var layer: String?

    @Option(name: .long, help: "Grid side: cells per row and column.")
    var grid: Int = 20

    @Option(name: .long, help: "Activation vectors to sample (reservoir over every position of every photo).")
    var samples: Int = 100_000

    @Option(name: .customLong("class"), help: "Class-filtered atlas: only positions of photos the model classifies as NAME (or index).")
    var className: String?

    // (--layout is the model card's input layout, NCHW/NHWC; hence --layout-2d.)
    @Option(name: .customLong("layout-2d"), help: "The 2-D layout: pca (built in) or FILE.npy of [samples, 2] coordinates (see scripts/activation-atlas-umap).")
    var layout: String = "pca"

    @Option(name: .long, help: "Only cells with at least this many samples are rendered.")
    var minCount: Int = 1

    @Option(name: .long, help: "The output folder (shared by all shards).")
    var out: String = "out/activation-atlas"

    @OptionGroup var sharding: ShardOptions

    @Option(name: [.customLong("devices"), .customLong("device")],
            help: "Devices to spread batches over: opencl:0,opencl:1, opencl:0,cpu, or all (default: $AMGPU_DEVICE or auto).",
            completion: .list(["all", "cpu", "opencl:0", "opencl:0,cpu"]), transform: { try DeviceSelection.list(parsing: $0) })
    var devices: [DeviceSelection]?

    @Option(name: .long, help: "Cells rendered together per AM batch (one direction per image); also the photo batch when sampling.")
    var batch: Int = 8

    @Option(name: .long, help: "Random seed (sampling, and each batch's initialization mixed with its cells).")
    var seed: UInt64 = 0

    @Option(name: .long, help: "Side of a cell in atlas.png and on the page, in pixels.")
    var tile: Int = 96

    @Option(name: .long, help: "Photo patches shown per cell (the samples nearest the cell mean).")
    var patches: Int = 4

    @Flag(name: .long, help: "Only sample: write OUT/samples.npy (for an external layout) and stop.")
    var samplesOnly = false

    @Flag(name: .long, help: "Only plan: sample, lay out and bin into OUT/atlas.json (and samples.npy, layout.npy), render nothing. Run it once before starting array shards, so they all render from one plan.")
    var planOnly = false

    @Flag(name: .long, help: "Only assemble OUT/atlas.png and OUT/index.html from the rendered cells.")
    var assemble = false

    @Flag(name: .long, help: "Do not assemble after rendering.")
    var noAssemble = false

    @OptionGroup var imageOptions: ImageOptions

    @Flag(name: .long, help: "No progress bar.")
    var quiet = false

    func validate() throws {
        guard grid >= 1 else { throw ValidationError("--grid must be at least 1 (cells per row and column), got \(grid)") }
        guard samples >= 2 else { throw ValidationError("--samples must be at least 2, got \(samples)") }
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1, got \(batch)") }
        guard minCount >= 1 else { throw ValidationError("--min-count must be at least 1, got \(minCount)") }
        guard tile >= 8, tile <= 1024 else { throw ValidationError("--tile must lie in 8…1024 pixels, got \(tile)") }
        guard patches >= 0, patches <= ActivationGrid.keptMembers else { throw ValidationError("--patches must lie in 0…\(ActivationGrid.keptMembers), got \(patches)") }
        guard layout == "pca" || layout.lowercased().hasSuffix(".npy") else {
            throw ValidationError("--layout-2d must be pca or a .npy file of [samples, 2] coordinates, got '\(layout)'")
        }
        let modes = [(samplesOnly, "--samples-only"), (planOnly, "--plan-only"), (assemble, "--assemble")].filter(\.0).map(\.1)
        guard modes.count <= 1 else { throw ValidationError("\(modes.joined(separator: " and ")) exclude each other: pick one") }
        if planOnly && noAssemble { throw ValidationError("--plan-only renders and assembles nothing; drop --no-assemble") }
        if !assemble {
            guard images != nil else { throw ValidationError("--images DIR is required (a folder of JPEG/PNG photos)") }
            guard layer != nil else { throw ValidationError("--layer L is required (see `amgpu layers MODEL`)") }
        }
    }

    func run() throws {
        try runReportingErrors {
            let background = imageOptions.backgroundColor()
            let deviceList = try devices ?? [DeviceSelection.fromEnvironment()]
            if assemble {
                try assembleAtlas(device: deviceList.first ?? .auto, background: background)
                return
            }
            guard let images, let layer else { return }   // validate() requires both
            let model = try modelOptions.load(batch: batch)
            let spatial = try SpatialLayer(model: model, layer: layer)
            let classIndex = try className.map { name -> Int in
                guard model.hasClassifier else {
                    throw EngineError.invalidInput("--class needs a model with a classifier head; \(model.name) has none (its output is \(model.graph.shape(of: model.output)))")
                }
                do { return try model.classIndex(name) } catch let error as EngineError {
                    throw error.appendingHint("--class takes one of \(model.name)'s class names (see `amgpu classify` output) or an index 0…\((model.graph.shape(of: model.output).last ?? 1) - 1)")
                }
            }
            let source: ActivationAtlasLayoutSource = layout == "pca" ? .pca : .file(layout)
            if case .file(let path) = source, !samplesOnly, !FileManager.default.fileExists(atPath: path) {
                throw EngineError.io("cannot read the layout '\(path)': no such file (make it from OUT/samples.npy, e.g. with scripts/activation-atlas-umap)")
            }
            let listing = try ImageFolder.list(images)
            let preset = try presetOptions.resolve(family: model.family)
            let reference = FileManager.default.fileExists(atPath: modelOptions.model)
                ? URL(fileURLWithPath: modelOptions.model).standardizedFileURL.path : modelOptions.model
            let settings = ActivationAtlasSettings(
                model: reference, modelName: model.name, modelSHA256: model.fileSHA256(), layer: layer,
                images: URL(fileURLWithPath: images).standardizedFileURL.path, samples: samples, seed: seed,
                className: className.map { _ in model.className(classIndex ?? 0) }, classIndex: classIndex, grid: grid,
                minCount: minCount, layout: source.description, preset: preset)
            try createOutputFolder(out)
            let backend = try deviceList[0].makeBackend(notice: { printError($0) })
            let quiet = self.quiet
            let sample = {
                try ActivationAtlas.samples(out: out, settings: settings) {
                    if !quiet { printError("activation-atlas: sampling \(layer) \(spatial.kind == .cnn ? "[\(spatial.dimension), \(spatial.height), \(spatial.width)]" : "patch tokens \(spatial.positionsPerImage) × \(spatial.dimension)") over \(listing.images.count) photo(s) on \(backend.name)") }
                    let s = try ActivationSampler.sample(model: model, backend: backend, layer: spatial, paths: listing.images,
                                                         skipped: listing.skipped, samples: samples, seed: seed, classFilter: classIndex,
                                                         background: background)
                    reportSkipped(s.skipped)
                    return s
                }
            }
            if samplesOnly {
                let s = try sample()
                print("activation-atlas: \(s.count) samples of \(s.dimension) from \(s.imagesUsed) photo(s): \((out as NSString).appendingPathComponent("samples.npy"))")
                return
            }
            let (plan, created) = try ActivationAtlas.loadOrCreatePlan(out: out, settings: settings) {
                let s = try sample()
                return try ActivationAtlas.plan(samples: s, settings: settings, layer: spatial, layerShape: Array(model.graph.shape(of: model.resolve(layer: layer)).dropFirst()),
                                                family: model.family, source: source, amgpuVersion: AMGPU.configuration.version)
            }
            if !quiet {
                printError("activation-atlas: \(created ? "planned" : "reusing the plan in \(out)"): \(plan.sampleCount) samples, layout \(plan.layout.method), \(plan.cells.count) non-empty cells of \(grid)×\(grid)")
            }
            if planOnly {
                print("activation-atlas: \(created ? "planned" : "the plan was already there"): \(plan.cells.count) cells of \(grid)×\(grid) from \(plan.sampleCount) samples (layout \(plan.layout.method)) in \((out as NSString).appendingPathComponent("atlas.json")); start the shards now")
                return
            }
            let slice = try sharding.slice()
            try FileManager.default.createDirectory(atPath: (out as NSString).appendingPathComponent("logs"), withIntermediateDirectories: true)
            let logName = slice.count == 1 ? "run-\(currentHostName())-\(getpid()).log" : "shard-\(slice.index)-of-\(slice.count).log"
            let log = try AtlasLog(path: ActivationAtlas.layout(out).path("logs", logName))
            let modelOptions = self.modelOptions
            let bar = ProgressReporter(quiet: quiet, label: "activation-atlas", interval: 2)
            let summary = try ActivationAtlas.render(plan: plan, out: out, shard: slice, batch: batch, devices: deviceList, seed: seed,
                                                     amgpuVersion: AMGPU.configuration.version, log: log, progress: { bar.update($0) }) { b in
                try modelOptions.load(batch: b)
            }
            bar.finish()
            log.append("summary: rendered \(summary.rendered), skipped \(summary.skipped), failed \(summary.failed.count)")
            print("activation-atlas: shard \(slice) — \(summary.selected) of \(summary.cells) cells: rendered \(summary.rendered), skipped \(summary.skipped) (already done), failed \(summary.failed.count) in \(String(format: "%.1f", summary.seconds)) s")
            for f in summary.failed.prefix(8) { print("  failed cell \(f.unit.unit): \(flagged(f.reason))") }
            if !summary.failed.isEmpty {
                print("  rerun the same command to retry the failed cells (finished ones are skipped)")
                throw ExitCode(1)
            }
            let remaining = plan.cells.count - ActivationAtlas.doneCells(plan, out: out).count
            if noAssemble { return }
            if remaining > 0 {
                print("activation-atlas: \(remaining) cell(s) of other shards still to render; the run that finishes last assembles (or run with --assemble)")
                return
            }
            try assembleAtlas(device: deviceList.first ?? .auto, background: background)
        }
    }

    func assembleAtlas(device: DeviceSelection, background: BackgroundColor) throws {
        let plan = try ActivationAtlas.readPlan(out)
        let model = try modelOptions.load(batch: 1)
        if let want = plan.settings.modelSHA256, let have = model.fileSHA256(), want != have {
            throw EngineError.invalidInput("the model file '\(plan.settings.model)' changed since the atlas was planned (SHA-256 differs)")
        }
        let result = try ActivationAtlasAssembly.assemble(out: out, model: model, backend: device.makeBackend(notice: { printError($0) }),
                                                          tile: tile, patches: patches, background: background)
        print("activation-atlas: assembled \(result.cells) cells, \(result.patches) patches: \(result.png), \(result.html)")
    }
}
