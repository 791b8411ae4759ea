import Foundation

/// One example to attack.
public struct AttackJob: Sendable {
    /// A label for reports and file names (e.g. the photo's stem).
    public var name: String
    /// x₀: the photo at the model's input size (already centre-cropped), 8-bit.
    public var original: RGBImage
    /// The target class; nil for an untargeted attack (away from the clean top-1 class).
    public var target: Int?
    /// The guide image of a feature attack (same size as `original`).
    public var guide: RGBImage?

    public init(name: String, original: RGBImage, target: Int?, guide: RGBImage? = nil) {
        self.name = name
        self.original = original
        self.target = target
        self.guide = guide
    }
}

/// What an attack produced for one job, before metrics.
public struct AttackOutcome: Sendable {
    /// The 8-bit adversarial image (the constraint holds exactly; see `Perturbation.quantize`).
    public var adversarial: RGBImage
    /// Gradient steps taken.
    public var steps: Int
    /// Wall-clock seconds attributed to this example (a batched step's time is split evenly over the
    /// examples active in it).
    public var seconds: Double
    /// True when the run stopped early because the margin was reached.
    public var stoppedEarly: Bool
    /// The clean top-1 class (the class an untargeted attack moves away from); −1 for a feature attack
    /// on a model without a classifier.
    public var originalClass: Int
}

/// Where a run stands, for progress displays.
public struct AttackProgress: Sendable {
    /// Examples finished so far, of `total`.
    public var finished: Int
    public var total: Int
    /// Batched model steps so far.
    public var iteration: Int
    public var elapsedSeconds: Double
    /// A line about the example that just finished; nil for the update after each batched step.
    public var message: String?
}

/// Runs attacks on a model: the model runs forward and backward on `backend` (a batch of
/// `model.batchSize` images per call); δ, its projection, TV and the step rules are host-side
/// (150k values per 224² image: negligible next to the network).
///
/// Per step and image, with s = the model score for the loss, g = ∂J/∂x:
///   J(δ) = s(x₀ + δ) − λ·TV(δ) − μ·mean(δ²)
///   δ ← Π(δ + step(g)),  Π = projection onto the ε-ball of the norm, then onto x₀ + δ ∈ [0, 1].
/// The model sees x_norm = (x − mean_c)/std_c, so ∂J/∂x = ∂J/∂x_norm / std_c.
/// Examples run in the batch's slots; when one finishes (early stop or last step) the next job takes its slot.
public final class AdversarialAttacker: @unchecked Sendable {
    public let model: Model
    public let backend: any Backend
    let executor: Executor
    /// Called after every batched step and once per finished example.
    public var progress: ((AttackProgress) -> Void)?

    public init(model: Model, backend: any Backend) throws {
        let shape = model.graph.shape(of: model.input)
        guard shape.count == 4, shape[1] == 3 else {
            throw EngineError.invalidInput("\(model.name) takes input \(shape); attacks need an RGB image input [B, 3, H, W]")
        }
        self.model = model
        self.backend = backend
        try model.graph.checkFits(on: backend, what: "\(model.name) at batch \(model.batchSize)")
        executor = Executor(graph: model.graph, backend: backend)
    }

    public var batch: Int { model.batchSize }
    public var height: Int { model.graph.shape(of: model.input)[2] }
    public var width: Int { model.graph.shape(of: model.input)[3] }
    var plane: Int { height * width }

    /// True when the model output is a vector of class scores [B, K], K > 1.
    public var hasClassifier: Bool {
        let s = model.graph.shape(of: model.output)
        return s.count == 2 && s[1] > 1
    }

    // MARK: model passes

    /// The normalized batch for planar images in [0, 1]; missing slots are filled with zeros.
    func modelInput(_ images: [[Float]]) -> HostTensor {
        let p = model.preprocessing
        var values = [Float](repeating: 0, count: batch * 3 * plane)
        for (b, image) in images.enumerated() where b < batch {
            for c in 0..<3 {
                let base = (b * 3 + c) * plane
                let mean = p.mean.count == 3 ? p.mean[c] : 0, std = p.std.count == 3 ? p.std[c] : 1
                for i in 0..<plane { values[base + i] = (image[c * plane + i] - mean) / std }
            }
        }
        return HostTensor(shape: [batch, 3, height, width], values: values)
    }

