import Foundation
import Testing
@testable import GPUEngine

/// The backends every op test runs on (candle-style: one test body per backend).
enum TestBackend: String, CaseIterable, Sendable, CustomStringConvertible {
    case cpu, opencl
    var description: String { rawValue }
}

/// What the test run may leave out. Locally a test whose evidence is missing (no OpenCL device, no real
/// model or photo, no Python venv) prints "amgpu-test: SKIPPED …" and passes; under `CI=true` the same
/// skip is recorded as a failure with its reason, so a green CI run has run every case.
enum TestEnvironment {
    /// True when the environment variable CI is "true" or "1" (GitHub Actions, .ci/run, scripts/test).
    static let isCI: Bool = {
        let v = ProcessInfo.processInfo.environment["CI"]?.lowercased() ?? ""
        return v == "true" || v == "1"
    }()

    /// Reports a test (or part of one) that could not run: prints one "amgpu-test: SKIPPED" line and,
    /// under CI, records an issue saying what was skipped and why.
    static func skip(_ what: String, because reason: String, sourceLocation: SourceLocation = #_sourceLocation) {
        print("amgpu-test: SKIPPED \(what): \(reason)")
        if isCI {
            Issue.record("\(what) was skipped under CI=true: \(reason)", sourceLocation: sourceLocation)
        }
    }
}

/// Shared backends. The OpenCL one is nil where no OpenCL device can be opened; `openclStatus` says why.
enum Backends {
    static let cpu = CPUBackend()

    /// The first OpenCL device's backend, or the reason there is none: no platform (with the ICD
    /// loader's environment), a platform without devices, or the real error from starting the backend.
    static let openclStatus: Result<OpenCLBackend, OpenCLUnavailable> = {
        let env = ProcessInfo.processInfo.environment
        let icd = ["OCL_ICD_VENDORS", "OCL_ICD_FILENAMES"].compactMap { k in env[k].map { "\(k)=\($0)" } }
        let icdNote = icd.isEmpty ? "" : " (\(icd.joined(separator: ", ")))"
        let devices: [CLDeviceInfo]
        do {
            devices = try OpenCLRuntime.devices()
        } catch {
            return .failure(OpenCLUnavailable(reason: "listing OpenCL devices failed: \(error)\(icdNote)"))
        }
        guard let first = devices.first else {
            return .failure(OpenCLUnavailable(reason: "no OpenCL platform or device found by the ICD loader\(icdNote)"))
        }
        do {
            return .success(try OpenCLBackend(device: first))
        } catch {
            return .failure(OpenCLUnavailable(reason: "the OpenCL backend failed to start on \(first.name): \(error)"))
        }
    }()

    static let opencl: OpenCLBackend? = {
        switch openclStatus {
        case .success(let cl): return cl
        case .failure(let why):
            print("amgpu-test: NOTE OpenCL unavailable (\(why.reason)): OpenCL tests are skipped"
                  + (TestEnvironment.isCI ? " and fail under CI=true" : ""))
            return nil
        }
    }()

    /// Why OpenCL is unavailable ("" when it is available).
    static var openclUnavailableReason: String {
        if case .failure(let why) = openclStatus { return why.reason }
        return ""
    }

    /// The backend for `kind`, or nil when OpenCL is unavailable: then a SKIPPED line with the reason is
    /// printed and, under CI=true, an issue is recorded.
    static func get(_ kind: TestBackend, test: String = #function,
                    sourceLocation: SourceLocation = #_sourceLocation) -> (any Backend)? {
        switch kind {
        case .cpu: return cpu
        case .opencl:
            guard let cl = requireOpenCL(test, sourceLocation: sourceLocation) else { return nil }
            print("amgpu-test: OPENCL \(test) ran on \(cl.name)")
            return cl
        }
    }

