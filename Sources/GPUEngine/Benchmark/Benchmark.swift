import Foundation

/// What `amgpu bench` measures and how often.
public struct BenchmarkOptions: Sendable {
    /// timm architecture names for the AM-step rows (random weights).
    public var models: [String] = ["resnetv2_50", "resnet50", "vit_base_patch16_224"]
    public var batches: [Int] = [1, 8]
    /// `logit` (class 0 of the classifier output) and/or `layer` (mean of channel 0 of an intermediate
    /// layer, forward stopped there: ResNet stage 3 output, ViT block 6).
    public var objectives: [BenchObjective] = [.logit, .layer]
    /// Timed repetitions per row (the median is reported) after `warmup` untimed ones.
    public var reps = 5
    public var warmup = 1
    public var kernels = true
    /// Only the operator rows whose name contains this text (nil: all), e.g. "attention".
    public var kernelFilter: String? = nil
    public var steps = true
    /// Record per-kernel time for one extra AM step (OpenCL: device time, each launch then waits;
    /// CPU backend: wall time per kernel entry point).
    public var profile = false
    /// Wait for a quiet machine before each row's timed samples and retake samples during which other
    /// processes used ≥ `QuietMachine.threshold` cores (up to 2·reps retakes; see `Benchmark.time`).
    /// `AMGPU_BENCH_QUIET=0` turns it off (dry runs on a busy machine).
    public var waitForQuiet = ProcessInfo.processInfo.environment["AMGPU_BENCH_QUIET"] != "0"
    public init() {}
}

/// The two AM objectives of the benchmark.
public enum BenchObjective: String, Codable, Sendable, CaseIterable {
    case logit, layer

    /// The model value the objective reads and the objective term on it.
    func term(for architecture: String) -> ObjectiveTerm {
        switch self {
        case .logit:
            return ObjectiveTerm(kind: .logit, layer: architecture.hasPrefix("resnet") && !architecture.hasPrefix("resnetv2") ? "fc" : "head", units: [0])
        case .layer:
            let layer = architecture.hasPrefix("vit") ? "blocks.5" : architecture.hasPrefix("resnetv2") ? "stages.2" : "layer3"
            return ObjectiveTerm(kind: .channel, layer: layer, units: [0])
        }
    }
}

/// One operator measured forward and backward-to-its-activations.
public struct KernelBenchRow: Codable, Sendable {
    public var name: String
    /// "forward" or "backward".
    public var pass: String
    public var shapes: String
    /// Floating-point operations (2 per multiply-add) of one call.
    public var gflop: Double
    /// Bytes the call must at least read and write (each operand once).
    public var megabytes: Double
    public var firstMs: Double
    public var medianMs: Double
    public var minMs: Double
    public var gflops: Double
    public var gbps: Double
    /// Largest load of other processes (cores) during a kept sample, and how many disturbed samples were retaken.
    public var foreignCores: Double?
    public var retakenSamples: Int?
    /// Median process CPU time (user + system, all threads, ms) per call: unlike wall time it hardly
    /// depends on other processes' load (they do not run on this process's clock).
    public var cpuMs: Double?
}

/// One AM step: forward to the objective's layer, backward to the input image, Adam on the image.
public struct StepBenchRow: Codable, Sendable {
    public var model: String
    public var batch: Int
    public var objective: String
    public var layer: String
    /// The first step: builds and first launches of every kernel (compile), weight upload.
    public var firstStepMs: Double
    public var medianMs: Double
    public var minMs: Double
    public var msPerImage: Double
    public var reps: Int
    /// Largest load of other processes (cores) during a kept sample, and how many disturbed samples were retaken.
    public var foreignCores: Double?
    public var retakenSamples: Int?
    /// Median CPU time (user + sys of the whole process, all threads) per step, ms.
    public var cpuMs: Double?
    /// Per-kernel time of one step (when profiling), largest first: (kernel, launches, ms). OpenCL: device
    /// time per kernel; CPU backend: wall time per entry point (`CPUBackend.kernelTimes`).
    public var profile: [KernelProfileEntry]?
}

public struct KernelProfileEntry: Codable, Sendable {
    public var kernel: String
    public var launches: Int
    public var ms: Double
}

