import Foundation

/// A class and its probability.
public struct ClassProbability: Codable, Sendable, Equatable {
    public var index: Int
    public var name: String
    public var probability: Double
}

/// The metrics of one adversarial example, all computed on the 8-bit PNG as written and re-read.
///
/// Units: δ = (x_png − x₀_png)/255 in [0, 1] units; fields ending in 255 are in 0–255 units.
/// - `linf` = max |δ|, `l2` = ‖δ‖₂ over all 3·H·W values, `l0` = number of values (not pixels) with δ ≠ 0,
///   `l0Fraction` = l0 / (3·H·W);
/// - `psnr` in dB (nil when nothing changed), `ssim` as `ImageQuality.ssim`;
/// - `tv` = `Perturbation.totalVariation(δ)` (anisotropic, mean over the 3·H·W values), `tv255` = 255·tv.
public struct AdversarialExample: Codable, Sendable {
    public var image: String
    public var attack: String
    public var targeted: Bool
    public var target: ClassProbability?
    /// The clean image's top-1 class and probability.
    public var originalBefore: ClassProbability?
    /// The adversarial PNG's top-1 class and probability.
    public var predictedAfter: ClassProbability?
    /// P(target) on the clean image and on the PNG.
    public var targetProbabilityBefore: Double?
    public var targetProbability: Double?
    /// P(clean top-1 class) on the PNG.
    public var originalProbability: Double?
    /// Targeted: top-1 of the PNG is the target. Untargeted: it differs from the clean top-1.
    /// Feature: ‖f(x_png) − f(guide)‖ < ‖f(x_png) − f(x₀)‖.
    public var success: Bool
    /// The same test on the clean image.
    public var successBefore: Bool
    public var linf: Double
    public var linf255: Int
    public var l2: Double
    public var l2_255: Double
    public var l0: Int
    public var l0Fraction: Double
    public var psnr: Double?
    public var ssim: Double
    public var tv: Double
    public var tv255: Double
    public var steps: Int
    public var seconds: Double
    public var stoppedEarly: Bool
    /// Feature attacks: ‖f(x) − f(guide)‖₂ / ‖f(x₀) − f(guide)‖₂ for the PNG (1 before the attack).
    public var featureDistanceRatio: Double?
    /// Files written for this example (role → path).
    public var files: [String: String]
}

/// Mean and median of one metric over a set.
public struct MetricSummary: Codable, Sendable {
    /// nil when no example has a finite value (e.g. PSNR of unchanged images).
    public var mean: Double?
    public var median: Double?
    public var count: Int

    public init(_ values: [Double]) {
        let v = values.filter(\.isFinite).sorted()
        count = v.count
        mean = v.isEmpty ? nil : v.reduce(0, +) / Double(v.count)
        if v.isEmpty { median = nil } else if v.count % 2 == 1 { median = v[v.count / 2] } else { median = (v[v.count / 2 - 1] + v[v.count / 2]) / 2 }
    }
}

/// The summary of one attack over a set.
public struct AttackSummary: Codable, Sendable {
    public var attack: String
    public var examples: Int
    public var successRate: Double
    public var successRateBefore: Double
    /// Metric name → mean/median (see `AttackSummary.metricNames`).
    public var metrics: [String: MetricSummary]

    public static let metricNames = ["targetProbability", "originalProbability", "linf255", "l2", "l0Fraction", "psnr", "ssim",
                                     "tv255", "steps", "seconds"]

    public init(attack: String, examples e: [AdversarialExample]) {
        self.attack = attack
        examples = e.count
        let n = Double(max(e.count, 1))
        successRate = Double(e.filter(\.success).count) / n
        successRateBefore = Double(e.filter(\.successBefore).count) / n
        func values(_ name: String) -> [Double] {
            e.compactMap { x -> Double? in
                switch name {
                case "targetProbability": return x.targetProbability
                case "originalProbability": return x.originalProbability
                case "linf255": return Double(x.linf255)
                case "l2": return x.l2
                case "l0Fraction": return x.l0Fraction
                case "psnr": return x.psnr
                case "ssim": return x.ssim
                case "tv255": return x.tv255
                case "steps": return Double(x.steps)
                case "seconds": return x.seconds
                default: return nil
                }
            }
        }
        var m: [String: MetricSummary] = [:]
        for name in Self.metricNames { m[name] = MetricSummary(values(name)) }
        metrics = m
    }
}