    /// The backend for a heavy real-model evidence test (a real network's attacks, AM runs, gradient parity,
    /// forward parity): OpenCL when it started. Without OpenCL the test's evidence is an OpenCL run that cannot
    /// happen, so under `CI=true` this records one issue naming the cause (e.g. the ICD loader with
    /// `OCL_ICD_VENDORS`) and returns nil: the test stops at once instead of running for minutes on the CPU
    /// reference (minutes for the real-photo attack test in debug) only to fail anyway. Locally (no CI) it prints a NOTE and
    /// falls back to the CPU backend, so a developer without OpenCL still gets the evidence, slowly.
    /// Call it before loading the model (after the checks that the model files exist).
    static func evidence(_ test: String = #function, sourceLocation: SourceLocation = #_sourceLocation) -> (any Backend)? {
        if let cl = opencl {
            print("amgpu-test: OPENCL \(test) ran on \(cl.name)")
            return cl
        }
        if TestEnvironment.isCI {
            TestEnvironment.skip("\(test) (a real-model test on OpenCL; stopped before any work, not run on the CPU)",
                                 because: openclUnavailableReason, sourceLocation: sourceLocation)
            return nil
        }
        print("amgpu-test: NOTE \(test) runs on the CPU reference backend (slow): OpenCL unavailable (\(openclUnavailableReason))")
        return cpu
    }

    /// The OpenCL backend, or nil after `TestEnvironment.skip` (a failure under CI=true).
    static func requireOpenCL(_ test: String = #function, sourceLocation: SourceLocation = #_sourceLocation) -> OpenCLBackend? {
        if let cl = opencl { return cl }
        TestEnvironment.skip("\(test) on OpenCL", because: openclUnavailableReason, sourceLocation: sourceLocation)
        return nil
    }
}

struct OpenCLUnavailable: Error, Sendable { var reason: String }

/// Deterministic random numbers (SplitMix64).
struct SeededRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed &+ 0x9E3779B97F4A7C15 }
    mutating func next() -> UInt64 {
        state &+= 0x9E3779B97F4A7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return z ^ (z >> 31)
    }
    /// Uniform in [lo, hi).
    mutating func uniform(_ lo: Float = -1, _ hi: Float = 1) -> Float {
        lo + (hi - lo) * Float(next() >> 40) / Float(1 << 24)
    }
    mutating func tensor(_ shape: [Int], _ lo: Float = -1, _ hi: Float = 1) -> HostTensor {
        let n = shape.reduce(1, *)
        return HostTensor(shape: shape, values: (0..<n).map { _ in uniform(lo, hi) })
    }
    /// Values away from 0 (|v| in [0.1, 1]), random sign: for kinks at zero.
    mutating func tensorAwayFromZero(_ shape: [Int]) -> HostTensor {
        let n = shape.reduce(1, *)
        return HostTensor(shape: shape, values: (0..<n).map { _ in
            let m = uniform(0.1, 1)
            return next() & 1 == 0 ? m : -m
        })
    }
}

/// Fails with the max error and the first bad index unless |a − e| ≤ atol + rtol·|e| everywhere.
func expectClose(_ actual: HostTensor, _ expected: HostTensor, atol: Float = 1e-5, rtol: Float = 1e-4,
                 _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
    guard actual.shape == expected.shape else {
        Issue.record("\(what): shape \(actual.shape) != expected \(expected.shape)", sourceLocation: sourceLocation)
        return
    }
    var maxError: Float = 0
    var firstBad: Int? = nil
    var bad = 0
    for i in 0..<actual.count {
        let a = actual.values[i], e = expected.values[i]
        let err = abs(a - e)
        if !(err <= atol + rtol * abs(e)) {
            bad += 1
            if firstBad == nil { firstBad = i }
        }
        if err > maxError || err.isNaN { maxError = err }
    }
    if let i = firstBad {
        let coord = unravel(i, actual.shape)
        Issue.record("\(what): \(bad) of \(actual.count) values differ; max error \(maxError); first bad index \(i) \(coord): got \(actual.values[i]), expected \(expected.values[i]) (atol \(atol), rtol \(rtol))",
                     sourceLocation: sourceLocation)
    }
}

