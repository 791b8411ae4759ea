import Foundation

/// A photo to attack: its name (output files are named after it) and the image fitted to the model's input.
public struct AttackPhoto: Sendable {
    public var name: String
    public var image: RGBImage

    public init(name: String, image: RGBImage) {
        self.name = name
        self.image = image
    }
}

/// What `AttackRunner.run` attacks and where it writes.
public struct AttackRunRequest: Sendable {
    /// The photos, already fitted to the model (see `ImagePreprocessing.fitted`).
    public var photos: [AttackPhoto]
    /// Where the photos came from, recorded in summary.json.
    public var photoPaths: [String]
    /// Target classes: each photo is attacked toward each (targeted attacks); ignored by untargeted and feature attacks.
    public var targets: [Int]
    /// The guide image of feature attacks (fitted to the model) and the name its files carry.
    public var guide: RGBImage?
    public var guideName: String
    /// One attack per configuration, on the same examples.
    public var configs: [AttackConfig]
    /// The output folder (created if needed).
    public var outputFolder: String
    /// Write the perturbation and panel PNGs besides the adversarial PNG and the JSON report.
    public var panels: Bool
    /// Write summary.json, summary.csv and examples.csv.
    public var summaries: Bool

    public init(photos: [AttackPhoto], photoPaths: [String], targets: [Int], guide: RGBImage? = nil, guideName: String = "guide",
                configs: [AttackConfig], outputFolder: String, panels: Bool = true, summaries: Bool = false) {
        self.photos = photos
        self.photoPaths = photoPaths
        self.targets = targets
        self.guide = guide
        self.guideName = guideName
        self.configs = configs
        self.outputFolder = outputFolder
        self.panels = panels
        self.summaries = summaries
    }
}

/// What a run wrote: the measured examples of each attack, in the order of the request's configurations.
public struct AttackRunResult: Sendable {
    public var attacks: [(config: AttackConfig, examples: [AdversarialExample])]
    public var summaries: [AttackSummary]
    public var examples: [AdversarialExample] { attacks.flatMap(\.examples) }
    /// summary.csv, summary.json and examples.csv, when written.
    public var summaryFiles: [String]
}

/// The JSON written next to each example.
public struct ExampleReport: Codable, Sendable {
    public var model: String
    public var modelSource: String
    public var device: String
    public var date: String
    public var config: AttackConfig
    public var example: AdversarialExample
    public var card: ModelCardRecord?
}

/// summary.json of a set.
public struct SetSummary: Codable, Sendable {
    public var model: String
    public var modelSource: String
    public var device: String
    public var date: String
    public var photos: [String]
    public var targets: [String]
    public var configs: [AttackConfig]
    public var summaries: [AttackSummary]
    public var examples: [AdversarialExample]
    public var card: ModelCardRecord?
}

/// The whole `amgpu adversarial` pipeline, usable without the CLI: for each configuration, attack every
/// example (photo × target), write the adversarial PNGs, re-read them, measure every metric on the files
/// as written (`AdversarialEvaluation.measure`), then write the perturbation and panel PNGs, one JSON
/// report per example and, on request, the set's summary files. Files are named
/// `<photo>_<attack>_<target or "untargeted" or "guide-<name>">` (slugged) in the output folder.
public final class AttackRunner: @unchecked Sendable {
    public let attacker: AdversarialAttacker
    /// Called with each attack's progress (see `AdversarialAttacker.progress`).
    public var progress: ((AttackConfig, AttackProgress) -> Void)?
    /// Called once an attack's files are written, with its measured examples.
    public var attackFinished: ((AttackConfig, [AdversarialExample]) -> Void)?

    public init(attacker: AdversarialAttacker) {
        self.attacker = attacker
    }

    public var model: Model { attacker.model }

