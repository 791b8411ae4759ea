import ArgumentParser
import Foundation
import GPUEngine

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmark operators at the real models' shapes and whole AM steps (random weights).",
        discussion: """
        Operator rows: GFLOP/s and GB/s forward and backward (to the activations) for ViT-B/16 matmuls, \
        ResNet-50 and depthwise convolutions, attention at 197 tokens. AM-step rows: forward to the objective, \
        backward to the input image, one Adam step on the image (plain pixels, no transforms), per model, \
        batch and objective (logit: class 0; layer: channel 0 of ResNet stage 3 / ViT block 6). \
        First-launch time (kernel compile) is reported apart from the median of --reps steady-state runs; \
        peak memory is the process's peak RSS. scripts/bench runs this beside the PyTorch peer.
        """)

    @OptionGroup var deviceOptions: DeviceOptions

    @Option(name: .long, help: "Comma-separated architectures for the AM-step rows (default: resnetv2_50,resnet50,vit_base_patch16_224).",
            transform: { try parseList($0, flag: "--models") { $0.isEmpty ? nil : $0 } })
    var models = ["resnetv2_50", "resnet50", "vit_base_patch16_224"]

    @Option(name: .long, help: "Comma-separated batch sizes for the AM-step rows, each ≥ 1 (default: 1,8).",
            transform: { try parseList($0, flag: "--batch") { Int($0).flatMap { $0 >= 1 ? $0 : nil } } })
    var batch = [1, 8]

    @Option(name: .long, help: ArgumentHelp("Comma-separated objectives: \(BenchObjective.allCases.map(\.rawValue).joined(separator: ", ")) (default: both).", valueName: "objectives"),
            completion: .list(BenchObjective.allCases.map(\.rawValue)),
            transform: { try parseList($0, flag: "--objectives") { BenchObjective(rawValue: $0) } })
    var objectives: [BenchObjective] = BenchObjective.allCases

    @Option(name: .long, help: "Timed repetitions per row (median reported).")
    var reps = 5

    @Option(name: .long, help: "Untimed repetitions after the first launch.")
    var warmup = 1

    @Option(name: .long, help: "What to run.")
    var only: BenchSection = .all

    @Option(name: .long, help: "Only the operator rows whose name contains this text (e.g. attention).")
    var kernels: String?

    @Flag(name: .long, help: "Record per-kernel time of one extra AM step (OpenCL: device time per kernel; --device cpu: wall time per CPU entry point).")
    var profile = false

    @Flag(name: .long, help: "Print the report as JSON on stdout (progress lines go to stderr).")
    var json = false

    func validate() throws {
        for m in models where !ModelBuilders.architectures.contains(m) {
            throw ValidationError("--models: unknown architecture '\(m)' (known: \(ModelBuilders.architectures.joined(separator: ", ")))")
        }
        guard reps >= 1, warmup >= 0 else { throw ValidationError("--reps must be ≥ 1 and --warmup ≥ 0 (got \(reps), \(warmup))") }
    }

    func run() throws {
        try runReportingErrors {
            var options = BenchmarkOptions()
            options.models = models
            options.batches = batch
            options.objectives = objectives
            options.reps = reps
            options.warmup = warmup
            switch only {
            case .all: break
            case .kernels: options.steps = false
            case .steps: options.kernels = false
            }
            options.profile = profile
            options.kernelFilter = kernels
            let backend = try deviceOptions.makeBackend()
            let json = self.json
            let profileRows = backend is CPUBackend ? Int.max : 12
            if !json {
                print("amgpu bench on \(backend.name)")
                if let cl = backend as? OpenCLBackend { print("attention kernels: \(cl.attentionChoice) (\(cl.attentionChoiceSource))") }
            }
            let report = try Benchmark(backend: backend, options: options).run { line in
                if json { printError(line) } else { print(line) }
            }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(report), as: UTF8.self))
            } else {
                for row in report.steps {
                    guard let profile = row.profile else { continue }
                    print("profile \(row.model) b=\(row.batch) \(row.objective): " + profile.prefix(profileRows).map {
                        String(format: "%@ %.1f ms (%d)", $0.kernel, $0.ms, $0.launches)
                    }.joined(separator: ", "))
                }
                print(String(format: "peak RSS %.0f MB", report.peakRSSMB))
                if let device = report.peakDeviceMB, let created = report.buffersCreated, let reused = report.buffersReused {
                    print(String(format: "OpenCL buffers: peak %.0f MB held by tensors; %d created, %d reused from the pool", device, created, reused))
                }
            }
        }
    }
}
