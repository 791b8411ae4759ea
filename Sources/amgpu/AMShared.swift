import ArgumentParser
import Foundation
import GPUEngine

/// The image-side options of activation maximization (`visualize`, `atlas`): a preset and its overrides.
struct PresetOptions: ParsableArguments {
    @Option(name: .long, help: "Preset (default: vit-ghiasi for ViTs, cnn-lucid otherwise).")
    var preset: PresetChoice?

    @Option(name: .long, help: "Optimization steps.") var steps: Int?
    @Option(name: .long, help: "Adam learning rate.") var lr: Float?
    @Option(name: .long, help: "Adam beta1.") var beta1: Float?
    @Option(name: .long, help: "Adam beta2.") var beta2: Float?
    @Option(name: .long, help: "Learning-rate schedule.") var schedule: LearningRateSchedule?
    @Option(name: .long, help: "Parameterization of the image.") var param: ImageParameterization.Kind?
    @Option(name: .long, help: "Squash for pixel parameters.") var squash: ImageParameterization.Squash?
    @Option(name: .long, help: "Decorrelated colour (lucid): true or false.") var decorrelate: Bool?
    @Option(name: .long, help: "Side of the rendered image in pixels (resized to the model's input).") var imageSize: Int?
    @Option(name: .long, help: "Augmented copies per step (Ghiasi: 8).") var copies: Int?
    @Option(name: .long, help: "Jitter in pixels.") var jitter: Int?
    @Option(name: .long, help: "Roll (circular shift) in pixels.") var roll: Int?
    @Option(name: .long, help: "Patch grid in model-input pixels, for ViTs (set it to the patch size: 14 for DINOv2, 16 for ViT-B/16): jitter by whole patches, no scale or rotation (default: off).") var patchGrid: Int?
    @Option(name: .long, help: "Colour-jitter shift m: each copy's channel is shifted by U(-m, m) (Ghiasi: 1).") var colorShift: Float?
    @Option(name: .long, help: "Colour-jitter scale s: each copy's channel is divided by exp(U(-s, s)) (Ghiasi: 1).") var colorScale: Float?
    @Option(name: .long, help: "Std of the per-channel noise added to each copy, decaying linearly to 0 (Ghiasi: 0.5).") var noise: Float?
    @Option(name: .long, help: "Total-variation weight (p = 1).") var tv: Float?
    @Option(name: .long, help: "Total-variation weight (p = 2, with diagonals).") var tv2: Float?
    @Option(name: .long, help: "L1 weight on the image.") var l1: Float?
    @Option(name: .long, help: "L2 weight on the image.") var l2: Float?
    @Option(name: .long, help: "Blur amount per step for pixel parameters (0–1).") var blur: Float?
    @Option(name: .customLong("init"), help: ArgumentHelp("Start from this photo (JPEG or PNG, centre-cropped to the image size) instead of noise; with --param maco only its phase is kept.", valueName: "photo"))
    var initPhoto: String?
    @Option(name: .long, help: "With --init: std of normal noise added to the initial parameters.") var initNoise: Float?
    @Option(name: .long, help: ArgumentHelp("MaCo magnitude spectrum (.npy [3, S, S/2+1] from `amgpu maco-spectrum`; default: built-in).", valueName: "file"))
    var macoSpectrum: String?
    @Option(name: .long, help: "Write each image every N steps (NAME-step0032.png) and a montage NAME-trajectory.png (0 = off).")
    var snapshotEvery: Int = 0

    func validate() throws {
        if snapshotEvery < 0 { throw ValidationError("--snapshot-every must be ≥ 0 steps, got \(snapshotEvery)") }
        if let initNoise {
            if initPhoto == nil { throw ValidationError("--init-noise needs --init PHOTO (without a photo the preset's random init applies)") }
            if !(initNoise.isFinite && initNoise >= 0) { throw ValidationError("--init-noise must be a finite number ≥ 0, got \(initNoise)") }
        }
        if macoSpectrum != nil, let param, param != .maco {
            throw ValidationError("--maco-spectrum only applies to --param maco")
        }
    }

