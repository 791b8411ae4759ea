import Foundation

/// A convolution the implicit-GEMM kernels run (gemm.cl's `conv2d_forward_tiled`, or
/// `conv2d_backward_input_tiled` when `backward`).
struct ConvProblem: Sendable {
    var geometry: ConvGeometry
    var backward: Bool
}

/// One GEMM a model runs: its strided layout, how many times a step runs it, where it comes from. For a
/// convolution on the implicit-GEMM kernels (`conv` set), `gemm` is its per-(image, group) GEMM shape
/// (M = Cout/G, N = OH·OW, K = Cin/G·kH·kW, batch N·G) — what it costs, not a layout that is launched.
public struct GEMMProblem: Sendable, CustomStringConvertible {
    var gemm: StridedGEMM
    public var count: Int
    public var label: String
    var conv: ConvProblem? = nil
    /// Multiply-adds ×2 per run (a convolution's backward-to-input does as many as its forward).
    public var flop: Double { 2 * Double(gemm.batch) * Double(gemm.m) * Double(gemm.n) * Double(gemm.k) }
    public var description: String {
        if let c = conv {
            let g = c.geometry
            return "\(label): conv \(g.kh)×\(g.kw)/s\(g.sh) \(g.cin)>\(g.cout) @\(g.h)×\(g.w) batch \(g.n)\(g.groups > 1 ? " groups \(g.groups)" : "") \(c.backward ? "backward-to-input" : "forward") ≈ \(gemm.batch)×[\(gemm.m)×\(gemm.k)]·[\(gemm.k)×\(gemm.n)]\(count > 1 ? " ×\(count)" : "")"
        }
        return "\(label): \(gemm.batch)×[\(gemm.m)×\(gemm.k)]·[\(gemm.k)×\(gemm.n)]\(count > 1 ? " ×\(count)" : "")"
    }

    /// A convolution problem (forward or backward-to-input) with its per-(image, group) GEMM shape.
    init(conv g: ConvGeometry, backward: Bool, count: Int, label: String) {
        let k = g.cinG * g.kh * g.kw, p = g.oh * g.ow
        gemm = StridedGEMM(batch: g.n * g.groups, m: g.coutG, n: p, k: k, aBatchStride: 0, aRowStride: k, aColStride: 1,
                           bBatchStride: 0, bRowStride: p, bColStride: 1, cBatchStride: g.coutG * p, biasPerRow: true)
        self.count = count
        self.label = label
        conv = ConvProblem(geometry: g, backward: backward)
    }

    init(gemm: StridedGEMM, count: Int, label: String) {
        self.gemm = gemm
        self.count = count
        self.label = label
    }
}

/// What `amgpu tune` does (see `Tuner.run`).
public struct TuneRequest: Sendable {
    public var models: [String] = ["resnetv2_50", "vit_base_patch16_224"]
    public var batches: [Int] = [1, 8]
    /// Few candidates and the largest problems only (≤ 4 minutes on a GPU).
    public var quick = false
    /// Timed runs per problem and candidate (median), after one untimed run.
    public var reps = 3
    /// Problems above this many GFLOP per run are left out (nil: none) — for slow devices and dry runs.
    public var maxGFLOP: Double?
    /// Write the winner to the device's tuning file.
    public var write = true
    public var directory: URL = TuningStore.directory
    public init() {}
}

/// One candidate's fate: rejected (why) or timed (seconds per step over the problems).
public struct TuneCandidateResult: Codable, Sendable {
    public var candidate: String
    public var rejected: String?
    public var secondsPerStep: Double?
}

/// One problem's time per step (count × median) under the CPU-style kernels and under the fastest valid
/// tiled candidate: for a convolution, conv.cl's direct kernels against the implicit-GEMM ones.
public struct TuneProblemTime: Codable, Sendable {
    public var problem: String
    /// Wall milliseconds per step (count × median).
    public var cpuStyleMs: Double
    public var tiledMs: Double
    /// This process's CPU milliseconds per step (count × mean over the timed runs).
    public var cpuStyleCPUms: Double
    public var tiledCPUms: Double
}

