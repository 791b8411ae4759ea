import Foundation
import Testing
@testable import GPUEngine

/// Issue #22 image priors: MaCo (phase-only Fourier parameterization with a fixed magnitude), `--init PHOTO`
/// for every parameterization, snapshots and MaCo's transparency map.
@Suite(.serialized) struct ImagePriorTests {
    static func tempDir(_ name: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("amgpu-prior-\(name)-\(getpid())").path
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// A random photo (every channel value 0…255, so the clipped ends are exercised) written as a PNG.
    static func randomPhoto(width: Int, height: Int, seed: UInt64, dir: String) throws -> (path: String, image: RGBImage) {
        var rng = SeededRandom(seed: seed)
        var pixels = (0..<(width * height * 3)).map { _ in UInt8(min(255, Int(rng.uniform(0, 256)))) }
        pixels[0] = 0
        pixels[1] = 255
        let image = RGBImage(width: width, height: height, pixels: pixels)
        let path = "\(dir)/photo-\(width)x\(height)-\(seed).png"
        try PNGFile.write(image, to: path)
        return (path, image)
    }

    /// |rfft2| of each [H, W] plane of a [N, 3, H, W] tensor (numpy layout [N, 3, H, Wf]).
    static func magnitudes(_ y: HostTensor) -> [Double] {
        let n = y.shape[0], h = y.shape[2], w = y.shape[3]
        let dft = RealDFT2D(height: h, width: w)
        var out: [Double] = []
        for p in 0..<(n * 3) {
            let (re, im) = dft.forward(y.values[(p * h * w)..<((p + 1) * h * w)].map(Double.init))
            out += zip(re, im).map { ($0 * $0 + $1 * $1).squareRoot() }
        }
        return out
    }

    // MARK: MaCo

    /// Gradient of the whole MaCo map (phase → cos/sin · M → irfft2 → standardize → colour → sigmoid) by finite
    /// differences on the CPU, and OpenCL against the CPU, on an odd and a power-of-two size.
    @Test(arguments: TestBackend.allCases)
    func macoGradients(_ kind: TestBackend) throws {
        for (param, h, w) in [(ImageParameterization.maco(), 6, 7), (.maco(decorrelated: false), 8, 8)] {
            let p = try param.initialParameters(batch: 2, height: h, width: w, seed: 11)
            #expect(p.shape == [2, 3, h, FourierBasis.spectrumWidth(w)])
            try OpCase("maco", input: p) { g, x in try param.addToGraph(g, parameters: x, height: h, width: w) }
                .verify(on: kind, atol: 2e-5, rtol: 1e-4, fdSeed: 23, label: "maco \(h)x\(w) decorrelated=\(param.decorrelated)")
        }
    }

    /// The image of any phase has exactly the fixed magnitude: |rfft2(irfft2(M·e^{iφ}))| = M on every column but
    /// kw = 0 and W/2 (whose imaginary parts irfft2 drops), for even W; and the standardized image has mean 0, std 1.
    @Test(arguments: TestBackend.allCases)
    func macoImageHasTheFixedMagnitude(_ kind: TestBackend) throws {
        guard let backend = Backends.get(kind) else { return }
        for (h, w) in [(6, 10), (8, 8)] {
            let wf = FourierBasis.spectrumWidth(w)
            var rng = SeededRandom(seed: 3)
            let magnitude = HostTensor(shape: [3, h, wf], values: (0..<(3 * h * wf)).map { _ in rng.uniform(0.5, 2) })
            let phase = rng.tensor([2, 3, h, wf], -3, 3)
            let g = Graph()
            let pid = try g.addInput("phase", shape: phase.shape)
            let y = try addMacoImage(g, phase: pid, magnitude: magnitude, height: h, width: w, name: "maco")
            let z = try addPerImageStandardization(g, y, name: "std")
            let pass = try Executor(graph: g, backend: backend).forward(feeds: [pid: backend.tensor(phase)], targets: [y, z])
            let measured = Self.magnitudes(try backend.download(pass.value(y)))
            var worst = 0.0
            for p in 0..<6 {
                for kh in 0..<h {
                    for kw in 1..<(wf - 1) {
                        let m = Double(magnitude.values[((p % 3) * h + kh) * wf + kw])
                        worst = max(worst, abs(measured[(p * h + kh) * wf + kw] - m) / m)
                    }
                }
            }
            #expect(worst < 1e-4, "largest relative magnitude error \(worst) at \(h)x\(w) on \(backend.name)")
            let zs = try backend.download(pass.value(z)).values
            for n in 0..<2 {
                let part = zs[(n * 3 * h * w)..<((n + 1) * 3 * h * w)].map(Double.init)
                let mean = part.reduce(0, +) / Double(part.count)
                let sd = (part.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(part.count)).squareRoot()
                #expect(abs(mean) < 1e-5 && abs(sd - 1) < 1e-3, "image \(n): mean \(mean), std \(sd)")
            }
        }
    }

    /// The built-in profile: positive, and falling with frequency like natural images (≥ 10× from the lowest to the highest ring).
    @Test func builtinSpectrumFallsWithFrequency() throws {
        let m = MacoSpectrum.builtin(height: 16, width: 16)
        #expect(m.shape == [3, 16, 9])
        #expect(m.values.allSatisfy { $0 > 0 && $0.isFinite })
        for c in 0..<3 {
            let rings = MacoDefaultProfile.rings[c]
            #expect(rings.first! > 10 * rings.last!, "channel \(c): \(rings.first!) vs \(rings.last!)")
        }
    }

    /// `MacoSpectrum.estimate` of one photo is |its DFT| in the decorrelated space: a flat colour has only a DC term
    /// (= H·W·C⁻¹·rgb), and a photo's estimate matches the DFT computed here by the definition.
    @Test func spectrumEstimateIsTheMeanDFTModulus() throws {
        let flat = RGBImage(width: 8, height: 8, pixels: Array(repeating: [200, 100, 50], count: 64).flatMap { $0 })
        let m = try MacoSpectrum.estimate([flat], size: 8)
        #expect(m.shape == [3, 8, 5])
        let rgb = [200.0 / 255, 100.0 / 255, 50.0 / 255]
        for c in 0..<3 {
            let t = (0..<3).map { ColorDecorrelation.inverseMatrix[c * 3 + $0] * rgb[$0] }.reduce(0, +)
            #expect(abs(Double(m.values[c * 40]) - abs(t) * 64) < 1e-3 * abs(t) * 64)
            #expect(m.values[(c * 40 + 1)..<(c * 40 + 40)].allSatisfy { abs($0) < 1e-4 })
        }
        // A random 6×6 photo against the O(H²W²) definition.
        let dir = try Self.tempDir("estimate")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let photo = try Self.randomPhoto(width: 6, height: 6, seed: 4, dir: dir).image
        let est = try MacoSpectrum.estimate([photo, photo], size: 6)
        let x = photo.tensor().values.map(Double.init)
        let t = ColorDecorrelation.decorrelate(x, plane: 36)
        for c in 0..<3 {
            for kh in 0..<6 {
                for kw in 0..<4 {
                    var re = 0.0, im = 0.0
                    for hh in 0..<6 {
                        for ww in 0..<6 {
                            let a = 2 * Double.pi * (Double(kh * hh) / 6 + Double(kw * ww) / 6)
                            re += t[c * 36 + hh * 6 + ww] * cos(a)
                            im -= t[c * 36 + hh * 6 + ww] * sin(a)
                        }
                    }
                    let expected = (re * re + im * im).squareRoot()
                    #expect(abs(Double(est.values[(c * 6 + kh) * 4 + kw]) - expected) < 1e-4 + 1e-5 * expected)
                }
            }
        }
    }

    @Test func badSpectrumFilesAreRefused() throws {
        let dir = try Self.tempDir("badspectrum")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try NPYFile.write(HostTensor(shape: [3, 8, 5], values: Array(repeating: 1, count: 120)), to: "\(dir)/s8.npy")
        #expect(try MacoSpectrum.magnitude(path: "\(dir)/s8.npy", height: 8, width: 8).shape == [3, 8, 5])
        #expect(throws: EngineError.self) { try MacoSpectrum.magnitude(path: "\(dir)/s8.npy", height: 16, width: 16) }
        try NPYFile.write(HostTensor(shape: [3, 8, 5], values: Array(repeating: -1, count: 120)), to: "\(dir)/neg.npy")
        #expect(throws: EngineError.self) { try MacoSpectrum.magnitude(path: "\(dir)/neg.npy", height: 8, width: 8) }
        try Data("not an npy".utf8).write(to: URL(fileURLWithPath: "\(dir)/junk.npy"))
        #expect(throws: EngineError.self) { try MacoSpectrum.magnitude(path: "\(dir)/junk.npy", height: 8, width: 8) }
        #expect(throws: EngineError.self) { try MacoSpectrum.magnitude(path: "\(dir)/missing.npy", height: 8, width: 8) }
    }

    // MARK: --init PHOTO

    /// pixel (sigmoid, with and without decorrelation; clamp) and Fourier (odd and power-of-two sizes): the image
    /// at step 0 is the photo (clipped to [ε, 1 − ε] for sigmoid maps) within 1e-4, on every backend.
    @Test(arguments: TestBackend.allCases)
    func photoInitRoundTrips(_ kind: TestBackend) throws {
        guard let backend = Backends.get(kind) else { return }
        let dir = try Self.tempDir("roundtrip")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cases: [(ImageParameterization, Int, Int)] = [
            (.pixel(.sigmoid), 9, 7), (.pixel(.sigmoid, decorrelated: true), 8, 8), (.pixel(.clamp), 5, 6),
            (.fourier(), 16, 16), (.fourier(), 6, 7), (.fourier(decay: 0.75, decorrelated: false), 9, 10),
        ]
        for (var param, h, w) in cases {
            let photo = try Self.randomPhoto(width: w, height: h, seed: UInt64(h * 100 + w), dir: dir)
            param.initialization = .photo(path: photo.path, noise: 0)
            let p = try param.initialParameters(batch: 2, height: h, width: w, seed: 1)
            let generator = try ImageGenerator(parameterization: param, batch: 2, height: h, width: w, backend: backend)
            let x = try generator.render(backend.tensor(p))
            let eps = param.squash == .clamp ? 0 : ImageParameterization.photoEpsilon
            let target = photo.image.tensor().values.map { min(max($0, eps), 1 - eps) }
            let worst = x.values.enumerated().map { abs($0.element - target[$0.offset % target.count]) }.max() ?? 1
            #expect(worst < 1e-4, "\(param.kind) \(param.squash) \(h)x\(w): max error \(worst) on \(backend.name)")
            #expect(try RGBImage(tensor: x, index: 1).pixels == photo.image.pixels, "the 8-bit image is the photo")
        }
    }

    /// MaCo from a photo keeps the photo's phase (so its layout): the step-0 image correlates with the photo far
    /// more than a random-phase image does; init noise moves the parameters by about σ.
    @Test func macoPhotoInitKeepsThePhotosLayout() throws {
        let dir = try Self.tempDir("macoinit")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A smooth photo: a bright disc on a dark ground.
        let s = 32
        var pixels = [UInt8]()
        for y in 0..<s { for x in 0..<s {
            let inside = (x - 12) * (x - 12) + (y - 18) * (y - 18) < 64
            pixels += inside ? [230, 210, 40] : [20, 40, 90]
        } }
        let path = "\(dir)/disc.png"
        try PNGFile.write(RGBImage(width: s, height: s, pixels: pixels), to: path)
        let photo = RGBImage(width: s, height: s, pixels: pixels).tensor().values
        func correlation(_ a: [Float], _ b: [Float]) -> Double {
            let ma = a.map(Double.init).reduce(0, +) / Double(a.count), mb = b.map(Double.init).reduce(0, +) / Double(b.count)
            var ab = 0.0, aa = 0.0, bb = 0.0
            for (x, y) in zip(a, b) { ab += (Double(x) - ma) * (Double(y) - mb); aa += (Double(x) - ma) * (Double(x) - ma); bb += (Double(y) - mb) * (Double(y) - mb) }
            return ab / (aa * bb).squareRoot()
        }
        var param = ImageParameterization.maco()
        let random = try ImageGenerator(parameterization: param, batch: 1, height: s, width: s, backend: Backends.cpu)
            .render(Backends.cpu.tensor(param.initialParameters(batch: 1, size: s, seed: 2)))
        param.initialization = .photo(path: path, noise: 0)
        let start = try param.initialParameters(batch: 1, size: s, seed: 2)
        let fromPhoto = try ImageGenerator(parameterization: param, batch: 1, height: s, width: s, backend: Backends.cpu)
            .render(Backends.cpu.tensor(start))
        let r = correlation(fromPhoto.values, photo), r0 = correlation(random.values, photo)
        #expect(r > 0.45 && abs(r0) < 0.15, "correlation with the photo: from its phase \(r), random phase \(r0)")
        param.initialization = .photo(path: path, noise: 0.1)
        let noisy = try param.initialParameters(batch: 1, size: s, seed: 2)
        let sd = (zip(noisy.values, start.values).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +) / Double(start.count)).squareRoot()
        #expect(abs(sd - 0.1) < 0.01, "noise std \(sd)")
    }