/// Everything one `amgpu bench` run measured.
public struct BenchmarkReport: Codable, Sendable {
    public var backend: String
    public var date: String
    public var host: String
    /// /proc/loadavg's 1-minute load when the run started and ended (other users of the CPU).
    public var loadBefore: Double?
    public var loadAfter: Double?
    public var kernels: [KernelBenchRow] = []
    public var steps: [StepBenchRow] = []
    /// Seconds spent building OpenCL programs (part of the first launches).
    public var programBuildSeconds: Double?
    /// Peak resident memory of the process (MB), device buffers included on a CPU OpenCL device.
    public var peakRSSMB: Double
    /// OpenCL buffers: the most bytes held by tensors at once (MB), and how many `clCreateBuffer`
    /// calls and pool reuses the run made (`CLBufferPool`); nil on the CPU backend.
    public var peakDeviceMB: Double?
    public var buffersCreated: Int?
    public var buffersReused: Int?
}

/// Runs the benchmark: operator rows at the shapes of the real models and AM steps of whole models.
public final class Benchmark {
    public let backend: any Backend
    public let options: BenchmarkOptions
    var rng = RandomSource(seed: 12345)
    /// Where `time` reports its waits for a quiet machine (the `run` log while a run is in progress).
    var progress: (String) -> Void = { _ in }

    public init(backend: any Backend, options: BenchmarkOptions) {
        self.backend = backend
        self.options = options
    }

    /// Runs every row; `log` gets one line per finished row.
    public func run(log: @escaping (String) -> Void = { _ in }) throws -> BenchmarkReport {
        progress = log
        defer { progress = { _ in } }
        var report = BenchmarkReport(backend: backend.name, date: ISO8601DateFormatter().string(from: Date()),
                                     host: Self.hostDescription(), loadBefore: Self.loadAverage(), peakRSSMB: 0)
        if options.kernels {
            for c in Self.kernelCases() where options.kernelFilter.map({ c.name.contains($0) }) ?? true {
                for row in try measure(c) {
                    report.kernels.append(row)
                    log(String(format: "%-28@ %-8@ %8.3f ms (first %8.1f) %7.1f GFLOP/s %6.1f GB/s  %@%@%@",
                               row.name, row.pass, row.medianMs, row.firstMs, row.gflops, row.gbps, row.shapes,
                               row.cpuMs.map { String(format: "  cpu %.3f ms", $0) } ?? "",
                               Self.loadNote(row.foreignCores, row.retakenSamples)))
                }
            }
        }
        if options.steps {
            for model in options.models {
                for batch in options.batches {
                    for row in try measureSteps(model: model, batch: batch) {
                        report.steps.append(row)
                        log(String(format: "%-22@ b=%d %-6@ %9.1f ms/step %8.1f ms/img (first %8.1f ms)%@",
                                   row.model, row.batch, row.objective, row.medianMs, row.msPerImage, row.firstStepMs,
                                   Self.loadNote(row.foreignCores, row.retakenSamples)))
                    }
                }
            }
        }
        if let cl = backend as? OpenCLBackend {
            report.programBuildSeconds = cl.buildSeconds
            let pool = cl.context.pool.statistics
            report.peakDeviceMB = Double(pool.peakLiveBytes) / 1_048_576
            report.buffersCreated = pool.created
            report.buffersReused = pool.reused
        }
        report.loadAfter = Self.loadAverage()
        report.peakRSSMB = Self.peakRSSMB()
        return report
    }

    // MARK: operator rows

    /// One operator case: the op, its input shapes, which inputs get a gradient, and FLOPs.
    struct KernelCase {
        var name: String
        var op: any Operator
        var inputs: [[Int]]
        var needsGrad: [Bool]
        var forwardFlop: Double
        var backwardFlop: Double
    }