func unravel(_ index: Int, _ shape: [Int]) -> [Int] {
    var i = index
    var coord = [Int](repeating: 0, count: shape.count)
    for axis in stride(from: shape.count - 1, through: 0, by: -1) where shape[axis] > 0 {
        coord[axis] = i % shape[axis]
        i /= shape[axis]
    }
    return coord
}

/// The one op test harness: one operator applied to given inputs, or a small graph built on one input
/// (image-side transforms, parameterizations, regularizers); inputs with `differentiable` true get
/// gradients. `verify(on:)` runs finite differences on the CPU and compares OpenCL with the CPU.
struct OpCase {
    /// The name in messages: the operator's type name, or the graph case's label.
    var name: String
    var inputs: [HostTensor]
    var differentiable: [Bool]
    /// Adds the case's node(s) to a graph on `ids` (one per input) and returns the output.
    var build: (Graph, [ValueID]) throws -> ValueID

    init(_ op: any Operator, _ inputs: [HostTensor], differentiable: [Bool]? = nil) {
        self.name = op.typeName
        self.inputs = inputs
        self.differentiable = differentiable ?? inputs.map { _ in true }
        self.build = { g, ids in try g.add(op, ids, name: "out") }
    }

    /// A graph case on one differentiable input: `build` adds the nodes after the input `x` and returns the output.
    init(_ name: String, input: HostTensor, build: @escaping (Graph, ValueID) throws -> ValueID) {
        self.name = name
        self.inputs = [input]
        self.differentiable = [true]
        self.build = { g, ids in try build(g, ids[0]) }
    }

    /// Builds the graph (differentiable inputs are graph inputs, the rest constants).
    func graph() throws -> (Graph, [ValueID], ValueID) {
        let g = Graph()
        var ids: [ValueID] = []
        for (i, x) in inputs.enumerated() {
            ids.append(differentiable[i] ? try g.addInput("x\(i)", shape: x.shape) : try g.addConstant("c\(i)", x))
        }
        let out = try build(g, ids)
        return (g, ids, out)
    }

    /// The output's shape (from the graph's shape inference).
    func outputShape() throws -> [Int] {
        let (g, _, out) = try graph()
        return g.shape(of: out)
    }

    /// Forward output and the gradients of L = Σ out ⊙ seed to each differentiable input.
    func run(on backend: any Backend, seed: HostTensor?) throws -> (output: HostTensor, grads: [HostTensor?]) {
        let (g, ids, out) = try graph()
        let ex = Executor(graph: g, backend: backend)
        var feeds: [ValueID: Tensor] = [:]
        var diff = Set<ValueID>()
        for (i, x) in inputs.enumerated() where differentiable[i] {
            feeds[ids[i]] = try backend.tensor(x)
            diff.insert(ids[i])
        }
        let pass = try ex.forward(feeds: feeds, targets: [out], differentiable: seed == nil ? [] : diff)
        let output = try backend.download(pass.value(out))
        guard let seed else { return (output, inputs.map { _ in nil }) }
        let grads = try ex.backward(pass, seeds: [out: backend.tensor(seed)])
        return (output, try ids.enumerated().map { i, id in
            guard differentiable[i] else { return nil }
            guard let g = grads[id] else { throw EngineError.invalidGraph("\(name): backward gave no gradient for input \(i)") }
            return try backend.download(g)
        })
    }

    /// The seed of L = Σ out ⊙ seed that `checkGradients(seed:)` uses.
    func lossSeed(_ rngSeed: UInt64 = 7) throws -> HostTensor {
        var rng = SeededRandom(seed: rngSeed)
        return rng.tensor(try outputShape(), -1, 1)
    }

    /// Finite-difference estimates of the CPU reference's gradients (see `GradientCheck`).
    func numericGradients(_ check: GradientCheck, seed: HostTensor) throws -> [GradientCheck.Numeric] {
        try check.numeric(inputs: inputs, differentiable: differentiable, seed: seed) { xs in
            var c = self
            c.inputs = xs
            return try c.run(on: Backends.cpu, seed: nil).output
        }
    }