    @Test func badInitPhotosAreRefused() throws {
        let dir = try Self.tempDir("badinit")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data("\u{89}PNG\r\n\u{1a}\ntruncated".utf8).write(to: URL(fileURLWithPath: "\(dir)/bad.png"))
        for path in ["\(dir)/bad.png", "\(dir)/missing.jpg", dir] {
            var param = ImageParameterization.fourier()
            param.initialization = .photo(path: path, noise: 0)
            #expect(throws: EngineError.self) { try param.initialParameters(batch: 1, size: 8, seed: 0) }
        }
        var param = ImageParameterization.pixel()
        param.initialization = .photo(path: "\(dir)/x.png", noise: .nan)
        #expect(throws: EngineError.self) { try param.validate() }
    }

    // MARK: runs

    /// An AM run with MaCo raises a logit of the tiny CNN well above its value on the initial image.
    @Test func macoRunRaisesALogit() throws {
        let model = try VisualizeTests.tinyModel(batch: 1)
        var request = VisualizeTests.tinyRequest(steps: 40, images: 1)
        request.preset.parameterization = .maco()
        request.preset.optimizer.learningRate = 0.1
        request.objective = Objective(terms: [ObjectiveTerm(kind: .logit, layer: "fc", units: [4])])
        let visualizer = try Visualizer(model: model, request: request, backend: Backends.cpu)
        let initial = try ImageGenerator(parameterization: request.preset.parameterization, batch: 1, height: 24, width: 24,
                                         backend: Backends.cpu)
            .render(Backends.cpu.tensor(request.preset.parameterization.initialParameters(batch: 1, size: 24, seed: request.seed)))
        let before = try visualizer.evaluateClean(initial).scores[0]
        let result = try visualizer.run()
        #expect(result.finalScores[0] > before + 0.5, "logit 4: \(before) → \(result.finalScores[0])")
        let alpha = try #require(result.transparency)
        #expect(alpha.shape == [1, 3, 24, 24] && alpha.values.allSatisfy { $0 >= 0 } && alpha.values.contains { $0 > 0 })
    }