    /// Operators at the shapes of ViT-B/16, ResNet-50 and EfficientNet-Lite0 (batch 1).
    static func kernelCases() -> [KernelCase] {
        var cases: [KernelCase] = []
        // ViT-B/16 linear layers: x [197, in] · Wᵀ, W [out, in] (timm layout), backward to x.
        for (label, k, n) in [("qkv", 768, 2304), ("proj", 768, 768), ("fc1", 768, 3072), ("fc2", 3072, 768)] {
            let flop = 2.0 * 197 * Double(k * n)
            cases.append(KernelCase(name: "matmul vit.\(label)", op: MatMul(transposeB: true),
                                    inputs: [[197, k], [n, k], [n]], needsGrad: [true, false, false],
                                    forwardFlop: flop, backwardFlop: flop))
        }
        // ResNet-50 convolutions (stage shapes), backward to the input.
        func conv(_ name: String, cin: Int, cout: Int, size: Int, k: Int, stride: Int = 1, groups: Int = 1) -> KernelCase {
            let out = (size + 2 * (k / 2) - k) / stride + 1
            let flop = 2.0 * Double(cout * out * out) * Double(cin / groups * k * k)
            return KernelCase(name: name, op: Conv2D(strides: [stride, stride], pads: Padding2D(k / 2), groups: groups),
                              inputs: [[1, cin, size, size], [cout, cin / groups, k, k], [cout]],
                              needsGrad: [true, false, false], forwardFlop: flop, backwardFlop: flop)
        }
        cases += [
            conv("conv7x7 s2 3>64 @224", cin: 3, cout: 64, size: 224, k: 7, stride: 2),
            conv("conv1x1 64>256 @56", cin: 64, cout: 256, size: 56, k: 1),
            conv("conv3x3 64>64 @56", cin: 64, cout: 64, size: 56, k: 3),
            conv("conv3x3 128>128 @28", cin: 128, cout: 128, size: 28, k: 3),
            conv("conv3x3 256>256 @14", cin: 256, cout: 256, size: 14, k: 3),
            conv("conv1x1 1024>256 @14", cin: 1024, cout: 256, size: 14, k: 1),
            conv("conv3x3 512>512 @7", cin: 512, cout: 512, size: 7, k: 3),
            conv("dwconv3x3 32 @112", cin: 32, cout: 32, size: 112, k: 3, groups: 32),
            conv("dwconv3x3 144 @56", cin: 144, cout: 144, size: 56, k: 3, groups: 144),
            conv("dwconv5x5 672 @14", cin: 672, cout: 672, size: 14, k: 5, groups: 672),
        ]
        // ViT-B/16 attention at 197 tokens, backward to q, k and v.
        for b in [1, 8] {
            let t = 197, d = 64, h = 12
            let qk = 2.0 * Double(b * h * t * t * d)
            cases.append(KernelCase(name: "attention B\(b) H12 T197 D64", op: Attention(scale: Attention.defaultScale(headDim: d)),
                                    inputs: Array(repeating: [b, h, t, d], count: 3), needsGrad: [true, true, true],
                                    forwardFlop: 2 * qk, backwardFlop: 4 * qk))
        }
        return cases
    }

    func randomTensor(_ shape: [Int], scale: Float = 1) throws -> Tensor {
        let count = shape.reduce(1, *)
        var values = [Float](repeating: 0, count: count)
        for i in values.indices { values[i] = scale * (Float(rng.next() >> 40) / Float(1 << 24) * 2 - 1) }
        return try backend.tensor(HostTensor(shape: shape, values: values))
    }

    /// One row's timing, in ms: the first call, the median and minimum of the kept samples; the largest
    /// foreign load (cores) during a kept sample and the number of retaken samples (nil without /proc).
    struct Timing {
        var first: Double, median: Double, min: Double
        var foreignCores: Double?
        var retaken: Int
        /// Median process CPU time per call (ms) over the kept samples.
        var cpu: Double? = nil
    }

