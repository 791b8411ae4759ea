import ArgumentParser
import Foundation
import GPUEngine

/// The image-side options of activation maximization (`visualize`, `atlas`): a preset and its overrides.
struct PresetOptions: ParsableArguments {
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
    @Option(name: .long, help: "Colour-jitter shift m: each copy's channel is shifted by U(-m, m) (Ghiasi: 1).") var colorShift: Float?
    @Option(name: .long, help: "Colour-jitter scale s: each copy's channel is divided by exp(U(-s, s)) (Ghiasi: 1).") var colorScale: Float?
    @Option(name: .long, help: "Std of the per-channel noise added to each copy, decaying linearly to 0 (Ghiasi: 0.5).") var noise: Float?
    @Option(name: .long, help: "Total-variation weight (p = 1).") var tv: Float?
    @Option(name: .long, help: "Total-variation weight (p = 2, with diagonals).") var tv2: Float?
    @Option(name: .long, help: "L1 weight on the image.") var l1: Float?
    @Option(name: .long, help: "L2 weight on the image.") var l2: Float?
    @Option(name: .long, help: "Blur amount per step for pixel parameters (0–1).") var blur: Float?

    /// The named preset (default by model family) with every given override applied, validated.
    func resolve(family: ModelFamily) throws -> AMPreset {
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
        if let colorShift { p.transforms.colorShift = colorShift }
        if let colorScale { p.transforms.colorScale = colorScale }
        if let noise { p.transforms.noiseStd = noise }
        if let blur { p.blurAmount = blur }
        for (kind, weight) in [(Regularizer.Kind.tv, tv), (.tv2, tv2), (.l1, l1), (.l2, l2)] {
            guard let weight else { continue }
            p.regularizers.removeAll { $0.kind == kind }
            if weight != 0 { p.regularizers.append(Regularizer(kind, weight: weight, center: kind == .l1 || kind == .l2 ? 0.5 : 0)) }
        }
        try p.validate()
        return p
    }
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
            let bar = progressBar(Double(p.step) / Double(max(p.steps, 1)))
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

/// A text bar of `width` cells, `fraction` of them filled.
func progressBar(_ fraction: Double, width: Int = 24) -> String {
    let filled = max(0, min(width, Int((fraction * Double(width)).rounded(.down))))
    return String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
}
