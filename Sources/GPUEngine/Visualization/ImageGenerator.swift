import Foundation

/// The persistent half of the image side: parameters P → image X (the parameterization) and the
/// weighted regularizer penalty R(X) [N], as one graph built once and run every step on one backend
/// (its constants, e.g. the Fourier basis, are uploaded once).
///
/// Per step: `forward(P)` gives X and R; after the model and the transforms have produced
/// dJ/dX, `backward(pass, gradImage:, penaltySeed:)` returns d(Σ gradImage·X + penaltySeed·Σ_n R_n)/dP.
/// To maximize J − R use `penaltySeed: -1` with `AdamConfig.maximize = true`.
public final class ImageGenerator: @unchecked Sendable {
    public let parameterization: ImageParameterization
    public let batch: Int
    public let height: Int
    public let width: Int
    public let graph: Graph
    public let parameters: ValueID
    public let image: ValueID
    /// Σ weight·regularizer per image, [N]; nil without regularizers.
    public let penalty: ValueID?
    public let backend: any Backend
    private let executor: Executor

    public init(parameterization: ImageParameterization, batch: Int, height: Int, width: Int,
                regularizers: [Regularizer] = [], backend: any Backend) throws {
        let g = Graph()
        let p = try g.addInput("parameters", shape: parameterization.parameterShape(batch: batch, height: height, width: width))
        let x = try parameterization.addToGraph(g, parameters: p, height: height, width: width)
        self.parameterization = parameterization
        self.batch = batch
        self.height = height
        self.width = width
        graph = g
        parameters = p
        image = x
        penalty = try addRegularizers(regularizers, to: g, image: x)
        self.backend = backend
        executor = Executor(graph: g, backend: backend)
    }

    /// The shape P must have.
    public var parameterShape: [Int] { graph.shape(of: parameters) }

    public struct Pass: @unchecked Sendable {
        /// X [N, 3, H, W] in [0, 1].
        public let image: Tensor
        /// Σ weight·regularizer per image [N], or nil.
        public let penalty: Tensor?
        let pass: ForwardPass
    }

    /// Computes X (and the penalty) from P; with `differentiable`, keeps what `backward` needs.
    public func forward(_ parameters: Tensor, differentiable: Bool = true) throws -> Pass {
        var targets = [image]
        if let penalty { targets.append(penalty) }
        let pass = try executor.forward(feeds: [self.parameters: parameters], targets: targets,
                                        differentiable: differentiable ? [self.parameters] : [])
        return Pass(image: try pass.value(image), penalty: try penalty.map { try pass.value($0) }, pass: pass)
    }

    /// d/dP of Σ gradImage ⊙ X + penaltySeed · Σ_n penalty_n. `gradImage` may be nil (penalty only).
    public func backward(_ pass: Pass, gradImage: Tensor?, penaltySeed: Float = -1) throws -> Tensor {
        guard pass.pass.differentiable.contains(parameters) else {
            throw EngineError.invalidGraph("this image pass was run without differentiable: true")
        }
        var seeds: [ValueID: Tensor] = [:]
        if let gradImage { seeds[image] = gradImage }
        if let penalty, penaltySeed != 0 { seeds[penalty] = try backend.full([batch], value: penaltySeed) }
        if image == parameters, let gradImage, penalty == nil || penaltySeed == 0 { return gradImage }
        guard !seeds.isEmpty else { return try backend.zeros(parameterShape) }
        // The image and the parameters are one value for pixel + clamp: the executor adds both seeds' paths.
        let grads = try executor.backward(pass.pass, seeds: seeds)
        guard let g = grads[parameters] else { throw EngineError.invalidGraph("no gradient reached the image parameters") }
        return g
    }

    /// The image for `parameters` without keeping anything for backward (e.g. to save a PNG).
    public func render(_ parameters: Tensor) throws -> HostTensor {
        try backend.download(forward(parameters, differentiable: false).image)
    }
}
