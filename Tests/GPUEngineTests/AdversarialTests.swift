import Foundation
import Testing
@testable import GPUEngine
@testable import amgpu

/// Adversarial attacks: projection and quantization keep ε exactly, SSIM/PSNR match scikit-image
/// (fixtures from scripts/tools/ssim_fixtures.py), TV and the AM+TV gradient are right, the attack loop
/// works on a tiny random CNN, and — with the real EfficientNet-Lite0 and photos — AM+TV reaches ≥ 95 %
/// targeted success after PNG quantization with a lower TV(δ) than PGD.
@Suite("AdversarialTests", .serialized)
struct AdversarialTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/ssim")

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }

    static func tempDir(_ name: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("amgpu-adv-\(ProcessInfo.processInfo.processIdentifier)-\(name)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// A random 8-bit RGB image.
    static func randomImage(width: Int, height: Int, seed: UInt64) -> RGBImage {
        var rng = SeededRandom(seed: seed)
        return RGBImage(width: width, height: height, pixels: (0..<(width * height * 3)).map { _ in UInt8(rng.next() % 256) })
    }

    /// A smooth random 8-bit image (sums of a few sinusoids), more photo-like than noise.
    static func smoothImage(size: Int, seed: UInt64) -> RGBImage {
        var rng = SeededRandom(seed: seed)
        let f = (0..<9).map { _ in rng.uniform(0.05, 0.5) }
        var pixels = [UInt8](repeating: 0, count: size * size * 3)
        for y in 0..<size {
            for x in 0..<size {
                for c in 0..<3 {
                    let v = 0.5 + 0.35 * sin(f[c] * Float(x) + f[c + 3] * Float(y) + f[c + 6] * 6)
                    pixels[(y * size + x) * 3 + c] = UInt8((v * 255).rounded())
                }
            }
        }
        return RGBImage(width: size, height: size, pixels: pixels)
    }

    /// A tiny random-weight CNN: conv 3→8 (3×3, stride 2, tanh) → conv 8→12 (3×3, stride 2, tanh, alias
    /// "features") → flatten → linear → `classes` logits. Smooth everywhere (tanh), so finite differences hold.
    static func tinyModel(batch: Int, size: Int = 16, classes: Int = 6, seed: UInt64 = 7) throws -> Model {
        var rng = SeededRandom(seed: seed)
        let g = Graph()
        let x = try g.addInput("input", shape: [batch, 3, size, size])
        let w1 = try g.addConstant("conv1.weight", rng.tensor([8, 3, 3, 3], -0.6, 0.6))
        let b1 = try g.addConstant("conv1.bias", rng.tensor([8], -0.1, 0.1))
        let c1 = try g.add(Conv2D(strides: [2, 2], pads: Padding2D(1), activation: Unary(.tanh)), [x, w1, b1], name: "conv1")
        let w2 = try g.addConstant("conv2.weight", rng.tensor([12, 8, 3, 3], -0.4, 0.4))
        let b2 = try g.addConstant("conv2.bias", rng.tensor([12], -0.1, 0.1))
        let c2 = try g.add(Conv2D(strides: [2, 2], pads: Padding2D(1), activation: Unary(.tanh)), [c1, w2, b2], name: "conv2")
        let s = g.shape(of: c2)
        let flat = try g.add(Reshape(shape: [batch, s[1] * s[2] * s[3]]), [c2], name: "flat")
        let wf = try g.addConstant("fc.weight", rng.tensor([s[1] * s[2] * s[3], classes], -0.5, 0.5))
        let logits = try g.add(MatMul(), [flat, wf], name: "logits")
        return Model(name: "tiny-cnn", graph: g, input: x, output: logits, family: .cnn, preprocessing: .imagenet(size),
                     classNames: (0..<classes).map { "class\($0)" }, aliases: ["features": c2], source: "random weights, seed \(seed)")
    }

    // MARK: parsing and configuration

    @Test func fractionsParse() throws {
        #expect(try parseFraction("8/255") == 8.0 / 255)
        #expect(try parseFraction(" 2 / 255 ") == 2.0 / 255)
        #expect(try parseFraction("0.03") == 0.03)
        #expect(throws: EngineError.self) { try parseFraction("8/0") }
        #expect(throws: EngineError.self) { try parseFraction("eight") }
        #expect(throws: EngineError.self) { try parseFraction("1/2/3") }
        #expect(try AttackKind(parsing: "AM-TV") == .amTV)
        #expect(try AttackKind(parsing: "pgd_l2") == .pgdL2)
        #expect(try AttackKind(parsing: "i-fgsm") == .bim)
        #expect(throws: EngineError.self) { try AttackKind(parsing: "cw") }
        // torchattacks' defaults.
        let pgd = AttackConfig.defaults(.pgd)
        #expect(pgd.eps == 8.0 / 255 && pgd.alpha == 2.0 / 255 && pgd.steps == 10 && pgd.randomStart && pgd.loss == .ce)
        let l2 = AttackConfig.defaults(.pgdL2)
        #expect(l2.eps == 1.0 && l2.alpha == 0.2 && l2.steps == 10 && l2.norm == .l2)
        var fb = AttackConfig.defaults(.pgd)
        fb.applyFoolboxPreset()
        #expect(fb.steps == 40 && abs(fb.alpha - 8.0 / 255 * 0.01 / 0.3) < 1e-12)
        var bad = AttackConfig.defaults(.amTV)
        bad.eps = -1
        #expect(throws: EngineError.self) { try bad.validate() }
    }

    // MARK: projection and quantization

    @Test(arguments: [8.0 / 255, 0.03, 4.5 / 255, 1.0 / 255])
    func linfProjectionKeepsEpsAfterQuantization(eps: Double) throws {
        let (w, h) = (23, 19)
        let x0 = Self.randomImage(width: w, height: h, seed: 11)
        let p0 = Perturbation.planar(x0)
        var rng = SeededRandom(seed: 12)
        // δ up to 3ε, then projected: many values sit exactly on ±ε, the worst case for rounding.
        var delta = (0..<p0.count).map { _ in rng.uniform(-3 * Float(eps), 3 * Float(eps)) }
        Perturbation.project(&delta, original: p0, norm: .linf, eps: eps)
        for i in delta.indices {
            // Within float rounding of x₀ + δ (one ulp of 1 ≈ 1.2e-7); the 8-bit image below is exact.
            #expect(abs(delta[i]) <= Float(eps) + 2.5e-7)
            #expect(p0[i] + delta[i] >= 0 && p0[i] + delta[i] <= 1)
        }
        let q = try Perturbation.quantize(zip(p0, delta).map { $0 + $1 }, original: x0, norm: .linf, eps: eps)
        var maxDiff = 0
        var changed = 0
        for i in q.pixels.indices {
            let d = abs(Int(q.pixels[i]) - Int(x0.pixels[i]))
            maxDiff = max(maxDiff, d)
            if d != 0 { changed += 1 }
        }
        #expect(Double(maxDiff) <= eps * 255 + 1e-9, "ε = \(eps): max |x_png − x₀_png| = \(maxDiff) > \(eps * 255)")
        #expect(maxDiff == Int((eps * 255 + 1e-9).rounded(.down)), "the bound should be reached (δ was saturated)")
        #expect(changed > q.pixels.count / 2)
        // Written and re-read as PNG: identical bytes.
        let dir = try Self.tempDir("quant")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("q.png").path
        try PNGFile.write(q, to: path)
        #expect(try PNGFile.read(path) == q)
    }

    @Test func l2ProjectionKeepsEpsAfterQuantization() throws {
        let x0 = Self.randomImage(width: 17, height: 13, seed: 21)
        let p0 = Perturbation.planar(x0)
        var rng = SeededRandom(seed: 22)
        for eps in [0.05, 0.5, 1.0] {
            var delta = (0..<p0.count).map { _ in rng.uniform(-0.2, 0.2) }
            Perturbation.project(&delta, original: p0, norm: .l2, eps: eps)
            #expect(Perturbation.l2Norm(delta) <= eps * (1 + 1e-6))
            let q = try Perturbation.quantize(zip(p0, delta).map { $0 + $1 }, original: x0, norm: .l2, eps: eps)
            let d = Perturbation.difference(x0, q)
            let n = d.reduce(0.0) { $0 + Double($1 * 255) * Double($1 * 255) }.squareRoot()
            #expect(n <= eps * 255 * (1 + 1e-9), "L2 ε = \(eps): ‖q‖₂ = \(n / 255) > ε")
            #expect(n > Perturbation.l2Norm(delta) * 255 * 0.75, "quantization should keep most of δ (‖q‖ = \(n / 255), ‖δ‖ = \(Perturbation.l2Norm(delta)))")
        }
    }

    @Test func projectionClipsToTheImageBox() {
        let x0: [Float] = [0, 1, 0.5, 0.02]
        var d: [Float] = [-0.1, 0.1, 0.2, -0.05]
        Perturbation.project(&d, original: x0, norm: .linf, eps: 0.03)
        for (v, e) in zip(d, [0, 0, 0.03, -0.02] as [Float]) { #expect(abs(v - e) < 1e-6) }
    }

    // MARK: metrics

    struct Reference: Decodable {
        struct Case: Decodable {
            var name: String
            var a: String
            var b: String
            var ssim: Double
            var ssim_per_channel: [Double]
            var psnr: Double?
        }
        var skimage: String
        var cases: [Case]
    }

    @Test func ssimAndPSNRMatchScikitImage() throws {
        let data = try Data(contentsOf: Self.fixtures.appendingPathComponent("reference.json"))
        let reference = try JSONDecoder().decode(Reference.self, from: data)
        #expect(reference.cases.count >= 6)
        var worst = 0.0
        for c in reference.cases {
            let a = try PNGFile.read(Self.fixtures.appendingPathComponent(c.a).path)
            let b = try PNGFile.read(Self.fixtures.appendingPathComponent(c.b).path)
            let ssim = try ImageQuality.ssim(a, b)
            worst = max(worst, abs(ssim - c.ssim))
            #expect(abs(ssim - c.ssim) <= 1e-4, "\(c.name): SSIM \(ssim), scikit-image \(c.ssim)")
            let psnr = try ImageQuality.psnr(a, b)
            if let r = c.psnr, let p = psnr {
                #expect(abs(p - r) <= 1e-4, "\(c.name): PSNR \(p), scikit-image \(r)")
            } else {
                #expect(psnr == nil && c.psnr == nil, "\(c.name): PSNR \(String(describing: psnr)), scikit-image \(String(describing: c.psnr))")
            }
        }
        print("amgpu-test: SSIM vs scikit-image \(reference.skimage): \(reference.cases.count) cases, max |Δ| \(worst)")
        #expect(throws: EngineError.self) {
            try ImageQuality.ssim(Self.randomImage(width: 10, height: 12, seed: 1), Self.randomImage(width: 10, height: 12, seed: 2))
        }
        #expect(throws: EngineError.self) {
            try ImageQuality.psnr(Self.randomImage(width: 12, height: 12, seed: 1), Self.randomImage(width: 13, height: 12, seed: 2))
        }
    }

    @Test func totalVariationHandExample() {
        // One channel 2×3: [[0, 1, 3], [2, 2, 0]]:
        //   horizontal |1−0| + |3−1| + |2−2| + |0−2| = 5; vertical |2−0| + |2−1| + |0−3| = 6; sum 11, mean over 6 values.
        let d: [Float] = [0, 1, 3, 2, 2, 0]
        #expect(abs(Perturbation.totalVariation(d, channels: 1, height: 2, width: 3) - 11.0 / 6) < 1e-12)
        // Three channels: the mean over 3·H·W.
        let d3 = d + d.map { $0 * 2 } + [Float](repeating: 5, count: 6)
        #expect(abs(Perturbation.totalVariation(d3, channels: 3, height: 2, width: 3) - (11.0 + 22.0 + 0) / 18) < 1e-12)
        // Gradient by hand: ∂/∂d[0] = (sign(0−1) + sign(0−2)) / 6 = −2/6.
        var g = [Float](repeating: 0, count: 6)
        Perturbation.addTotalVariationGradient(d, channels: 1, height: 2, width: 3, scale: 1, into: &g)
        #expect(abs(g[0] - (-2.0 / 6)) < 1e-7)
        // ∂/∂d[4] (value 2 at row 1, col 1): pairs (3,4) sign(2−2)=0 → 0, (4,5) sign(2−0) = +1, (1,4) sign(2−1) = +1 → 2/6.
        #expect(abs(g[4] - 2.0 / 6) < 1e-7)
        // Finite differences on a random δ (steps of 2⁻¹⁰, exact in Float; no neighbour within a step).
        var rng = SeededRandom(seed: 5)
        let r = (0..<(3 * 7 * 9)).map { _ in rng.uniform(-1, 1) }
        var gr = [Float](repeating: 0, count: r.count)
        Perturbation.addTotalVariationGradient(r, channels: 3, height: 7, width: 9, scale: 1, into: &gr)
        for i in stride(from: 0, to: r.count, by: 17) {
            var p = r, m = r
            p[i] += 1.0 / 1024
            m[i] -= 1.0 / 1024
            let fd = (Perturbation.totalVariation(p, height: 7, width: 9) - Perturbation.totalVariation(m, height: 7, width: 9))
                / Double(p[i] - m[i])
            #expect(abs(fd - Double(gr[i])) < 1e-6, "TV gradient at \(i): \(gr[i]) vs finite difference \(fd)")
        }
    }

    @Test func metricsOnKnownPerturbation() throws {
        let x0 = Self.smoothImage(size: 16, seed: 3)
        var xa = x0
        xa.pixels[0] = x0.pixels[0] > 128 ? x0.pixels[0] - 5 : x0.pixels[0] + 5
        xa.pixels[100] = x0.pixels[100] > 128 ? x0.pixels[100] - 3 : x0.pixels[100] + 3
        let model = try Self.tinyModel(batch: 2)
        let attacker = try AdversarialAttacker(model: model, backend: Backends.cpu)
        let job = AttackJob(name: "x", original: x0, target: 1)
        let outcome = AttackOutcome(adversarial: xa, steps: 3, seconds: 0.5, stoppedEarly: true, originalClass: 0)
        let e = try AdversarialEvaluation.measure(attacker: attacker, jobs: [job], outcomes: [outcome], adversarial: [xa],
                                                  config: .defaults(.amTV))[0]
        #expect(e.linf255 == 5 && abs(e.linf - 5.0 / 255) < 1e-12)
        #expect(e.l0 == 2 && abs(e.l0Fraction - 2.0 / 768) < 1e-12)
        #expect(abs(e.l2_255 - 34.0.squareRoot()) < 1e-9 && abs(e.l2 - 34.0.squareRoot() / 255) < 1e-12)
        let mse = 34.0 / 768
        #expect(abs((e.psnr ?? 0) - 10 * log10(255 * 255 / mse)) < 1e-9)
        #expect(e.ssim < 1 && e.ssim > 0.9)
        #expect(abs(e.tv255 - 255 * Perturbation.totalVariation(Perturbation.difference(x0, xa), height: 16, width: 16)) < 1e-9)
        #expect(e.steps == 3 && e.stoppedEarly)
        let p = e.targetProbability ?? -1
        #expect(p > 0 && p < 1)
    }

    // MARK: the AM+TV objective's gradient

    @Test(arguments: [AttackLoss.logit, AttackLoss.ce])
    func amTVGradientMatchesFiniteDifferences(loss: AttackLoss) throws {
        let model = try Self.tinyModel(batch: 2)
        let attacker = try AdversarialAttacker(model: model, backend: Backends.cpu)
        let originals = [Self.smoothImage(size: 16, seed: 1), Self.smoothImage(size: 16, seed: 2)].map(Perturbation.planar)
        var rng = SeededRandom(seed: 9)
        let eps: Float = 0.03
        let deltas = originals.map { _ in (0..<(3 * 16 * 16)).map { _ in rng.uniform(-eps, eps) } }
        var config = AttackConfig.defaults(.amTV)
        config.loss = loss
        config.tvWeight = 4
        config.l2Weight = 3
        let targets: [Int?] = [2, 4]
        let (values, grads) = try attacker.objective(originals: originals, deltas: deltas, targets: targets, config: config)
        #expect(values.count == 2 && grads.count == 2)
        let h: Float = 1e-3
        func J(_ b: Int, _ d: [Float]) throws -> Double {
            var ds = deltas
            ds[b] = d
            return try attacker.objective(originals: originals, deltas: ds, targets: targets, config: config).values[b]
        }
        var checked = 0
        var err2 = 0.0, ref2 = 0.0
        for b in 0..<2 {
            // Coordinates away from TV kinks (every neighbour differs by more than 2h).
            for i in stride(from: 5, to: deltas[b].count, by: 53) {
                let d = deltas[b]
                let y = (i % 256) / 16, x = i % 16
                var neighbours: [Int] = []
                if x > 0 { neighbours.append(i - 1) }
                if x < 15 { neighbours.append(i + 1) }
                if y > 0 { neighbours.append(i - 16) }
                if y < 15 { neighbours.append(i + 16) }
                guard neighbours.allSatisfy({ abs(d[$0] - d[i]) > 2 * h }) else { continue }
                var p = d, m = d
                p[i] += h
                m[i] -= h
                let fd = (try J(b, p) - J(b, m)) / Double(p[i] - m[i])
                let g = Double(grads[b][i])
                #expect(abs(fd - g) <= 2e-3 + 2e-2 * abs(g), "\(loss) image \(b) value \(i): gradient \(g), finite difference \(fd)")
                err2 += (fd - g) * (fd - g)
                ref2 += fd * fd
                checked += 1
            }
        }
        #expect(checked >= 10)
        // Over all checked coordinates together (a zero or scaled gradient fails even where entries are small).
        #expect(err2.squareRoot() <= 1e-2 * ref2.squareRoot(), "\(loss): ‖g − g_fd‖/‖g_fd‖ = \(err2.squareRoot() / ref2.squareRoot()) over \(checked) coordinates")
        // The penalties: value λ·TV + μ·mean(δ²).
        // (computed on the device in fp32 by the attack graph; the reference in Double on the host).
        let penalties = try attacker.penalties(deltas, config: config)
        for b in 0..<2 {
            let tv = Perturbation.totalVariation(deltas[b], height: 16, width: 16)
            let l2 = deltas[b].reduce(0.0) { $0 + Double($1) * Double($1) } / Double(deltas[b].count)
            let expected = 4 * tv + 3 * l2
            #expect(abs(penalties[b] - expected) <= 1e-5 * expected, "image \(b): penalty \(penalties[b]), expected \(expected)")
        }
    }

    // MARK: the attack loop on a tiny model

    @Test(arguments: TestBackend.allCases)
    func attacksOnTinyModel(_ kind: TestBackend) throws {
        guard let backend = Backends.get(kind) else { return }
        let model = try Self.tinyModel(batch: 3)
        let attacker = try AdversarialAttacker(model: model, backend: backend)
        let photos = (0..<4).map { Self.smoothImage(size: 16, seed: UInt64(40 + $0)) }
        let clean = try attacker.evaluate(photos)
        let cleanTop = clean.map { row in row.indices.max { row[$0] < row[$1] } ?? 0 }
        // Targets: the class each image is least likely to be.
        let targets = clean.map { row in row.indices.min { row[$0] < row[$1] } ?? 0 }
        let jobs = (0..<4).map { AttackJob(name: "img\($0)", original: photos[$0], target: targets[$0]) }
        for kind in [AttackKind.amTV, .pgd, .bim, .fgsm, .pgdL2] {
            var config = AttackConfig.defaults(kind)
            config.eps = kind == .pgdL2 ? 1.0 : 16.0 / 255
            config.alpha = kind == .fgsm ? config.eps : (kind == .pgdL2 ? 0.25 : 2.0 / 255)
            if kind == .amTV {
                // The default λ (3000, tuned on EfficientNet-Lite0 at 224²) dominates this tiny random model.
                config.tvWeight = 10
                config.alpha = 1.0 / 255
            }
            let outcomes = try attacker.run(jobs, config: config)
            let examples = try AdversarialEvaluation.measure(attacker: attacker, jobs: jobs, outcomes: outcomes,
                                                             adversarial: outcomes.map(\.adversarial), config: config)
            for (i, e) in examples.enumerated() {
                if config.norm == .linf {
                    #expect(Double(e.linf255) <= config.eps * 255 + 1e-9, "\(kind): L∞ \(e.linf255) > ε")
                } else {
                    #expect(e.l2 <= config.eps * (1 + 1e-9), "\(kind): L2 \(e.l2) > ε")
                }
                #expect(outcomes[i].originalClass == cleanTop[i])
                #expect(e.steps <= config.steps)
                #expect((e.targetProbability ?? 0) >= (e.targetProbabilityBefore ?? 1), "\(kind) \(e.image): P(target) fell")
            }
            let rate = Double(examples.filter(\.success).count) / 4
            let before = Double(examples.filter(\.successBefore).count) / 4
            print("amgpu-test: tiny CNN (\(backend.name)) \(kind.rawValue): success \(rate) (before \(before)), mean steps \(Double(examples.map(\.steps).reduce(0, +)) / 4)")
            #expect(rate > before, "\(kind): success \(rate) not above \(before)")
            if kind == .amTV {
                #expect(rate == 1, "AM+TV should reach every target of the tiny model")
                #expect(examples.allSatisfy { !$0.success || $0.stoppedEarly })
            }
        }
        // Untargeted PGD moves the images away from their clean class.
        var untargeted = AttackConfig.defaults(.pgd)
        untargeted.targeted = false
        untargeted.eps = 16.0 / 255
        let jobsU = photos.enumerated().map { AttackJob(name: "u\($0.offset)", original: $0.element, target: nil) }
        let outU = try attacker.run(jobsU, config: untargeted)
        let exU = try AdversarialEvaluation.measure(attacker: attacker, jobs: jobsU, outcomes: outU, adversarial: outU.map(\.adversarial),
                                                    config: untargeted)
        #expect(exU.filter(\.success).count >= 3, "untargeted PGD: \(exU.filter(\.success).count)/4")
        // Feature attack toward a guide's "features" representation.
        var feature = AttackConfig.defaults(.feature)
        feature.layer = "features"
        feature.eps = 32.0 / 255
        feature.steps = 20
        let jobsF = (0..<2).map { AttackJob(name: "f\($0)", original: photos[$0], target: nil, guide: photos[3 - $0]) }
        let outF = try attacker.run(jobsF, config: feature)
        let exF = try AdversarialEvaluation.measure(attacker: attacker, jobs: jobsF, outcomes: outF, adversarial: outF.map(\.adversarial),
                                                    config: feature)
        for e in exF {
            let r = e.featureDistanceRatio ?? 1
            #expect(r < 0.9, "feature attack: distance ratio \(r)")
            #expect(e.linf255 <= 32)
        }
    }

    @Test func attackerRejectsBadInput() throws {
        let model = try Self.tinyModel(batch: 1)
        let attacker = try AdversarialAttacker(model: model, backend: Backends.cpu)
        let wrongSize = AttackJob(name: "big", original: Self.smoothImage(size: 20, seed: 1), target: 0)
        #expect(throws: EngineError.self) { try attacker.run([wrongSize], config: .defaults(.pgd)) }
        let noTarget = AttackJob(name: "t", original: Self.smoothImage(size: 16, seed: 1), target: nil)
        #expect(throws: EngineError.self) { try attacker.run([noTarget], config: .defaults(.pgd)) }
        var feature = AttackConfig.defaults(.feature)
        #expect(throws: EngineError.self) { try attacker.run([noTarget], config: feature) }  // no layer
        feature.layer = "nope"
        #expect(throws: EngineError.self) { try attacker.run([noTarget], config: feature) }
    }

    @Test func panelDrawsImagesAndText() throws {
        let a = Self.smoothImage(size: 32, seed: 1), b = Self.smoothImage(size: 32, seed: 2)
        let panel = try Panel.compose([a, b, a], captions: [["ORIGINAL", "tabby 87.1%"], ["X15.9"], ["ADV"]])
        #expect(panel.width == 8 * 2 + 3 * 32 + 2 * 8)
        #expect(panel.height == 8 * 2 + 32 + 4 + 2 * 10)
        // The second image is copied at (8 + 32 + 8, 8).
        let x0 = 48, y0 = 8
        #expect(Array(panel.pixels[((y0 + 3) * panel.width + x0 + 5) * 3..<((y0 + 3) * panel.width + x0 + 6) * 3])
                == Array(b.pixels[(3 * 32 + 5) * 3..<(3 * 32 + 6) * 3]))
        // Ink below the first image.
        var ink = 0
        for y in (8 + 32 + 4)..<panel.height { for x in 8..<40 where panel.pixels[(y * panel.width + x) * 3] == 0 { ink += 1 } }
        #expect(ink > 20)
        #expect(BitmapFont.fit("a very long class name indeed", maxWidth: 60) == "a very...")
        #expect(BitmapFont.mask("a") == BitmapFont.mask("A"))
        #expect(BitmapFont.mask("ß") == BitmapFont.mask("?"))
    }

    // MARK: the engine's attack runner (no CLI)

    @Test func runnerWritesImagesReportsAndSummaries() throws {
        let dir = try Self.tempDir("runner")
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = try Self.tinyModel(batch: 3)
        let runner = AttackRunner(attacker: try AdversarialAttacker(model: model, backend: Backends.cpu))
        var pgd = AttackConfig.defaults(.pgd)
        pgd.steps = 2
        pgd.eps = 4.0 / 255
        let photos = [AttackPhoto(name: "Photo A", image: Self.smoothImage(size: 16, seed: 3)),
                      AttackPhoto(name: "b", image: Self.smoothImage(size: 16, seed: 4))]
        var progressCalls = 0
        var finished: [AttackKind] = []
        runner.progress = { _, _ in progressCalls += 1 }
        runner.attackFinished = { config, examples in
            finished.append(config.kind)
            #expect(examples.count == 4)
        }
        let out = dir.appendingPathComponent("out").path
        let result = try runner.run(AttackRunRequest(photos: photos, photoPaths: ["a.png", "b.png"], targets: [2, 4],
                                                     configs: [pgd, .defaults(.fgsm)], outputFolder: out, panels: true, summaries: true))
        #expect(finished == [.pgd, .fgsm] && progressCalls > 0)
        #expect(result.examples.count == 8 && result.summaries.map(\.attack) == ["pgd", "fgsm"])
        let files = try FileManager.default.contentsOfDirectory(atPath: out)
        #expect(files.count == 8 * 4 + 3, "\(files.sorted())")
        for name in ["summary.csv", "summary.json", "examples.csv"] { #expect(files.contains(name), "\(name) missing") }
        // Files are named photo_attack_target (slugged); the report records what was measured on the PNG.
        let base = out + "/photo-a_pgd_" + AttackRunner.slug(model.className(4))
        let report = try JSONDecoder().decode(ExampleReport.self, from: Data(contentsOf: URL(fileURLWithPath: base + ".json")))
        #expect(report.config == pgd && report.example.steps == 2 && report.example.linf255 <= 4)
        #expect(report.example.files["adversarial"] == base + "_adv.png" && report.example.files["panel"] == base + "_panel.png")
        let written = try PNGFile.read(base + "_adv.png")
        let l = Perturbation.difference(photos[0].image, written).map { abs($0) }.max() ?? 0
        #expect(abs(Double(l) * 255 - Double(report.example.linf255)) < 1e-3 && l > 0)
        let summary = try JSONDecoder().decode(SetSummary.self, from: Data(contentsOf: URL(fileURLWithPath: out + "/summary.json")))
        #expect(summary.examples.count == 8 && summary.photos == ["a.png", "b.png"] && summary.configs.count == 2)
    }

    // MARK: the CLI

    static func writeTestPhotos(_ dir: URL) throws -> [String] {
        var paths: [String] = []
        for (i, size) in [(0, 48), (1, 40)] {
            let path = dir.appendingPathComponent("photo\(i).png").path
            try PNGFile.write(Self.smoothImage(size: size, seed: UInt64(60 + i)), to: path)
            paths.append(path)
        }
        return paths
    }

    @Test func commandLineWritesImagesReportsAndSummaries() throws {
        let dir = try Self.tempDir("cli")
        defer { try? FileManager.default.removeItem(at: dir) }
        let inDir = dir.appendingPathComponent("in")
        try FileManager.default.createDirectory(at: inDir, withIntermediateDirectories: true)
        let photos = try Self.writeTestPhotos(inDir)
        let model = ["--model", "random:resnet18", "--size", "32", "--device", "cpu", "--quiet"]
        // One image, PGD: adversarial, perturbation and panel PNGs and a JSON report.
        let out1 = dir.appendingPathComponent("one").path
        let one = try Adversarial.parse(model + ["--image", photos[0], "--target", "7", "--attack", "pgd", "--steps", "2",
                                                 "--eps", "4/255", "--alpha", "1/255", "--out", out1])
        try one.runAttacks()
        let files = try FileManager.default.contentsOfDirectory(atPath: out1).sorted()
        #expect(files.count == 4, "\(files)")
        guard let json = files.first(where: { $0.hasSuffix(".json") }), let adv = files.first(where: { $0.hasSuffix("_adv.png") }) else {
            Issue.record("missing outputs: \(files)")
            return
        }
        #expect(files.contains { $0.hasSuffix("_panel.png") } && files.contains { $0.hasSuffix("_delta.png") })
        let report = try JSONDecoder().decode(ExampleReport.self, from: Data(contentsOf: URL(fileURLWithPath: out1 + "/" + json)))
        #expect(report.config.kind == .pgd && report.config.steps == 2 && abs(report.config.eps - 4.0 / 255) < 1e-12)
        #expect(report.example.linf255 <= 4 && report.example.steps == 2)
        let image = try PNGFile.read(out1 + "/" + adv)
        #expect(image.width == 32 && image.height == 32)

        // A set: 2 photos × 2 targets × 2 attacks, summary files.
        let out2 = dir.appendingPathComponent("set").path
        let set = try Adversarial.parse(model + ["--images", dir.appendingPathComponent("in").path, "--targets", "3,9",
                                                 "--attacks", "am-tv,fgsm", "--steps", "3", "--batch", "3", "--out", out2, "--no-panels"])
        try set.runAttacks()
        for name in ["summary.csv", "summary.json", "examples.csv"] {
            #expect(FileManager.default.fileExists(atPath: out2 + "/" + name), "\(name) missing")
        }
        let summary = try JSONDecoder().decode(SetSummary.self, from: Data(contentsOf: URL(fileURLWithPath: out2 + "/summary.json")))
        #expect(summary.examples.count == 8 && summary.summaries.map(\.attack) == ["am-tv", "fgsm"])
        let csv = try String(contentsOfFile: out2 + "/summary.csv", encoding: .utf8)
        #expect(csv.split(separator: "\n").count == 3)
        #expect(csv.hasPrefix("attack,examples,success_rate"))

        // Clear errors.
        func fails(_ args: [String], _ fragment: String) {
            do {
                let c = try Adversarial.parse(model + args + ["--out", dir.appendingPathComponent("err").path])
                try c.runAttacks()
                Issue.record("expected an error containing '\(fragment)' for \(args)")
            } catch let e as EngineError {
                #expect("\(e)".contains(fragment), "\(args): \(e)")
            } catch {
                // Flag errors come from parsing and validate() (exit status 64, EX_USAGE).
                let message = Adversarial.message(for: error)
                #expect(message.contains(fragment), "\(args): \(message)")
            }
        }
        fails(["--image", photos[0]], "target")
        fails(["--image", photos[0], "--target", "1", "--attack", "cw"], "'cw' is invalid for '--attack")
        fails(["--image", photos[0], "--target", "1", "--attacks", "pgd,cw"], "unknown attack 'cw'")
        fails(["--image", photos[0], "--target", "1", "--norm", "l3"], "--norm")
        fails(["--image", photos[0], "--target", "1", "--attack", "pgd", "--attacks", "fgsm"], "not both")
        fails(["--image", photos[0], "--target", "1", "--eps", "eight"], "--eps")
        fails(["--image", dir.appendingPathComponent("missing.png").path, "--target", "1"], "no such file")
        let notPNG = dir.appendingPathComponent("text.png").path
        try Data("not a png".utf8).write(to: URL(fileURLWithPath: notPNG))
        fails(["--image", notPNG, "--target", "1"], "cannot read image")
        let tiny = dir.appendingPathComponent("tiny.png").path
        try PNGFile.write(Self.smoothImage(size: 8, seed: 1), to: tiny)
        fails(["--image", tiny, "--target", "1"], "at least 16")
        fails(["--image", photos[0], "--attack", "feature"], "--guide")
    }

    // MARK: the real EfficientNet-Lite0

    /// ≥ 10 photos: the 9 fetched photos plus the horizontal mirror of the first (a new example for the
    /// network: EfficientNet is not flip-invariant). Each is centre-cropped to the input size.
    static func realPhotos(size: Int) throws -> [(String, RGBImage)]? {
        let dir = ModelStore.path("photos")
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir).filter({ $0.hasSuffix(".png") }).sorted(),
              names.count >= 9 else { return nil }
        var photos: [(String, RGBImage)] = []
        for n in names {
            photos.append((String(n.dropLast(4)), ImagePreprocessing.centerCrop(try PNGFile.read(dir + "/" + n), size: size)))
        }
        let (name, first) = photos[0]
        var flipped = first
        for y in 0..<first.height {
            for x in 0..<first.width {
                for c in 0..<3 { flipped.pixels[(y * first.width + x) * 3 + c] = first.pixels[(y * first.width + first.width - 1 - x) * 3 + c] }
            }
        }
        photos.append((name + "-flipped", flipped))
        return photos
    }

    @Test func efficientNetLite0RealPhotos() throws {
        let weights = ModelStore.path("models/efficientnet_lite0.safetensors")
        guard FileManager.default.fileExists(atPath: weights) else {
            TestEnvironment.skip("efficientNetLite0RealPhotos", because: "\(weights) is absent (run scripts/fetch-models)")
            return
        }
        // Without OpenCL under CI: fails here, before loading anything (the CPU would take minutes).
        guard let backend = Backends.evidence() else { return }
        let batch = 10
        let model = try ModelLoader.load("efficientnet_lite0", batch: batch)
        guard let photos = try Self.realPhotos(size: model.preprocessing.inputSize) else {
            TestEnvironment.skip("efficientNetLite0RealPhotos", because: "photos missing in \(ModelStore.path("photos")) (run scripts/fetch-models)")
            return
        }
        #expect(photos.count >= 10)
        // OpenCL (PoCL on the 2-core CI machine) is preferred: the CPU reference backend is several times slower here.
        let attacker = try AdversarialAttacker(model: model, backend: backend)
        let targets = try ["flamingo", "goldfish", "toaster"].map { try model.classIndex($0) }
        var jobs: [AttackJob] = []
        for (name, image) in photos { for t in targets { jobs.append(AttackJob(name: name, original: image, target: t)) } }
        #expect(jobs.count >= 30)
        let dir = try Self.tempDir("lite0")
        defer { try? FileManager.default.removeItem(at: dir) }
        let clock = ContinuousClock()
        var results: [AttackKind: [AdversarialExample]] = [:]
        for kind in [AttackKind.amTV, .pgd] {
            let config = AttackConfig.defaults(kind)
            let t0 = clock.now
            let outcomes = try attacker.run(jobs, config: config)
            let elapsed = Self.seconds(clock.now - t0)
            // Written as PNG and re-read: the metrics are those of the files.
            var written: [RGBImage] = []
            for (i, o) in outcomes.enumerated() {
                let path = dir.appendingPathComponent("\(kind.rawValue)-\(i).png").path
                try PNGFile.write(o.adversarial, to: path)
                written.append(try PNGFile.read(path))
            }
            let examples = try AdversarialEvaluation.measure(attacker: attacker, jobs: jobs, outcomes: outcomes, adversarial: written,
                                                             config: config)
            results[kind] = examples
            let s = AttackSummary(attack: kind.rawValue, examples: examples)
            print("amgpu-test: efficientnet_lite0 \(kind.rawValue) (\(backend.name), batch \(batch)): \(jobs.count) examples in \(String(format: "%.1f", elapsed)) s; success \(s.successRate) (before \(s.successRateBefore)); mean TV·255 \(s.metrics["tv255"]?.mean ?? .nan), SSIM \(s.metrics["ssim"]?.mean ?? .nan), PSNR \(s.metrics["psnr"]?.mean ?? .nan), steps \(s.metrics["steps"]?.mean ?? .nan)")
            for e in examples {
                #expect(e.linf255 <= 8, "\(kind.rawValue) \(e.image): L∞ \(e.linf255)/255 > 8/255 after quantization")
                #expect(e.steps <= 40)
            }
            #expect(s.successRate > s.successRateBefore, "\(kind.rawValue): success \(s.successRate) not above \(s.successRateBefore)")
            if kind == .amTV {
                #expect(s.successRate >= 0.95, "AM+TV at ε = 8/255: targeted success \(s.successRate) < 95 % (after PNG quantization)")
                let failures = examples.filter { !$0.success }.map { "\($0.image)→\($0.target?.name ?? "?")" }
                if !failures.isEmpty { print("amgpu-test: AM+TV failures: \(failures.joined(separator: ", "))") }
            }
        }
        let am = AttackSummary(attack: "am-tv", examples: results[.amTV] ?? [])
        let pgd = AttackSummary(attack: "pgd", examples: results[.pgd] ?? [])
        // TV at the same ε and success: the mean over the examples both attacks turned into the target.
        let both = jobs.indices.filter { (results[.amTV]?[$0].success ?? false) && (results[.pgd]?[$0].success ?? false) }
        #expect(both.count >= jobs.count * 9 / 10, "only \(both.count) of \(jobs.count) examples succeeded with both attacks")
        let tvAM = both.map { results[.amTV]?[$0].tv255 ?? .infinity }.reduce(0, +) / Double(max(both.count, 1))
        let tvPGD = both.map { results[.pgd]?[$0].tv255 ?? 0 }.reduce(0, +) / Double(max(both.count, 1))
        print("amgpu-test: mean TV·255 over the \(both.count) examples both attacks won: AM+TV \(tvAM), PGD \(tvPGD)")
        #expect(tvAM < tvPGD, "mean TV·255: AM+TV \(tvAM) is not below PGD \(tvPGD)")
        print(AdversarialEvaluation.table([am, pgd]), terminator: "")
    }
}