public struct TuneReport: Codable, Sendable {
    public var device: String
    public var problems: [String]
    public var candidates: [TuneCandidateResult]
    public var winner: GEMMChoice
    public var file: String?
    /// Per problem, the CPU-style kernels beside the fastest tiled candidate (empty when none was valid).
    public var perProblem: [TuneProblemTime] = []
}

/// Tunes the GEMM family on one OpenCL device (llm.c's habit at run time: every variant is validated
/// against the reference before it is timed). For the chosen models' GEMMs (matmuls forward and
/// backward-to-A, pointwise convolutions forward and backward-to-input on `matmul_tiled`, and every other
/// non-depthwise convolution — the 7×7 stem, the 3×3s, a ViT's patch embedding — forward and backward-to-input
/// on the implicit-GEMM kernels; shapes from the builders with seeded random weights, no file read), each
/// candidate parameter set is built, checked against a Double reference on small awkward problems in all four
/// operand layouts and against the CPU reference on small strided / dilated / grouped convolutions both ways (a
/// build error or a wrong result rejects it, with the reason logged), then timed on the problems; the CPU-style
/// kernels (`matmul_8x16`, conv.cl) are timed as one more candidate. The fastest total (Σ count × median)
/// wins; the log and the report then list each problem's time under the CPU-style kernels beside the fastest
/// tiled candidate.
public enum Tuner {
    /// The distinct GEMMs of one AM step (forward + backward to the input) of each model and batch.
    public static func problems(models: [String], batches: [Int]) throws -> [GEMMProblem] {
        var found: [StridedGEMM: GEMMProblem] = [:]
        var order: [StridedGEMM] = []
        func add(_ s: StridedGEMM, _ label: String) {
            if found[s] == nil { found[s] = GEMMProblem(gemm: s, count: 0, label: label); order.append(s) }
            found[s]?.count += 1
        }
        // Convolutions on the implicit-GEMM kernels, keyed by geometry and direction.
        var convFound: [String: GEMMProblem] = [:]
        var convOrder: [String] = []
        func addConv(_ g: ConvGeometry, backward: Bool, _ label: String) {
            let key = "\(g.argumentBytes) \(backward)"
            if convFound[key] == nil {
                convFound[key] = GEMMProblem(conv: g, backward: backward, count: 0, label: label)
                convOrder.append(key)
            }
            convFound[key]?.count += 1
        }
        for model in models {
            for batch in batches {
                let built = try ModelBuilders.build(model, weights: .random(seed: 1), batch: batch, imageSize: nil)
                let g = built.graph
                for node in g.nodes {
                    let shapes = node.inputs.map { g.shape(of: $0) }
                    // The builders' ViT patch embedding is a copy and a matmul (below); a ViT imported from ONNX
                    // runs it as a Conv2D (kernel = stride = patch) on the implicit-GEMM kernels: tune that too.
                    if node.op is MatMul, node.name == "patch_embed", shapes.count >= 2, shapes[1].count == 2,
                       let image = g.inputs.first.map({ g.shape(of: $0) }), image.count == 4 {
                        let c = image[1], k = shapes[1][1], d = shapes[1][0]
                        let patch = Int(Double(k / max(c, 1)).squareRoot().rounded())
                        if patch > 0, patch * patch * c == k, image[2] % patch == 0, image[3] % patch == 0 {
                            let cg = ConvGeometry(n: image[0], cin: c, h: image[2], w: image[3], cout: d, oh: image[2] / patch,
                                                  ow: image[3] / patch, kh: patch, kw: patch, sh: patch, sw: patch, dh: 1, dw: 1,
                                                  pt: 0, pl: 0, groups: 1)
                            addConv(cg, backward: false, "\(model) b\(batch) patch_embed as Conv2D forward")
                            addConv(cg, backward: true, "\(model) b\(batch) patch_embed as Conv2D backward")
                        }
                    }
                    if let mm = node.op as? MatMul, shapes.count >= 2,
                       let p = try? mm.plan(shapes[0], shapes[1], bias: shapes.count == 3 ? shapes[2] : nil) {
                        let s = StridedGEMM(p)
                        add(s, "\(model) b\(batch) \(node.name) forward")
                        // dA = dC · op(B)ᵀ: [M×N]·[N×K], B read with its strides swapped.
                        add(StridedGEMM(batch: p.batch, m: p.m, n: p.k, k: p.n,
                                        aBatchStride: p.m * p.n, aRowStride: p.n, aColStride: 1,
                                        bBatchStride: p.bBatchStride, bRowStride: p.bColStride, bColStride: p.bRowStride,
                                        cBatchStride: p.m * p.k),
                            "\(model) b\(batch) \(node.name) backward")
                    } else if let conv = node.op as? Conv2D, let cg = try? conv.geometry(shapes), cg.isPointwise, cg.groups == 1 {
                        add(OpenCLBackend.pointwiseForwardGEMM(cg), "\(model) b\(batch) \(node.name) forward")
                        add(OpenCLBackend.pointwiseBackwardInputGEMM(cg), "\(model) b\(batch) \(node.name) backward")
                    } else if let conv = node.op as? Conv2D, let cg = try? conv.geometry(shapes), OpenCLBackend.tiledConvSupports(cg) {
                        addConv(cg, backward: false, "\(model) b\(batch) \(node.name) forward")
                        addConv(cg, backward: true, "\(model) b\(batch) \(node.name) backward")
                    }
                }
            }
        }
        return order.compactMap { found[$0] } + convOrder.compactMap { convFound[$0] }
    }