    /// Runs the model on up to `batch` planar images; returns the value of `layer` per image (flattened)
    /// and, with `differentiable`, the pass to call `inputGradients` on.
    func forward(_ images: [[Float]], layer: ValueID, differentiable: Bool) throws -> (rows: [[Float]], pass: ForwardPass) {
        guard images.count <= batch else {
            throw EngineError.invalidInput("\(images.count) images for a model built with batch \(batch)")
        }
        let input = try backend.tensor(modelInput(images))
        let pass = try executor.forward(feeds: [model.input: input], targets: [layer],
                                        differentiable: differentiable ? [model.input] : [])
        let out = try backend.download(pass.value(layer))
        let width = out.count / max(batch, 1)
        let rows = (0..<images.count).map { Array(out.values[($0 * width)..<(($0 + 1) * width)]) }
        return (rows, pass)
    }

    /// ∂(Σ_b seed_b · layer_b)/∂x for each of `count` images, planar, in [0, 1] image units.
    func inputGradients(_ pass: ForwardPass, layer: ValueID, seeds: [[Float]], count: Int) throws -> [[Float]] {
        let shape = model.graph.shape(of: layer)
        let rowWidth = shape.dropFirst().reduce(1, *)
        var seed = [Float](repeating: 0, count: batch * rowWidth)
        for (b, row) in seeds.enumerated() where b < batch && row.count == rowWidth {
            seed.replaceSubrange((b * rowWidth)..<((b + 1) * rowWidth), with: row)
        }
        let grads = try executor.backward(pass, seeds: [layer: backend.tensor(HostTensor(shape: shape, values: seed))])
        guard let g = grads[model.input] else { throw EngineError.invalidGraph("no gradient reached the model input") }
        let host = try backend.download(g)
        let p = model.preprocessing
        return (0..<count).map { b in
            var out = [Float](repeating: 0, count: 3 * plane)
            for c in 0..<3 {
                let inv = 1 / (p.std.count == 3 ? p.std[c] : 1)
                let base = (b * 3 + c) * plane
                for i in 0..<plane { out[c * plane + i] = host.values[base + i] * inv }
            }
            return out
        }
    }

    /// The values of `layer` (default: the output) for any number of images at the model's input size
    /// (no crop or resize: an adversarial PNG is classified exactly as written), in batches.
    public func evaluate(_ images: [RGBImage], layer: String = "output") throws -> [[Float]] {
        let id = try model.resolve(layer: layer)
        var rows: [[Float]] = []
        var start = 0
        while start < images.count {
            let chunk = Array(images[start..<min(start + batch, images.count)])
            for image in chunk where image.width != width || image.height != height {
                throw EngineError.invalidInput("an image of \(image.width)×\(image.height) was given to \(model.name), which takes \(width)×\(height)")
            }
            rows += try forward(chunk.map(Perturbation.planar), layer: id, differentiable: false).rows
            start += batch
        }
        return rows
    }

    // MARK: the objective

    /// The model part of J for one image: its value, ∂value/∂row, and the success margin
    /// (nil for feature attacks).
    struct Score {
        var value: Double
        var seed: [Float]
        var margin: Double?
    }

    /// - classifier, targeted, logit: z_t; targeted, ce: log softmax(z)_t;
    ///   untargeted, logit: max_{j≠y} z_j − z_y; untargeted, ce: −log softmax(z)_y;
    ///   margin: z_t − max_{j≠t} z_j (targeted) or max_{j≠y} z_j − z_y (untargeted).
    /// - feature (guide features g): −mean((f − g)²) over the layer's values.
    static func score(_ row: [Float], config: AttackConfig, target: Int?, originalClass: Int, guide: [Float]?) -> Score {
        if config.kind == .feature, let g = guide {
            let n = Float(max(row.count, 1))
            var value = 0.0
            var seed = [Float](repeating: 0, count: row.count)
            for i in row.indices {
                let d = row[i] - g[i]
                value -= Double(d) * Double(d)
                seed[i] = -2 * d / n
            }
            return Score(value: value / Double(n), seed: seed, margin: nil)
        }
        let k = config.targeted ? (target ?? originalClass) : originalClass
        var bestOther = -Float.infinity, bestOtherIndex = 0
        for (j, z) in row.enumerated() where j != k && z > bestOther { bestOther = z; bestOtherIndex = j }
        var seed = [Float](repeating: 0, count: row.count)
        let value: Double
        let zk = k >= 0 && k < row.count ? row[k] : 0
        let margin = config.targeted ? Double(zk - bestOther) : Double(bestOther - zk)
        switch (config.loss, config.targeted) {
        case (.logit, true):
            value = Double(zk)
            if k >= 0 && k < row.count { seed[k] = 1 }
        case (.logit, false):
            value = Double(bestOther - zk)
            seed[bestOtherIndex] = 1
            if k >= 0 && k < row.count { seed[k] = -1 }
        case (.ce, _):
            let p = softmax(row)
            let logp = Double(zk) - logSumExp(row)
            value = config.targeted ? logp : -logp
            let sign: Float = config.targeted ? 1 : -1
            for j in row.indices { seed[j] = sign * ((j == k ? 1 : 0) - p[j]) }
        }
        return Score(value: value, seed: seed, margin: margin)
    }

