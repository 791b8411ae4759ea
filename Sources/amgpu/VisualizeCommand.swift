import ArgumentParser
import Foundation
import GPUEngine

struct Visualize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Synthesize the images that maximize units of a model (activation maximization).",
        discussion: """
        With no arguments (after scripts/fetch-models) it renders the class 'flamingo' of the real
        EfficientNet-Lite0. Units: --class NAME|INDEX (logits), or --layer L with --unit U / --units 0-15.
        CNN layers default to the channel objective (spatial mean), ViT token layers to the patch-token
        mean (CLS excluded). Presets: cnn-lucid (CNNs) and vit-ghiasi (ViTs), every field overridable.
        """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var deviceOptions: DeviceOptions
    @OptionGroup var imageOptions: ImageOptions

    @Option(name: .long, help: "Class to visualize (name or index), on the model's logits.")
    var `class`: String?

    @Option(name: .long, help: "Layer to read (see `amgpu layers`); 'output' for the logits. LAYER:UNIT also works.")
    var layer: String?

    @Option(name: .long, help: "Unit (channel / dimension / class index).")
    var unit: Int?

    @Option(name: .long, help: "Several units, e.g. 0-15 or 3,7,9 (one image each).", transform: parseUnitList)
    var units: [Int]?

    @Option(name: .long, help: "Objective (default: logit for --class and for a [N, K] model output, direction with --toward, channel otherwise). caricature and invert need --toward PHOTO and render one image.")
    var objective: ObjectiveTerm.Kind?

    @Option(name: .long, help: "Neuron position x,y (CNN) or token index (ViT) for --objective neuron.",
            transform: { try parseList($0, flag: "--position") { Int($0) } })
    var position: [Int]?

    @Option(name: .long, help: "Photo (JPEG or PNG) for the direction objective (its activation at --layer: spatial mean, CLS token for ViTs), a caricature or an inversion (its whole activation at --layer).")
    var toward: String?

    @Option(name: .long, help: "Cosine-similarity power of the direction and caricature objectives.")
    var cossimPower: Float = 1

    @Flag(name: .long, help: "Do not warm-start units that follow a GELU/ReLU (by default such a unit's pre-activation is maximized until the unit is positive, at most half the steps; after that a leaky floor adds 0.15 × the pre-activation while the unit is ≤ 0, and an image that ends ≤ 0 is replaced by the run's best).")
    var noWarmStart = false

    @Option(name: .long, help: ArgumentHelp("One more objective term, added to the main one for every image: KIND:LAYER:UNIT[:WEIGHT] (repeatable; a negative weight minimizes it).", valueName: "term"),
            transform: { try ObjectiveTerm.parse($0) })
    var addTerm: [ObjectiveTerm] = []

    @Option(name: .long, help: "Weight of lucid's diversity term across the images of a batch (0 = off).")
    var diversity: Float = 0

    @OptionGroup var presetOptions: PresetOptions

    @Option(name: .long, help: "Images optimized together (units are split into batches of this size).")
    var batch: Int = 4

    @Option(name: .long, help: "Random seed (initialization and transforms).")
    var seed: UInt64 = 0

    @Option(name: .long, help: "Output folder.")
    var out: String = "out/visualize"

    @Flag(name: .long, help: "Skip the natural-photo baseline in the JSON.")
    var noBaseline = false

    @Option(name: .long, help: ArgumentHelp("A probe of the same model (OUT/probe.json of `amgpu probe`): each unit's dataset statistics and best example go into its JSON as the natural reference.", valueName: "probe.json"))
    var baseline: String?

    @Flag(name: .long, help: "No progress output.")
    var quiet = false

    /// For soak tests (scripts/soak): every 50 steps, one stderr line with the process's resident
    /// memory and the live OpenCL buffers (count and bytes).
    @Flag(name: .long, help: .hidden)
    var reportMemory = false

    /// `--layer L:U` → (L, [U]); otherwise the layer as given.
    var layerAndUnit: (layer: String?, units: [Int]) {
        if let l = layer, let colon = l.lastIndex(of: ":"), let u = Int(l[l.index(after: colon)...]) {
            return (String(l[..<colon]), [u])
        }
        return (layer, [])
    }

    /// The class rendered with no target at all: flamingo, for the default model.
    var className: String? {
        if `class` == nil && layer == nil && unit == nil && units == nil && modelOptions.model == "efficientnet_lite0" { return "flamingo" }
        return `class`
    }

    func validate() throws {
        if let objective, objective == .caricature || objective == .invert {
            guard toward != nil else { throw ValidationError("--objective \(objective.rawValue) needs --toward PHOTO (the photo whose activation at --layer it matches)") }
            guard layer != nil else { throw ValidationError("--objective \(objective.rawValue) needs --layer LAYER (see `amgpu layers \(modelOptions.model)`)") }
            guard `class` == nil, unit == nil, units == nil else { throw ValidationError("--objective \(objective.rawValue) reads the whole layer: drop --class, --unit and --units") }
        }
        guard cossimPower.isFinite, cossimPower >= 0 else { throw ValidationError("--cossim-power must be a finite number ≥ 0, got \(cossimPower)") }
        if className == nil && layer == nil {
            throw ValidationError("say what to visualize: --class NAME, or --layer LAYER with --unit N (see `amgpu layers \(modelOptions.model)`)")
        }
    }

    func run() throws {
        try runReportingErrors {
            let clock = Date()
            var (layerName, unitList) = layerAndUnit
            if let unit { unitList = [unit] }
            if let units { unitList = units }
            let probe = try modelOptions.load(batch: 1)
            // A probe of another model fails here, before any work.
            let dataset = try baseline.map { path in
                let result = try ProbeResult.read(path)
                try result.checkModel(probe, path: path)
                return (path: path, result: result)
            }
            let className = self.className
            if className != nil { layerName = layerName ?? "output" }
            // The direction toward a photo, at the target layer; or the photo's whole activation (caricature, invert).
            var direction: [Float]? = nil, reference: [Float]? = nil
            if let toward, let layerName {
                if objective == .caricature || objective == .invert {
                    reference = try UnitVisualization.reference(toward: imageOptions.read(toward), layer: layerName, model: probe)
                } else {
                    direction = try UnitVisualization.direction(toward: imageOptions.read(toward), layer: layerName, model: probe)
                }
            }
            let target = try UnitVisualization.Target(model: probe, layer: layerName, units: unitList, className: className,
                                                      kind: objective, position: position, direction: direction, cossimPower: cossimPower,
                                                      reference: reference, referencePhoto: toward.map { ($0 as NSString).lastPathComponent })
            let preset = try presetOptions.resolve(family: probe.family)
            for t in addTerm { _ = try probe.resolve(layer: t.layer) }   // an unknown layer fails here, before any work
            let device = try deviceOptions.selection()
            var run = UnitVisualization(target: target, folder: out, preset: preset, batchSize: batch, seed: seed, extraTerms: addTerm,
                                        diversity: diversity, baselinePhotos: noBaseline ? [] : naturalPhotos(),
                                        modelSHA256: probe.fileSHA256(), amgpuVersion: AMGPU.configuration.version,
                                        warmStart: noWarmStart ? nil : .standard)
            run.settings.snapshotEvery = presetOptions.snapshotEvery
            let bar = ProgressReporter(quiet: quiet, label: "\(probe.name) \(target.term.layer)")
            let quiet = self.quiet, reportMemory = self.reportMemory, modelOptions = self.modelOptions
            let result = try run.run(model: probe, devices: [device], notice: { printError($0) }, progress: { p in
                bar.update(p)
                if reportMemory, let s = p.step, (s.step - 1) % 50 == 0 || s.step == s.steps { printError(MemoryReport.line(step: s.step)) }
            }, finished: { report in
                bar.finish()
                guard !quiet else { return }
                for r in report.results {
                    var line = "\((r.job.imageName as NSString).deletingPathExtension): objective \(String(format: "%.3f", r.finalObjective))"
                    if let prob = r.targetProbability { line += String(format: ", p(%@) = %.3f", r.unitName ?? "", prob) }
                    if let nat = r.naturalPhotoMean { line += String(format: ", natural photos mean %.3f", nat) }
                    printError(line)
                }
            }) { batch in try modelOptions.load(batch: batch) }
            bar.finish()
            if let dataset {
                let sidecars = result.images.map { ($0 as NSString).deletingPathExtension + ".json" }
                let n = try dataset.result.annotate(sidecars: sidecars, probePath: dataset.path)
                if n < sidecars.count { printError("note: \(dataset.path) has no statistics for \(sidecars.count - n) of the \(sidecars.count) unit(s) (probe them with the same --layers/--units)") }
            }
            print("wrote \(result.images.count) image(s), their JSON sidecars and \(result.grid) in \(String(format: "%.1f", Date().timeIntervalSince(clock))) s")
        }
    }
}
