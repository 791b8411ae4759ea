import ArgumentParser
import Foundation
import GPUEngine

struct Tune: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Tune the GEMM kernels for an OpenCL device and cache the winner ($AMGPU_HOME/tuning).",
        discussion: """
        For the models' GEMMs (matmuls forward and backward, pointwise convolutions forward and backward-to-input, \
        and the other non-depthwise convolutions — stems, 3×3s, patch embeddings — as implicit GEMMs, forward and \
        backward-to-input; shapes from the builders, no model file read), each candidate parameter set of the \
        GPU-style kernels (matmul_tiled and the implicit-GEMM convolutions) is built, checked against a reference \
        on small awkward problems (a wrong or unbuildable candidate is rejected and the reason printed), then \
        timed beside the CPU-style kernels, and each problem's time is printed for both. The fastest is \
        written to $AMGPU_HOME/tuning/<platform>-<device>-<driver>.json (atomically), which every later amgpu run \
        on that device reads at start-up; without that file the shipped default for the kind of device is used.
        """)

    @OptionGroup var deviceOptions: DeviceOptions

    @Option(name: .long, help: "Comma-separated architectures whose GEMM shapes are tuned (default: resnetv2_50,vit_base_patch16_224).",
            transform: { try parseList($0, flag: "--models") { $0.isEmpty ? nil : $0 } })
    var models = ["resnetv2_50", "vit_base_patch16_224"]

    @Option(name: .long, help: "Comma-separated batch sizes, each ≥ 1 (default: 1,8).",
            transform: { try parseList($0, flag: "--batch") { Int($0).flatMap { $0 >= 1 ? $0 : nil } } })
    var batch = [1, 8]

    @Flag(name: .long, help: "Six candidates, the eight largest GEMMs and the largest convolution of each kind (window, stride, direction) (meant to finish within 4 minutes on a GPU).")
    var quick = false

    @Option(name: .long, help: "Timed repetitions per problem and candidate (median).")
    var reps = 3

    @Option(name: .customLong("max-gflop"), help: "Leave out problems above this many GFLOP per run (slow devices, dry runs).")
    var maxGFLOP: Double?

    @Flag(name: .customLong("no-write"), help: "Report only; do not write the tuning file.")
    var noWrite = false

    @Flag(name: .long, help: "Print the report as JSON on stdout (progress lines go to stderr).")
    var json = false

    func validate() throws {
        for m in models where !ModelBuilders.architectures.contains(m) {
            throw ValidationError("--models: unknown architecture '\(m)' (known: \(ModelBuilders.architectures.joined(separator: ", ")))")
        }
        guard reps >= 1 else { throw ValidationError("--reps must be ≥ 1 (got \(reps))") }
        if let maxGFLOP, !(maxGFLOP > 0) { throw ValidationError("--max-gflop must be a positive number (got \(maxGFLOP))") }
    }

    func run() throws {
        try runReportingErrors {
            guard let backend = try deviceOptions.makeBackend() as? OpenCLBackend else {
                throw EngineError.wrongBackend("amgpu tune tunes OpenCL kernels: choose an OpenCL device with --device opencl or opencl:N (see `amgpu devices`)")
            }
            var request = TuneRequest()
            request.models = models
            request.batches = batch
            request.quick = quick
            request.reps = reps
            request.maxGFLOP = maxGFLOP
            request.write = !noWrite
            let json = self.json
            let report = try Tuner.run(request, on: backend) { line in
                if json { printError(line) } else { print(line) }
            }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(report), as: UTF8.self))
            }
        }
    }
}
