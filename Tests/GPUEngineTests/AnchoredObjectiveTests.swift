import Foundation
import Testing
@testable import GPUEngine

/// Image-anchored objectives (issue 22 part 2: caricature, feature inversion) and the warm start for units
/// behind a flat activation (part 4).
@Suite(.serialized) struct AnchoredObjectiveTests {
    // MARK: objective graphs: finite differences on the CPU, OpenCL against the CPU

    /// A term's score [B] as a graph case on the layer value x.
    static func termCase(_ term: ObjectiveTerm, _ x: HostTensor, family: ModelFamily) -> OpCase {
        OpCase("\(term.kind) \(x.shape) p=\(term.cossimPower)", input: x) { g, id in
            try ObjectiveGraph.term(term, x: id, shape: x.shape, batch: x.shape[0], graph: g, name: "t", family: family)
        }
    }

    static func term(_ kind: ObjectiveTerm.Kind, reference: HostTensor, power: Float = 1) -> ObjectiveTerm {
        var t = ObjectiveTerm(kind: kind, layer: "x", units: [0])
        t.reference = reference.values
        t.cossimPower = power
        return t
    }

    /// Layer shapes: awkward CNN, power-of-two CNN, ViT tokens (awkward and power of two).
    static let shapes: [[Int]] = [[2, 5, 3, 7], [2, 4, 4, 4], [3, 9, 6], [2, 8, 16]]

    @Test(arguments: TestBackend.allCases, shapes)
    func caricatureGradientAndBackends(_ backend: TestBackend, _ shape: [Int]) throws {
        var rng = SeededRandom(seed: 2201)
        let x = rng.tensor(shape)
        let v = rng.tensor([1] + Array(shape.dropFirst()))
        for power: Float in [1, 2] {
            let c = Self.termCase(Self.term(.caricature, reference: v, power: power), x, family: shape.count == 4 ? .cnn : .vit)
            try c.verify(on: backend, atol: 2e-5, rtol: 1e-4, label: "caricature \(shape) p=\(power)")
        }
    }

    @Test(arguments: TestBackend.allCases, shapes)
    func inversionGradientAndBackends(_ backend: TestBackend, _ shape: [Int]) throws {
        var rng = SeededRandom(seed: 2202)
        let c = Self.termCase(Self.term(.invert, reference: rng.tensor([1] + Array(shape.dropFirst()))), rng.tensor(shape),
                              family: shape.count == 4 ? .cnn : .vit)
        try c.verify(on: backend, atol: 2e-5, rtol: 1e-4, label: "invert \(shape)")
    }

    /// Values against the definitions: a caricature of the photo's own activation scores (1/P) Σ_p ‖v_p‖ (cos = 1);
    /// of its negation, −(1/P) Σ_p ‖v_p‖ · 0.1 (cos clipped at 0.1). An inversion scores 0 at v, −1 at 0, −4 at −v.
    @Test func scoresMatchTheDefinitions() throws {
        var rng = SeededRandom(seed: 2203)
        let v = rng.tensorAwayFromZero([1, 3, 2, 5])    // CNN: C = 3, P = 10
        let positions = 10
        var normSum = 0.0
        for p in 0..<positions {
            normSum += (0..<3).map { c in Double(v.values[c * positions + p]) * Double(v.values[c * positions + p]) }.reduce(0, +).squareRoot()
        }
        let batch = HostTensor(shape: [2, 3, 2, 5], values: v.values + v.values.map { -$0 })
        let caricature = try Self.termCase(Self.term(.caricature, reference: v), batch, family: .cnn).run(on: Backends.cpu, seed: nil).output
        #expect(abs(Double(caricature.values[0]) - normSum / Double(positions)) < 1e-4 * normSum, "caricature of v: \(caricature.values[0])")
        #expect(abs(Double(caricature.values[1]) + 0.1 * normSum / Double(positions)) < 1e-4 * normSum, "caricature of −v: \(caricature.values[1])")
        // ViT layout [T, D]: the channel axis is the last one.
        let tokens = rng.tensorAwayFromZero([1, 4, 3])
        let own = try Self.termCase(Self.term(.caricature, reference: tokens), tokens, family: .vit).run(on: Backends.cpu, seed: nil).output
        let tokenNorms = (0..<4).map { t in (0..<3).map { d in Double(tokens.values[t * 3 + d]) * Double(tokens.values[t * 3 + d]) }.reduce(0, +).squareRoot() }
        #expect(abs(Double(own.values[0]) - tokenNorms.reduce(0, +) / 4) < 1e-4, "ViT caricature of v: \(own.values[0])")
        let three = HostTensor(shape: [3, 3, 2, 5], values: v.values + [Float](repeating: 0, count: 30) + v.values.map { -$0 })
        let inversion = try Self.termCase(Self.term(.invert, reference: v), three, family: .cnn).run(on: Backends.cpu, seed: nil).output
        expectClose(inversion, HostTensor(shape: [3], values: [0, -1, -4]), atol: 1e-5, rtol: 1e-5, "inversion at v, 0, −v")
    }

