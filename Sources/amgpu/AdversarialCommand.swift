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

    @Option(name: .long, help: "The attack: am-tv, pgd, pgd-l2, bim, fgsm or feature (default am-tv).")
    var attack: String?

    @Option(name: .long, help: "Comma-separated attacks to compare on the same examples (e.g. am-tv,pgd).")
    var attacks: String?

    @Option(name: .long, help: "Defaults to start from: torchattacks (10 steps) or foolbox (L∞ PGD/BIM 40 steps of 0.01/0.3·ε, L2 PGD 50 of 0.025·ε).")
    var preset: String = "torchattacks"

    @Option(name: .long, help: "Radius of the ball, a number or fraction (default 8/255 for L∞, 1.0 for pgd-l2).")
    var eps: String?

    @Option(name: .long, help: "Step size, or Adam learning rate (default 2/255; am-tv 0.5/255; pgd-l2 0.2).")
    var alpha: String?

    @Option(name: .long, help: "Gradient steps (default 10; am-tv and feature 40; fgsm is always 1).")
    var steps: Int?

    @Option(name: .long, help: "Norm of the ball: linf or l2 (default linf; l2 for pgd-l2).")
    var norm: String?

    @Option(name: .long, help: "λ of the total-variation penalty λ·TV(δ), TV = (Σ|Δx| + Σ|Δy|)/(3·H·W) in [0, 1] units (default 3000 for am-tv, else 0).")
    var tv: Double?

    @Option(name: .long, help: "μ of the penalty μ·mean(δ²) (default 0).")
    var l2: Double?

    @Option(name: .long, help: "Loss: logit (target logit) or ce (cross-entropy) (default logit for am-tv, ce for the baselines).")
    var loss: String?

    @Option(name: .long, help: "Step rule: sign, adam or normalized (default sign; adam for am-tv; normalized for pgd-l2).")
    var stepRule: String?

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

    func attackKinds() throws -> [AttackKind] {
        if attack != nil && attacks != nil { throw EngineError.invalidInput("give --attack or --attacks, not both") }
        if let attacks {
            let kinds = try attacks.split(separator: ",").map { try AttackKind(parsing: String($0)) }
            guard !kinds.isEmpty else { throw EngineError.invalidInput("--attacks is empty") }
            return kinds
        }
        return [try attack.map { try AttackKind(parsing: $0) } ?? .amTV]
    }

    func config(_ kind: AttackKind) throws -> AttackConfig {
        var c = AttackConfig.defaults(kind)
        switch preset.lowercased() {
        case "torchattacks", "ta": break
        case "foolbox", "fb": c.applyFoolboxPreset()
        default: throw EngineError.invalidInput("unknown --preset '\(preset)': use torchattacks or foolbox")
        }
        if let norm {
            guard let n = PerturbationNorm(rawValue: norm.lowercased()) else { throw EngineError.invalidInput("--norm must be linf or l2, got '\(norm)'") }
            c.norm = n
        }
        if let eps {
            let e = try parseFraction(eps, what: "--eps")
            if alpha == nil && preset.lowercased().hasPrefix("f") && (kind == .pgd || kind == .bim || kind == .pgdL2) {
                c.alpha *= e / c.eps     // foolbox step sizes are relative to ε
            }
            c.eps = e
            if kind == .fgsm && alpha == nil { c.alpha = e }
        }
        if let alpha { c.alpha = try parseFraction(alpha, what: "--alpha") }
        if let steps, kind != .fgsm { c.steps = steps }   // FGSM is one step by definition
        if let tv { c.tvWeight = tv }
        if let l2 { c.l2Weight = l2 }
        if let loss {
            guard let l = AttackLoss(rawValue: loss.lowercased()) else { throw EngineError.invalidInput("--loss must be logit or ce, got '\(loss)'") }
            c.loss = l
        }
        if let stepRule {
            guard let r = StepRule(rawValue: stepRule.lowercased()) else {
                throw EngineError.invalidInput("--step-rule must be sign, adam or normalized, got '\(stepRule)'")
            }
            c.stepRule = r
        }
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

    static func slug(_ text: String) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789-")
        let s = String(text.lowercased().map { allowed.contains($0) ? $0 : "-" })
        return s.split(separator: "-").joined(separator: "-")
    }

    // MARK: - run

    func run() throws {
        try runReportingErrors {
            try runAttacks()
        }
    }

    func runAttacks() throws {
        let kinds = try attackKinds()
        let configs = try kinds.map(config)
        if image == nil && images == nil { throw EngineError.invalidInput("give --image PHOTO (JPEG or PNG) or --images DIR") }
        if image != nil && images != nil { throw EngineError.invalidInput("give --image or --images, not both") }
        if let batch, batch < 1 || batch > 256 { throw EngineError.invalidInput("--batch must lie in 1…256, got \(batch)") }
        let hasFeature = kinds.contains(.feature)
        if hasFeature && (guide == nil || layer == nil) {
            throw EngineError.invalidInput("--attack feature needs --guide IMAGE.png and --layer NAME")
        }
        let classifierAttacks = kinds.contains { $0 != .feature }
        if classifierAttacks && !untargeted && target == nil && targets == nil {
            throw EngineError.invalidInput("give the target class (--target NAME or --targets a,b,c), or --untargeted")
        }
        if untargeted && (target != nil || targets != nil) {
            throw EngineError.invalidInput("--untargeted takes no --target/--targets")
        }

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
        var guideImage: RGBImage? = nil
        let background = try imageOptions.backgroundColor()
        if let guide { guideImage = try Self.loadPhoto(guide, preprocessing: model.preprocessing, background: background) }

        try createOutputFolder(out)
        var photos: [(name: String, image: RGBImage)] = []
        for p in photoPaths {
            let stem = URL(fileURLWithPath: p).deletingPathExtension().lastPathComponent
            photos.append((stem, try Self.loadPhoto(p, preprocessing: model.preprocessing, background: background)))
        }
        let log: (String) -> Void = quiet ? { _ in } : { printError($0) }
        log("amgpu adversarial: \(model.name) on \(backend.name), batch \(model.batchSize), \(photos.count) photo(s) × \(max(targetIndices.count, 1)) target(s) × \(kinds.count) attack(s) → \(out)")

        var allExamples: [AdversarialExample] = []
        var summaries: [AttackSummary] = []
        for config in configs {
            var jobs: [AttackJob] = []
            var labels: [String] = []
            for photo in photos {
                if config.kind == .feature {
                    jobs.append(AttackJob(name: photo.name, original: photo.image, target: nil, guide: guideImage))
                    labels.append("guide-" + Self.slug(URL(fileURLWithPath: guide ?? "guide").deletingPathExtension().lastPathComponent))
                } else if config.targeted {
                    for t in targetIndices {
                        jobs.append(AttackJob(name: photo.name, original: photo.image, target: t))
                        labels.append(Self.slug(model.className(t)))
                    }
                } else {
                    jobs.append(AttackJob(name: photo.name, original: photo.image, target: nil))
                    labels.append("untargeted")
                }
            }
            let bar = AttackProgressBar(quiet: quiet, label: config.kind.rawValue)
            attacker.progress = { bar.update($0) }
            let outcomes = try attacker.run(jobs, config: config)
            bar.finish()
            // Write the adversarial PNGs, then re-read them: every metric is measured on the files.
            var files: [[String: String]] = []
            var written: [RGBImage] = []
            for (i, job) in jobs.enumerated() {
                let base = URL(fileURLWithPath: out).appendingPathComponent("\(Self.slug(job.name))_\(config.kind.rawValue)_\(labels[i])").path
                let advPath = base + "_adv.png"
                try PNGFile.write(outcomes[i].adversarial, to: advPath)
                written.append(try PNGFile.read(advPath))
                files.append(["adversarial": advPath, "json": base + ".json"])
            }
            var examples = try AdversarialEvaluation.measure(attacker: attacker, jobs: jobs, outcomes: outcomes, adversarial: written,
                                                             config: config, files: files)
            for (i, job) in jobs.enumerated() {
                let base = URL(fileURLWithPath: out).appendingPathComponent("\(Self.slug(job.name))_\(config.kind.rawValue)_\(labels[i])").path
                if !noPanels {
                    let scale = config.norm == .linf ? config.eps : max(examples[i].linf, 1.0 / 255)
                    let delta = Perturbation.visualize(job.original, written[i], scale: scale)
                    try PNGFile.write(delta, to: base + "_delta.png")
                    let panel = try Self.panel(job: job, adversarial: written[i], delta: delta, example: examples[i], config: config,
                                               amplification: 0.5 / scale)
                    try PNGFile.write(panel, to: base + "_panel.png")
                    examples[i].files["perturbation"] = base + "_delta.png"
                    examples[i].files["panel"] = base + "_panel.png"
                }
                let report = ExampleReport(model: model.name, modelSource: model.source, device: backend.name,
                                           date: ISO8601DateFormatter().string(from: Date()), config: config, example: examples[i],
                                           card: model.cardRecord)
                try writeAtomically(try JSONEncoder.pretty.encode(report), to: base + ".json")
            }
            allExamples += examples
            summaries.append(AttackSummary(attack: config.kind.rawValue, examples: examples))
            if photos.count * max(targetIndices.count, 1) == 1, let e = examples.first {
                print(Self.describe(e, config: config))
            }
        }
        if images != nil || configs.count > 1 {
            let summary = SetSummary(model: model.name, modelSource: model.source, device: backend.name,
                                     date: ISO8601DateFormatter().string(from: Date()), photos: photoPaths,
                                     targets: targetIndices.map { model.className($0) }, configs: configs, summaries: summaries,
                                     examples: allExamples, card: model.cardRecord)
            try writeAtomically(try JSONEncoder.pretty.encode(summary), to: URL(fileURLWithPath: out).appendingPathComponent("summary.json").path)
            try writeAtomically(Data(AdversarialEvaluation.summaryCSV(summaries).utf8), to: URL(fileURLWithPath: out).appendingPathComponent("summary.csv").path)
            try writeAtomically(Data(AdversarialEvaluation.examplesCSV(allExamples).utf8), to: URL(fileURLWithPath: out).appendingPathComponent("examples.csv").path)
            print(AdversarialEvaluation.table(summaries), terminator: "")
            print("wrote \(out)/summary.csv, summary.json, examples.csv and \(allExamples.count) example(s)")
        }
    }

    static func percent(_ p: Double?) -> String { p.map { String(format: "%.1f%%", $0 * 100) } ?? "-" }

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

    static func panel(job: AttackJob, adversarial: RGBImage, delta: RGBImage, example e: AdversarialExample, config: AttackConfig,
                      amplification: Double) throws -> RGBImage {
        func label(_ c: ClassProbability?) -> String { c.map { "\($0.name) \(percent($0.probability))" } ?? "" }
        var images = [job.original, delta, adversarial]
        var captions: [[String]] = [
            ["ORIGINAL", label(e.originalBefore)],
            [String(format: "PERTURBATION X%.1f", amplification), "L-INF \(e.linf255)/255  L2 \(String(format: "%.2f", e.l2))",
             String(format: "SSIM %.3f  PSNR ", e.ssim) + (e.psnr.map { String(format: "%.1f", $0) } ?? "INF")],
            ["ADVERSARIAL (\(config.kind.rawValue))", label(e.predictedAfter),
             e.target.map { "TARGET \($0.name) \(percent($0.probability))" } ?? (e.success ? "SUCCESS" : "FAILED")],
        ]
        if config.kind == .feature, let g = job.guide {
            images.append(g)
            captions.append(["GUIDE", e.featureDistanceRatio.map { String(format: "DISTANCE RATIO %.3f", $0) } ?? ""])
        }
        return try Panel.compose(images, captions: captions)
    }
}