    /// Candidate parameter sets: the device's shipped default first, then a grid (quick: 6 in all).
    public static func candidates(for device: CLDeviceInfo, quick: Bool) -> [GEMMParameters] {
        var out: [GEMMParameters] = []
        if let p = ShippedTuning.defaults(for: device).choice.tiledParameters { out.append(p) }
        let preferred = [
            GEMMParameters(mwg: 64, nwg: 64, kwg: 16, mdimc: 16, ndimc: 16, vwm: 4, vwn: 4),
            GEMMParameters(mwg: 64, nwg: 64, kwg: 32, mdimc: 16, ndimc: 8, vwm: 4, vwn: 4),
            GEMMParameters(mwg: 128, nwg: 64, kwg: 16, mdimc: 16, ndimc: 16, vwm: 4, vwn: 4),
            GEMMParameters(mwg: 64, nwg: 128, kwg: 16, mdimc: 16, ndimc: 16, vwm: 4, vwn: 4),
            GEMMParameters(mwg: 32, nwg: 32, kwg: 32, mdimc: 8, ndimc: 16, vwm: 4, vwn: 2),
            GEMMParameters(mwg: 32, nwg: 64, kwg: 16, mdimc: 8, ndimc: 8, vwm: 2, vwn: 4),
        ]
        for p in preferred where !out.contains(p) { out.append(p) }
        if quick { return Array(out.prefix(6)) }
        for mwg in [32, 64, 128] {
            for nwg in [32, 64, 128] {
                for kwg in [16, 32] {
                    for (mdimc, ndimc) in [(8, 8), (16, 8), (8, 16), (16, 16)] {
                        for (vwm, vwn) in [(2, 2), (4, 4)] {
                            let p = GEMMParameters(mwg: mwg, nwg: nwg, kwg: kwg, mdimc: mdimc, ndimc: ndimc, vwm: vwm, vwn: vwn)
                            if p.invalidReason == nil && !out.contains(p) && mwg / mdimc <= 8 && nwg / ndimc <= 8 { out.append(p) }
                        }
                    }
                }
            }
        }
        return out
    }

