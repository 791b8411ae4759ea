import ArgumentParser
import Foundation
import GPUEngine

struct Adversarial: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "adversarial",
        abstract: "Targeted (or untargeted) adversarial examples: AM+TV, PGD (L∞/L2), BIM, FGSM, feature-space; with image-quality metrics.",
        discussion: """
        Attacks the photo centre-cropped to the model's input size and writes, per example: the adversarial PNG, the amplified perturbation (δ·0.5/ε + 0.5), a panel (original | perturbation | adversarial) and a JSON report. Every metric (success, probabilities, L∞/L2/L0, PSNR, SSIM, TV) is computed on the 8-bit PNG as written and re-read. See docs/adversarial.md.

        Examples:
          amgpu adversarial --image photo.png --target flamingo
          amgpu adversarial --image photo.png --target 130 --attack pgd --steps 40
          amgpu adversarial --images photos/ --targets flamingo,goldfish,toaster --attacks am-tv,pgd --out runs/
          amgpu adversarial --model dinov2_vits14 --attack feature --image a.png --guide b.png --layer blocks.11
        """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var deviceOptions: DeviceOptions
    @OptionGroup var imageOptions: ImageOptions

    @Option(name: .long, help: "The photo to attack (JPEG or PNG; grayscale and RGBA are converted).")
    var image: String?

    @Option(name: .long, help: "A folder of photos to attack (every JPEG and PNG in it, by their bytes; sorted by name; other files are skipped).")
    var images: String?

    @Option(name: .long, help: "The target class (name or index).")
    var target: String?

    @Option(name: .long, help: "Comma-separated target classes for --images (each photo × each target).")
    var targets: String?

    @Flag(name: .long, help: "Untargeted: move away from the clean top-1 class (no --target).")
    var untargeted = false

    @Option(name: .long, help: "The attack (default am-tv; also amtv, ifgsm for bim, pgdl2).")
    var attack: AttackKind?

    @Option(name: .long, help: "Comma-separated attacks to compare on the same examples (e.g. am-tv,pgd).",
            transform: { text in
                let kinds = try text.split(separator: ",").map { try AttackKind(parsing: String($0)) }
                guard !kinds.isEmpty else { throw ValidationError("--attacks is empty") }
                return kinds
            })
    var attacks: [AttackKind]?

    @Option(name: .long, help: "Defaults to start from: torchattacks (10 steps) or foolbox (L∞ PGD/BIM 40 steps of 0.01/0.3·ε, L2 PGD 50 of 0.025·ε).")
    var preset: AttackPreset = .torchattacks

    @Option(name: .long, help: "Radius of the ball, a number or fraction (default 8/255 for L∞, 1.0 for pgd-l2).")
    var eps: String?

    @Option(name: .long, help: "Step size, or Adam learning rate (default 2/255; am-tv 0.5/255; pgd-l2 0.2).")
    var alpha: String?

    @Option(name: .long, help: "Gradient steps (default 10; am-tv and feature 40; fgsm is always 1).")
    var steps: Int?

    @Option(name: .long, help: "Norm of the ball (default linf; l2 for pgd-l2).")
    var norm: PerturbationNorm?

    @Option(name: .long, help: "λ of the total-variation penalty λ·TV(δ), TV = (Σ|Δx| + Σ|Δy|)/(3·H·W) in [0, 1] units (default 3000 for am-tv, else 0).")
    var tv: Double?

    @Option(name: .long, help: "μ of the penalty μ·mean(δ²) (default 0).")
    var l2: Double?

    @Option(name: .long, help: "Loss: logit (target logit) or ce (cross-entropy) (default logit for am-tv, ce for the baselines).")
    var loss: AttackLoss?

    @Option(name: .long, help: "Step rule (default sign; adam for am-tv; normalized for pgd-l2).")
    var stepRule: StepRule?

    @Option(name: .long, help: "Early-stop margin in logits: stop once z_target − max other ≥ margin (default 1 for am-tv).")
    var margin: Double?

    @Flag(name: .long, inversion: .prefixedNo, help: "Stop an example once it succeeds with the margin (default: on for am-tv only).")
    var earlyStop: Bool?

    @Flag(name: .long, inversion: .prefixedNo, help: "Start from a random point of the ball (default: on for pgd and pgd-l2).")
    var randomStart: Bool?

    @Option(name: .long, help: "Feature attack: the guide image whose representation x₀+δ should match.")
    var guide: String?

    @Option(name: .long, help: "Feature attack: the layer to match (see `amgpu layers`).")
    var layer: String?

    @Option(name: .long, help: "Seed of the random start.")
    var seed: UInt64 = 0

    @Option(name: .long, help: "Images per model call (the model is built with this batch; examples share it).")
    var batch: Int?

    @Option(name: .long, help: "Output folder (created if needed).")
    var out: String = "adversarial-out"

    @Flag(name: .long, help: "No progress lines on stderr.")
    var quiet = false

    @Flag(name: .long, help: "Do not write the per-example panel and perturbation PNGs (the adversarial PNG and JSON are always written).")
    var noPanels = false

    // MARK: - configuration

    var attackKinds: [AttackKind] { attacks ?? [attack ?? .amTV] }

    /// The configuration of one attack: its preset's defaults, then the flags given.
    func config(_ kind: AttackKind) throws -> AttackConfig {
        var c = AttackConfig.defaults(kind)
        if preset == .foolbox { c.applyFoolboxPreset() }
        if let norm { c.norm = norm }
        if let eps {
            let e = try parseFraction(eps, what: "--eps")
            if alpha == nil && preset == .foolbox && (kind == .pgd || kind == .bim || kind == .pgdL2) {
                c.alpha *= e / c.eps     // foolbox step sizes are relative to ε
            }
            c.eps = e
            if kind == .fgsm && alpha == nil { c.alpha = e }
        }
        if let alpha { c.alpha = try parseFraction(alpha, what: "--alpha") }
        if let steps, kind != .fgsm { c.steps = steps }   // FGSM is one step by definition
        if let tv { c.tvWeight = tv }
        if let l2 { c.l2Weight = l2 }
        if let loss { c.loss = loss }
        if let stepRule { c.stepRule = stepRule }
        if let margin { c.margin = margin }
        if let earlyStop { c.earlyStop = earlyStop }
        if let randomStart { c.randomStart = randomStart }
        c.targeted = !untargeted
        c.seed = seed
        if kind == .feature {
            c.layer = layer
            c.targeted = false
        }
        try c.validate()
        return c
    }

    /// Checks of the flags alone, before any file is read (a failure exits with status 64, EX_USAGE).
    func validate() throws {
        if attack != nil && attacks != nil { throw ValidationError("give --attack or --attacks, not both") }
        if image == nil && images == nil { throw ValidationError("give --image PHOTO (JPEG or PNG) or --images DIR") }
        if image != nil && images != nil { throw ValidationError("give --image or --images, not both") }
        if let batch, batch < 1 || batch > 256 { throw ValidationError("--batch must lie in 1…256, got \(batch)") }
        let kinds = attackKinds
        if kinds.contains(.feature) && (guide == nil || layer == nil) {
            throw ValidationError("--attack feature needs --guide IMAGE.png and --layer NAME")
        }
        if kinds.contains(where: { $0 != .feature }) && !untargeted && target == nil && targets == nil {
            throw ValidationError("give the target class (--target NAME or --targets a,b,c), or --untargeted")
        }
        if untargeted && (target != nil || targets != nil) { throw ValidationError("--untargeted takes no --target/--targets") }
        do {
            _ = try kinds.map(config)
        } catch let error as EngineError {
            throw ValidationError(error.description)
        }
    }

    /// A photo fitted to the model's input size as its card says (resize + centre crop; an image
    /// already that size as it is), with clear errors for bad files.
    static func loadPhoto(_ path: String, preprocessing p: Preprocessing, background: BackgroundColor = .white) throws -> RGBImage {
        let photo = try ImageFile.read(path, background: background)
        guard photo.width >= 16, photo.height >= 16 else {
            throw EngineError.invalidInput("image '\(path)' is \(photo.width)×\(photo.height) pixels; an attack needs a photo of at least 16×16 (it is fitted to \(p.width)×\(p.height))")
        }
        return ImagePreprocessing.fitted(photo, p)
    }

    /// Output files are named after each photo's name without its extension: refuses two photos
    /// (e.g. cat.jpg and cat.png) that would write the same files, naming both, before any work.
    static func checkDistinctStems(_ paths: [String]) throws {
        var seen: [String: String] = [:]
        for p in paths {
            let stem = URL(fileURLWithPath: p).deletingPathExtension().lastPathComponent
            if let first = seen[stem] {
                throw EngineError.invalidInput("'\(first)' and '\(p)' would write the same output files (both are named '\(stem)' without their extension): rename one of them")
            }
            seen[stem] = p
        }
    }

    // MARK: - run

    func run() throws {
        try runReportingErrors {
            try runAttacks()
        }
    }

    func runAttacks() throws {
        let configs = try attackKinds.map(config)
        let classifierAttacks = configs.contains { $0.kind != .feature }

        // Photos.
        var photoPaths: [String] = []
        if let image { photoPaths = [image] }
        if let images {
            let listing = try ImageFolder.list(images, recursive: false)
            reportSkipped(listing.skipped)
            photoPaths = listing.images
        }
        try Self.checkDistinctStems(photoPaths)
        let targetNames: [String] = untargeted ? [] : (targets.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } }
            ?? target.map { [$0] } ?? [])

        // Model and backend.
        let exampleCount = photoPaths.count * max(targetNames.count, 1)
        let batchSize = batch ?? min(exampleCount, 4)
        let model = try modelOptions.load(batch: max(1, batchSize))
        let backend = try deviceOptions.makeBackend()
        let attacker = try AdversarialAttacker(model: model, backend: backend)
        if classifierAttacks && !attacker.hasClassifier {
            throw EngineError.invalidInput("\(model.name) has no classifier: use --attack feature with --guide and --layer")
        }
        let targetIndices = try targetNames.map { try model.classIndex($0) }
        let background = imageOptions.backgroundColor()
        let guideImage = try guide.map { try Self.loadPhoto($0, preprocessing: model.preprocessing, background: background) }
        let photos = try photoPaths.map { p in
            AttackPhoto(name: URL(fileURLWithPath: p).deletingPathExtension().lastPathComponent,
                        image: try Self.loadPhoto(p, preprocessing: model.preprocessing, background: background))
        }
        let log: (String) -> Void = quiet ? { _ in } : { printError($0) }
        log("amgpu adversarial: \(model.name) on \(backend.name), batch \(model.batchSize), \(photos.count) photo(s) × \(max(targetIndices.count, 1)) target(s) × \(configs.count) attack(s) → \(out)")

        let request = AttackRunRequest(photos: photos, photoPaths: photoPaths, targets: targetIndices, guide: guideImage,
                                       guideName: URL(fileURLWithPath: guide ?? "guide").deletingPathExtension().lastPathComponent,
                                       configs: configs, outputFolder: out, panels: !noPanels,
                                       summaries: images != nil || configs.count > 1)
        let runner = AttackRunner(attacker: attacker)
        let bars = ProgressBars(quiet: quiet)
        runner.progress = { config, p in bars.bar(for: config).update(p) }
        runner.attackFinished = { config, examples in
            bars.bar(for: config).finish()
            bars.current = nil
            if exampleCount == 1, let e = examples.first { print(Self.describe(e, config: config)) }
        }
        let result = try runner.run(request)
        if request.summaries {
            print(AdversarialEvaluation.table(result.summaries), terminator: "")
            print("wrote \(out)/summary.csv, summary.json, examples.csv and \(result.examples.count) example(s)")
        }
    }

    /// One progress bar per attack, made at its first update.
    final class ProgressBars {
        let quiet: Bool
        var current: ProgressReporter?
        init(quiet: Bool) { self.quiet = quiet }
        func bar(for config: AttackConfig) -> ProgressReporter {
            if let current { return current }
            let bar = ProgressReporter(quiet: quiet, label: config.kind.rawValue)
            current = bar
            return bar
        }
    }

    static func percent(_ p: Double?) -> String { AdversarialEvaluation.percent(p) }

    static func describe(_ e: AdversarialExample, config: AttackConfig) -> String {
        var parts: [String] = []
        if let b = e.originalBefore, let a = e.predictedAfter {
            parts.append("\(b.name) \(percent(b.probability)) → \(a.name) \(percent(a.probability))")
        }
        if let t = e.target { parts.append("target \(t.name) \(percent(e.targetProbabilityBefore)) → \(percent(t.probability))") }
        if let r = e.featureDistanceRatio { parts.append(String(format: "feature distance ratio %.3f", r)) }
        parts.append(e.success ? "SUCCESS" : "failed")
        var s = "\(e.image) [\(e.attack)]: " + parts.joined(separator: ", ")
        s += "\n  L∞ \(e.linf255)/255, " + String(format: "L2 %.3f, L0 %.1f%%, PSNR ", e.l2, e.l0Fraction * 100)
            + (e.psnr.map { String(format: "%.2f", $0) } ?? "∞")
            + String(format: " dB, SSIM %.4f, TV·255 %.3f, %d steps, %.2f s", e.ssim, e.tv255, e.steps, e.seconds)
        if let adv = e.files["adversarial"] { s += "\n  wrote \(adv)" + (e.files["panel"].map { ", \($0)" } ?? "") }
        return s
    }

}

/// `--preset`: whose defaults the attacks start from.
enum AttackPreset: String, CaseIterable, ExpressibleByArgument {
    case torchattacks
    case foolbox

    init?(argument: String) {
        switch argument.lowercased() {
        case "torchattacks", "ta": self = .torchattacks
        case "foolbox", "fb": self = .foolbox
        default: return nil
        }
    }
}

extension AttackKind: ExpressibleByArgument {
    /// The CLI spellings of `init(parsing:)` (am-tv, amtv, ifgsm, pgdl2, …).
    public init?(argument: String) { try? self.init(parsing: argument) }
}

extension PerturbationNorm: ExpressibleByArgument {
    public init?(argument: String) { self.init(rawValue: argument.lowercased()) }
}

extension AttackLoss: ExpressibleByArgument {
    public init?(argument: String) { self.init(rawValue: argument.lowercased()) }
}

extension StepRule: ExpressibleByArgument {
    public init?(argument: String) { self.init(rawValue: argument.lowercased()) }
}