    /// Snapshots through the batch runner: step 0, every N steps and the last, the trajectory montage, the MaCo
    /// transparency map, all recorded in the sidecar; the last snapshot is the final image.
    @Test func snapshotsAndTransparencyAreWrittenAndRecorded() throws {
        let dir = try Self.tempDir("snapshots")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var preset = VisualizeTests.tinyRequest(steps: 5).preset
        preset.parameterization = .maco()
        let settings = AMRunSettings(preset: preset, batchSize: 2, seeding: .sequential(3), recordedObjective: .batch,
                                     failurePolicy: .stop, modelSHA256: nil, amgpuVersion: "test", snapshotEvery: 2)
        let jobs = [3, 5].map {
            AMJob(term: ObjectiveTerm(kind: .channel, layer: "conv2", units: []), unit: $0, imagePath: "\(dir)/u\($0).png",
                  imageName: "u\($0).png", recordPath: "\(dir)/u\($0).json")
        }
        let summary = try AMBatchRunner(settings: settings, devices: [.cpu]) { try VisualizeTests.tinyModel(batch: $0) }.run(jobs)
        #expect(summary.rendered == 2)
        for u in [3, 5] {
            let names = [0, 2, 4, 5].map { "u\(u)-step" + String(format: "%04d", $0) + ".png" }
            for name in names { #expect(FileManager.default.fileExists(atPath: "\(dir)/\(name)"), "\(name)") }
            #expect(try PNGFile.read("\(dir)/\(names.last!)").pixels == PNGFile.read("\(dir)/u\(u).png").pixels)
            #expect(try PNGFile.read("\(dir)/\(names[0])").pixels != PNGFile.read("\(dir)/u\(u).png").pixels)
            let trajectory = try PNGFile.read("\(dir)/u\(u)-trajectory.png")
            #expect(trajectory.width >= 4 * 24)
            let alpha = try PNGFile.read("\(dir)/u\(u)-alpha.png")
            #expect(alpha.width == 24 && alpha.pixels.max() == 255)
            let record = try JSONDecoder().decode(VisualizationSidecar.self, from: Data(contentsOf: URL(fileURLWithPath: "\(dir)/u\(u).json")))
            let prior = try #require(record.imagePrior)
            #expect(prior.parameterization == "maco" && prior.macoSpectrum == "built-in")
            #expect(prior.snapshots == names && prior.trajectory == "u\(u)-trajectory.png" && prior.transparency == "u\(u)-alpha.png")
        }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix(".") }
        #expect(leftovers.isEmpty, "temporary files left: \(leftovers)")
    }
}