    /// Lower-case letters, digits and single dashes: the file-name form of a photo, class or attack name.
    public static func slug(_ text: String) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789-")
        let s = String(text.lowercased().map { allowed.contains($0) ? $0 : "-" })
        return s.split(separator: "-").joined(separator: "-")
    }

    /// The jobs of one attack and the label of each (the last part of its file names).
    func jobs(_ request: AttackRunRequest, config: AttackConfig) -> (jobs: [AttackJob], labels: [String]) {
        var jobs: [AttackJob] = []
        var labels: [String] = []
        for photo in request.photos {
            if config.kind == .feature {
                jobs.append(AttackJob(name: photo.name, original: photo.image, target: nil, guide: request.guide))
                labels.append("guide-" + Self.slug(request.guideName))
            } else if config.targeted {
                for t in request.targets {
                    jobs.append(AttackJob(name: photo.name, original: photo.image, target: t))
                    labels.append(Self.slug(model.className(t)))
                }
            } else {
                jobs.append(AttackJob(name: photo.name, original: photo.image, target: nil))
                labels.append("untargeted")
            }
        }
        return (jobs, labels)
    }

    public func run(_ request: AttackRunRequest) throws -> AttackRunResult {
        let out = request.outputFolder
        try createOutputFolder(out)
        let device = attacker.backend.name
        var attacks: [(config: AttackConfig, examples: [AdversarialExample])] = []
        var summaries: [AttackSummary] = []
        for config in request.configs {
            let (jobs, labels) = self.jobs(request, config: config)
            attacker.progress = { [progress] p in progress?(config, p) }
            defer { attacker.progress = nil }
            let outcomes = try attacker.run(jobs, config: config)
            // Write the adversarial PNGs, then re-read them: every metric is measured on the files.
            let bases = jobs.indices.map {
                URL(fileURLWithPath: out).appendingPathComponent("\(Self.slug(jobs[$0].name))_\(config.kind.rawValue)_\(labels[$0])").path
            }
            var files: [[String: String]] = []
            var written: [RGBImage] = []
            for i in jobs.indices {
                let advPath = bases[i] + "_adv.png"
                try PNGFile.write(outcomes[i].adversarial, to: advPath)
                written.append(try PNGFile.read(advPath))
                files.append(["adversarial": advPath, "json": bases[i] + ".json"])
            }
            var examples = try AdversarialEvaluation.measure(attacker: attacker, jobs: jobs, outcomes: outcomes, adversarial: written,
                                                             config: config, files: files)
            for (i, job) in jobs.enumerated() {
                let base = bases[i]
                if request.panels {
                    let scale = config.norm == .linf ? config.eps : max(examples[i].linf, 1.0 / 255)
                    let delta = Perturbation.visualize(job.original, written[i], scale: scale)
                    try PNGFile.write(delta, to: base + "_delta.png")
                    let panel = try AdversarialEvaluation.panel(job: job, adversarial: written[i], delta: delta, example: examples[i],
                                                                config: config, amplification: 0.5 / scale)
                    try PNGFile.write(panel, to: base + "_panel.png")
                    examples[i].files["perturbation"] = base + "_delta.png"
                    examples[i].files["panel"] = base + "_panel.png"
                }
                let report = ExampleReport(model: model.name, modelSource: model.source, device: device,
                                           date: ISO8601DateFormatter().string(from: Date()), config: config, example: examples[i],
                                           card: model.cardRecord)
                try writeAtomically(try Self.jsonEncoder.encode(report), to: base + ".json")
            }
            attacks.append((config, examples))
            summaries.append(AttackSummary(attack: config.kind.rawValue, examples: examples))
            attackFinished?(config, examples)
        }
        var summaryFiles: [String] = []
        if request.summaries {
            let all = attacks.flatMap(\.examples)
            let summary = SetSummary(model: model.name, modelSource: model.source, device: device,
                                     date: ISO8601DateFormatter().string(from: Date()), photos: request.photoPaths,
                                     targets: request.targets.map { model.className($0) }, configs: request.configs,
                                     summaries: summaries, examples: all, card: model.cardRecord)
            let folder = URL(fileURLWithPath: out)
            let paths = ["summary.json", "summary.csv", "examples.csv"].map { folder.appendingPathComponent($0).path }
            try writeAtomically(try Self.jsonEncoder.encode(summary), to: paths[0])
            try writeAtomically(Data(AdversarialEvaluation.summaryCSV(summaries).utf8), to: paths[1])
            try writeAtomically(Data(AdversarialEvaluation.examplesCSV(all).utf8), to: paths[2])
            summaryFiles = paths
        }
        return AttackRunResult(attacks: attacks, summaries: summaries, summaryFiles: summaryFiles)
    }

    /// Pretty-printed JSON with sorted keys (as every amgpu JSON file).
    static var jsonEncoder: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        return e
    }
}

extension AdversarialEvaluation {
    /// "12.3%" for a probability, "-" for none.
    public static func percent(_ p: Double?) -> String { p.map { String(format: "%.1f%%", $0 * 100) } ?? "-" }

    /// The example's panel: original | perturbation (amplified) | adversarial (| guide), with captions.
    public static func panel(job: AttackJob, adversarial: RGBImage, delta: RGBImage, example e: AdversarialExample, config: AttackConfig,
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
