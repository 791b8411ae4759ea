import Foundation

/// The random transforms applied to the image at every step (all off by default), in this order:
///
/// 1. **roll** (Ghiasi `Jitter`): circular shift of every image by (dy, dx), each uniform in
///    [−roll, roll], one draw per step shared by the batch (as `torch.roll` on the batch; `Roll` op).
/// 2. **copies** (Ghiasi `RepeatBatch`): each image repeated `copies` times; model input row
///    n·copies + k is copy k of image n. Every copy draws its own values below. (The copies are
///    made by the warp of step 3, or by the colour map of step 4 when there is no warp.)
/// 3. **geometry** (lucid `standard_transforms`), one `AffineWarp` per step that composes, in lucid's order:
///    pad by `padding` with `paddingValue` → random crop smaller by `jitter` (offsets uniform in
///    [0, jitter]) → scale by a random element of `scales` (size ⌊s·side⌋, as TF) → rotate by a random
///    element of `rotationsDegrees` about the centre (zeros outside) → random crop smaller by
///    `finalJitter` → bilinear resize to the model's input. Resampling happens once, at the end.
///    Without any of these and with equal sizes nothing is added; a pure resize replicates edges.
/// 4. **colour** per copy and channel (Ghiasi `ColorJitter`, `GaussianNoise`):
///    y = (x − m)/s + ε with m = colorShift·U(−1, 1), s = exp(colorScale·U(−1, 1)),
///    ε = noiseStd·(T − 1 − t)/T·N(0, 1) at step t of T (a per-copy, per-channel offset that decays
///    linearly to 0, as Ghiasi's noise), then
/// 5. **normalize** with the model's mean and std: z = (y − μ_c)/σ_c. Steps 4–5 are one
///    `ChannelAffine` op (one kernel; its backward also sums over the copies).
///
/// **Patch grid** (`patchGrid` = P > 0, opt-in; P = the ViT's patch size, `Model.patchSize`): step 3
/// becomes the clean view (the whole image resized to the model input, f = image side / model side image pixels per
/// model pixel) shifted by a whole number k of patches of the model input, x = f·(u + k·P), with no scale and no
/// rotation (scale 1, 0°); k = round((j + j′ − (J + J′)/2)/(f·P)) from the drawn offsets j (jitter, 0…J) and j′ (final
/// jitter, 0…J′), so k = 0 is exactly the clean view and the shifted-in border is the padding value (zeros beyond the
/// padding). Every copy, and the final clean evaluation, sees the picture on the same patch grid. The draws are taken
/// as without it (same random stream). nil or 0 = off.
///
/// Randomness: roll draws from stream (seed, step); copy k of image n from (seed, step, n, k), always
/// in the order jitter x, jitter y, scale, angle, final jitter x, final jitter y, 3 colour shifts,
/// 3 colour scales, 3 noise values — so switching one transform off leaves the others' draws unchanged.
public struct TransformConfig: Codable, Equatable, Sendable {
    public var copies: Int
    public var padding: Int
    public var paddingValue: Float
    public var jitter: Int
    public var scales: [Float]
    public var rotationsDegrees: [Float]
    public var finalJitter: Int
    public var roll: Int
    public var colorShift: Float
    public var colorScale: Float
    public var noiseStd: Float
    /// Patch grid P in model-input pixels (see above); nil = the run's default (the patch size for a ViT, off for a CNN).
    public var patchGrid: Int?

    public init(copies: Int = 1, padding: Int = 0, paddingValue: Float = 0.5, jitter: Int = 0, scales: [Float] = [1],
                rotationsDegrees: [Float] = [0], finalJitter: Int = 0, roll: Int = 0, colorShift: Float = 0,
                colorScale: Float = 0, noiseStd: Float = 0, patchGrid: Int? = nil) {
        self.patchGrid = patchGrid
        self.copies = copies
        self.padding = padding
        self.paddingValue = paddingValue
        self.jitter = jitter
        self.scales = scales
        self.rotationsDegrees = rotationsDegrees
        self.finalJitter = finalJitter
        self.roll = roll
        self.colorShift = colorShift
        self.colorScale = colorScale
        self.noiseStd = noiseStd
    }