/// Progress on stderr: a bar over the examples when stderr is a terminal, else one line per finished example.
final class AttackProgressBar {
    let quiet: Bool
    let label: String
    let terminal = isatty(2) != 0

    init(quiet: Bool, label: String) {
        self.quiet = quiet
        self.label = label
    }

    func update(_ p: AttackProgress) {
        guard !quiet else { return }
        if terminal {
            let width = 24, filled = width * p.finished / max(p.total, 1)
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
            let rate = Double(p.finished) / max(p.elapsedSeconds, 1e-9)
            let eta = p.finished > 0 ? String(format: "ETA %.0f s", Double(p.total - p.finished) / max(rate, 1e-9)) : "ETA -"
            let text = String(format: "%d/%d examples  step %d  %.1f s  ", p.finished, p.total, p.iteration, p.elapsedSeconds) + eta
            FileHandle.standardError.write("\r\(label) [\(bar)] \(text)   ".data(using: .utf8) ?? Data())
        } else if let m = p.message {
            printError("\(label): \(m)")
        }
    }

    func finish() {
        if terminal && !quiet { FileHandle.standardError.write("\n".data(using: .utf8) ?? Data()) }
    }
}

/// The JSON written next to each example.
struct ExampleReport: Codable {
    var model: String
    var modelSource: String
    var device: String
    var date: String
    var config: AttackConfig
    var example: AdversarialExample
    var card: ModelCardRecord?
}

/// summary.json of a set.
struct SetSummary: Codable {
    var model: String
    var modelSource: String
    var device: String
    var date: String
    var photos: [String]
    var targets: [String]
    var configs: [AttackConfig]
    var summaries: [AttackSummary]
    var examples: [AdversarialExample]
    var card: ModelCardRecord?
}