    /// The named preset (default by model family) with every given override applied, validated.
    func resolve(family: ModelFamily) throws -> AMPreset {
        var p = try AMPreset.named((preset ?? .default(for: family)).rawValue)
        if let steps { p.steps = steps }
        if let lr { p.optimizer.learningRate = lr }
        if let beta1 { p.optimizer.beta1 = beta1 }
        if let beta2 { p.optimizer.beta2 = beta2 }
        if let schedule { p.optimizer.schedule = schedule }
        if let param {
            switch param {
            case .fourier: p.parameterization = .fourier(decay: 1, decorrelated: decorrelate ?? true, sd: 0.01)
            case .maco: p.parameterization = .maco(spectrum: nil, decorrelated: decorrelate ?? true)
            case .pixel:
                let sq = squash ?? .sigmoid
                p.parameterization = .pixel(sq, decorrelated: decorrelate ?? false,
                                            initialization: sq == .clamp ? .uniform(low: 0, high: 1) : .normal(sd: 0.01))
            }
        } else {
            if let decorrelate { p.parameterization.decorrelated = decorrelate }
            if let squash { p.parameterization.squash = squash }
        }
        if let macoSpectrum {
            guard p.parameterization.kind == .maco else {
                throw EngineError.invalidInput("--maco-spectrum only applies to the MaCo parameterization; add --param maco or --preset cnn-maco")
            }
            p.parameterization.macoSpectrum = absolutePath(macoSpectrum)
        }
        if let initPhoto {
            let path = absolutePath(initPhoto)
            _ = try ImageFile.read(path)   // a bad photo fails here, before any model is loaded
            p.parameterization.initialization = .photo(path: path, noise: initNoise ?? 0)
        }
        if let imageSize { p.imageSize = imageSize }
        if let copies { p.transforms.copies = copies }
        if let jitter { p.transforms.jitter = jitter }
        if let roll { p.transforms.roll = roll }
        if let patchGrid { p.transforms.patchGrid = patchGrid }
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
        if p.parameterization.kind == .maco {   // a bad spectrum file fails here, before any model is loaded
            _ = try MacoSpectrum.magnitude(path: p.parameterization.macoSpectrum, height: p.imageSize, width: p.imageSize)
        }
        return p
    }
}

/// `path` made absolute against the current folder (the sidecar records where the file was).
func absolutePath(_ path: String) -> String {
    URL(fileURLWithPath: path).standardizedFileURL.path
}

/// The fetched natural photos (for the baseline), if any.
func naturalPhotos() -> [RGBImage] {
    let dir = ModelStore.path("photos")
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return [] }
    return names.filter { $0.hasSuffix(".png") }.sorted().compactMap { try? PNGFile.read((dir as NSString).appendingPathComponent($0)) }
}

/// The progress of a run (`visualize`, `atlas`, `adversarial`) on stderr. On a terminal, one redrawn line: a bar over the
/// images (done plus the in-flight fractions), the batch that reported last (its step and objective), images
/// per minute and ETA. Otherwise plain lines: one at each finished batch, and step lines at most every
/// `interval` seconds.
final class ProgressReporter: @unchecked Sendable {
    let quiet: Bool
    let label: String
    let interval: Double
    let terminal = isatty(2) != 0
    let lock = NSLock()
    var lastLine = Date.distantPast
    var drew = false

    init(quiet: Bool, label: String, interval: Double = 5) {
        self.quiet = quiet
        self.label = label
        self.interval = interval
    }

    func update(_ p: AMRunProgress) {
        guard p.total > 0 else { return }
        let eta = p.etaSeconds.map { $0 < 90 ? String(format: "%.0f s", $0) : String(format: "%.1f min", $0 / 60) } ?? "?"
        var text = "\(p.finished)/\(p.total) images\(p.failed > 0 ? " (\(p.failed) failed)" : "")"
        if let s = p.step {
            text += String(format: "  %@ %@ step %d/%d objective %.4f", s.layer, s.units.map(String.init).joined(separator: ","),
                           s.step, s.steps, s.objective)
        }
        text += String(format: "  %.1f images/min  ETA %@", p.jobsPerMinute, eta)
        draw(fraction: (Double(p.finished) + p.inFlight) / Double(p.total), text: text,
             line: p.step == nil ? text : nil, throttled: p.step != nil ? text : nil)
    }

