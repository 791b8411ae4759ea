import Foundation

/// A model run on a raw, already preprocessed input tensor, for parity checks against other
/// frameworks (`amgpu run-tensor`, `scripts/onnx-zoo`): the same pixels reach both engines.
///
/// The input is the engine's input: NCHW RGB (or the model's grey channel), normalized, [N, C, H, W]
/// whatever the ONNX file's own layout (amgpu puts the NHWC/grey conversion in front of the graph).
/// The output is `model.output`: for a graph ending in Softmax/LogSoftmax that is the pre-softmax
/// logits (the importer stops before the final activation), not the file's probabilities.
public enum TensorCheck {
    /// Largest batch `run-tensor` accepts (the model is built for the tensor's batch).
    public static let maxBatch = 256

    /// The batch N of an input tensor [N, …], refused unless 1…`maxBatch` (checked before the
    /// model is built for it).
    public static func batch(of input: HostTensor) throws -> Int {
        guard let n = input.shape.first, input.shape.count >= 2 else {
            throw EngineError.shapeMismatch("the input tensor has shape \(input.shape); write it as [N, C, H, W]")
        }
        guard (1...maxBatch).contains(n) else {
            throw EngineError.invalidInput("the input tensor has a batch of \(n) (shape \(input.shape)); run-tensor takes 1…\(maxBatch) images")
        }
        return n
    }

    /// f(x) for `input` shaped like the model's input and, when `seed` r (shaped like the output)
    /// is given, the input gradient ∇ₓ Σ r ⊙ f(x) (shaped like the input).
    public static func run(model: Model, input: HostTensor, seed: HostTensor?,
                           backend: any Backend) throws -> (output: HostTensor, inputGradient: HostTensor?) {
        let inShape = model.graph.shape(of: model.input), outShape = model.graph.shape(of: model.output)
        guard input.shape == inShape else {
            throw EngineError.shapeMismatch("the input tensor has shape \(input.shape), but \(model.name) takes \(inShape): write the .npy in that shape")
        }
        guard input.values.allSatisfy(\.isFinite) else {
            throw EngineError.invalidInput("the input tensor holds NaN or infinite values")
        }
        if let seed, seed.count != outShape.reduce(1, *) {
            throw EngineError.shapeMismatch("the seed has shape \(seed.shape) (\(seed.count) values), but the output \(outShape) has \(outShape.reduce(1, *))")
        }
        let ex = Executor(graph: model.graph, backend: backend)
        let pass = try ex.forward(feeds: [model.input: backend.tensor(input)], targets: [model.output],
                                  differentiable: seed == nil ? [] : [model.input])
        let output = try backend.download(pass.value(model.output))
        guard let seed else { return (output, nil) }
        let grads = try ex.backward(pass, seeds: [model.output: backend.tensor(HostTensor(shape: outShape, values: seed.values))])
        guard let g = grads[model.input] else {
            throw EngineError.invalidGraph("no gradient reached the input of \(model.name)")
        }
        return (output, try backend.download(g))
    }
}
