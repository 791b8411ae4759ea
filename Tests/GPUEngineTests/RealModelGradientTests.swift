import Foundation
import Testing
@testable import GPUEngine

/// Input-gradient parity of the real models (the ONNX files scripts/fetch-models gets) with onnxruntime:
/// ⟨∇ₓL, d_k⟩ from amgpu's backward against onnxruntime's central differences of the same ONNX file along
/// random directions d_k (scripts/tools/onnx_directional.py: Richardson-extrapolated, L summed in float64;
/// the models run in float32 there because onnxruntime's CPU provider has no float64 Conv). L = Σ seed ⊙ out:
/// EfficientNet-Lite0's one-hot logit 285 (Egyptian cat) on chelsea, DINOv2 ViT-S/14's
/// saliency map against a random seed on coffee. Criterion: ‖A − D‖₂ ≤ tolerance·‖D‖₂ over the K directions,
/// where A are amgpu's and D onnxruntime's directional derivatives; a zero, sign-flipped or halved gradient fails it.
/// The tolerances are set by the finite differences, not by amgpu: EfficientNet-Lite0 is piecewise linear in
/// its ReLU6 units, its float32 finite differences move by 10–40 % between steps 3e-4 and 1e-2 and differ from
/// ⟨g, d⟩ by about ±0.1–0.3 whatever the derivative's size, so it is checked over 8 directions at 0.15
/// (measured 0.053 on OpenCL, 2026-12-01); DINOv2 (GELU, smooth) over 4 directions at 0.02 (measured 0.0063).
@Suite(.serialized) struct RealModelGradientTests {
    static let python = ModelStore.path("venv/bin/python")
    static let tool = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/tools/onnx_directional.py").path

    static func runPython(_ arguments: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = arguments
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw EngineError.invalidGraph("onnx_directional.py failed: \(stderr)") }
        return stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// amgpu's directional derivatives ⟨g, dᵢ⟩ (g: amgpu's input gradient of Σ seed ⊙ value) beside onnxruntime's
    /// central differences of the same score along the same directions (`onnx_directional.py`, float64 sums;
    /// `output`: an inner ONNX value instead of the graph's output). Returns ‖A − D‖₂ / ‖D‖₂ over the directions, one
    /// "A vs D (±e)" row per direction and the tool's note; nil (after a failed expectation) if the tool's result has
    /// the wrong shape.
    static func compareDirectional(gradient g: HostTensor, onnxPath: String, input x: HostTensor, seed: HostTensor,
                                   directions dirs: [HostTensor], step: Double, output: String? = nil,
                                   scratch: String) throws -> (relativeError: Double, rows: [String], note: String)? {
        let k = dirs.count
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("amgpu-\(scratch)-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try NPYFile.write(x, to: dir + "/x.npy")
        try NPYFile.write(seed, to: dir + "/seed.npy")
        try NPYFile.write(HostTensor(shape: [k] + x.shape, values: dirs.flatMap(\.values)), to: dir + "/dirs.npy")
        let note = try runPython([tool, onnxPath, dir + "/x.npy", dir + "/seed.npy", dir + "/dirs.npy", dir + "/dd.npy",
                                  "--step", "\(step)"] + (output.map { ["--output", $0] } ?? []))
        let dd = try NPYFile.read(dir + "/dd.npy")
        #expect(dd.shape == [k, 2])
        guard dd.shape == [k, 2] else { return nil }
        var err2 = 0.0, ref2 = 0.0, rows: [String] = []
        for i in 0..<k {
            let a = zip(g.values, dirs[i].values).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            let d = Double(dd.values[2 * i]), e = Double(dd.values[2 * i + 1])
            err2 += (a - d) * (a - d)
            ref2 += d * d
            rows.append(String(format: "%.5g vs %.5g (±%.2g)", a, d, e))
        }
        // A zero reference makes the ratio infinite (never a pass).
        return (ref2 > 0 ? err2.squareRoot() / ref2.squareRoot() : .infinity, rows, note)
    }

    /// Runs the check for one model; `seed` makes the loss seed for the output shape.
    func check(model file: String, photo: String, directions k: Int, step: Double, tolerance: Double,
               seed makeSeed: ([Int]) -> HostTensor, test: String = #function) throws {
        let onnxPath = ModelStore.path("models/\(file)")
        let photoPath = ModelStore.path("photos/\(photo).png")
        for (path, what) in [(onnxPath, "model"), (photoPath, "photo"), (Self.python, "Python venv")]
        where !FileManager.default.fileExists(atPath: path) {
            TestEnvironment.skip("\(test)", because: "the \(what) \(path) is absent (run scripts/fetch-models)")
            return
        }
        guard let backend = Backends.evidence(test) else { return }
        let model = try ONNXImporter.load(path: onnxPath)
        let x = ImagePreprocessing.modelInput(try PNGFile.read(photoPath), model.preprocessing)
        let ex = Executor(graph: model.graph, backend: backend)
        let pass = try ex.forward(feeds: [model.input: backend.tensor(x)], targets: [model.output], differentiable: [model.input])
        let outShape = try backend.download(pass.value(model.output)).shape
        let seed = makeSeed(outShape)
        let grads = try ex.backward(pass, seeds: [model.output: backend.tensor(seed)])
        let g = try backend.download(try #require(grads[model.input]))

        var rng = SeededRandom(seed: 2026)
        let dirs = (0..<k).map { _ in rng.tensor(x.shape) }
        guard let c = try Self.compareDirectional(gradient: g, onnxPath: onnxPath, input: x, seed: seed, directions: dirs,
                                                  step: step, scratch: "gradparity-\(file)") else { return }
        let rel = c.relativeError
        print("amgpu-test: GRADPARITY \(file) on \(backend.name) vs onnxruntime (\(c.note), step \(step)): ‖A − D‖/‖D‖ = \(String(format: "%.4f", rel)); ⟨g, d⟩ vs finite difference: \(c.rows.joined(separator: ", "))")
        #expect(rel <= tolerance, "\(file): input gradient vs onnxruntime central differences: ‖A − D‖/‖D‖ = \(rel) > \(tolerance); \(c.rows)")
    }

    @Test func efficientNetLite0LogitGradientMatchesOnnxruntime() throws {
        try check(model: "efficientnet_lite0.onnx", photo: "chelsea", directions: 8, step: 1e-3, tolerance: 0.15) { shape in
            var s = HostTensor(shape: shape, values: Array(repeating: 0, count: shape.reduce(1, *)))
            s.values[285] = 1    // the Egyptian-cat logit
            return s
        }
    }

    @Test func dinov2SaliencyGradientMatchesOnnxruntime() throws {
        try check(model: "dinov2_vits14.onnx", photo: "coffee", directions: 4, step: 1e-3, tolerance: 0.02) { shape in
            var rng = SeededRandom(seed: 7)
            return rng.tensor(shape)
        }
    }
}