    /// Checks the CPU reference's backward against finite differences of L(x) = Σ out(x) ⊙ seed with
    /// `GradientCheck`'s norm-relative criterion: every position of inputs up to 256 elements, otherwise
    /// `samples` positions plus 8 random directional derivatives. `rtol` is the norm-relative tolerance,
    /// `h` the finite-difference step; `atol`, when given, replaces the finite differences' estimated error floor
    /// (RMS per compared entry).
    func checkGradients(h: Float = 1e-2, atol: Double? = nil, rtol: Double = 1e-2, samples: Int = 32,
                        seed rngSeed: UInt64 = 7, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let seedTensor = try lossSeed(rngSeed)
        let analytic = try run(on: Backends.cpu, seed: seedTensor).grads
        let check = GradientCheck(h: Double(h), tolerance: rtol, samples: samples, rngSeed: rngSeed &+ 1, absoluteFloor: atol)
        for failure in check.failures(name, numeric: try numericGradients(check, seed: seedTensor), analytic: analytic) {
            Issue.record("\(failure)", sourceLocation: sourceLocation)
        }
    }

    /// Compares forward and backward on `backend` with the CPU reference; returns the max absolute
    /// errors (forward, and the largest over the inputs' gradients).
    @discardableResult
    func compareWithCPU(on backend: any Backend, atol: Float = 1e-4, rtol: Float = 1e-4,
                        sourceLocation: SourceLocation = #_sourceLocation) throws -> (forward: Float, backward: Float) {
        var rng = SeededRandom(seed: 99)
        let seedTensor = rng.tensor(try outputShape())
        let expected = try run(on: Backends.cpu, seed: seedTensor)
        let actual = try run(on: backend, seed: seedTensor)
        expectClose(actual.output, expected.output, atol: atol, rtol: rtol, "\(name) forward on \(backend.name)",
                    sourceLocation: sourceLocation)
        var backwardError: Float = 0
        for k in inputs.indices {
            if let a = actual.grads[k], let e = expected.grads[k] {
                expectClose(a, e, atol: atol, rtol: rtol, "\(name) backward to input \(k) on \(backend.name)",
                            sourceLocation: sourceLocation)
                backwardError = max(backwardError, maxAbsDifference(a, e))
            }
        }
        return (maxAbsDifference(actual.output, expected.output), backwardError)
    }

    /// Runs the right check for the backend: finite differences on the CPU (`fdTolerance` is the
    /// norm-relative tolerance of `checkGradients`, `fdSeed` its random seed), CPU comparison on OpenCL
    /// (with a `label`, the max errors are printed as `amgpu-test: MAXERR label: …` for the report).
    func verify(on kind: TestBackend, atol: Float = 1e-4, rtol: Float = 1e-4, fdTolerance: Double = 1e-2,
                fdSeed: UInt64 = 7, label: String? = nil,
                test: String = #function, sourceLocation: SourceLocation = #_sourceLocation) throws {
        switch kind {
        case .cpu:
            try checkGradients(rtol: fdTolerance, seed: fdSeed, sourceLocation: sourceLocation)
        case .opencl:
            guard let backend = Backends.get(.opencl, test: test, sourceLocation: sourceLocation) else { return }
            let err = try compareWithCPU(on: backend, atol: atol, rtol: rtol, sourceLocation: sourceLocation)
            if let label { print("amgpu-test: MAXERR \(label): forward \(err.forward), backward \(err.backward)") }
        }
    }
}

/// max |a − b| over the elements (0 for empty tensors).
func maxAbsDifference(_ a: HostTensor, _ b: HostTensor) -> Float {
    zip(a.values, b.values).map { abs($0 - $1) }.max() ?? 0
}