public enum AdversarialEvaluation {
    /// Measures every example from the written PNGs: `adversarial[i]` is the PNG of job i as re-read from disk.
    /// Classifies the clean and adversarial images (and, for feature attacks, compares features at `config.layer`).
    public static func measure(attacker: AdversarialAttacker, jobs: [AttackJob], outcomes: [AttackOutcome],
                               adversarial: [RGBImage], config: AttackConfig, files: [[String: String]]? = nil) throws -> [AdversarialExample] {
        guard jobs.count == outcomes.count, jobs.count == adversarial.count else {
            throw EngineError.invalidInput("measure: \(jobs.count) jobs, \(outcomes.count) outcomes, \(adversarial.count) images")
        }
        let model = attacker.model
        var cleanP: [[Float]] = [], advP: [[Float]] = []
        if attacker.hasClassifier {
            cleanP = try attacker.evaluate(jobs.map(\.original)).map(softmax)
            advP = try attacker.evaluate(adversarial).map(softmax)
        }
        var ratios: [Double?] = Array(repeating: nil, count: jobs.count)
        var featureSuccess = [Bool](repeating: false, count: jobs.count)
        if config.kind == .feature, let layer = config.layer {
            let guides = try jobs.map { job -> RGBImage in
                guard let g = job.guide else { throw EngineError.invalidInput("'\(job.name)': a feature attack needs a guide image") }
                return g
            }
            let f0 = try attacker.evaluate(jobs.map(\.original), layer: layer)
            let fa = try attacker.evaluate(adversarial, layer: layer)
            let fg = try attacker.evaluate(guides, layer: layer)
            func dist(_ a: [Float], _ b: [Float]) -> Double {
                zip(a, b).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }.squareRoot()
            }
            for i in jobs.indices {
                let before = dist(f0[i], fg[i])
                ratios[i] = before > 0 ? dist(fa[i], fg[i]) / before : nil
                featureSuccess[i] = dist(fa[i], fg[i]) < dist(fa[i], f0[i])
            }
        }
        func top(_ p: [Float]) -> ClassProbability {
            let i = p.indices.max { p[$0] < p[$1] } ?? 0
            return ClassProbability(index: i, name: model.className(i), probability: Double(p[i]))
        }
        var out: [AdversarialExample] = []
        for (i, job) in jobs.enumerated() {
            let x0 = job.original, xa = adversarial[i]
            guard xa.width == x0.width, xa.height == x0.height else {
                throw EngineError.shapeMismatch("the adversarial PNG of '\(job.name)' is \(xa.width)×\(xa.height), the original \(x0.width)×\(x0.height)")
            }
            let delta = Perturbation.difference(x0, xa)
            var linf255 = 0, l0 = 0
            var l2sq = 0.0
            for (k, v) in x0.pixels.enumerated() {
                let d = abs(Int(xa.pixels[k]) - Int(v))
                linf255 = max(linf255, d)
                if d != 0 { l0 += 1 }
                l2sq += Double(d * d)
            }
            let tv = Perturbation.totalVariation(delta, height: x0.height, width: x0.width)
            var before: ClassProbability? = nil, after: ClassProbability? = nil
            var target: ClassProbability? = nil
            var pTargetBefore: Double? = nil, pTarget: Double? = nil, pOriginal: Double? = nil
            var success = false, successBefore = false
            if attacker.hasClassifier {
                let b = top(cleanP[i]), a = top(advP[i])
                before = b
                after = a
                pOriginal = Double(advP[i][b.index])
                if let t = job.target, t >= 0, t < advP[i].count {
                    pTargetBefore = Double(cleanP[i][t])
                    pTarget = Double(advP[i][t])
                    target = ClassProbability(index: t, name: model.className(t), probability: Double(advP[i][t]))
                }
                if config.kind != .feature {
                    if config.targeted, let t = job.target {
                        success = a.index == t
                        successBefore = b.index == t
                    } else {
                        success = a.index != b.index
                    }
                }
            }
            if config.kind == .feature { success = featureSuccess[i] }
            out.append(AdversarialExample(
                image: job.name, attack: config.kind.rawValue, targeted: config.targeted && config.kind != .feature, target: target,
                originalBefore: before, predictedAfter: after, targetProbabilityBefore: pTargetBefore, targetProbability: pTarget,
                originalProbability: pOriginal, success: success, successBefore: successBefore,
                linf: Double(linf255) / 255, linf255: linf255, l2: l2sq.squareRoot() / 255, l2_255: l2sq.squareRoot(),
                l0: l0, l0Fraction: Double(l0) / Double(max(x0.pixels.count, 1)),
                psnr: try ImageQuality.psnr(x0, xa), ssim: try ImageQuality.ssim(x0, xa), tv: tv, tv255: tv * 255,
                steps: outcomes[i].steps, seconds: outcomes[i].seconds, stoppedEarly: outcomes[i].stoppedEarly,
                featureDistanceRatio: ratios[i], files: files?[i] ?? [:]))
        }
        return out
    }

    /// A fixed-width text table of summaries (one row per attack).
    public static func table(_ summaries: [AttackSummary]) -> String {
        let header = ["attack", "n", "success", "before", "P(target)", "L∞·255", "L2", "L0 %", "PSNR dB", "SSIM", "TV·255", "steps", "s/example"]
        var rows = [header]
        func f(_ s: AttackSummary, _ name: String, _ format: String, scale: Double = 1) -> String {
            guard let m = s.metrics[name], let mean = m.mean, let median = m.median else { return "-" }
            return String(format: format, mean * scale) + " / " + String(format: format, median * scale)
        }
        for s in summaries {
            rows.append([s.attack, "\(s.examples)", String(format: "%.1f%%", s.successRate * 100),
                         String(format: "%.1f%%", s.successRateBefore * 100),
                         f(s, "targetProbability", "%.3f"), f(s, "linf255", "%.1f"), f(s, "l2", "%.3f"),
                         f(s, "l0Fraction", "%.1f", scale: 100), f(s, "psnr", "%.2f"), f(s, "ssim", "%.4f"),
                         f(s, "tv255", "%.3f"), f(s, "steps", "%.1f"), f(s, "seconds", "%.2f")])
        }
        let widths = header.indices.map { c in rows.map { $0[c].count }.max() ?? 0 }
        var text = ""
        for (r, row) in rows.enumerated() {
            text += row.enumerated().map { c, cell in cell.padding(toLength: widths[c], withPad: " ", startingAt: 0) }.joined(separator: "  ")
            text += "\n"
            if r == 0 { text += widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ") + "\n" }
        }
        return text + "(cells: mean / median; success measured on the 8-bit PNGs as written)\n"
    }

    /// The per-attack summary as CSV (mean and median columns per metric).
    public static func summaryCSV(_ summaries: [AttackSummary]) -> String {
        var header = ["attack", "examples", "success_rate", "success_rate_before"]
        for m in AttackSummary.metricNames { header += ["\(m)_mean", "\(m)_median"] }
        var lines = [header.joined(separator: ",")]
        for s in summaries {
            var row = [csvField(s.attack), "\(s.examples)", "\(s.successRate)", "\(s.successRateBefore)"]
            for m in AttackSummary.metricNames {
                let v = s.metrics[m]
                row += [v?.mean.map { "\($0)" } ?? "", v?.median.map { "\($0)" } ?? ""]
            }
            lines.append(row.joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// One CSV row per example.
    public static func examplesCSV(_ examples: [AdversarialExample]) -> String {
        let header = ["image", "attack", "targeted", "target", "original", "predicted", "success", "success_before",
                      "target_probability_before", "target_probability", "original_probability", "linf255", "l2", "l0",
                      "l0_fraction", "psnr", "ssim", "tv", "tv255", "steps", "seconds", "stopped_early"]
        var lines = [header.joined(separator: ",")]
        func o(_ d: Double?) -> String { d.map { "\($0)" } ?? "" }
        for e in examples {
            lines.append([csvField(e.image), e.attack, "\(e.targeted)", csvField(e.target?.name ?? ""),
                          csvField(e.originalBefore?.name ?? ""), csvField(e.predictedAfter?.name ?? ""), "\(e.success)",
                          "\(e.successBefore)", o(e.targetProbabilityBefore), o(e.targetProbability), o(e.originalProbability),
                          "\(e.linf255)", "\(e.l2)", "\(e.l0)", "\(e.l0Fraction)", o(e.psnr), "\(e.ssim)", "\(e.tv)", "\(e.tv255)",
                          "\(e.steps)", "\(e.seconds)", "\(e.stoppedEarly)"].joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func csvField(_ s: String) -> String {
        s.contains(",") || s.contains("\"") || s.contains("\n") ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }
}