    /// The problems every candidate must solve before it is timed: awkward sizes (no tile multiple), a
    /// batch of 2, each of the four operand layouts, bias by column and by row.
    static let checkProblems: [StridedGEMM] = {
        let (b, m, n, k) = (2, 67, 45, 33)
        var out: [StridedGEMM] = []
        for aT in [false, true] {
            for bT in [false, true] {
                out.append(StridedGEMM(batch: b, m: m, n: n, k: k, aBatchStride: m * k,
                                       aRowStride: aT ? 1 : k, aColStride: aT ? m : 1,
                                       bBatchStride: k * n, bRowStride: bT ? 1 : n, bColStride: bT ? k : 1,
                                       cBatchStride: m * n, biasPerRow: aT))
            }
        }
        return out
    }()

    /// The element count an operand needs for strides (batch, row, col) over (batch, rows, cols).
    static func extent(_ batch: Int, _ bs: Int, _ rows: Int, _ rs: Int, _ cols: Int, _ cs: Int) -> Int {
        (batch - 1) * bs + (rows - 1) * rs + (cols - 1) * cs + 1
    }

    /// Why `parameters` fail on `backend` (build error, or the max error against the Double reference), or nil.
    static func check(_ parameters: GEMMParameters, on backend: OpenCLBackend) -> String? {
        if let why = parameters.invalidReason { return why }
        var rng = RandomSource(seed: 1606)   // fixed seed: a rejection is reproducible
        for s in checkProblems {
            let aCount = extent(s.batch, s.aBatchStride, s.m, s.aRowStride, s.k, s.aColStride)
            let bCount = extent(s.batch, s.bBatchStride, s.k, s.bRowStride, s.n, s.bColStride)
            let a = (0..<aCount).map { _ in Float(rng.uniform(-1, 1)) }, b = (0..<bCount).map { _ in Float(rng.uniform(-1, 1)) }
            let bias = (0..<(s.biasPerRow ? s.m : s.n)).map { _ in Float(rng.uniform(-1, 1)) }
            let got: [Float]
            do {
                let out = try backend.make([s.batch * s.cBatchStride])
                try backend.gemmTiled(into: out, backend.tensor(HostTensor(shape: [aCount], values: a)),
                                      backend.tensor(HostTensor(shape: [bCount], values: b)),
                                      bias: backend.tensor(HostTensor(shape: [bias.count], values: bias)), s, parameters: parameters)
                got = try backend.download(out).values
            } catch {
                return "failed to build or run: \(error)"
            }
            var worst = 0.0, at = 0
            for bi in 0..<s.batch {
                for i in 0..<s.m {
                    for j in 0..<s.n {
                        var ref = Double(s.biasPerRow ? bias[i] : bias[j])
                        for kk in 0..<s.k {
                            ref += Double(a[bi * s.aBatchStride + i * s.aRowStride + kk * s.aColStride])
                                * Double(b[bi * s.bBatchStride + kk * s.bRowStride + j * s.bColStride])
                        }
                        let o = bi * s.cBatchStride + i * s.n + j
                        let err = abs(Double(got[o]) - ref) / (1e-4 + 1e-4 * abs(ref))
                        if !(err <= worst) { worst = err; at = o }
                    }
                }
            }
            if !(worst <= 1) {
                let layout = "\(s.aColStride == 1 ? "A" : "Aᵀ")·\(s.bColStride == 1 ? "B" : "Bᵀ")"
                return "wrong result for \(layout) \(s.batch)×[\(s.m)×\(s.k)]·[\(s.k)×\(s.n)]: error \(String(format: "%.3g", worst))× the tolerance 1e-4 + 1e-4·|ref| at output \(at)"
            }
        }
        for g in checkConvolutions {
            for backward in [false, true] {
                if let why = checkConv(parameters, g, backward: backward, on: backend, rng: &rng) { return why }
            }
        }
        return nil
    }