    /// No transforms: resize (if needed) and normalize only.
    public static let none = TransformConfig()

    /// lucid's `standard_transforms`: pad 12 (0.5), jitter 8, scale {1 + (i − 5)/50}, rotate −10…10° plus
    /// five extra zeros, jitter 4.
    public static let lucidStandard = TransformConfig(
        padding: 12, paddingValue: 0.5, jitter: 8,
        scales: (0...10).map { 1 + Float($0 - 5) / 50 },
        rotationsDegrees: (-10...10).map { Float($0) } + [0, 0, 0, 0, 0],
        finalJitter: 4)

    /// Ghiasi et al.'s ViT recipe (`experiments/it15/vis35.py`): 8 copies, colour jitter (1, 1),
    /// noise 0.5 decaying, roll ±32.
    public static let ghiasiViT = TransformConfig(copies: 8, roll: 32, colorShift: 1, colorScale: 1, noiseStd: 0.5)

    public func validate() throws {
        guard copies >= 1 else { throw EngineError.invalidAttribute("copies must be ≥ 1, got \(copies)") }
        if let patchGrid, patchGrid < 0 { throw EngineError.invalidAttribute("the patch grid must be ≥ 0 pixels, got \(patchGrid)") }
        guard padding >= 0, jitter >= 0, finalJitter >= 0, roll >= 0 else {
            throw EngineError.invalidAttribute("padding, jitter, final jitter and roll must be ≥ 0")
        }
        guard !scales.isEmpty, scales.allSatisfy({ $0.isFinite && $0 > 0 }) else {
            throw EngineError.invalidAttribute("scales must be a non-empty list of numbers > 0, got \(scales)")
        }
        guard !rotationsDegrees.isEmpty, rotationsDegrees.allSatisfy(\.isFinite) else {
            throw EngineError.invalidAttribute("rotations must be a non-empty list of finite angles, got \(rotationsDegrees)")
        }
        guard paddingValue.isFinite, colorShift.isFinite, colorShift >= 0, colorScale.isFinite, colorScale >= 0,
              noiseStd.isFinite, noiseStd >= 0 else {
            throw EngineError.invalidAttribute("padding value, colour shift/scale and noise std must be finite (and ≥ 0)")
        }
    }

    /// True when step 3 needs a warp beyond a plain resize.
    var hasGeometry: Bool {
        padding > 0 || jitter > 0 || finalJitter > 0
            || (!onPatchGrid && (scales.contains { $0 != 1 } || rotationsDegrees.contains { $0 != 0 }))
    }

    /// True when the geometry is snapped to a patch grid (`patchGrid` > 0).
    var onPatchGrid: Bool { (patchGrid ?? 0) > 0 }

    var hasColor: Bool { colorShift > 0 || colorScale > 0 || noiseStd > 0 }
}

/// What the model expects: input size and per-channel normalization z = (x − mean)/std.
public struct ModelInputSpec: Codable, Equatable, Sendable {
    public var height: Int
    public var width: Int
    public var mean: [Float]
    public var std: [Float]

    public init(height: Int, width: Int, mean: [Float] = [0, 0, 0], std: [Float] = [1, 1, 1]) {
        self.height = height
        self.width = width
        self.mean = mean
        self.std = std
    }

    /// torchvision's ImageNet statistics.
    public static func imageNet(size: Int) -> ModelInputSpec {
        ModelInputSpec(height: size, width: size, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225])
    }

    public func validate() throws {
        guard height >= 1, width >= 1 else { throw EngineError.invalidAttribute("model input size \(height)×\(width) must be ≥ 1") }
        guard mean.count == 3, std.count == 3, mean.allSatisfy(\.isFinite), std.allSatisfy({ $0.isFinite && $0 != 0 }) else {
            throw EngineError.invalidAttribute("model mean/std must be 3 finite values each (std ≠ 0), got \(mean) / \(std)")
        }
    }
}