    @Test func badReferencesFailClearly() throws {
        let model = try VisualizeTests.tinyModel(batch: 1)
        var t = ObjectiveTerm(kind: .invert, layer: "conv2", units: [0])
        #expect(throws: EngineError.self) { try ObjectiveGraph(Objective(terms: [t]), model: model) }   // no reference
        t.reference = [1, 2, 3]
        #expect(throws: EngineError.self) { try ObjectiveGraph(Objective(terms: [t]), model: model) }   // wrong size
        t.reference = [Float](repeating: 0, count: 16 * 16 * 16)
        #expect(throws: EngineError.self) { try ObjectiveGraph(Objective(terms: [t]), model: model) }   // all zero
        #expect(throws: EngineError.self) {
            try UnitVisualization.Target(model: model, layer: "fc", kind: .caricature, reference: [Float](repeating: 1, count: 10))
        }
        #expect(throws: EngineError.self) { try UnitVisualization.Target(model: model, layer: "conv2", kind: .invert) }
        #expect(throws: EngineError.self) { try ObjectiveTerm.parse("invert:conv2:0") }
    }

    // MARK: feature inversion end to end

    /// A smooth test photo 32×32 (not all zero, not constant).
    static func photo() -> RGBImage {
        var pixels = [UInt8]()
        for y in 0..<32 { for x in 0..<32 {
            pixels += [UInt8(40 + 5 * x), UInt8(200 - 4 * y), UInt8(120 + Int(60 * sin(Double(x + y) / 4)))]
        } }
        return RGBImage(width: 32, height: 32, pixels: pixels)
    }

    @Test func invertingALayerFromARandomStartGetsClose() throws {
        let probe = try VisualizeTests.tinyModel(batch: 1)
        let reference = try UnitVisualization.reference(toward: Self.photo(), layer: "conv2", model: probe)
        #expect(reference.count == 16 * 16 * 16 && reference.contains { $0 != 0 })
        var term = ObjectiveTerm(kind: .invert, layer: "conv2", units: [0])
        term.reference = reference
        var request = VisualizeTests.tinyRequest(steps: 96, images: 1)
        request.preset.imageSize = 32
        request.preset.transforms = TransformConfig(copies: 1)
        request.preset.parameterization = .pixel(.sigmoid, decorrelated: false, initialization: .uniform(low: -1, high: 1))
        request.objective = Objective(terms: [term])
        let result = try Visualizer(model: probe, request: request, backend: Backends.cpu).run(reportEvery: 1)
        let start = result.history.first?.objective ?? 0, end = result.finalScores[0]
        print("amgpu-test: invert conv2 of the tiny CNN: relative error \(-start) → \(-end) in 96 steps")
        #expect(start < -0.2, "a random start should be far from the photo's activation: \(start)")
        #expect(end > 0.1 * start, "the inversion loss should fall at least 10×: \(start) → \(end)")
        // The inverted image's activations are close: cosine with the photo's > 0.95.
        let inverted = try RGBImage(tensor: result.images, index: 0)
        let back = try UnitVisualization.reference(toward: inverted, layer: "conv2", model: probe)
        let dot = zip(back, reference).map { Double($0) * Double($1) }.reduce(0, +)
        let cos = dot / (back.map { Double($0 * $0) }.reduce(0, +).squareRoot() * reference.map { Double($0 * $0) }.reduce(0, +).squareRoot())
        #expect(cos > 0.95, "cosine of the inverted image's activation with the photo's: \(cos)")
    }

    // MARK: warm start

    /// A small ViT-like model: [B,3,16,16] → patch embedding (8×8 conv, stride 8) → 4 tokens × 8 → fc1 (8 → 6, bias)
    /// → GELU ("blocks.0.mlp.act") → fc2 (6 → 8). fc1's unit 2 has bias −10 (it starts in GELU's flat tail), unit 4 bias +3.
    static func tinyViT(batch: Int, bias2: Float = -10) throws -> Model {
        var rng = SeededRandom(seed: 2204)
        let g = Graph()
        let x = try g.addInput("image", shape: [batch, 3, 16, 16])
        let w = try g.addConstant("patch.weight", rng.tensor([8, 3, 8, 8], -0.5, 0.5))
        let patches = try g.add(Conv2D(strides: [8, 8]), [x, w], name: "patch")
        let flat = try g.add(Reshape(shape: [batch, 8, 4]), [patches], name: "patch.flat")
        let tokens = try g.add(Transpose(perm: [0, 2, 1]), [flat], name: "tokens")
        let w1 = try g.addConstant("fc1.weight", rng.tensor([8, 6], -0.5, 0.5))
        let b1 = try g.addConstant("fc1.bias", HostTensor(shape: [6], values: [0.3, -0.2, bias2, 0.1, 3, -0.4]))
        let fc1 = try g.add(MatMul(), [tokens, w1, b1], name: "blocks.0.mlp.fc1")
        let act = try g.add(Unary(.geluErf), [fc1], name: "blocks.0.mlp.act")
        let w2 = try g.addConstant("fc2.weight", rng.tensor([6, 8], -0.5, 0.5))
        let out = try g.add(MatMul(), [act, w2], name: "blocks.0.mlp.fc2")
        return Model(name: "tiny-vit", graph: g, input: x, output: out, family: .vit, preprocessing: .imagenet(16),
                     aliases: [:], recommended: [], source: "test")
    }

    static func warmRequest(_ warmStart: WarmStart?, unit: Int = 2) -> VisualizationRequest {
        var preset = AMPreset.cnnLucid
        preset.imageSize = 16
        preset.steps = 40
        preset.transforms = TransformConfig(copies: 1)
        return VisualizationRequest(objective: Objective(terms: [ObjectiveTerm(kind: .channel, layer: "blocks.0.mlp.act", units: [unit])]),
                                    preset: preset, seed: 5, images: 1, warmStart: warmStart)
    }

    @Test func aUnitInGELUsFlatTailStaysStuckWithoutAWarmStartAndRisesWithOne() throws {
        let model = try Self.tinyViT(batch: 1)
        #expect(WarmStartPlan.preActivation(of: "blocks.0.mlp.act", model: model)?.layer == "blocks.0.mlp.fc1")
        let stuck = try Visualizer(model: model, request: Self.warmRequest(nil), backend: Backends.cpu).run(reportEvery: 1)
        let first = stuck.history.first?.objective ?? 1
        #expect(first < 0 && first > -1e-6, "the unit should start in GELU's flat negative tail: \(first)")
        #expect(stuck.finalScores[0] < 1e-6, "without a warm start the unit should not move: \(first) → \(stuck.finalScores[0])")
        #expect(stuck.warmStart == nil)

        let warm = try Visualizer(model: model, request: Self.warmRequest(.standard), backend: Backends.cpu).run(reportEvery: 1)
        print("amgpu-test: warm start on a GELU unit with bias −10: \(warm.warmStart?.first.map { "\($0)" } ?? "none"), final \(warm.finalScores[0])")
        #expect(warm.finalScores[0] > 1, "with a warm start the unit should rise well above 0: \(warm.finalScores[0])")
        let record = try #require(warm.warmStart?.first)
        #expect(record.preActivationLayer == "blocks.0.mlp.fc1" && record.activation == "geluErf")
        #expect(record.steps > 1 && record.steps <= 20, "warm-up steps \(record.steps) (at most half of 40)")
        #expect(record.valueAtStart < 0 && record.valueAtSwitch > 0 && record.reachedThreshold)
    }

    @Test func theWarmStartLeavesOtherUnitsAndLayersAlone() throws {
        // Per image: in a batch of two, the unit already positive at the start (bias +3) is never warmed (its gate is set
        // from its value at the first step), so its image is the one rendered without a warm start; the stuck one
        // (bias −10) warms up and rises.
        let model = try Self.tinyViT(batch: 2)
        var request = Self.warmRequest(.standard)
        request.images = 2
        request.objective.terms[0].units = [4, 2]
        let on = try Visualizer(model: model, request: request, backend: Backends.cpu).run()
        request.warmStart = nil
        let off = try Visualizer(model: model, request: request, backend: Backends.cpu).run()
        let records = try #require(on.warmStart)
        #expect(records[0].steps == 0 && records[0].valueAtStart > 0 && records[0].valueAtSwitch == records[0].valueAtStart
                && records[0].reachedThreshold, "\(records[0])")
        #expect(records[1].steps > 1 && records[1].valueAtStart < 0 && records[1].reachedThreshold, "\(records[1])")
        #expect(records[0].leakySteps == 0 && records[0].returnedStep == nil && records[0].lastImageObjective == nil, "\(records[0])")
        let plane = 3 * 16 * 16
        let drift = zip(on.images.values[0..<plane], off.images.values[0..<plane]).map { abs($0 - $1) }.max() ?? 1
        #expect(drift <= 1e-6, "the positive unit's image moved \(drift) with the warm start on (never warmed: it should not move)")
        #expect(on.finalScores[0] > 1 && abs(on.finalScores[0] - off.finalScores[0]) <= 1e-5 * abs(off.finalScores[0]),
                "positive unit: \(on.finalScores[0]) vs \(off.finalScores[0]) without")
        #expect(on.finalScores[1] > 1 && off.finalScores[1] < 1e-6, "stuck unit: \(on.finalScores[1]) with, \(off.finalScores[1]) without")
        // No elementwise activation in front of the layer (a conv with its ReLU fused): no warm start.
        let cnn = try VisualizeTests.tinyModel(batch: 1)
        #expect(WarmStartPlan.preActivation(of: "conv1", model: cnn) == nil)
        var conv = VisualizeTests.tinyRequest(steps: 2, images: 1)
        conv.objective.terms[0].units = [3]
        conv.objective.terms[0].layer = "conv1"
        #expect(try Visualizer(model: cnn, request: conv, backend: Backends.cpu).run().warmStart == nil)
        #expect(throws: EngineError.self) { try WarmStart(threshold: 0, maxFraction: 2).validate() }
    }

    @Test func theLeakyFloorKeepsAUnitOffGELUsLeftBranch() throws {
        // Unit 2 with bias −3 starts on GELU's left branch (z < −0.75, GELU′ < 0): ascent of the real unit lowers z and
        // slides into the flat tail (value → 0⁻, stuck). No warm-up (fraction 0), so only the leaky floor acts: with
        // α = 0.15 > 0.1289 the derivative GELU′(z) + α is positive and z climbs through 0.
        let model = try Self.tinyViT(batch: 1, bias2: -3)
        let plain = try Visualizer(model: model, request: Self.warmRequest(nil),
                                   backend: Backends.cpu).run(reportEvery: 1)
        let leaky = try Visualizer(model: model, request: Self.warmRequest(WarmStart(maxFraction: 0, leak: 0.15, keepBest: false)),
                                   backend: Backends.cpu).run(reportEvery: 1)
        let first = plain.history.first?.objective ?? 0
        print("amgpu-test: GELU unit with bias −3: start \(first), plain ascent \(plain.finalScores[0]), leaky floor \(leaky.finalScores[0]) \(leaky.warmStart?.first.map { "\($0)" } ?? "none")")
        #expect(first < -0.02, "the unit should start on GELU's negative left branch: \(first)")
        #expect(plain.finalScores[0] <= 0 && plain.finalScores[0] > first, "plain ascent should slide toward the tail (0⁻): \(first) → \(plain.finalScores[0])")
        #expect(plain.warmStart == nil)
        #expect(leaky.finalScores[0] > 0.5, "with the leaky floor the unit should rise above 0: \(leaky.finalScores[0])")
        let record = try #require(leaky.warmStart?.first)
        #expect(record.steps == 0 && (record.leakySteps ?? 0) > 0 && (record.leakySteps ?? 0) < 40 && record.returnedStep == nil, "\(record)")
    }

    /// A unit at its maximum at the start: patch embedding with zero-sum 8×8 kernels (a flat image gives tokens p = 0),
    /// then z = 0.5 − Σₖ pₖ² ("bowl.fc1", unit 0) → GELU ("bowl.act"). Any texture lowers z; Adam's first steps move every
    /// pixel parameter by about the learning rate whatever the gradient's size, so plain ascent goes down.
    static func bowl(batch: Int) throws -> Model {
        let g = Graph()
        let x = try g.addInput("image", shape: [batch, 3, 16, 16])
        let w = HostTensor(shape: [8, 3, 8, 8], values: (0..<(8 * 3 * 64)).map { i in
            let (o, c, y, xx) = (i / 192, i / 64 % 3, i / 8 % 8, i % 8)
            return (o + c + y + xx) % 2 == 0 ? 0.1 : -0.1
        })
        let patches = try g.add(Conv2D(strides: [8, 8]), [x, g.addConstant("patch.weight", w)], name: "patch")
        let flat = try g.add(Reshape(shape: [batch, 8, 4]), [patches], name: "patch.flat")
        let tokens = try g.add(Transpose(perm: [0, 2, 1]), [flat], name: "tokens")
        let squared = try g.add(Binary(.mul), [tokens, tokens], name: "tokens.squared")
        let w1 = try g.addConstant("fc1.weight", HostTensor(shape: [8, 2], values: (0..<16).map { $0 % 2 == 0 ? -1 : 0.5 }))
        let b1 = try g.addConstant("fc1.bias", HostTensor(shape: [2], values: [0.5, 0.1]))
        let fc1 = try g.add(MatMul(), [squared, w1, b1], name: "bowl.fc1")
        let act = try g.add(Unary(.geluErf), [fc1], name: "bowl.act")
        return Model(name: "bowl", graph: g, input: x, output: act, family: .vit, preprocessing: .imagenet(16),
                     aliases: [:], recommended: [], source: "test")
    }

    @Test func keepingTheBestImageUndoesAnAscentThatWentDown() throws {
        let model = try Self.bowl(batch: 1)
        var request = Self.warmRequest(nil, unit: 0)
        request.objective.terms[0].layer = "bowl.act"
        request.preset.parameterization = .pixel(.sigmoid)
        request.preset.optimizer.learningRate = 0.2
        request.preset.steps = 6
        let plain = try Visualizer(model: model, request: request, backend: Backends.cpu).run(reportEvery: 1)
        request.warmStart = .standard
        let kept = try Visualizer(model: model, request: request, backend: Backends.cpu).run(reportEvery: 1)
        let first = plain.history.first?.objective ?? 0
        print("amgpu-test: bowl unit: start \(first), plain Adam \(plain.finalScores[0]), keep-best \(kept.finalScores[0]) \(kept.warmStart?.first.map { "\($0)" } ?? "none")")
        #expect(first > 0.3, "the unit should start near its maximum GELU(0.5) ≈ 0.35: \(first)")
        #expect(plain.finalScores[0] <= 0, "plain Adam should lower the unit below 0 here: \(first) → \(plain.finalScores[0])")
        let record = try #require(kept.warmStart?.first)
        #expect(record.returnedStep == 0 && (record.lastImageObjective ?? 1) <= 0, "\(record)")
        #expect(kept.finalScores[0] > 0.3, "the returned image should be the initial one, near the maximum: \(kept.finalScores[0])")
        // The returned image is the initial one (the parameters at step 0, rendered), and its score is that image's.
        let generator = try ImageGenerator(parameterization: request.preset.parameterization, batch: 1, height: 16, width: 16,
                                           regularizers: [], backend: Backends.cpu)
        let initial = try generator.render(Backends.cpu.tensor(request.preset.parameterization.initialParameters(batch: 1, size: 16, seed: request.seed)))
        expectClose(kept.images, initial, atol: 1e-6, rtol: 0, "keep-best image vs the initial image")
        let rescored = try Visualizer(model: model, request: request, backend: Backends.cpu).evaluateClean(kept.images).scores[0]
        #expect(abs(rescored - kept.finalScores[0]) <= 1e-6, "final score \(kept.finalScores[0]) vs the returned image's \(rescored)")
    }

    @Test func theWarmStartOnOpenCLMatchesTheCPU() throws {
        guard let cl = Backends.get(.opencl) else { return }
        let model = try Self.tinyViT(batch: 2)
        var request = Self.warmRequest(.standard)
        request.preset.steps = 16
        request.images = 2
        request.objective.terms[0].units = [4, 2]
        let cpu = try Visualizer(model: model, request: request, backend: Backends.cpu).run()
        let gpu = try Visualizer(model: model, request: request, backend: cl).run()
        expectClose(gpu.images, cpu.images, atol: 2e-3, rtol: 0, "warm-started images after 16 steps, OpenCL vs CPU")
        #expect(gpu.warmStart?.map(\.steps) == cpu.warmStart?.map(\.steps), "warm-up steps: OpenCL \(gpu.warmStart?.map(\.steps) ?? []), CPU \(cpu.warmStart?.map(\.steps) ?? [])")
        #expect((cpu.warmStart?[1].steps ?? 0) > 1)
    }

    @Test func theSidecarRecordsTheWarmStart() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("amgpu-warm-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let model = try Self.tinyViT(batch: 1)
        let target = try UnitVisualization.Target(model: model, layer: "blocks.0.mlp.act", units: [2])
        var preset = Self.warmRequest(nil).preset
        preset.steps = 24
        let run = UnitVisualization(target: target, folder: folder, preset: preset, batchSize: 1, seed: 0, modelSHA256: nil, amgpuVersion: "test")
        let result = try run.run(model: model, devices: [.cpu]) { batch in try Self.tinyViT(batch: batch) }
        let json = try Data(contentsOf: URL(fileURLWithPath: folder + "/blocks.0.mlp.act_2.json"))
        let sidecar = try JSONDecoder().decode(VisualizationSidecar.self, from: json)
        let record = try #require(sidecar.warmStart)
        #expect(record.steps > 0 && record.valueAtStart < 0 && record.valueAtSwitch > 0, "\(record)")
        #expect(result.images.count == 1)
    }
}