    static func logSumExp(_ x: [Float]) -> Double {
        guard let m = x.max() else { return 0 }
        return Double(m) + Foundation.log(x.reduce(0.0) { $0 + Foundation.exp(Double($1 - m)) })
    }

    /// Penalties of J and their gradient: λ·TV(δ) + μ·mean(δ²) (value), and −∂/∂δ of it added to `gradient`.
    func applyPenalties(_ delta: [Float], config: AttackConfig, gradient: inout [Float]) -> Double {
        var value = 0.0
        if config.tvWeight > 0 {
            value += config.tvWeight * Perturbation.totalVariation(delta, height: height, width: width)
            Perturbation.addTotalVariationGradient(delta, height: height, width: width, scale: -Float(config.tvWeight), into: &gradient)
        }
        if config.l2Weight > 0 {
            let n = Double(delta.count)
            var s = 0.0
            let k = Float(-2 * config.l2Weight / n)
            for i in delta.indices {
                s += Double(delta[i]) * Double(delta[i])
                gradient[i] += k * delta[i]
            }
            value += config.l2Weight * s / n
        }
        return value
    }

    /// J(δ) = score(x₀ + δ) − λ·TV(δ) − μ·mean(δ²) and ∂J/∂δ for up to `batch` images (planar [3, H, W]),
    /// exactly as the attack loop computes them (no quantization). For gradient checks.
    public func objective(originals: [[Float]], deltas: [[Float]], targets: [Int?], config: AttackConfig,
                          guides: [[Float]]? = nil) throws -> (values: [Double], gradients: [[Float]]) {
        let layer = try targetLayer(config)
        let xs = zip(originals, deltas).map { o, d in zip(o, d).map { $0 + $1 } }
        let (rows, pass) = try forward(xs, layer: layer, differentiable: true)
        var values: [Double] = [], seeds: [[Float]] = []
        for (b, row) in rows.enumerated() {
            let s = Self.score(row, config: config, target: targets[b], originalClass: targets[b] ?? 0, guide: guides?[b])
            values.append(s.value)
            seeds.append(s.seed)
        }
        var grads = try inputGradients(pass, layer: layer, seeds: seeds, count: rows.count)
        for b in grads.indices { values[b] -= applyPenalties(deltas[b], config: config, gradient: &grads[b]) }
        return (values, grads)
    }

    func targetLayer(_ config: AttackConfig) throws -> ValueID {
        if config.kind == .feature {
            guard let layer = config.layer else {
                throw EngineError.invalidInput("a feature attack needs --layer (see `amgpu layers \(model.name)`)")
            }
            let id = try model.resolve(layer: layer)
            guard model.graph.shape(of: id).first == batch else {
                throw EngineError.invalidInput("layer '\(layer)' has shape \(model.graph.shape(of: id)); a feature attack needs a value with the batch first")
            }
            return id
        }
        guard hasClassifier else {
            throw EngineError.invalidInput("\(model.name) has no classifier (output \(model.graph.shape(of: model.output))): use --attack feature with --guide and --layer")
        }
        return model.output
    }

    // MARK: the attack loop

    struct Slot {
        var job: Int
        var x0: [Float]
        var delta: [Float]
        var m: [Float] = []
        var v: [Float] = []
        var step = 0
        var seconds = 0.0
        var bestMargin = -Double.infinity
        var best: RGBImage?
        var current: RGBImage?
    }