/// Finite-difference evidence for the analytic gradients of L(x) = Σ out(x) ⊙ seed (Double sums of the
/// float32 forward), compared by a norm-relative criterion so that a zero, sign-flipped, permuted or
/// mis-scaled gradient fails however small its entries are:
///
///   ‖g − g_fd‖₂ ≤ tolerance · ‖g_fd‖₂ + floor
///
/// • an input with at most `fullLimit` elements: g and g_fd are vectors over every position;
/// • a larger input: the same criterion over `samples` distinct positions (the first, the last and random
///   ones) and, separately, over `directions` directional derivatives gᵀd along random d (entries uniform
///   in [−1, 1]), so every element of g takes part.
///
/// Each finite difference is Richardson-extrapolated central differences, R = (4·D(h/2) − D(h)) / 3 with
/// D(s) = (L(x + s·v) − L(x − s·v)) / 2s (truncation error O(h⁴)); for a single position the step is the one
/// float32 actually took. The forward stays float32 (the CPU reference has no float64 path), so each estimate
/// carries an error bound: |D(h/2) − D(h)| / 3 (the extrapolation's own error estimate: what is left of
/// truncation, a kink within the step, rounding that differs between the two steps) plus the rounding of the
/// outputs the step changed, 4·2⁻²⁴·√(Σ_changed (out·seed)²) / step. `floor` is the root sum of squares of
/// these bounds (or `absoluteFloor`·√n when given). A check whose ‖g_fd‖ is within 4× its floor proves nothing
/// and fails as "vacuous"; finite differences that are exactly zero (no output moved) require g = 0.
struct GradientCheck {
    var h: Double = 1e-2
    var tolerance: Double = 1e-2
    var fullLimit: Int = 256
    var samples: Int = 32
    var directions: Int = 8
    var rngSeed: UInt64 = 7
    /// RMS absolute floor per compared entry, replacing the estimated rounding noise.
    var absoluteFloor: Double? = nil

    static let eps32 = 1.0 / Double(1 << 24)

    /// Finite-difference estimates for one input: at positions (p ≥ 0) or along directions.
    struct Numeric {
        var input: Int
        var shape: [Int]
        var positions: [Int] = []           // empty for a directional set
        var directions: [[Float]] = []      // empty for a positional set
        var values: [Double] = []
        var noise: [Double] = []
        var what: String {
            positions.isEmpty ? "\(directions.count) random directional derivatives"
                : positions.count == shape.reduce(1, *) ? "all \(positions.count) positions"
                : "\(positions.count) sampled positions"
        }
    }

    /// Finite differences of Σ forward(inputs) ⊙ seed for every differentiable input.
    func numeric(inputs: [HostTensor], differentiable: [Bool], seed: HostTensor,
                 forward: ([HostTensor]) throws -> HostTensor) throws -> [Numeric] {
        var rng = SeededRandom(seed: rngSeed)
        let base = try forward(inputs)
        func loss(_ xs: [HostTensor]) throws -> (value: Double, changed: Double) {
            let out = try forward(xs)
            var s = 0.0, changed = 0.0
            for j in 0..<out.count {
                let t = Double(out.values[j]) * Double(seed.values[j])
                s += t
                if out.values[j] != base.values[j] { changed += t * t }
            }
            return (s, changed.squareRoot())
        }
        /// Richardson-extrapolated derivative along `v` (nil: the single position p) and its noise bound.
        func derivative(_ k: Int, position p: Int?, direction v: [Float]?) throws -> (Double, Double) {
            var estimates: [(Double, Double)] = []
            for s in [h, h / 2] {
                var plus = inputs, minus = inputs
                var step = 2 * s
                if let p {
                    let x0 = Double(inputs[k].values[p])
                    plus[k].values[p] = Float(x0 + s)
                    minus[k].values[p] = Float(x0 - s)
                    step = Double(plus[k].values[p]) - Double(minus[k].values[p])
                } else if let v {
                    for i in 0..<v.count {
                        let x0 = Double(inputs[k].values[i])
                        plus[k].values[i] = Float(x0 + s * Double(v[i]))
                        minus[k].values[i] = Float(x0 - s * Double(v[i]))
                    }
                }
                let (lp, np) = try loss(plus), (lm, nm) = try loss(minus)
                estimates.append(((lp - lm) / step, 4 * Self.eps32 * (np + nm) / step))
            }
            let (d1, n1) = estimates[0], (d2, n2) = estimates[1]
            return ((4 * d2 - d1) / 3, abs(d2 - d1) / 3 + (4 * n2 + n1) / 3)
        }
        var result: [Numeric] = []
        for (k, x) in inputs.enumerated() where differentiable[k] {
            let n = x.count
            var positional = Numeric(input: k, shape: x.shape)
            if n <= fullLimit {
                positional.positions = Array(0..<n)
            } else {
                var chosen: [Int] = [0, n - 1]
                var seen = Set(chosen)
                while chosen.count < min(samples, n) {
                    let p = Int(rng.next() % UInt64(n))
                    if seen.insert(p).inserted { chosen.append(p) }
                }
                positional.positions = chosen
            }
            for p in positional.positions {
                let (d, e) = try derivative(k, position: p, direction: nil)
                positional.values.append(d); positional.noise.append(e)
            }
            result.append(positional)
            if n > fullLimit {
                var directional = Numeric(input: k, shape: x.shape)
                for _ in 0..<directions {
                    let v = (0..<n).map { _ in rng.uniform(-1, 1) }
                    let (d, e) = try derivative(k, position: nil, direction: v)
                    directional.directions.append(v)
                    directional.values.append(d); directional.noise.append(e)
                }
                result.append(directional)
            }
        }
        return result
    }