    /// The convolutions every candidate must also get right on the implicit-GEMM kernels, forward and
    /// backward-to-input: odd sizes, 5×5 with stride 2 and asymmetric padding, 3×3 with dilation 2 and
    /// groups 2, and a 4×4/s4 patch embedding (batch 2).
    static let checkConvolutions: [ConvGeometry] = [
        ConvGeometry(n: 1, cin: 5, h: 13, w: 11, cout: 7, oh: 6, ow: 6, kh: 5, kw: 5, sh: 2, sw: 2, dh: 1, dw: 1,
                     pt: 2, pl: 1, groups: 1),
        ConvGeometry(n: 1, cin: 6, h: 9, w: 10, cout: 10, oh: 9, ow: 10, kh: 3, kw: 3, sh: 1, sw: 1, dh: 2, dw: 2,
                     pt: 2, pl: 2, groups: 2),
        ConvGeometry(n: 2, cin: 3, h: 8, w: 12, cout: 9, oh: 2, ow: 3, kh: 4, kw: 4, sh: 4, sw: 4, dh: 1, dw: 1,
                     pt: 0, pl: 0, groups: 1),
    ]

    /// Why the implicit-GEMM convolution with `parameters` disagrees with the CPU reference (im2col +
    /// OpenBLAS) on `g` (tolerance 1e-4 + 1e-4·|ref|), or nil.
    static func checkConv(_ parameters: GEMMParameters, _ g: ConvGeometry, backward: Bool, on backend: OpenCLBackend,
                          rng: inout RandomSource) -> String? {
        let inShape = backward ? g.outputShape : g.inputShape
        let wShape = [g.cout, g.cinG, g.kh, g.kw], biasCount = backward ? g.cin : g.cout
        func random(_ shape: [Int]) -> HostTensor {
            HostTensor(shape: shape, values: (0..<shape.reduce(1, *)).map { _ in Float(rng.uniform(-1, 1)) })
        }
        let x = random(inShape), w = random(wShape), bias = random([biasCount])
        let cpu = CPUBackend()
        let got: [Float], want: [Float]
        do {
            if backward {
                let r = try backend.convBackwardInputTiled(backend.tensor(x), weight: backend.tensor(w), bias: backend.tensor(bias),
                                                           geometry: g, parameters: parameters)
                got = try r.map { try backend.download($0).values } ?? []
                want = try cpu.download(cpu.convBackwardInput(cpu.tensor(x), weight: cpu.tensor(w), bias: cpu.tensor(bias), geometry: g)).values
            } else {
                let r = try backend.convForwardTiled(backend.tensor(x), weight: backend.tensor(w), bias: backend.tensor(bias),
                                                     activation: nil, savePre: false, geometry: g, parameters: parameters)
                got = try r.map { try backend.download($0.output).values } ?? []
                want = try cpu.download(cpu.convForward(cpu.tensor(x), weight: cpu.tensor(w), bias: cpu.tensor(bias),
                                                        activation: nil, savePre: false, geometry: g).output).values
            }
        } catch {
            return "failed to build or run the implicit-GEMM convolution: \(error)"
        }
        let what = "\(g.kh)×\(g.kw)/s\(g.sh) d\(g.dh) g\(g.groups) convolution \(backward ? "backward-to-input" : "forward")"
        guard got.count == want.count else { return "the \(what) did not run on the tiled kernels" }
        var worst = 0.0, at = 0
        for i in want.indices {
            let err = abs(Double(got[i]) - Double(want[i])) / (1e-4 + 1e-4 * abs(Double(want[i])))
            if !(err <= worst) { worst = err; at = i }
        }
        if !(worst <= 1) {
            return "wrong result for the \(what): error \(String(format: "%.3g", worst))× the tolerance 1e-4 + 1e-4·|ref| at output \(at)"
        }
        return nil
    }

