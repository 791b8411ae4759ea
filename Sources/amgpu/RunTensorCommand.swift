import ArgumentParser
import Foundation
import GPUEngine

/// Hidden diagnostic: the model on a raw input tensor (.npy), for parity checks against other
/// frameworks (scripts/onnx-zoo). Not listed in `amgpu --help`.
struct RunTensor: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run-tensor",
        abstract: "Run a model on a preprocessed input tensor (.npy); optionally write the input gradient of Σ seed ⊙ output.",
        shouldDisplay: false)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var deviceOptions: DeviceOptions

    @Option(name: .long, help: "The input tensor (.npy, float32/float64, shaped like the model input).")
    var input: String

    @Option(name: .long, help: "Where to write the output (.npy).")
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
            let model = try modelOptions.load(batch: x.shape.first ?? 1)
            let backend = try deviceOptions.makeBackend()
            let result = try TensorCheck.run(model: model, input: x, seed: r, backend: backend)
            try NPYFile.write(result.output, to: out)
            if let g = result.inputGradient, let gradOut { try NPYFile.write(g, to: gradOut) }
            print("wrote \(out): \(result.output.shape)" + (gradOut.map { ", \($0)" } ?? ""))
        }
    }
}