    /// The failures (empty when every check passes) of `analytic` against the estimates.
    func failures(_ label: String, numeric: [Numeric], analytic: [HostTensor?]) -> [String] {
        var out: [String] = []
        for set in numeric {
            let k = set.input
            guard k < analytic.count, let g = analytic[k] else {
                out.append("\(label): no gradient for input \(k)")
                continue
            }
            guard g.shape == set.shape else {
                out.append("\(label): gradient of input \(k) has shape \(g.shape), input has \(set.shape)")
                continue
            }
            let a: [Double] = set.positions.isEmpty
                ? set.directions.map { v in zip(g.values, v).reduce(0.0) { $0 + Double($1.0) * Double($1.1) } }
                : set.positions.map { Double(g.values[$0]) }
            var err2 = 0.0, ref2 = 0.0, noise2 = 0.0, worst = 0, worstErr = -1.0
            for i in a.indices {
                let e = abs(a[i] - set.values[i])
                if !(e <= worstErr) { worstErr = e; worst = i }
                err2 += e * e
                ref2 += set.values[i] * set.values[i]
                noise2 += set.noise[i] * set.noise[i]
            }
            let err = err2.squareRoot(), ref = ref2.squareRoot()
            let floor = absoluteFloor.map { $0 * Double(a.count).squareRoot() } ?? 2 * noise2.squareRoot()
            let at = set.positions.isEmpty ? "direction \(worst)"
                : "position \(set.positions[worst]) \(unravel(set.positions[worst], set.shape))"
            if ref == 0 && floor == 0 {
                if !(err == 0) {
                    out.append("\(label): gradient of input \(k) \(set.shape) over \(set.what): no output moved (g_fd = 0) but ‖g‖ = \(err); worst at \(at): analytic \(a[worst])")
                }
            } else if !(ref > 4 * floor) {
                out.append("\(label): gradient of input \(k) (\(set.what)): vacuous check, ‖g_fd‖ = \(ref) is within 4× the finite differences' error floor \(floor)")
            } else if !(err <= tolerance * ref + floor) {
                out.append("\(label): gradient of input \(k) \(set.shape) over \(set.what): ‖g − g_fd‖/‖g_fd‖ = \(err / ref) > tolerance \(tolerance) (‖g_fd‖ \(ref), error floor \(floor)); worst at \(at): analytic \(a[worst]), finite difference \(set.values[worst])")
            }
        }
        return out
    }
}