    /// User + system CPU seconds of this process so far (all threads).
    static func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    /// Times `body` once (first call), `warmup` more times untimed, then `reps` samples. With
    /// `waitForQuiet` (quietlib's method, reimplemented): each sample runs `inner` calls so it lasts
    /// ≥ 0.3 s (the load's resolution is one 10 ms tick), waits for a quiet machine first, and a sample
    /// during which other processes used ≥ a quarter core is dropped and retaken after another wait (at
    /// most 2·reps retakes; if every sample stays disturbed the disturbed ones are kept, and the row's
    /// foreign load says so).
    func time(_ body: () throws -> Void) throws -> Timing {
        func once() throws -> Double {
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            try backend.synchronize()
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        }
        let first = try once()
        var fastest = Double.infinity
        for _ in 0..<options.warmup { fastest = Swift.min(fastest, try once()) }
        let reps = max(1, options.reps)
        guard options.waitForQuiet, CPUSnapshot.now() != nil else {
            var samples: [Double] = [], cpu: [Double] = []
            for _ in 0..<reps {
                let c0 = Self.processCPUSeconds()
                samples.append(try once())
                cpu.append((Self.processCPUSeconds() - c0) * 1e3)
            }
            return Timing(first: first, median: median(samples), min: samples.min() ?? 0, foreignCores: nil, retaken: 0,
                          cpu: median(cpu))
        }
        if !fastest.isFinite { fastest = try once() }
        let inner = max(1, Int((300 / max(fastest, 1e-3)).rounded(.up)))
        var clean: [(ms: Double, load: Double, cpu: Double)] = [], disturbed: [(ms: Double, load: Double, cpu: Double)] = []
        QuietMachine.wait(maxWait: 120, log: progress)
        while clean.count < reps && clean.count + disturbed.count < 3 * reps {
            guard let a = CPUSnapshot.now() else { break }
            let c0 = Self.processCPUSeconds()
            var total = 0.0
            for _ in 0..<inner { total += try once() }
            let cpu = (Self.processCPUSeconds() - c0) * 1e3 / Double(inner)
            guard let b = CPUSnapshot.now() else { break }
            let load = a.foreignCores(until: b)
            if load < QuietMachine.threshold {
                clean.append((total / Double(inner), load, cpu))
            } else {
                disturbed.append((total / Double(inner), load, cpu))
                QuietMachine.wait(maxWait: 60, log: progress)
            }
        }
        let kept = clean.count >= reps ? clean : clean + disturbed
        let ms = kept.map(\.ms)
        return Timing(first: first, median: median(ms), min: ms.min() ?? 0, foreignCores: kept.map(\.load).max(),
                      retaken: clean.count >= reps ? disturbed.count : 0, cpu: median(kept.map(\.cpu)))
    }

    func measure(_ c: KernelCase) throws -> [KernelBenchRow] {
        let inputs = try c.inputs.enumerated().map { i, shape in
            try randomTensor(shape, scale: i == 0 ? 1 : 1 / Float(max(1, shape.dropFirst().reduce(1, *))).squareRoot())
        }
        // Inputs without a gradient are weights: graph constants, which the executor marks immutable.
        for (t, grad) in zip(inputs, c.needsGrad) where !grad {
            if case .device(let buffer) = t.storage { buffer.markImmutable() }
        }
        let outShape = try c.op.outputShape(c.inputs)
        let shapes = c.inputs.map { "[" + $0.map(String.init).joined(separator: ",") + "]" }.joined(separator: " ")
        let inBytes = Double(c.inputs.reduce(0) { $0 + $1.reduce(1, *) }) * 4
        let outBytes = Double(outShape.reduce(1, *)) * 4
        var result: OpResult? = nil
        let fwd = try time { result = try c.op.forward(inputs, on: backend) }
        guard let saved = result else { return [] }
        let gradOut = try randomTensor(outShape)
        let uses = c.op.backwardUses(needsGrad: c.needsGrad)
        let context = BackwardContext(gradOutput: gradOut, inputs: zip(inputs, uses.inputs).map { $1 ? $0 : nil },
                                      inputShapes: c.inputs, output: uses.output ? saved.output : nil,
                                      saved: saved.saved, needsGrad: c.needsGrad)
        let bwd = try time { _ = try c.op.backward(context, on: backend) }
        let gradBytes = Double(zip(c.inputs, c.needsGrad).reduce(0) { $0 + ($1.1 ? $1.0.reduce(1, *) : 0) }) * 4
        func row(_ pass: String, _ t: Timing, flop: Double, bytes: Double) -> KernelBenchRow {
            KernelBenchRow(name: c.name, pass: pass, shapes: shapes, gflop: flop / 1e9, megabytes: bytes / 1e6,
                           firstMs: t.first, medianMs: t.median, minMs: t.min,
                           gflops: flop / (t.median * 1e6), gbps: bytes / (t.median * 1e6),
                           foreignCores: t.foreignCores, retakenSamples: t.retaken, cpuMs: t.cpu)
        }
        return [row("forward", fwd, flop: c.forwardFlop, bytes: inBytes + outBytes),
                row("backward", bwd, flop: c.backwardFlop, bytes: inBytes + outBytes + gradBytes)]
    }