/// The values drawn for one copy of one image at one step (for logs and tests).
public struct TransformDraw: Sendable, Equatable {
    public var image: Int
    public var copy: Int
    public var jitter: (x: Int, y: Int)
    public var scale: Float
    public var degrees: Float
    public var finalJitter: (x: Int, y: Int)
    public var colorShift: [Float]
    public var colorScale: [Float]
    public var noise: [Float]
    /// The output→input map of this copy's warp (continuous coordinates of the unpadded image).
    public var matrix: AffineMatrix

    public static func == (l: TransformDraw, r: TransformDraw) -> Bool {
        l.image == r.image && l.copy == r.copy && l.jitter == r.jitter && l.scale == r.scale && l.degrees == r.degrees
            && l.finalJitter == r.finalJitter && l.colorShift == r.colorShift && l.colorScale == r.colorScale
            && l.noise == r.noise && l.matrix == r.matrix
    }
}

/// One step's transforms as a graph: image X [N, 3, S, S'] (graph input) → model input
/// [N·copies, 3, H, W]. Build a new pipeline each step (`step` and `seed` fix every random draw).
///
/// ```swift
/// let pipeline = try TransformPipeline(config: .lucidStandard, step: 7, totalSteps: 512, seed: 42,
///                                      batch: 4, imageHeight: 128, imageWidth: 128, model: .imageNet(size: 224))
/// let pass = try pipeline.forward(image, on: backend)        // pass.output: [4, 3, 224, 224]
/// let dImage = try pipeline.backward(pass, gradOutput: dModelInput)
/// ```
public final class TransformPipeline: @unchecked Sendable {
    public let graph: Graph
    /// The graph input X [N, 3, imageHeight, imageWidth].
    public let image: ValueID
    /// The model input [N·copies, 3, model.height, model.width].
    public let output: ValueID
    /// Shift of step 1 (rows, columns), applied as torch.roll.
    public let roll: (y: Int, x: Int)
    /// One entry per (image, copy), image-major.
    public let draws: [TransformDraw]

    public init(config: TransformConfig, step: Int, totalSteps: Int, seed: UInt64, batch: Int,
                imageHeight: Int, imageWidth: Int, model: ModelInputSpec) throws {
        let g = Graph()
        let x = try g.addInput("image", shape: [batch, 3, imageHeight, imageWidth])
        let built = try TransformPipeline.addNodes(to: g, image: x, config: config, step: step, totalSteps: totalSteps,
                                                   seed: seed, model: model)
        graph = g
        image = x
        output = built.output
        roll = built.roll
        draws = built.draws
    }

