import Foundation

/// One activation-maximization run: the objective, every image-side hyperparameter, the seed.
public struct VisualizationRequest: Codable, Sendable {
    public var objective: Objective
    public var preset: AMPreset
    public var seed: UInt64
    /// Images rendered together (each with its own unit).
    public var images: Int
    /// Warm start for units behind a flat activation (see `WarmStart`); nil = off.
    public var warmStart: WarmStart?

    public init(objective: Objective, preset: AMPreset, seed: UInt64, images: Int, warmStart: WarmStart? = .standard) {
        self.objective = objective
        self.preset = preset
        self.seed = seed
        self.images = images
        self.warmStart = warmStart
    }
}

/// Progress of a run, reported every few steps.
public struct VisualizationProgress: Sendable {
    public var step: Int
    public var steps: Int
    /// Mean objective over the batch (under this step's transforms).
    public var objective: Float
    public var elapsedSeconds: Double
}

/// What a run produced.
public struct VisualizationResult: Sendable {
    /// The images [N, 3, S, S] in [0, 1].
    public var images: HostTensor
    /// The objective of each image evaluated without transforms (resized to the model input only).
    public var finalScores: [Float]
    /// For class objectives: the softmax probability of the target class on the clean image.
    public var targetProbabilities: [Float]?
    /// The objective's mean over natural photos, per image's unit (nil when no photos were given).
    public var naturalMean: [Float]?
    public var stepsRun: Int
    public var seconds: Double
    public var history: [(step: Int, objective: Float)]
    /// MaCo's transparency (attribution) map: Σ_steps |dJ/dX| [N, 3, S, S], the gradient of the
    /// objective with respect to the image, accumulated on the device; nil for other parameterizations.
    public var transparency: HostTensor?
    /// Per image: what the warm start did (nil when none applied).
    public var warmStart: [WarmStartRecord]? = nil
}

/// Runs activation maximization: parameters → image → random transforms (N copies) → model → objective,
/// backward to the parameters, Adam ascent on the device. The model must have been loaded with batch
/// `images × preset.transforms.copies`; copies of image b occupy batch slots b·copies ..< (b+1)·copies.
public final class Visualizer {
    public let model: Model
    public let backend: any Backend
    public let request: VisualizationRequest
    let evaluator: ObjectiveEvaluator
    let copies: Int
    let warmPlan: WarmStartPlan?

    public init(model: Model, request: VisualizationRequest, backend: any Backend) throws {
        // The patch grid (see `TransformConfig`) is opt-in: the run uses exactly the preset it is given. It was the
        // ViT default for one day (2026-12-02): it freed the depth grid's stuck units but cost the CLS-direction
        // runs of docs/results.md §1 their class specificity (docs/logs/vit-depth-grid-2026-12-02c.md).
        try request.preset.validate()
        let copies = max(1, request.preset.transforms.copies)
        self.copies = copies
        guard model.batchSize == request.images * copies else {
            throw EngineError.invalidInput("the model was loaded with batch \(model.batchSize), but \(request.images) images × \(copies) copies are needed")
        }
        // Expand per-image units to per-slot units.
        var objective = request.objective
        for t in objective.terms.indices {
            let units = objective.terms[t].units
            guard units.count == 1 || units.count == request.images else {
                throw EngineError.invalidInput("\(units.count) units for \(request.images) images")
            }
            if units.count == request.images && copies > 1 {
                objective.terms[t].units = units.flatMap { Array(repeating: $0, count: copies) }
            }
            // One direction per image ([images, width]) → one per batch slot.
            if objective.terms[t].kind == .direction, copies > 1, request.images > 1, let dir = objective.terms[t].direction,
               dir.count % request.images == 0 {
                let width = dir.count / request.images
                let shape = model.graph.shape(of: try model.resolve(layer: objective.terms[t].layer))
                let layerWidth = shape.count == 4 ? shape[1] : (shape.last ?? 0)
                if width == layerWidth {
                    objective.terms[t].direction = (0..<request.images).flatMap { b in
                        Array(repeating: Array(dir[(b * width)..<((b + 1) * width)]), count: copies).flatMap { $0 }
                    }
                }
            }
        }
        self.model = model
        self.backend = backend
        self.request = request
        evaluator = try ObjectiveEvaluator(model: model, objective: objective, backend: backend)
        warmPlan = try WarmStartPlan.make(request.warmStart, objective: objective, model: model, steps: request.preset.steps, backend: backend)
    }

    var inputSpec: ModelInputSpec {
        let p = model.preprocessing
        let shape = model.graph.shape(of: model.input)
        return ModelInputSpec(height: shape[2], width: shape[3], mean: p.mean, std: p.std)
    }

