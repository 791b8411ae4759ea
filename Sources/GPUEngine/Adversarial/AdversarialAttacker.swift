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

/// Runs attacks on a model. Everything per step stays on `backend`: δ of every example is a device
/// tensor, fed through an `AttackGraph` (x → (x − mean)/std, penalties on δ) into the model (a batch of
/// `model.batchSize` images per call); the step rules, the projection and the L∞ quantization are
/// `AttackKernels`, Adam is the AM engine's `AdamOptimizer`. Only the class scores (or the feature
/// layer's values) come to the host each step, for the loss seed and the early-stop test.
///
/// Per step and image, with s = the model score for the loss, g = ∂J/∂δ:
///   J(δ) = s(x₀ + δ) − λ·TV(δ) − μ·mean(δ²)
///   δ ← Π(δ + step(g)),  Π = projection onto the ε-ball of the norm, then onto x₀ + δ ∈ [0, 1].
/// With `quantizedForward` the model sees the 8-bit image of x₀ + δ and g passes straight through.
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
    /// The shape of one example's image or δ on the device.
    var exampleShape: [Int] { [1, 3, height, width] }
    var batchShape: [Int] { [batch, 3, height, width] }

    /// True when the model output is a vector of class scores [B, K], K > 1.
    public var hasClassifier: Bool {
        let s = model.graph.shape(of: model.output)
        return s.count == 2 && s[1] > 1
    }

    // MARK: model passes

    /// The normalized batch for planar images in [0, 1] (the model card's preprocessing, as every
    /// classification in amgpu); missing slots are filled with zeros.
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

    /// Runs the model on a normalized input [B, 3, H, W] on the device; returns the value of `layer`
    /// for the first `count` images (flattened) and, with `differentiable`, the pass for `inputGradient`.
    func forward(_ input: Tensor, layer: ValueID, count: Int, differentiable: Bool) throws -> (rows: [[Float]], pass: ForwardPass) {
        let pass = try executor.forward(feeds: [model.input: input], targets: [layer],
                                        differentiable: differentiable ? [model.input] : [])
        let out = try backend.download(pass.value(layer))
        let width = out.count / max(batch, 1)
        let rows = (0..<min(count, batch)).map { Array(out.values[($0 * width)..<(($0 + 1) * width)]) }
        return (rows, pass)
    }

    /// ∂(Σ_b seed_b · layer_b)/∂(model input) [B, 3, H, W] on the device (rows without a seed get 0).
    func inputGradient(_ pass: ForwardPass, layer: ValueID, seeds: [[Float]]) throws -> Tensor {
        let shape = model.graph.shape(of: layer)
        let rowWidth = shape.dropFirst().reduce(1, *)
        var seed = [Float](repeating: 0, count: batch * rowWidth)
        for (b, row) in seeds.enumerated() where b < batch && row.count == rowWidth {
            seed.replaceSubrange((b * rowWidth)..<((b + 1) * rowWidth), with: row)
        }
        let grads = try executor.backward(pass, seeds: [layer: backend.tensor(HostTensor(shape: shape, values: seed))])
        guard let g = grads[model.input] else { throw EngineError.invalidGraph("no gradient reached the model input") }
        return g
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
            let input = try backend.tensor(modelInput(chunk.map(Perturbation.planar)))
            rows += try forward(input, layer: id, count: chunk.count, differentiable: false).rows
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

    /// The attack's image-side graph for `config` (normalization and penalties).
    func attackGraph(_ config: AttackConfig) throws -> AttackGraph {
        try AttackGraph(batch: batch, height: height, width: width, preprocessing: model.preprocessing,
                        tvWeight: config.tvWeight, l2Weight: config.l2Weight, backend: backend)
    }

    /// J(δ) = score(x₀ + δ) − λ·TV(δ) − μ·mean(δ²) and ∂J/∂δ for up to `batch` images (planar [3, H, W]),
    /// computed on the device exactly as the attack loop computes them (no quantization). For gradient checks.
    public func objective(originals: [[Float]], deltas: [[Float]], targets: [Int?], config: AttackConfig,
                          guides: [[Float]]? = nil) throws -> (values: [Double], gradients: [[Float]]) {
        let count = originals.count, per = 3 * plane
        guard count == deltas.count, count == targets.count, count <= batch,
              originals.allSatisfy({ $0.count == per }), deltas.allSatisfy({ $0.count == per }) else {
            throw EngineError.invalidInput("objective: \(count) originals, \(deltas.count) perturbations and \(targets.count) targets of \(per) values each for a model built with batch \(batch)")
        }
        let layer = try targetLayer(config)
        let head = try attackGraph(config)
        var x0 = [Float](repeating: 0, count: batch * per), d = x0
        for b in 0..<count {
            x0.replaceSubrange((b * per)..<((b + 1) * per), with: originals[b])
            d.replaceSubrange((b * per)..<((b + 1) * per), with: deltas[b])
        }
        let delta = try backend.tensor(HostTensor(shape: batchShape, values: d))
        let x = try backend.run(Binary(.add), backend.tensor(HostTensor(shape: batchShape, values: x0)), delta)
        let pass = try head.forward(pixels: x, delta: delta, differentiable: true)
        let (rows, modelPass) = try forward(pass.modelInput, layer: layer, count: count, differentiable: true)
        var values: [Double] = [], seeds: [[Float]] = []
        for (b, row) in rows.enumerated() {
            let s = Self.score(row, config: config, target: targets[b], originalClass: targets[b] ?? 0, guide: guides?[b])
            values.append(s.value)
            seeds.append(s.seed)
        }
        let g = try backend.download(head.backward(pass, gradModelInput: inputGradient(modelPass, layer: layer, seeds: seeds)))
        if let penalty = pass.penalty {
            let p = try backend.download(penalty).values
            for b in 0..<count { values[b] -= Double(p[b]) }
        }
        return (values, (0..<count).map { Array(g.values[($0 * per)..<(($0 + 1) * per)]) })
    }

    /// λ·TV(δ) + μ·mean(δ²) for up to `batch` perturbations (planar [3, H, W]), as the attack graph computes it.
    public func penalties(_ deltas: [[Float]], config: AttackConfig) throws -> [Double] {
        let per = 3 * plane
        guard deltas.count <= batch, deltas.allSatisfy({ $0.count == per }) else {
            throw EngineError.invalidInput("penalties: \(deltas.count) perturbations for batch \(batch) of \(per) values each")
        }
        let head = try attackGraph(config)
        var d = [Float](repeating: 0, count: batch * per)
        for b in deltas.indices { d.replaceSubrange((b * per)..<((b + 1) * per), with: deltas[b]) }
        let delta = try backend.tensor(HostTensor(shape: batchShape, values: d))
        guard let penalty = try head.forward(pixels: delta, delta: delta, differentiable: false).penalty else {
            return deltas.map { _ in 0 }
        }
        let p = try backend.download(penalty).values
        return deltas.indices.map { Double(p[$0]) }
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

    // MARK: device slices

    /// Row `b` of a batch tensor [B, 3, H, W] as a new [1, 3, H, W] tensor.
    func slice(_ t: Tensor, _ b: Int) throws -> Tensor {
        let out = try backend.zeros(exampleShape)
        try copyRow(t, b, into: out)
        return out
    }

    /// Copies row `b` of a batch tensor [B, 3, H, W] into a [1, 3, H, W] tensor.
    func copyRow(_ t: Tensor, _ b: Int, into out: Tensor) throws {
        let per = 3 * plane
        try copyStrided(into: out, dstOffset: 0, from: t, srcOffset: b * per,
                        map: IndexMap(dims: [per], strides0: [1], strides1: [1]), on: backend)
    }

    /// Writes a [1, 3, H, W] tensor into row `b` of a batch tensor.
    func store(_ t: Tensor, into batchTensor: Tensor, _ b: Int) throws {
        let per = 3 * plane
        try copyStrided(into: batchTensor, dstOffset: b * per, from: t, srcOffset: 0,
                        map: IndexMap(dims: [per], strides0: [1], strides1: [1]), on: backend)
    }

    /// The 8-bit image whose planar values k/255 `t` [1, 3, H, W] holds (a quantized x).
    func image(ofPixels t: Tensor) throws -> RGBImage {
        let v = try backend.download(t).values
        var pixels = [UInt8](repeating: 0, count: 3 * plane)
        for c in 0..<3 {
            for i in 0..<plane { pixels[i * 3 + c] = UInt8(min(max((v[c * plane + i] * 255).rounded(), 0), 255)) }
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    // MARK: the attack loop

    struct Slot {
        var job: Int
        /// x₀ and δ of the example, [1, 3, H, W] on the backend.
        var x0: Tensor
        var delta: Tensor
        var adam: AdamOptimizer?
        /// This step's ∂J/∂δ of the example, [1, 3, H, W] (reused every step).
        var gradient: Tensor
        var step = 0
        var seconds = 0.0
        var bestMargin = -Double.infinity
        /// The best quantized image so far: on the device (L∞) or on the host (L2, quantized there).
        var best: Tensor?
        var bestImage: RGBImage?
        var currentImage: RGBImage?
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

        let head = try attackGraph(config)
        // The batch's x₀ and δ; rows of empty slots keep their last (valid) values and are ignored.
        let batchX0 = try backend.zeros(batchShape), batchDelta = try backend.zeros(batchShape)
        let per = 3 * plane
        var outcomes = [AttackOutcome?](repeating: nil, count: jobs.count)
        var pending = Array(jobs.indices.reversed())
        var slots = [Slot?](repeating: nil, count: batch)
        let clock = ContinuousClock()
        let runStart = clock.now
        var iteration = 0
        var finished = 0

        func start(_ j: Int, slot b: Int) throws -> Slot {
            let planar = Perturbation.planar(jobs[j].original)
            var delta = [Float](repeating: 0, count: planar.count)
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
            }
            let x0 = try backend.tensor(HostTensor(shape: exampleShape, values: planar))
            let d = try backend.tensor(HostTensor(shape: exampleShape, values: delta))
            if config.randomStart { try AttackKernels.project(d, original: x0, norm: config.norm, eps: config.eps, on: backend) }
            try store(x0, into: batchX0, b)
            var adam: AdamOptimizer? = nil
            if config.stepRule == .adam {
                // PyTorch's Adam defaults with lr α, ascent; one per example (its own step count).
                adam = try AdamOptimizer(config: AdamConfig(learningRate: Float(config.alpha), beta1: 0.9, beta2: 0.999, eps: 1e-8,
                                                            schedule: .constant, maximize: true),
                                         parameterShape: exampleShape, totalSteps: config.steps, backend: backend)
            }
            return Slot(job: j, x0: x0, delta: d, adam: adam, gradient: try backend.zeros(exampleShape))
        }

        /// The 8-bit image of x₀ + δ for a slot (`Perturbation.quantize`, on the host: once per example).
        func quantized(_ s: Slot) throws -> RGBImage {
            let x = try backend.download(backend.run(Binary(.add), s.x0, s.delta)).values
            return try Perturbation.quantize(x, original: jobs[s.job].original, norm: config.norm, eps: config.eps)
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

        let deviceQuantization = config.quantizedForward && config.norm == .linf
        while true {
            for b in 0..<batch where slots[b] == nil {
                guard let j = pending.popLast() else { break }
                slots[b] = try start(j, slot: b)
            }
            let active = (0..<batch).filter { slots[$0] != nil }
            if active.isEmpty { break }
            let t0 = clock.now
            // The images the model sees this step: x = x₀ + δ, or its 8-bit image.
            for b in active { if let s = slots[b] { try store(s.delta, into: batchDelta, b) } }
            var pixels = try backend.run(Binary(.add), batchX0, batchDelta)
            if deviceQuantization {
                pixels = try AttackKernels.quantizeLinf(pixels, original: batchX0, eps: config.eps, on: backend)
            } else if config.quantizedForward {
                // L2: the rounding that keeps ‖q‖₂ ≤ 255·ε is a sort (Perturbation.quantize), done on the host.
                var values = try backend.download(pixels).values
                for b in active {
                    guard var s = slots[b] else { continue }
                    let q = try Perturbation.quantize(Array(values[(b * per)..<((b + 1) * per)]), original: jobs[s.job].original,
                                                      norm: config.norm, eps: config.eps)
                    s.currentImage = q
                    values.replaceSubrange((b * per)..<((b + 1) * per), with: Perturbation.planar(q))
                    slots[b] = s
                }
                pixels = try backend.tensor(HostTensor(shape: batchShape, values: values))
            }
            let headPass = try head.forward(pixels: pixels, delta: batchDelta, differentiable: true)
            let (rows, pass) = try forward(headPass.modelInput, layer: layer, count: batch, differentiable: true)
            var seeds = [[Float]](repeating: [], count: batch)
            var stepping: [Int] = []
            var finishing: [(Int, RGBImage, Bool)] = []
            for b in active {
                guard var s = slots[b] else { continue }
                let sc = Self.score(rows[b], config: config, target: jobs[s.job].target, originalClass: originalClasses[s.job],
                                    guide: guides[s.job])
                if config.quantizedForward {
                    let m = sc.margin ?? sc.value
                    if m > s.bestMargin {
                        s.bestMargin = m
                        if deviceQuantization {
                            if let best = s.best { try copyRow(pixels, b, into: best) } else { s.best = try slice(pixels, b) }
                        } else {
                            s.bestImage = s.currentImage
                        }
                    }
                }
                slots[b] = s
                let reached = config.earlyStop && (sc.margin.map { $0 >= config.margin } ?? false)
                if reached || s.step >= config.steps {
                    let last: RGBImage
                    if deviceQuantization {
                        last = try image(ofPixels: slice(pixels, b))
                    } else if let current = s.currentImage {
                        last = current
                    } else {
                        last = try quantized(s)
                    }
                    let best = try s.best.map(image(ofPixels:)) ?? s.bestImage
                    finishing.append((b, reached ? last : (best ?? last), reached))
                } else {
                    seeds[b] = sc.seed
                    stepping.append(b)
                }
            }
            if !stepping.isEmpty {
                let gradient = try head.backward(headPass, gradModelInput: inputGradient(pass, layer: layer, seeds: seeds))
                for b in stepping {
                    guard var s = slots[b] else { continue }
                    try copyRow(gradient, b, into: s.gradient)
                    try step(&s, gradient: s.gradient, config: config)
                    slots[b] = s
                }
            }
            let elapsed = seconds(clock.now - t0)
            for b in active { slots[b]?.seconds += elapsed / Double(active.count) }
            for (b, image, early) in finishing { finish(b, image: image, early: early) }
            // Attacks without early stop end right after their last step (no extra forward).
            for b in stepping {
                guard let s = slots[b], s.step >= config.steps, !config.earlyStop else { continue }
                finish(b, image: try quantized(s), early: false)
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

    /// One step of the step rule on δ (ascent on J), then the projection; all on the backend.
    func step(_ s: inout Slot, gradient g: Tensor, config: AttackConfig) throws {
        let a = Float(config.alpha)
        switch config.stepRule {
        case .sign:
            try AttackKernels.signStep(s.delta, gradient: g, alpha: a, on: backend)
        case .normalized:
            try AttackKernels.normalizedStep(s.delta, gradient: g, alpha: a, on: backend)
        case .adam:
            guard let adam = s.adam else { throw EngineError.invalidGraph("the Adam step rule has no optimizer state") }
            try adam.step(parameters: s.delta, gradient: g)
        }
        try AttackKernels.project(s.delta, original: s.x0, norm: config.norm, eps: config.eps, on: backend)
        s.step += 1
    }

    func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }
}