    /// Adds one step's transforms after `image` [N, 3, H, W] in an existing graph (names start with "`name`.").
    public static func addNodes(to graph: Graph, image: ValueID, config: TransformConfig, step: Int, totalSteps: Int,
                                seed: UInt64, model: ModelInputSpec, name: String = "transform")
        throws -> (output: ValueID, roll: (y: Int, x: Int), draws: [TransformDraw]) {
        try config.validate()
        try model.validate()
        guard totalSteps >= 1, step >= 0 else {
            throw EngineError.invalidAttribute("transform step \(step) of \(totalSteps) steps is out of range")
        }
        let shape = graph.shape(of: image)
        guard shape.count == 4, shape[1] == 3, shape[0] >= 1, shape[2] >= 1, shape[3] >= 1 else {
            throw EngineError.shapeMismatch("transforms need images [N, 3, H, W], got \(shape)")
        }
        let (batch, h, w) = (shape[0], shape[2], shape[3])
        var x = image

        // 1. Roll (shared by the batch).
        var stepRandom = RandomSource(seed: seed, stream: [0x7A11, UInt64(step)])
        let rollY = stepRandom.int(in: -config.roll...config.roll)
        let rollX = stepRandom.int(in: -config.roll...config.roll)
        if rollY % h != 0 || rollX % w != 0 {
            x = try graph.add(Roll(shiftY: rollY, shiftX: rollX), [x], name: "\(name).roll")
        }

        // Draws for every copy.
        let copies = config.copies
        var draws: [TransformDraw] = []
        let decay = Double(max(totalSteps - 1 - step, 0)) / Double(totalSteps)
        for n in 0..<batch {
            for k in 0..<copies {
                var rng = RandomSource(seed: seed, stream: [0x7B22, UInt64(step), UInt64(n), UInt64(k)])
                let jx = rng.int(in: 0...config.jitter), jy = rng.int(in: 0...config.jitter)
                let drawnScale = rng.choice(config.scales) ?? 1
                let drawnDegrees = rng.choice(config.rotationsDegrees) ?? 0
                let scale = config.onPatchGrid ? 1 : drawnScale, degrees = config.onPatchGrid ? 0 : drawnDegrees
                let fjx = rng.int(in: 0...config.finalJitter), fjy = rng.int(in: 0...config.finalJitter)
                let shifts = (0..<3).map { _ in Float(Double(config.colorShift) * rng.uniform(-1, 1)) }
                let scales = (0..<3).map { _ in Float(DeterministicMath.exp(Double(config.colorScale) * rng.uniform(-1, 1))) }
                let noise = (0..<3).map { _ in Float(Double(config.noiseStd) * decay * rng.normal()) }
                let matrix = try geometryMatrix(config: config, imageHeight: h, imageWidth: w, model: model,
                                                jitter: (jx, jy), scale: scale, degrees: degrees, finalJitter: (fjx, fjy))
                draws.append(TransformDraw(image: n, copy: k, jitter: (jx, jy), scale: scale, degrees: degrees,
                                           finalJitter: (fjx, fjy), colorShift: shifts, colorScale: scales, noise: noise,
                                           matrix: matrix))
            }
        }

        // 2–3. Copies and geometry: one warp makes every copy; without geometry the copies are made
        // by the colour map below (after a shared resize, if the sizes differ).
        var pendingCopies = copies
        if config.hasGeometry {
            x = try graph.add(AffineWarp(matrices: draws.map(\.matrix), outputHeight: model.height, outputWidth: model.width,
                                         padding: config.padding, paddingValue: config.paddingValue, border: .constant(0),
                                         copies: copies),
                              [x], name: "\(name).warp")
            pendingCopies = 1
        } else if h != model.height || w != model.width {
            x = try graph.add(AffineWarp.resize(toHeight: model.height, width: model.width, from: h, w), [x],
                              name: "\(name).resize")
        }

        // 4–5. Colour, noise and normalization as z = a·x + b per (row, channel).
        if config.hasColor {
            var a = [Float](repeating: 0, count: draws.count * 3), b = a
            for (r, d) in draws.enumerated() {
                for c in 0..<3 {
                    let s = Double(d.colorScale[c]), sigma = Double(model.std[c])
                    a[r * 3 + c] = Float(1 / (s * sigma))
                    b[r * 3 + c] = Float((Double(d.noise[c]) - Double(d.colorShift[c]) / s - Double(model.mean[c])) / sigma)
                }
            }
            x = try graph.add(ChannelAffine(copies: pendingCopies, scale: a, shift: b), [x], name: "\(name).color")
        } else if model.mean != [0, 0, 0] || model.std != [1, 1, 1] || pendingCopies > 1 {
            let a = (0..<3).map { 1 / model.std[$0] }
            let b = (0..<3).map { -model.mean[$0] / model.std[$0] }
            x = try graph.add(ChannelAffine(copies: pendingCopies, scale: a, shift: b), [x], name: "\(name).normalize")
        }
        return (x, (rollY, rollX), draws)
    }