    /// Runs all steps. `progress` is called every `reportEvery` steps and at the end. With
    /// `snapshotEvery` = k > 0, `snapshot(step, images [N, 3, S, S])` receives the initial images
    /// (step 0), the images after every k-th step and after the last; those are the only extra
    /// device→host copies.
    public func run(reportEvery: Int = 10, naturalImages: [RGBImage] = [], snapshotEvery: Int = 0,
                    snapshot: (Int, HostTensor) throws -> Void = { _, _ in },
                    progress: (VisualizationProgress) -> Void = { _ in }) throws -> VisualizationResult {
        let preset = request.preset
        let n = request.images, size = preset.imageSize
        let start = Date()
        let generator = try ImageGenerator(parameterization: preset.parameterization, batch: n, height: size, width: size,
                                           regularizers: preset.regularizers, backend: backend)
        let parameters = try backend.tensor(preset.parameterization.initialParameters(batch: n, size: size, seed: request.seed))
        var adamConfig = preset.optimizer
        adamConfig.maximize = true
        let adam = try AdamOptimizer(config: adamConfig, parameterShape: generator.parameterShape,
                                     totalSteps: preset.steps, backend: backend)
        let clamp = preset.parameterization.kind == .pixel && preset.parameterization.squash == .clamp
        var history: [(Int, Float)] = []
        var transparency: Tensor? = preset.parameterization.kind == .maco ? try backend.zeros([n, 3, size, size]) : nil
        if snapshotEvery > 0 { try snapshot(0, generator.render(parameters)) }
        // Warm start (see `WarmStart`): per image, while warming[b] the gradient comes from the pre-activation term;
        // after it, the leaky floor on steps where the unit is at or below the threshold; the best step is kept.
        var warming = [Bool](repeating: warmPlan != nil, count: n), warmSteps = [Int](repeating: 0, count: n)
        var warmStart: [Float] = [], warmSwitch = [Float](repeating: 0, count: n), leakySteps = [Int](repeating: 0, count: n)
        var best = [Float](repeating: -.infinity, count: n), bestStep = [Int](repeating: -1, count: n)
        // The best step's parameters stay on the device: best ← best ⊙ (1 − m) + parameters ⊙ m with m[b] ∈ {0, 1}
        // (exact for finite values), one small mask upload per improving step and no download in the loop.
        var bestParameters: Tensor? = nil
        let parameterShape = generator.parameterShape
        let maskShape = [n] + [Int](repeating: 1, count: max(parameterShape.count - 1, 0))
        for step in 0..<preset.steps {
            let imagePass = try generator.forward(parameters)
            let pipeline = try TransformPipeline(config: preset.transforms, step: step, totalSteps: preset.steps,
                                                 seed: request.seed, batch: n, imageHeight: size, imageWidth: size,
                                                 model: inputSpec)
            let transformed = try pipeline.forward(imagePass.image, on: backend)
            var warmResult: (scores: Tensor, inputGradient: Tensor?)? = nil
            if let plan = warmPlan {
                // The gate of this step comes from this step's own unit values (one model forward, see
                // `ObjectiveEvaluator.evaluate(_:gateFrom:)`): an image warms while its unit is at or below the
                // threshold and it has warm-up steps left; once above, it switches for good. A unit above the
                // threshold at the first step is never warmed. After the warm-up, an image whose unit is at or below
                // the threshold ascends the leaky blend (gate α/(1+α)); otherwise gate 0, the plain objective.
                var values: [Float] = []
                let r = try plan.evaluator.evaluate(transformed.output) { observed in
                    values = WarmStartPlan.perImage(observed[0], images: n)
                    if step == 0 { warmStart = values }
                    var gate = [Float](repeating: 0, count: n)
                    for b in 0..<n {
                        if warming[b] {
                            if values[b] > plan.setting.threshold || warmSteps[b] >= plan.maxSteps {
                                warming[b] = false
                                warmSwitch[b] = values[b]
                            } else {
                                warmSteps[b] += 1
                                gate[b] = 1
                            }
                        }
                        if !warming[b] && plan.setting.leak > 0 && values[b] <= plan.setting.threshold {
                            gate[b] = plan.setting.leakyGate
                            leakySteps[b] += 1
                        }
                    }
                    return gate.flatMap { [Float](repeating: $0, count: copies) }
                }
                warmResult = (r.scores, r.inputGradient)
                // Keep the best: the parameters of the step with the highest unit value (before this step's update).
                if plan.setting.keepBest, values.indices.contains(where: { values[$0] > best[$0] }) {
                    var mask = [Float](repeating: 0, count: n)
                    for b in 0..<n where values[b] > best[b] {
                        best[b] = values[b]
                        bestStep[b] = step
                        mask[b] = 1
                    }
                    bestParameters = try Self.select(mask, shape: maskShape, from: parameters, else: bestParameters, on: backend)
                }
            }
            let (scores, gradInput) = try warmResult ?? evaluator.evaluate(transformed.output)
            guard let gradInput else { throw EngineError.invalidGraph("no gradient reached the model input") }
            // The scores are downloaded (a host round trip that waits for the device) only on
            // reporting steps; the other steps stay queued on the device.
            let reporting = step % reportEvery == 0 || step == preset.steps - 1
            var mean: Float = 0
            if reporting {
                let scoreValues = try backend.download(scores).values
                mean = scoreValues.reduce(0, +) / Float(max(scoreValues.count, 1))
                guard mean.isFinite else {
                    throw EngineError.numerical("the objective became \(mean) at step \(step + 1): the learning rate (\(preset.optimizer.learningRate)) is likely too high or a regularizer weight too large; lower \(SettingName.learningRate.mention) or check the model's inputs")
                }
            }
            let gradImage = try pipeline.backward(transformed, gradOutput: gradInput)
            if let accumulated = transparency {
                transparency = try backend.run(Binary(.add), accumulated, backend.run(Unary(.abs), gradImage))
            }
            let gradParameters = try generator.backward(imagePass, gradImage: gradImage, penaltySeed: -1)
            try adam.step(parameters: parameters, gradient: gradParameters)
            if clamp { try clampInPlace(parameters, on: backend) }
            if preset.blurAmount > 0 { try blurInPlace(parameters, amount: preset.blurAmount, on: backend) }
            if reporting {
                try requireFinite(parameters, "the image parameters", step: step + 1, on: backend)
                history.append((step + 1, mean))
                progress(VisualizationProgress(step: step + 1, steps: preset.steps, objective: mean,
                                               elapsedSeconds: Date().timeIntervalSince(start)))
            }
            if snapshotEvery > 0 && ((step + 1) % snapshotEvery == 0 || step == preset.steps - 1) {
                try snapshot(step + 1, generator.render(parameters))
            }
        }
        var images = try generator.render(parameters)
        var clean = try evaluateClean(images)
        // Keep the best (see `WarmStart.keepBest`): an image whose last clean objective is at or below the threshold is
        // replaced by the image of its best step when that one scores higher without transforms.
        var returnedStep = [Int?](repeating: nil, count: n), lastObjective = [Float?](repeating: nil, count: n)
        if let plan = warmPlan, plan.setting.keepBest,
           let saved = bestParameters,
           (0..<n).contains(where: { clean.scores[$0] <= plan.setting.threshold && bestStep[$0] >= 0 }) {
            let low = (0..<n).map { b -> Float in clean.scores[b] <= plan.setting.threshold && bestStep[b] >= 0 ? 1 : 0 }
            let candidates = try generator.render(Self.select(low, shape: maskShape, from: saved, else: parameters, on: backend))
            let candidateClean = try evaluateClean(candidates)
            let plane = images.values.count / n
            var replaced = false
            for b in 0..<n where low[b] == 1 && candidateClean.scores[b] > clean.scores[b] {
                images.values.replaceSubrange((b * plane)..<((b + 1) * plane), with: candidates.values[(b * plane)..<((b + 1) * plane)])
                returnedStep[b] = bestStep[b]
                lastObjective[b] = clean.scores[b]
                replaced = true
            }
            // Scores of the images returned (per image independent of its batch companions, except diversity).
            if replaced { clean = try evaluateClean(images) }
        }
        let natural = naturalImages.isEmpty ? nil : try naturalMean(naturalImages)
        var result = VisualizationResult(images: images, finalScores: clean.scores, targetProbabilities: clean.probabilities,
                                         naturalMean: natural, stepsRun: preset.steps,
                                         seconds: Date().timeIntervalSince(start), history: history,
                                         transparency: try transparency.map { try backend.download($0) })
        if let plan = warmPlan, !warmStart.isEmpty {
            result.warmStart = (0..<n).map { b in
                let switched = warming[b] ? warmStart[b] : warmSwitch[b]   // still warming at the end: the start value
                return WarmStartRecord(preActivationLayer: plan.preActivationLayer, activation: plan.activation,
                                       threshold: plan.setting.threshold, steps: warmSteps[b], valueAtStart: warmStart[b],
                                       valueAtSwitch: switched, reachedThreshold: !warming[b] && switched > plan.setting.threshold,
                                       leakySteps: leakySteps[b], returnedStep: returnedStep[b], lastImageObjective: lastObjective[b])
            }
        }
        return result
    }