    // MARK: AM steps

    /// AM-step rows of one model and batch: plain pixel parameterization (the image tensor itself is the
    /// parameter), no transforms, no normalization — what the PyTorch peer does (scripts/bench).
    func measureSteps(model architecture: String, batch: Int) throws -> [StepBenchRow] {
        let model = try ModelBuilders.build(architecture, weights: .random(seed: 1), batch: batch, imageSize: nil)
        let inputShape = model.graph.shape(of: model.input)
        var rows: [StepBenchRow] = []
        for objective in options.objectives {
            let term = objective.term(for: architecture)
            let evaluator = try ObjectiveEvaluator(model: model, objective: Objective(terms: [term]), backend: backend)
            let image = try randomTensor(inputShape)
            var adamConfig = AdamConfig()
            adamConfig.maximize = true
            let adam = try AdamOptimizer(config: adamConfig, parameterShape: inputShape, totalSteps: 1_000_000, backend: backend)
            func step() throws {
                let (_, grad) = try evaluator.evaluate(image)
                guard let grad else { throw EngineError.invalidGraph("no gradient reached the model input") }
                try adam.step(parameters: image, gradient: grad)
            }
            let t = try time(step)
            var profile: [KernelProfileEntry]? = nil
            if options.profile, let cl = backend as? OpenCLBackend {
                cl.resetKernelTimes()
                cl.profiling = true
                defer { cl.profiling = false }
                try step()
                try backend.synchronize()
                profile = cl.kernelTimes.map { KernelProfileEntry(kernel: $0.key, launches: $0.value.launches, ms: Double($0.value.nanoseconds) / 1e6) }
                    .sorted { $0.ms > $1.ms }
            } else if options.profile, let cpu = backend as? CPUBackend {
                // Wall time per CPU entry point of one step (names with a '.' are parts of their prefix's time).
                cpu.resetKernelTimes()
                cpu.profiling = true
                defer { cpu.profiling = false }
                try step()
                profile = cpu.kernelTimes.map { KernelProfileEntry(kernel: $0.key, launches: $0.value.launches, ms: Double($0.value.nanoseconds) / 1e6) }
                    .sorted { $0.ms > $1.ms }
            }
            rows.append(StepBenchRow(model: architecture, batch: batch, objective: objective.rawValue, layer: term.layer,
                                     firstStepMs: t.first, medianMs: t.median, minMs: t.min, msPerImage: t.median / Double(batch),
                                     reps: max(1, options.reps), foreignCores: t.foreignCores, retakenSamples: t.retaken,
                                     cpuMs: t.cpu, profile: profile))
        }
        return rows
    }

    // MARK: machine

    /// "  [others 0.03 cores, 1 retaken]" for a row (empty when no load was measured).
    static func loadNote(_ cores: Double?, _ retaken: Int?) -> String {
        guard let cores else { return "" }
        return String(format: "  [others %.2f cores%@]", cores, (retaken ?? 0) > 0 ? ", \(retaken ?? 0) retaken" : "")
    }

    static func loadAverage() -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) else { return nil }
        return text.split(separator: " ").first.flatMap { Double($0) }
    }

    static func peakRSSMB() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return Double(usage.ru_maxrss) / 1024
    }

    static func hostDescription() -> String {
        var cpu = "unknown CPU"
        if let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
           let line = info.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
           let name = line.split(separator: ":", maxSplits: 1).last {
            cpu = name.trimmingCharacters(in: .whitespaces)
        }
        return "\(cpu), \(ProcessInfo.processInfo.activeProcessorCount) cores"
    }
}

/// Median of a non-empty array (0 for an empty one).
func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    guard !s.isEmpty else { return 0 }
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