    /// The output→input map of lucid's chain for one copy (see `TransformConfig`, step 3), in continuous
    /// coordinates of the unpadded image. Throws when a crop would be empty.
    static func geometryMatrix(config: TransformConfig, imageHeight h: Int, imageWidth w: Int, model: ModelInputSpec,
                               jitter: (Int, Int), scale: Float, degrees: Float, finalJitter: (Int, Int)) throws -> AffineMatrix {
        let p = config.padding
        let j1h = h + 2 * p - config.jitter, j1w = w + 2 * p - config.jitter
        let rh = Int((Double(scale) * Double(j1h)).rounded(.down)), rw = Int((Double(scale) * Double(j1w)).rounded(.down))
        let j2h = rh - config.finalJitter, j2w = rw - config.finalJitter
        guard j1h >= 1, j1w >= 1, j2h >= 1, j2w >= 1 else {
            throw EngineError.invalidAttribute("transforms crop a \(h)×\(w) image to nothing (padding \(p), jitter \(config.jitter), scale \(scale), final jitter \(config.finalJitter)); use a larger image or smaller jitter")
        }
        if let grid = config.patchGrid, grid > 0 {
            // Whole patches of the model input on the clean view's scale (see `TransformConfig`, patch grid):
            // x = f·(u + k·P), f = image side / model side, k = round((j + j′ − (J + J′)/2)/(f·P)).
            let fx = Double(w) / Double(model.width), fy = Double(h) / Double(model.height)
            let centre = Double(config.jitter + config.finalJitter) / 2
            let kx = ((Double(jitter.0 + finalJitter.0) - centre) / (fx * Double(grid))).rounded()
            let ky = ((Double(jitter.1 + finalJitter.1) - centre) / (fy * Double(grid))).rounded()
            return AffineMatrix.scaling(fx, fy) * AffineMatrix.translation(kx * Double(grid), ky * Double(grid))
        }
        let radians = Double(degrees) * DeterministicMath.pi / 180
        return AffineMatrix.translation(Double(jitter.0 - p), Double(jitter.1 - p))
            * AffineMatrix.scaling(Double(j1w) / Double(rw), Double(j1h) / Double(rh))
            * AffineMatrix.rotation(radians, aboutX: Double(rw) / 2, y: Double(rh) / 2)
            * AffineMatrix.translation(Double(finalJitter.0), Double(finalJitter.1))
            * AffineMatrix.scaling(Double(j2w) / Double(model.width), Double(j2h) / Double(model.height))
    }

    /// A forward pass of the pipeline (keeps what its backward needs).
    public struct Pass: @unchecked Sendable {
        public let output: Tensor
        let pass: ForwardPass
        let executor: Executor
    }

    /// Runs the transforms on `image` [N, 3, H, W]; with `differentiable`, keeps what `backward` needs.
    public func forward(_ image: Tensor, on backend: any Backend, differentiable: Bool = true) throws -> Pass {
        let executor = Executor(graph: graph, backend: backend)
        let pass = try executor.forward(feeds: [self.image: image], targets: [output],
                                        differentiable: differentiable ? [self.image] : [])
        return Pass(output: try pass.value(output), pass: pass, executor: executor)
    }

    /// dL/dX from dL/d(model input) [N·copies, 3, H, W].
    public func backward(_ pass: Pass, gradOutput: Tensor) throws -> Tensor {
        guard pass.pass.differentiable.contains(image) else {
            throw EngineError.invalidGraph("this transform pass was run without differentiable: true")
        }
        let grads = try pass.executor.backward(pass.pass, seeds: [output: gradOutput])
        guard let g = grads[image] else { throw EngineError.invalidGraph("the transform pipeline produced no image gradient") }
        return g
    }
}