    /// An attack run (`adversarial`): a bar over the examples; off a terminal, one line per finished example.
    func update(_ p: AttackProgress) {
        guard p.total > 0 else { return }
        let rate = Double(p.finished) / max(p.elapsedSeconds, 1e-9)
        let eta = p.finished > 0 ? String(format: "ETA %.0f s", Double(p.total - p.finished) / max(rate, 1e-9)) : "ETA -"
        let text = String(format: "%d/%d examples  step %d  %.1f s  ", p.finished, p.total, p.iteration, p.elapsedSeconds) + eta
        draw(fraction: Double(p.finished) / Double(p.total), text: text, line: p.message, throttled: nil)
    }

    /// A probe (`probe`): a bar over the shard's images; off a terminal, a line at most every `interval` seconds.
    func update(_ p: ProbeProgress) {
        guard p.total > 0 else { return }
        let eta = p.etaSeconds.map { $0 < 90 ? String(format: "%.0f s", $0) : String(format: "%.1f min", $0 / 60) } ?? "?"
        let text = String(format: "%d/%d images (%d skipped)  %.1f images/min  ETA %@", p.done, p.total, p.skipped, p.imagesPerMinute, eta)
        draw(fraction: Double(p.done) / Double(p.total), text: text, line: nil, throttled: text)
    }

    /// On a terminal, redraws one line: `label [bar] text`. Otherwise prints `line` when given, and
    /// `throttled` at most every `interval` seconds.
    private func draw(fraction: Double, text: String, line: String?, throttled: String?) {
        guard !quiet else { return }
        lock.withLock {
            if terminal {
                FileHandle.standardError.write("\r\(label) [\(progressBar(fraction))] \(text)   ".data(using: .utf8) ?? Data())
                drew = true
            } else if let line {
                printError("\(label): \(line)")
                lastLine = Date()
            } else if let throttled, Date().timeIntervalSince(lastLine) > interval {
                printError("\(label): \(throttled)")
                lastLine = Date()
            }
        }
    }

    /// Ends the redrawn line (before other output).
    func finish() {
        lock.withLock {
            if terminal && drew { FileHandle.standardError.write("\n".data(using: .utf8) ?? Data()) }
            drew = false
        }
    }
}

/// A text bar of `width` cells, `fraction` of them filled.
func progressBar(_ fraction: Double, width: Int = 24) -> String {
    let filled = max(0, min(width, Int((fraction * Double(width)).rounded(.down))))
    return String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
}

/// `--shard i/n` and `--shard-count`, shared by every sharded command (atlas, activation-atlas, probe).
struct ShardOptions: ParsableArguments {
    @Option(name: .long, help: "Run shard i of n: --shard 0/4. Default: $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT, or $JOB_COMPLETION_INDEX with --shard-count (or $AMGPU_SHARD_COUNT), else everything.",
            transform: { text in try parsingFlag { try AtlasShard(parsing: text) } })
    var shard: AtlasShard?

    @Option(name: .long, help: "Number of shards, for Kubernetes Indexed Jobs ($JOB_COMPLETION_INDEX).")
    var shardCount: Int?

    func validate() throws {
        if let shardCount, shardCount < 1 { throw ValidationError("--shard-count must be at least 1, got \(shardCount)") }
    }

    /// The shard this process runs: `--shard`, else the Slurm / Kubernetes variables, else everything.
    func slice() throws -> AtlasShard {
        if let shard { return shard }
        return try AtlasShard.fromEnvironment(ProcessInfo.processInfo.environment, count: shardCount) ?? .whole
    }
}
