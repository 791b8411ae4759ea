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

    @Option(name: .long, help: "Several units, e.g. 0-15 or 3,7,9 (one image each).")
    var units: String?

    @Option(name: .long, help: "Objective: channel, neuron, logit, probability, cls, deepdream, head, direction (default: logit for --class, channel otherwise).")
    var objective: String?

    @Option(name: .long, help: "Neuron position x,y (CNN) or token index (ViT) for --objective neuron.")
    var position: String?

    @Option(name: .long, help: "Direction objective toward this photo's activation at --layer (spatial mean; CLS token for ViTs); JPEG or PNG.")
    var toward: String?

    @Option(name: .long, help: "Cosine-similarity power of the direction objective.")
    var cossimPower: Float = 1

    @Option(name: .long, help: ArgumentHelp("One more objective term, added to the main one for every image: KIND:LAYER:UNIT[:WEIGHT] (repeatable; a negative weight minimizes it).", valueName: "term"))
    var addTerm: [String] = []

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

    @Flag(name: .long, help: "No progress output.")
    var quiet = false

    /// For soak tests (scripts/soak): every 50 steps, one stderr line with the process's resident
    /// memory and the live OpenCL buffers (count and bytes).
    @Flag(name: .long, help: .hidden)
    var reportMemory = false

    func run() throws {
        try runReportingErrors {
            let clock = Date()
            // Objective target.
            var layerName = layer
            var unitList: [Int] = []
            if let l = layerName, let colon = l.lastIndex(of: ":"), let u = Int(l[l.index(after: colon)...]) {
                layerName = String(l[..<colon]); unitList = [u]
            }
            if let unit { unitList = [unit] }
            if let units { unitList = try parseUnitList(units) }
            let family: ModelFamily
            let probe = try modelOptions.load(batch: 1)
            family = probe.family
            var kindName = objective
            var className = `class`
            if className == nil && layerName == nil && modelOptions.model == "efficientnet_lite0" && unitList.isEmpty {
                className = "flamingo"
            }
            if let c = className {
                unitList = [try probe.classIndex(c)]
                layerName = layerName ?? "output"
                kindName = kindName ?? "logit"
            }
            guard let layerName else {
                throw EngineError.invalidInput("say what to visualize: --class NAME, or --layer LAYER with --unit N (see `amgpu layers \(modelOptions.model)`)")
            }
            let layerID = try probe.resolve(layer: layerName)
            let layerShape = probe.graph.shape(of: layerID)
            if unitList.isEmpty { unitList = [0] }
            if kindName == nil { kindName = (layerID == probe.output && layerShape.count == 2) ? "logit" : (toward != nil ? "direction" : "channel") }
            guard let kind = ObjectiveTerm.Kind(rawValue: kindName ?? "channel") else {
                throw EngineError.invalidInput("unknown objective '\(kindName ?? "")': use channel, neuron, logit, probability, cls, deepdream, head or direction")
            }
            let p = try presetOptions.resolve(family: family)
            // Direction toward a photo.
            var direction: [Float]? = nil
            if let toward {
                let photo = ImagePreprocessing.modelInput(try imageOptions.read(toward), probe.preprocessing)
                let act = try ModelRunner(model: probe, backend: CPUBackend()).run(photo, layers: [layerID])[layerID]!
                direction = channelSummary(act)
            }
            let extraTerms = try addTerm.map { spec -> ObjectiveTerm in
                let t = try ObjectiveTerm.parse(spec)
                _ = try probe.resolve(layer: t.layer)   // an unknown layer fails here, before any work
                return t
            }
            let backend = try deviceOptions.makeBackend()
            let photos = noBaseline ? [] : naturalPhotos()
            let imagesPerBatch = max(1, min(batch, unitList.count))
            let fm = FileManager.default
            try createOutputFolder(out)
            let modelHash = probe.fileSHA256()
            var allImages: [HostTensor] = []
            var written: [String] = []
            for chunkStart in stride(from: 0, to: unitList.count, by: imagesPerBatch) {
                let chunk = Array(unitList[chunkStart..<min(chunkStart + imagesPerBatch, unitList.count)])
                let model = try modelOptions.load(batch: chunk.count * max(1, p.transforms.copies))
                var term = ObjectiveTerm(kind: kind, layer: layerName, units: kind == .direction || kind == .deepdream ? [0] : chunk)
                term.direction = direction
                term.cossimPower = cossimPower
                if let position { term.position = position.split(separator: ",").compactMap { Int($0) } }
                let objectiveSpec = Objective(terms: [term] + extraTerms, diversity: diversity > 0 && chunk.count > 1 ? DiversityTerm(layer: layerName, weight: diversity) : nil)
                let request = VisualizationRequest(objective: objectiveSpec, preset: p, seed: seed &+ UInt64(chunkStart), images: chunk.count)
                let visualizer = try Visualizer(model: model, request: request, backend: backend)
                let bar = ProgressReporter(quiet: quiet, label: "\(model.name) \(layerName) units \(chunk.map(String.init).joined(separator: ","))")
                let result = try visualizer.run(naturalImages: photos) { p in
                    bar.update(p)
                    if reportMemory && ((p.step - 1) % 50 == 0 || p.step == p.steps) { printError(MemoryReport.line(step: p.step)) }
                }
                bar.finish()
                allImages.append(result.images)
                for (i, u) in chunk.enumerated() {
                    let base = "\(safeFileName(layerName))_\(kind == .logit || kind == .probability ? model.className(u).replacingOccurrences(of: " ", with: "_") + "_" : "")\(u)"
                    let png = (out as NSString).appendingPathComponent(base + ".png")
                    try PNGFile.write(RGBImage(tensor: result.images, index: i), to: png)
                    let sidecar = VisualizationSidecar(
                        model: model.name, modelSource: model.source, modelSHA256: modelHash, layer: layerName,
                        unit: u, unitName: kind == .logit || kind == .probability ? model.className(u) : nil,
                        objective: objectiveSpec, preset: p, seed: request.seed, device: backend.name,
                        finalObjective: result.finalScores[i],
                        targetProbability: result.targetProbabilities?[i],
                        naturalPhotoMean: result.naturalMean?[i], naturalPhotoCount: photos.count,
                        seconds: result.seconds, steps: result.stepsRun, image: base + ".png", amgpuVersion: AMGPU.configuration.version,
                        card: model.cardRecord)
                    try writeAtomically(JSONEncoder.pretty.encode(sidecar), to: (out as NSString).appendingPathComponent(base + ".json"))
                    written.append(png)
                    if !quiet {
                        var line = "\(base): objective \(String(format: "%.3f", result.finalScores[i]))"
                        if let prob = result.targetProbabilities?[i] { line += String(format: ", p(%@) = %.3f", model.className(u), prob) }
                        if let nat = result.naturalMean?[i] { line += String(format: ", natural photos mean %.3f", nat) }
                        printError(line)
                    }
                }
            }
            let combined = HostTensor(shape: [allImages.reduce(0) { $0 + $1.shape[0] }] + Array(allImages[0].shape.dropFirst()),
                                      values: allImages.flatMap(\.values))
            let gridPath = (out as NSString).appendingPathComponent("grid.png")
            try PNGFile.write(imageGrid(combined, columns: Int(Double(combined.shape[0]).squareRoot().rounded(.up))), to: gridPath)
            print("wrote \(written.count) image(s), their JSON sidecars and \(gridPath) in \(String(format: "%.1f", Date().timeIntervalSince(clock))) s")
        }
    }
}

/// Spatial mean (CNN [1,C,H,W]) or CLS token (ViT [1,T,D]) or the vector itself ([1,K]).
func channelSummary(_ t: HostTensor) -> [Float] {
    if t.shape.count == 4 {
        let c = t.shape[1], plane = t.shape[2] * t.shape[3]
        return (0..<c).map { ch in t.values[(ch * plane)..<((ch + 1) * plane)].reduce(0, +) / Float(plane) }
    }
    if t.shape.count == 3 { return Array(t.values[0..<t.shape[2]]) }
    return t.values
}