    /// Median seconds of `body` over `reps` runs after one untimed run (each run waits for the device).
    static func time(reps: Int, on backend: OpenCLBackend, _ body: () throws -> Void) throws -> Double {
        try timeWithCPU(reps: reps, on: backend, body).wall
    }

    /// This process's CPU time (user + system, all threads), in seconds.
    static func processCPUSeconds() -> Double {
        var usage = rusage()
        guard getrusage(RUSAGE_SELF.rawValue, &usage) == 0 else { return 0 }
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    /// `time`'s median wall seconds, and the process's CPU seconds per run averaged over the timed runs — on a
    /// CPU device (PoCL runs kernels on this process's threads) the CPU time is the measure a loaded machine
    /// does not distort much; on a GPU it is the host's share only.
    static func timeWithCPU(reps: Int, on backend: OpenCLBackend, _ body: () throws -> Void) throws -> (wall: Double, cpu: Double) {
        try body(); try backend.synchronize()
        var samples: [Double] = []
        let n = max(1, reps)
        let cpuStart = processCPUSeconds()
        for _ in 0..<n {
            let start = DispatchTime.now().uptimeNanoseconds
            try body(); try backend.synchronize()
            samples.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return (median(samples), (processCPUSeconds() - cpuStart) / Double(n))
    }

    /// Seconds per step of `choice` over `problems` (Σ count × median). The CPU-style choice runs each
    /// problem the way the engine would without tuning: matmul_8x16 (B packed when needed) for matmuls,
    /// conv.cl's direct kernels for pointwise convolutions.
    static func secondsPerStep(_ choice: GEMMChoice, problems: [GEMMProblem], reps: Int, on backend: OpenCLBackend) throws -> Double {
        try secondsPerProblem(choice, problems: problems, reps: reps, on: backend).reduce(0) { $0 + $1.wall }
    }

    /// count × median seconds of each problem under `choice` (see `secondsPerStep`). A convolution problem
    /// runs conv.cl's direct kernels (cpu-style) or the implicit-GEMM kernels (tiled), with bias, on a weight
    /// marked immutable like a graph constant's (so the backward's regrouped weight is made once, untimed).
    static func secondsPerProblem(_ choice: GEMMChoice, problems: [GEMMProblem], reps: Int,
                                  on backend: OpenCLBackend) throws -> [(wall: Double, cpu: Double)] {
        var times: [(wall: Double, cpu: Double)] = []
        func add(_ count: Int, _ t: (wall: Double, cpu: Double)) { times.append((Double(count) * t.wall, Double(count) * t.cpu)) }
        for problem in problems {
            if let c = problem.conv {
                let g = c.geometry
                let weight = try backend.full([g.cout, g.cinG, g.kh, g.kw], value: 0.5)
                if case .device(let buffer) = weight.storage { buffer.markImmutable() }
                let input = try backend.full(c.backward ? g.outputShape : g.inputShape, value: 0.25)
                let bias = try backend.full([c.backward ? g.cin : g.cout], value: 0.125)
                let body: () throws -> Void
                switch (choice, c.backward) {
                case (.tiled(let q), false):
                    body = { _ = try backend.convForwardTiled(input, weight: weight, bias: bias, activation: nil, savePre: false,
                                                              geometry: g, parameters: q) }
                case (.tiled(let q), true):
                    body = { _ = try backend.convBackwardInputTiled(input, weight: weight, bias: bias, geometry: g, parameters: q) }
                case (.cpuStyle, false):
                    body = { _ = try backend.convForwardDirect(input, weight: weight, bias: bias, activation: nil, savePre: false, geometry: g) }
                case (.cpuStyle, true):
                    body = { _ = try backend.convBackwardInputDirect(input, weight: weight, bias: bias, geometry: g) }
                }
                add(problem.count, try timeWithCPU(reps: reps, on: backend, body))
                continue
            }
            let s = problem.gemm
            let a = try backend.full([extent(s.batch, s.aBatchStride, s.m, s.aRowStride, s.k, s.aColStride)], value: 0.5)
            let b = try backend.full([extent(s.batch, s.bBatchStride, s.k, s.bRowStride, s.n, s.bColStride)], value: 0.25)
            let body: () throws -> Void
            switch choice {
            case .tiled(let q):
                let out = try backend.make([s.batch * s.cBatchStride])
                body = { try backend.gemmTiled(into: out, a, b, bias: nil, s, parameters: q) }
            case .cpuStyle:
                if s.biasPerRow {
                    // A pointwise conv: forward when B is x (K = Cin), backward when A is Wᵀ (A_MCONTIG).
                    let forward = s.aColStride == 1
                    let p = s.n, cin = forward ? s.k : s.m, cout = forward ? s.m : s.k
                    let g = ConvGeometry(n: s.batch, cin: cin, h: 1, w: p, cout: cout, oh: 1, ow: p, kh: 1, kw: 1,
                                         sh: 1, sw: 1, dh: 1, dw: 1, pt: 0, pl: 0, groups: 1)
                    let weight = try backend.full([cout, cin, 1, 1], value: 0.5)
                    let input = try backend.full(forward ? g.inputShape : g.outputShape, value: 0.25)
                    body = forward
                        ? { _ = try backend.convForwardDirect(input, weight: weight, bias: nil, activation: nil, savePre: false, geometry: g) }
                        : { _ = try backend.convBackwardInputDirect(input, weight: weight, bias: nil, geometry: g) }
                } else {
                    let plan = MatMul.Plan(batch: s.batch, m: s.m, n: s.n, k: s.k,
                                           aBatchStride: s.aBatchStride, aRowStride: s.aRowStride, aColStride: s.aColStride,
                                           bBatchStride: s.bBatchStride, bRowStride: s.bRowStride, bColStride: s.bColStride,
                                           transposeA: s.aColStride != 1, transposeB: s.bColStride != 1,
                                           outShape: [s.batch, s.m, s.n])
                    body = { _ = try backend.matmulCPUStyle(a, b, bias: nil, plan: plan) }
                }
            }
            add(problem.count, try timeWithCPU(reps: reps, on: backend, body))
        }
        return times
    }

    /// Tunes `backend`'s device for `request`, logging each step; writes the winner (atomically) when
    /// `request.write`, and sets it as the backend's `gemmChoice`.
    public static func run(_ request: TuneRequest, on backend: OpenCLBackend,
                           candidates explicit: [GEMMParameters]? = nil, problems given: [GEMMProblem]? = nil,
                           log: (String) -> Void = { _ in }) throws -> TuneReport {
        let device = backend.context.device
        var problems = try given ?? Self.problems(models: request.models, batches: request.batches)
        if let limit = request.maxGFLOP { problems = problems.filter { $0.flop <= limit * 1e9 } }
        problems.sort { Double($0.count) * $0.flop > Double($1.count) * $1.flop }
        // Quick: the eight largest GEMMs, and of the implicit-GEMM convolutions the largest of each kind
        // (window, stride, direction: a stem, a 3×3, a strided 3×3, a patch embedding, each way).
        if request.quick {
            var kinds = Set<String>()
            let convs = problems.filter { p in
                guard let c = p.conv else { return false }
                let g = c.geometry
                return kinds.insert("\(g.kh)x\(g.kw)/\(g.sh)x\(g.sw) d\(g.dh)x\(g.dw) \(c.backward)").inserted
            }
            problems = Array(problems.filter { $0.conv == nil }.prefix(8)) + convs
        }
        guard !problems.isEmpty else {
            throw EngineError.invalidInput("no GEMM of the chosen models is left to tune (check the models and the GFLOP limit)")
        }
        log("tuning the GEMM family on \(device.name) (\(device.platformName), driver \(device.driverVersion)): \(problems.count) problems")
        for p in problems { log("  problem \(p)") }
        var results: [TuneCandidateResult] = []
        var best: (choice: GEMMChoice, seconds: Double)?
        // Each choice's per-problem times are logged as soon as they are measured (a run stopped early keeps them).
        func logTimes(_ times: [(wall: Double, cpu: Double)]) {
            for (p, t) in zip(problems, times) {
                log(String(format: "    wall %9.3f ms  cpu %9.3f ms  %@", t.wall * 1e3, t.cpu * 1e3, p.description))
            }
        }
        let baselineTimes = try secondsPerProblem(.cpuStyle, problems: problems, reps: request.reps, on: backend)
        let baseline = baselineTimes.reduce(0) { $0 + $1.wall }
        var bestTiled: (times: [(wall: Double, cpu: Double)], seconds: Double)?
        log(String(format: "  %@: %.3f ms per step", GEMMChoice.cpuStyle.description, baseline * 1e3))
        logTimes(baselineTimes)
        results.append(TuneCandidateResult(candidate: GEMMChoice.cpuStyle.description, rejected: nil, secondsPerStep: baseline))
        best = (.cpuStyle, baseline)
        for q in explicit ?? candidates(for: device, quick: request.quick) {
            if let why = check(q, on: backend) {
                log("  \(q): rejected: \(why)")
                results.append(TuneCandidateResult(candidate: q.description, rejected: why, secondsPerStep: nil))
                continue
            }
            let times = try secondsPerProblem(.tiled(q), problems: problems, reps: request.reps, on: backend)
            let seconds = times.reduce(0) { $0 + $1.wall }
            if seconds < (bestTiled?.seconds ?? .infinity) { bestTiled = (times, seconds) }
            log(String(format: "  %@: %.3f ms per step", q.description, seconds * 1e3))
            logTimes(times)
            results.append(TuneCandidateResult(candidate: q.description, rejected: nil, secondsPerStep: seconds))
            if seconds < (best?.seconds ?? .infinity) { best = (.tiled(q), seconds) }
        }
        let winner = best?.choice ?? .cpuStyle
        var perProblem: [TuneProblemTime] = []
        if let tiled = bestTiled {
            log("per problem, ms per step (wall, then this process's CPU time), CPU-style kernels (convolutions: conv.cl's direct kernels) vs the fastest tiled candidate:")
            for (i, p) in problems.enumerated() {
                let row = TuneProblemTime(problem: p.description, cpuStyleMs: baselineTimes[i].wall * 1e3, tiledMs: tiled.times[i].wall * 1e3,
                                          cpuStyleCPUms: baselineTimes[i].cpu * 1e3, tiledCPUms: tiled.times[i].cpu * 1e3)
                perProblem.append(row)
                log(String(format: "  wall %9.3f %9.3f  cpu %9.3f %9.3f  tiled/cpu-style wall %6.2f cpu %6.2f  %@",
                           row.cpuStyleMs, row.tiledMs, row.cpuStyleCPUms, row.tiledCPUms,
                           row.tiledMs / max(row.cpuStyleMs, 1e-12), row.tiledCPUms / max(row.cpuStyleCPUms, 1e-12), p.description))
            }
        }
        log("winner: \(winner)")
        var path: String?
        if request.write {
            let stamp = ISO8601DateFormatter().string(from: Date())
            let file = TuningFile(platform: device.platformName, device: device.name, driver: device.driverVersion,
                                  created: stamp,
                                  note: "amgpu tune\(request.quick ? " --quick" : ""), models \(request.models.joined(separator: ",")), batches \(request.batches.map(String.init).joined(separator: ",")), \(problems.count) problems, \(results.count) candidates",
                                  gemm: winner)
            path = try TuningStore.save(file, for: device, directory: request.directory).path
            log("wrote \(path ?? "")")
        }
        backend.gemmChoice = winner
        return TuneReport(device: device.description, problems: problems.map(\.description), candidates: results,
                          winner: winner, file: path, perProblem: perProblem)
    }
}