    /// Per image b (the first axis): `a`'s slice where mask[b] = 1, `b`'s where mask[b] = 0, as a ⊙ m + b ⊙ (1 − m) on the
    /// device (exact: a product with 1 or 0 and a sum with ±0); `a` alone when `b` is nil (then mask must be all 1 for the
    /// result to be meaningful where mask is 0: those entries are 0).
    static func select(_ mask: [Float], shape: [Int], from a: Tensor, else b: Tensor?, on backend: any Backend) throws -> Tensor {
        let m = try backend.tensor(HostTensor(shape: shape, values: mask))
        let picked = try backend.run(Binary(.mul), a, m)
        guard let b else { return picked }
        let keep = try backend.tensor(HostTensor(shape: shape, values: mask.map { 1 - $0 }))
        return try backend.run(Binary(.add), picked, backend.run(Binary(.mul), b, keep))
    }

    /// Model input for images [N, 3, S, S] without random transforms: resized and normalized,
    /// each image repeated `copies` times to fill the batch.
    func cleanInput(_ images: HostTensor) throws -> Tensor {
        let clean = TransformConfig(copies: copies)
        let pipeline = try TransformPipeline(config: clean, step: 0, totalSteps: 1, seed: 0, batch: images.shape[0],
                                             imageHeight: images.shape[2], imageWidth: images.shape[3], model: inputSpec)
        return try pipeline.forward(backend.tensor(images), on: backend, differentiable: false).output
    }

