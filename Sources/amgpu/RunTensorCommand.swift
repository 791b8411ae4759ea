import ArgumentParser
import Foundation
import GPUEngine

/// Hidden diagnostic: the model on a raw input tensor (.npy), for parity checks against other
/// frameworks (scripts/onnx-zoo). Not listed in `amgpu --help`. The input is the engine's NCHW RGB
/// input (normalized, batch 1…256); the output is the pre-softmax logits for graphs ending in
/// Softmax (see `TensorCheck`).
struct RunTensor: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run-tensor",
        abstract: "Run a model on a preprocessed input tensor (.npy); optionally write the input gradient of Σ seed ⊙ output.",
        discussion: "The input is the engine's input, [N, C, H, W] NCHW RGB (or grey), normalized, N = 1…256, whatever the ONNX file's own layout. The output is the model's output as amgpu builds it: for a graph ending in Softmax/LogSoftmax, the pre-softmax logits.",
        shouldDisplay: false)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var deviceOptions: DeviceOptions

    @Option(name: .long, help: "The input tensor (.npy, float32/float64): the engine's NCHW RGB input [N, C, H, W], N = 1…256.")
    var input: String

    @Option(name: .long, help: "Where to write the output (.npy; pre-softmax logits for graphs ending in Softmax).")
    var out: String

    @Option(name: .long, help: "Seed r, shaped like the output (.npy): also write ∇ₓ Σ r ⊙ output.")
    var seed: String?

    @Option(name: .long, help: "Where to write the input gradient (.npy; needs --seed).")
    var gradOut: String?

    func validate() throws {
        if (seed == nil) != (gradOut == nil) { throw ValidationError("--seed and --grad-out go together") }
    }

    func run() throws {
        try runReportingErrors {
            let x = try NPYFile.read(input)
            let r = try seed.map { try NPYFile.read($0) }
            let model = try modelOptions.load(batch: TensorCheck.batch(of: x))
            let backend = try deviceOptions.makeBackend()
            let result = try TensorCheck.run(model: model, input: x, seed: r, backend: backend)
            try NPYFile.write(result.output, to: out)
            if let g = result.inputGradient, let gradOut { try NPYFile.write(g, to: gradOut) }
            print("wrote \(out): \(result.output.shape)" + (gradOut.map { ", \($0)" } ?? ""))
        }
    }
}