    /// Runs `config` on every job (in the batch's slots) and returns one outcome per job, in order.
    /// The clean top-1 class of each job (what an untargeted attack moves away from) is computed first.
    public func run(_ jobs: [AttackJob], config: AttackConfig) throws -> [AttackOutcome] {
        try config.validate()
        let layer = try targetLayer(config)
        for job in jobs {
            guard job.original.width == width, job.original.height == height else {
                throw EngineError.invalidInput("'\(job.name)' is \(job.original.width)×\(job.original.height); \(model.name) takes \(width)×\(height) (centre-crop it first)")
            }
            if config.targeted && config.kind != .feature && job.target == nil {
                throw EngineError.invalidInput("'\(job.name)': a targeted attack needs a target class")
            }
        }
        // Clean predictions (the class an untargeted attack leaves) and guide features.
        var originalClasses = [Int](repeating: -1, count: jobs.count)
        if hasClassifier {
            let logits = try evaluate(jobs.map(\.original))
            for (i, row) in logits.enumerated() { originalClasses[i] = row.indices.max { row[$0] < row[$1] } ?? 0 }
        }
        var guides: [[Float]?] = Array(repeating: nil, count: jobs.count)
        if config.kind == .feature {
            let guideImages = try jobs.map { job -> RGBImage in
                guard let g = job.guide else { throw EngineError.invalidInput("'\(job.name)': a feature attack needs a guide image (--guide)") }
                guard g.width == width, g.height == height else {
                    throw EngineError.invalidInput("the guide of '\(job.name)' is \(g.width)×\(g.height); \(model.name) takes \(width)×\(height)")
                }
                return g
            }
            let rows = try evaluate(guideImages, layer: config.layer ?? "output")
            for i in rows.indices { guides[i] = rows[i] }
        }

        var outcomes = [AttackOutcome?](repeating: nil, count: jobs.count)
        var pending = Array(jobs.indices.reversed())
        var slots = [Slot?](repeating: nil, count: batch)
        let clock = ContinuousClock()
        let runStart = clock.now
        var iteration = 0
        var finished = 0

        func start(_ j: Int) -> Slot {
            let x0 = Perturbation.planar(jobs[j].original)
            var delta = [Float](repeating: 0, count: x0.count)
            if config.randomStart {
                var rng = RandomSource(seed: config.seed, stream: [UInt64(j)])
                switch config.norm {
                case .linf:
                    for i in delta.indices { delta[i] = Float(rng.uniform(-config.eps, config.eps)) }
                case .l2:
                    // torchattacks PGDL2: a Gaussian direction scaled to a radius uniform in [0, ε].
                    for i in delta.indices { delta[i] = Float(rng.normal()) }
                    let n = Perturbation.l2Norm(delta)
                    let r = rng.uniform() * config.eps
                    if n > 0 { for i in delta.indices { delta[i] = Float(Double(delta[i]) / n * r) } }
                }
                Perturbation.project(&delta, original: x0, norm: config.norm, eps: config.eps)
            }
            var slot = Slot(job: j, x0: x0, delta: delta)
            if config.stepRule == .adam {
                slot.m = [Float](repeating: 0, count: x0.count)
                slot.v = slot.m
            }
            return slot
        }

        func finish(_ b: Int, image: RGBImage, early: Bool) {
            guard let s = slots[b] else { return }
            outcomes[s.job] = AttackOutcome(adversarial: image, steps: s.step, seconds: s.seconds, stoppedEarly: early,
                                            originalClass: originalClasses[s.job])
            slots[b] = nil
            finished += 1
            let target = jobs[s.job].target.map { " → " + model.className($0) } ?? ""
            progress?(AttackProgress(finished: finished, total: jobs.count, iteration: iteration, elapsedSeconds: seconds(clock.now - runStart),
                                     message: "[\(finished)/\(jobs.count)] \(jobs[s.job].name)\(target): \(s.step) steps, \(String(format: "%.2f", s.seconds)) s\(early ? " (stopped early)" : "")"))
        }

        while true {
            for b in 0..<batch where slots[b] == nil {
                guard let j = pending.popLast() else { break }
                slots[b] = start(j)
            }
            let active = (0..<batch).filter { slots[$0] != nil }
            if active.isEmpty { break }
            let t0 = clock.now
            // The images the model sees this step.
            var inputs = [[Float]](repeating: [], count: batch)
            for b in active {
                guard var s = slots[b] else { continue }
                let x = zip(s.x0, s.delta).map { $0 + $1 }
                if config.quantizedForward {
                    let q = try Perturbation.quantize(x, original: jobs[s.job].original, norm: config.norm, eps: config.eps)
                    s.current = q
                    inputs[b] = Perturbation.planar(q)
                    slots[b] = s
                } else {
                    inputs[b] = x
                }
            }
            let filler = inputs[active[0]]
            for b in 0..<batch where inputs[b].isEmpty { inputs[b] = filler }
            let (rows, pass) = try forward(inputs, layer: layer, differentiable: true)
            var seeds = [[Float]](repeating: [], count: batch)
            var stepping: [Int] = []
            var finishing: [(Int, RGBImage, Bool)] = []
            for b in active {
                guard var s = slots[b] else { continue }
                let sc = Self.score(rows[b], config: config, target: jobs[s.job].target, originalClass: originalClasses[s.job],
                                    guide: guides[s.job])
                if config.quantizedForward, let current = s.current {
                    let m = sc.margin ?? sc.value
                    if m > s.bestMargin { s.bestMargin = m; s.best = current }
                }
                slots[b] = s
                let reached = config.earlyStop && (sc.margin.map { $0 >= config.margin } ?? false)
                if reached || s.step >= config.steps {
                    let x = zip(s.x0, s.delta).map { $0 + $1 }
                    let last = try s.current ?? Perturbation.quantize(x, original: jobs[s.job].original, norm: config.norm, eps: config.eps)
                    finishing.append((b, reached ? last : (s.best ?? last), reached))
                } else {
                    seeds[b] = sc.seed
                    stepping.append(b)
                }
            }
            if !stepping.isEmpty {
                let grads = try inputGradients(pass, layer: layer, seeds: seeds, count: batch)
                for b in stepping {
                    guard var s = slots[b] else { continue }
                    var g = grads[b]
                    _ = applyPenalties(s.delta, config: config, gradient: &g)
                    step(&s, gradient: g, config: config)
                    slots[b] = s
                }
            }
            let elapsed = seconds(clock.now - t0)
            for b in active { slots[b]?.seconds += elapsed / Double(active.count) }
            for (b, image, early) in finishing { finish(b, image: image, early: early) }
            // Attacks without early stop end right after their last step (no extra forward).
            for b in stepping {
                guard let s = slots[b], s.step >= config.steps, !config.earlyStop else { continue }
                let x = zip(s.x0, s.delta).map { $0 + $1 }
                finish(b, image: try Perturbation.quantize(x, original: jobs[s.job].original, norm: config.norm, eps: config.eps), early: false)
            }
            iteration += 1
            progress?(AttackProgress(finished: finished, total: jobs.count, iteration: iteration,
                                     elapsedSeconds: seconds(clock.now - runStart), message: nil))
        }
        return try outcomes.enumerated().map { i, o in
            guard let o else { throw EngineError.invalidGraph("attack on '\(jobs[i].name)' produced no result") }
            return o
        }
    }

    /// One step of the step rule on δ (ascent on J), then the projection.
    func step(_ s: inout Slot, gradient g: [Float], config: AttackConfig) {
        let a = Float(config.alpha)
        switch config.stepRule {
        case .sign:
            for i in s.delta.indices { s.delta[i] += a * Perturbation.signum(g[i]) }
        case .normalized:
            let n = Float(Perturbation.l2Norm(g) + 1e-10)
            for i in s.delta.indices { s.delta[i] += a * g[i] / n }
        case .adam:
            let b1: Float = 0.9, b2: Float = 0.999, eps: Float = 1e-8
            let t = Float(s.step + 1)
            let c1 = 1 - Foundation.pow(b1, t), c2 = (1 - Foundation.pow(b2, t)).squareRoot()
            for i in s.delta.indices {
                s.m[i] = b1 * s.m[i] + (1 - b1) * g[i]
                s.v[i] = b2 * s.v[i] + (1 - b2) * g[i] * g[i]
                s.delta[i] += a / c1 * s.m[i] / (s.v[i].squareRoot() / c2 + eps)
            }
        }
        Perturbation.project(&s.delta, original: s.x0, norm: config.norm, eps: config.eps)
        s.step += 1
    }

    func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }
}