    /// The objective per image on the clean images, and the target class probability for logit objectives.
    public func evaluateClean(_ images: HostTensor) throws -> (scores: [Float], probabilities: [Float]?) {
        let input = try cleanInput(images)
        let scores = try backend.download(evaluator.evaluate(input, gradient: false).scores).values
        let perImage = stride(from: 0, to: scores.count, by: copies).map { scores[$0] }
        var probabilities: [Float]? = nil
        if let term = request.objective.terms.first, term.kind == .logit || term.kind == .probability,
           try model.resolve(layer: term.layer) == model.output {
            let logits = try backend.download(evaluator.activations(input, layers: [model.output])[model.output]!)
            let k = logits.shape.last ?? 1
            probabilities = (0..<request.images).map { b in
                let row = Array(logits.values[(b * copies * k)..<(b * copies * k + k)])
                let unit = term.units.count == 1 ? term.units[0] : term.units[b]
                return softmax(row)[unit]
            }
        }
        return (perImage, probabilities)
    }

    /// Mean objective per image's unit over natural photos (centre-cropped and normalized).
    public func naturalMean(_ photos: [RGBImage]) throws -> [Float] {
        var sums = [Double](repeating: 0, count: request.images)
        let shape = model.graph.shape(of: model.input)
        let plane = 3 * shape[2] * shape[3]
        for photo in photos {
            let one = ImagePreprocessing.modelInput(photo, model.preprocessing)
            var batch = [Float]()
            batch.reserveCapacity(model.batchSize * plane)
            for _ in 0..<model.batchSize { batch.append(contentsOf: one.values) }
            let input = try backend.tensor(HostTensor(shape: shape, values: batch))
            let scores = try backend.download(evaluator.evaluate(input, gradient: false).scores).values
            for b in 0..<request.images { sums[b] += Double(scores[b * copies]) }
        }
        return sums.map { Float($0 / Double(photos.count)) }
    }
}

extension Model {
    /// The patch size P of a ViT: the side of the first convolution on 3 input channels whose kernel equals its stride
    /// (P×P, stride P, no padding, no dilation — the patch embedding); nil when the graph has none.
    public var patchSize: Int? {
        for node in graph.nodes {
            guard let conv = node.op as? Conv2D, node.inputs.count >= 2 else { continue }
            let w = graph.shape(of: node.inputs[1])
            guard w.count == 4, w[1] == 3, w[2] == w[3], w[2] > 1, conv.strides == [w[2], w[2]], conv.groups == 1,
                  conv.dilations.allSatisfy({ $0 == 1 }),
                  conv.pads.top == 0, conv.pads.left == 0, conv.pads.bottom == 0, conv.pads.right == 0 else { continue }
            return w[2]
        }
        return nil
    }
}

/// Tiles images [N, 3, S, S] into one RGB image with `columns` columns and a 2-pixel white gap.
public func imageGrid(_ images: HostTensor, columns: Int) throws -> RGBImage {
    let n = images.shape[0], h = images.shape[2], w = images.shape[3]
    let cols = max(1, min(columns, n)), rows = (n + cols - 1) / cols
    let gap = 2
    let width = cols * w + (cols - 1) * gap, height = rows * h + (rows - 1) * gap
    var pixels = [UInt8](repeating: 255, count: width * height * 3)
    for i in 0..<n {
        let tile = try RGBImage(tensor: images, index: i)
        let x0 = (i % cols) * (w + gap), y0 = (i / cols) * (h + gap)
        for y in 0..<h {
            let src = y * w * 3, dst = ((y0 + y) * width + x0) * 3
            pixels.replaceSubrange(dst..<(dst + w * 3), with: tile.pixels[src..<(src + w * 3)])
        }
    }
    return RGBImage(width: width, height: height, pixels: pixels)
}
