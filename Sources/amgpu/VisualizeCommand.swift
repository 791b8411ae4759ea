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

    @Option(name: .long, help: "Direction objective toward this photo's activation at --layer (spatial mean; CLS token for ViTs).")
    var toward: String?

    @Option(name: .long, help: "Cosine-similarity power of the direction objective.")
    var cossimPower: Float = 1

    @Option(name: .long, help: "Weight of lucid's diversity term across the images of a batch (0 = off).")
    var diversity: Float = 0

    @Option(name: .long, help: "Preset: cnn-lucid or vit-ghiasi (default: by model family).")
    var preset: String?

    @Option(name: .long, help: "Optimization steps.") var steps: Int?
    @Option(name: .long, help: "Adam learning rate.") var lr: Float?
    @Option(name: .long, help: "Adam beta1.") var beta1: Float?
    @Option(name: .long, help: "Adam beta2.") var beta2: Float?
    @Option(name: .long, help: "Learning-rate schedule: constant or cosine.") var schedule: String?
    @Option(name: .long, help: "Parameterization: fourier or pixel.") var param: String?
    @Option(name: .long, help: "Squash for pixel parameters: sigmoid or clamp.") var squash: String?
    @Option(name: .long, help: "Decorrelated colour (lucid): true or false.") var decorrelate: Bool?
    @Option(name: .long, help: "Side of the rendered image in pixels (resized to the model's input).") var imageSize: Int?
    @Option(name: .long, help: "Augmented copies per step (Ghiasi: 8).") var copies: Int?
    @Option(name: .long, help: "Jitter in pixels.") var jitter: Int?
    @Option(name: .long, help: "Roll (circular shift) in pixels.") var roll: Int?
    @Option(name: .long, help: "Total-variation weight (p = 1).") var tv: Float?
    @Option(name: .long, help: "Total-variation weight (p = 2, with diagonals).") var tv2: Float?
    @Option(name: .long, help: "L1 weight on the image.") var l1: Float?
    @Option(name: .long, help: "L2 weight on the image.") var l2: Float?
    @Option(name: .long, help: "Blur amount per step for pixel parameters (0–1).") var blur: Float?

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
            // Preset and overrides.
            var p = try AMPreset.named(preset ?? (family == .vit ? "vit-ghiasi" : "cnn-lucid"))
            if let steps { p.steps = steps }
            if let lr { p.optimizer.learningRate = lr }
            if let beta1 { p.optimizer.beta1 = beta1 }
            if let beta2 { p.optimizer.beta2 = beta2 }
            if let schedule {
                guard let s = LearningRateSchedule(rawValue: schedule) else { throw EngineError.invalidInput("unknown schedule '\(schedule)': constant or cosine") }
                p.optimizer.schedule = s
            }
            if let param {
                switch param {
                case "fourier": p.parameterization = .fourier(decay: 1, decorrelated: decorrelate ?? true, sd: 0.01)
                case "pixel":
                    let sq = ImageParameterization.Squash(rawValue: squash ?? "sigmoid") ?? .sigmoid
                    p.parameterization = .pixel(sq, decorrelated: decorrelate ?? false,
                                                initialization: sq == .clamp ? .uniform(low: 0, high: 1) : .normal(sd: 0.01))
                default: throw EngineError.invalidInput("unknown parameterization '\(param)': fourier or pixel")
                }
            } else {
                if let decorrelate { p.parameterization.decorrelated = decorrelate }
                if let squash {
                    guard let sq = ImageParameterization.Squash(rawValue: squash) else { throw EngineError.invalidInput("unknown squash '\(squash)': sigmoid or clamp") }
                    p.parameterization.squash = sq
                }
            }
            if let imageSize { p.imageSize = imageSize }
            if let copies { p.transforms.copies = copies }
            if let jitter { p.transforms.jitter = jitter }
            if let roll { p.transforms.roll = roll }
            if let blur { p.blurAmount = blur }
            for (kind, weight) in [(Regularizer.Kind.tv, tv), (.tv2, tv2), (.l1, l1), (.l2, l2)] {
                guard let weight else { continue }
                p.regularizers.removeAll { $0.kind == kind }
                if weight != 0 { p.regularizers.append(Regularizer(kind, weight: weight, center: kind == .l1 || kind == .l2 ? 0.5 : 0)) }
            }
            try p.validate()
            // Direction toward a photo.
            var direction: [Float]? = nil
            if let toward {
                let photo = ImagePreprocessing.modelInput(try PNGFile.read(toward), probe.preprocessing)
                let act = try ModelRunner(model: probe, backend: CPUBackend()).run(photo, layers: [layerID])[layerID]!
                direction = channelSummary(act)
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
                let objectiveSpec = Objective(terms: [term], diversity: diversity > 0 && chunk.count > 1 ? DiversityTerm(layer: layerName, weight: diversity) : nil)
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
                    let base = "\(sanitize(layerName))_\(kind == .logit || kind == .probability ? model.className(u).replacingOccurrences(of: " ", with: "_") + "_" : "")\(u)"
                    let png = (out as NSString).appendingPathComponent(base + ".png")
                    try PNGFile.write(RGBImage(tensor: result.images, index: i), to: png)
                    let sidecar = VisualizationSidecar(
                        model: model.name, modelSource: model.source, modelSHA256: modelHash, layer: layerName,
                        unit: u, unitName: kind == .logit || kind == .probability ? model.className(u) : nil,
                        objective: objectiveSpec, preset: p, seed: request.seed, device: backend.name,
                        finalObjective: result.finalScores[i],
                        targetProbability: result.targetProbabilities?[i],
                        naturalPhotoMean: result.naturalMean?[i], naturalPhotoCount: photos.count,
                        seconds: result.seconds, steps: result.stepsRun, image: base + ".png", amgpuVersion: AMGPU.configuration.version)
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

/// The JSON written next to each image.
struct VisualizationSidecar: Codable {
    var model: String
    var modelSource: String
    var modelSHA256: String?
    var layer: String
    var unit: Int
    var unitName: String?
    var objective: Objective
    var preset: AMPreset
    var seed: UInt64
    var device: String
    var finalObjective: Float
    var targetProbability: Float?
    var naturalPhotoMean: Float?
    var naturalPhotoCount: Int
    var seconds: Double
    var steps: Int
    var image: String
    var amgpuVersion: String
}

/// "0-15", "3,7,9", "0-3,8" → unit indices.
func parseUnitList(_ text: String) throws -> [Int] {
    var out: [Int] = []
    for part in text.split(separator: ",") {
        let bounds = part.split(separator: "-").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        if bounds.count == 1, let a = bounds[0] { out.append(a) }
        else if bounds.count == 2, let a = bounds[0], let b = bounds[1], a <= b { out.append(contentsOf: a...b) }
        else { throw EngineError.invalidInput("bad unit list '\(text)': use e.g. 0-15 or 3,7,9") }
    }
    guard !out.isEmpty, out.allSatisfy({ $0 >= 0 }) else { throw EngineError.invalidInput("bad unit list '\(text)'") }
    return out
}

func sanitize(_ name: String) -> String {
    String(name.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == "_" ? $0 : "_" })
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

/// The fetched natural photos (for the baseline), if any.
func naturalPhotos() -> [RGBImage] {
    let dir = ModelStore.path("photos")
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return [] }
    return names.filter { $0.hasSuffix(".png") }.sorted().compactMap { try? PNGFile.read((dir as NSString).appendingPathComponent($0)) }
}

/// Progress on stderr: a bar when stderr is a terminal, plain periodic lines otherwise.
final class ProgressReporter {
    let quiet: Bool
    let label: String
    let terminal = isatty(2) != 0
    var lastLine = Date.distantPast

    init(quiet: Bool, label: String) {
        self.quiet = quiet
        self.label = label
    }

    func update(_ p: VisualizationProgress) {
        guard !quiet else { return }
        let rate = Double(p.step) / max(p.elapsedSeconds, 1e-9)
        let eta = Double(p.steps - p.step) / max(rate, 1e-9)
        let text = String(format: "step %d/%d  objective %.4f  %.2f steps/s  ETA %.0f s", p.step, p.steps, p.objective, rate, eta)
        if terminal {
            let width = 24, filled = width * p.step / max(p.steps, 1)
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
            FileHandle.standardError.write("\r\(label) [\(bar)] \(text)   ".data(using: .utf8) ?? Data())
        } else if Date().timeIntervalSince(lastLine) > 5 || p.step == p.steps {
            printError("\(label): \(text)")
            lastLine = Date()
        }
    }

    func finish() {
        if terminal && !quiet { FileHandle.standardError.write("\n".data(using: .utf8) ?? Data()) }
    }
}
