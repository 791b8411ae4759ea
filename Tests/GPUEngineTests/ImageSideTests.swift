import Foundation
import Testing
@testable import GPUEngine

/// Prints OpenCL-vs-CPU max errors of one op (for the report); the assertions are in `OpCase.verify`.
private func reportMaxError(_ c: OpCase, _ label: String, on kind: TestBackend) throws {
    guard kind == .opencl, let cl = Backends.opencl else { return }
    var rng = SeededRandom(seed: 5)
    let seed = rng.tensor(try c.outputShape())
    let e = try c.run(on: Backends.cpu, seed: seed), a = try c.run(on: cl, seed: seed)
    let backward = zip(a.grads, e.grads).compactMap { x, y in x.flatMap { xv in y.map { maxAbsDifference(xv, $0) } } }.max() ?? 0
    print("amgpu-test: MAXERR \(label): forward \(maxAbsDifference(a.output, e.output)), backward \(backward)")
}

/// numpy.fft.fftfreq(n)[k].
private func fftfreq(_ k: Int, _ n: Int) -> Double {
    k < (n + 1) / 2 ? Double(k) / Double(n) : Double(k - n) / Double(n)
}

/// numpy's irfft2 of a spectrum [H, Wf, 2] by the definition: Hermitian-extend along the width to
/// W' = 2(Wf − 1) columns, take the real part of the full O(H²W'²) inverse DFT, keep `width` columns.
private func naiveIrfft2(_ spectrum: [Double], height: Int, wf: Int, width: Int) -> [Double] {
    let wp = 2 * (wf - 1)
    func coefficient(_ kh: Int, _ kw: Int) -> (Double, Double) {
        if kw < wf { return (spectrum[(kh * wf + kw) * 2], spectrum[(kh * wf + kw) * 2 + 1]) }
        let mh = (height - kh) % height, mw = wp - kw
        return (spectrum[(mh * wf + mw) * 2], -spectrum[(mh * wf + mw) * 2 + 1])
    }
    var out = [Double](repeating: 0, count: height * width)
    for h in 0..<height {
        for w in 0..<width {
            var re = 0.0
            for kh in 0..<height {
                for kw in 0..<wp {
                    let (a, b) = coefficient(kh, kw)
                    let angle = 2 * Double.pi * (Double(kh * h) / Double(height) + Double(kw * w) / Double(wp))
                    re += a * cos(angle) - b * sin(angle)
                }
            }
            out[h * width + w] = re / Double(height * wp)
        }
    }
    return out
}

@Suite struct ImageSideTests {
    // MARK: random numbers

    @Test func splitMixMatchesReferenceAndIsDeterministic() {
        // SplitMix64 from state 0: the reference implementation's first outputs.
        var rng = RandomSource(seed: 0)
        #expect(rng.next() == 0xE220_A839_7B1D_CDAF)
        #expect(rng.next() == 0x6E78_9E6A_A1B9_65F4)
        var a = RandomSource(seed: 7, stream: [1, 2]), b = RandomSource(seed: 7, stream: [1, 2])
        var c = RandomSource(seed: 7, stream: [1, 3])
        let xs = (0..<5).map { _ in a.next() }
        #expect(xs == (0..<5).map { _ in b.next() })
        #expect(xs != (0..<5).map { _ in c.next() })
        var r = RandomSource(seed: 3)
        var counts = [Int](repeating: 0, count: 5)
        var sum = 0.0, sumSq = 0.0
        for _ in 0..<20_000 {
            let k = r.int(in: -2...2)
            #expect(k >= -2 && k <= 2)
            counts[k + 2] += 1
            let z = r.normal()
            sum += z; sumSq += z * z
        }
        #expect(counts.allSatisfy { $0 > 3_600 && $0 < 4_400 })
        #expect(abs(sum / 20_000) < 0.03 && abs(sumSq / 20_000 - 1) < 0.05)
    }

    @Test func deterministicMathMatchesLibm() {
        for x in [1e-300, 1e-5, 0.1, 0.5, 0.999, 1, 1.5, 2, 10, 1234.5, 1e300] {
            #expect(abs(DeterministicMath.log(x) - log(x)) <= 4e-16 * max(1, abs(log(x))), "log(\(x))")
        }
        for x in [-700.0, -20, -1, -1e-3, 0, 1e-3, 0.5, 1, 3, 20, 700] {
            #expect(abs(DeterministicMath.exp(x) - exp(x)) <= 1e-15 * exp(x), "exp(\(x))")
        }
        for x in [-100.0, -3.5, -1, -0.1, 0, 0.2, 0.7853, 1.5707963, 2, 3.14159, 6.3, 50] {
            #expect(abs(DeterministicMath.sin(x) - sin(x)) <= 1e-15 * max(1, abs(x)))
            #expect(abs(DeterministicMath.cos(x) - cos(x)) <= 1e-15 * max(1, abs(x)))
        }
    }

    // MARK: inverse DFT and the Fourier parameterization

    /// irfft2 as two matrix products against the O(S⁴) definition, even and odd sizes.
    @Test(arguments: TestBackend.allCases)
    func inverseRealDFTMatchesDirectSum(_ kind: TestBackend) throws {
        guard let backend = Backends.get(kind) else { return }
        var rng = SeededRandom(seed: 21)
        // (height, stored frequencies Wf, kept width): W' = 2(Wf − 1).
        for (height, wf, width) in [(6, 4, 6), (8, 5, 8), (7, 4, 5), (8, 5, 7), (5, 2, 2)] {
            let batch = 2
            let spec = rng.tensor([batch, height, wf, 2])
            let g = Graph()
            let s = try g.addInput("s", shape: spec.shape)
            let y = try addInverseRealDFT2D(g, spectrum: s, height: height, width: width, name: "irfft")
            #expect(g.shape(of: y) == [batch, height, width])
            let out = try backend.download(Executor(graph: g, backend: backend)
                .forward(feeds: [s: backend.tensor(spec)], targets: [y]).value(y))
            var expected: [Float] = []
            for n in 0..<batch {
                let one = Array(spec.values[(n * height * wf * 2)..<((n + 1) * height * wf * 2)]).map(Double.init)
                expected += naiveIrfft2(one, height: height, wf: wf, width: width).map { Float($0) }
            }
            expectClose(out, HostTensor(shape: [batch, height, width], values: expected), atol: 2e-6, rtol: 1e-5,
                        "irfft2 \(height)×\(width) (Wf \(wf)) on \(backend.name)")
        }
    }

    /// One frequency gives one cosine; the imaginary part of the DC term is ignored (as numpy).
    @Test(arguments: TestBackend.allCases)
    func singleFrequencyGivesCosine(_ kind: TestBackend) throws {
        guard let backend = Backends.get(kind) else { return }
        let (height, wf, width) = (8, 5, 8)
        var values = [Float](repeating: 0, count: height * wf * 2)
        values[(1 * wf + 2) * 2] = 1           // S[1, 2] = 1
        values[1] = 0.7                        // Im S[0, 0]: ignored
        values[(3 * wf + 0) * 2] = 0.5         // S[3, 0] = 0.5 (a cosine along the height only)
        let g = Graph()
        let s = try g.addInput("s", shape: [height, wf, 2])
        let y = try addInverseRealDFT2D(g, spectrum: s, height: height, width: width, name: "irfft")
        let out = try backend.download(Executor(graph: g, backend: backend)
            .forward(feeds: [s: backend.tensor(HostTensor(shape: [height, wf, 2], values: values))], targets: [y]).value(y))
        var expected: [Float] = []
        for h in 0..<height {
            for w in 0..<width {
                let a = 2.0 / 64 * cos(2 * Double.pi * (Double(h) / 8 + 2 * Double(w) / 8))
                let b = 0.5 / 64 * cos(2 * Double.pi * 3 * Double(h) / 8)
                expected.append(Float(a + b))
            }
        }
        expectClose(out, HostTensor(shape: [height, width], values: expected), atol: 1e-7, rtol: 1e-5, "cosine image")
    }

    /// The whole Fourier parameterization against lucid's recipe computed independently (odd width crops).
    @Test(arguments: TestBackend.allCases)
    func fourierParameterizationMatchesLucidRecipe(_ kind: TestBackend) throws {
        guard let backend = Backends.get(kind) else { return }
        let (batch, height, width) = (2, 6, 7)
        let param = ImageParameterization.fourier(decay: 1, decorrelated: true)
        let p = try param.initialParameters(batch: batch, height: height, width: width, seed: 5)
        let wf = width / 2 + 2
        #expect(p.shape == [batch, 3, height, wf, 2])
        // Bigger values than the 0.01 init so the sigmoid is not flat.
        let params = HostTensor(shape: p.shape, values: p.values.map { $0 * 30 })
        let g = Graph()
        let pid = try g.addInput("p", shape: params.shape)
        let x = try param.addToGraph(g, parameters: pid, height: height, width: width)
        let out = try backend.download(Executor(graph: g, backend: backend)
            .forward(feeds: [pid: backend.tensor(params)], targets: [x]).value(x))
        // Independent: lucid's rfft2d_freqs, scale, irfft2, crop, /4, decorrelate, sigmoid.
        let svd: [[Double]] = [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]]
        let maxNorm = (0..<3).map { k in sqrt(svd.map { $0[k] * $0[k] }.reduce(0, +)) }.max()!
        var expected = [Float](repeating: 0, count: batch * 3 * height * width)
        for n in 0..<batch {
            var channels: [[Double]] = []
            for c in 0..<3 {
                var spec = [Double](repeating: 0, count: height * wf * 2)
                for kh in 0..<height {
                    for kw in 0..<wf {
                        let fy = fftfreq(kh, height), fx = fftfreq(kw, width)
                        let f = max(sqrt(fx * fx + fy * fy), 1.0 / Double(max(width, height)))
                        let scale = 1 / f * sqrt(Double(width * height))
                        for ri in 0..<2 {
                            let i = ((((n * 3 + c) * height + kh) * wf + kw) * 2) + ri
                            spec[(kh * wf + kw) * 2 + ri] = Double(params.values[i]) * scale
                        }
                    }
                }
                channels.append(naiveIrfft2(spec, height: height, wf: wf, width: width).map { $0 / 4 })
            }
            for c in 0..<3 {
                for i in 0..<(height * width) {
                    let t = (0..<3).map { svd[c][$0] / maxNorm * channels[$0][i] }.reduce(0, +)
                    expected[(n * 3 + c) * height * width + i] = Float(1 / (1 + exp(-t)))
                }
            }
        }
        expectClose(out, HostTensor(shape: [batch, 3, height, width], values: expected), atol: 2e-6, rtol: 1e-5,
                    "Fourier image on \(backend.name)")
    }

    @Test(arguments: TestBackend.allCases)
    func parameterizationGradients(_ kind: TestBackend) throws {
        let cases: [(ImageParameterization, Int, Int, Float)] = [
            (.fourier(decay: 1, decorrelated: true), 6, 7, 30),
            (.fourier(decay: 0.75, decorrelated: false), 8, 8, 20),
            (.pixel(.sigmoid, decorrelated: true), 5, 9, 100),
            (.pixel(.sigmoid), 4, 6, 100),
        ]
        for (param, h, w, gain) in cases {
            let p = try param.initialParameters(batch: 2, height: h, width: w, seed: 9)
            let input = HostTensor(shape: p.shape, values: p.values.map { $0 * gain })
            try OpCase("parameterization", input: input) { g, x in try param.addToGraph(g, parameters: x, height: h, width: w) }
                .verify(on: kind, atol: 2e-5, rtol: 1e-4, fdSeed: 17, label: "\(param.kind) \(h)x\(w) decorrelated=\(param.decorrelated)")
        }
    }

    @Test func initialParametersAreSeededPerImage() throws {
        let fourier = ImageParameterization.fourier()
        let a = try fourier.initialParameters(batch: 3, size: 10, seed: 1)
        let b = try fourier.initialParameters(batch: 1, size: 10, seed: 1)
        #expect(Array(a.values.prefix(b.count)) == b.values)      // image 0 does not depend on the batch
        #expect(try fourier.initialParameters(batch: 1, size: 10, seed: 2).values != b.values)
        let sd = sqrt(a.values.map { $0 * $0 }.reduce(0, +) / Float(a.count))
        #expect(abs(sd - 0.01) < 0.001)
        let pixel = try ImageParameterization.pixel(.clamp).initialParameters(batch: 2, size: 8, seed: 1)
        #expect(pixel.shape == [2, 3, 8, 8] && pixel.values.allSatisfy { $0 >= 0 && $0 < 1 })
        #expect(throws: EngineError.self) { try ImageParameterization(kind: .fourier, squash: .clamp, decorrelated: true,
                                                                      initialization: .normal(sd: 0.01)).validate() }
    }

    // MARK: AffineWarp

    static let warpCases: [(name: String, input: [Int], op: AffineWarp)] = {
        let rot7 = AffineMatrix.rotation(7 * Double.pi / 180, aboutX: 5.5, y: 6.5)
        let scaled = AffineMatrix.translation(0.3, -0.4) * AffineMatrix.scaling(0.9, 1.1)
        let both = AffineMatrix.rotation(-7 * Double.pi / 180, aboutX: 4, y: 4) * AffineMatrix.scaling(1.1, 0.9)
        return [
            ("rotate 7° + scale, 13x11 → 9x14, pad 3", [2, 3, 13, 11],
             AffineWarp(matrices: [rot7, scaled], outputHeight: 9, outputWidth: 14, padding: 3, paddingValue: 0.5,
                        border: .constant(0.25))),
            ("shared matrix, no pad", [2, 3, 13, 11],
             AffineWarp(matrices: [both], outputHeight: 12, outputWidth: 10)),
            ("resize up, replicate", [2, 3, 13, 11], AffineWarp.resize(toHeight: 20, width: 17, from: 13, 11)),
            ("resize down, replicate", [2, 3, 13, 11], AffineWarp.resize(toHeight: 7, width: 5, from: 13, 11)),
            ("replicate with pad and rotation", [1, 2, 9, 10],
             AffineWarp(matrices: [rot7], outputHeight: 11, outputWidth: 8, padding: 1, paddingValue: 0.3, border: .replicate)),
            ("3 copies, per-copy matrices, 13x11 → 10x12", [2, 3, 13, 11],
             AffineWarp(matrices: (0..<6).map { AffineMatrix.rotation(Double($0) * 0.1, aboutX: 5, y: 6) * AffineMatrix.scaling(1.1, 0.9) },
                        outputHeight: 10, outputWidth: 12, padding: 2, paddingValue: 0.5, copies: 3)),
            ("replicate resize with 2 copies", [1, 2, 9, 10],
             AffineWarp(matrices: [.resize(fromHeight: 9, width: 10, toHeight: 14, width: 6)], outputHeight: 14, outputWidth: 6,
                        border: .replicate, copies: 2)),
            ("rotate 45°, scale 2.7 (downsampling)", [1, 2, 30, 26],
             AffineWarp(matrices: [AffineMatrix.rotation(Double.pi / 4, aboutX: 13, y: 15) * AffineMatrix.scaling(2.7, 2.7)],
                        outputHeight: 9, outputWidth: 11, padding: 2, paddingValue: 0.5)),
            ("shear, scale 0.3 (upsampling), replicate", [1, 2, 6, 5],
             AffineWarp(matrices: [AffineMatrix(a: 0.3, b: 0.12, c: -0.4, d: -0.05, e: 0.31, f: 0.2)],
                        outputHeight: 23, outputWidth: 19, border: .replicate)),
            ("32x32 power of two, rotate + scale 1.1", [1, 3, 32, 32],
             AffineWarp(matrices: [AffineMatrix.rotation(0.3, aboutX: 16, y: 16) * AffineMatrix.scaling(1.1, 1.1)],
                        outputHeight: 32, outputWidth: 32, padding: 4, paddingValue: 0.5)),
        ]
    }()

    @Test(arguments: TestBackend.allCases)
    func affineWarpGradients(_ kind: TestBackend) throws {
        var rng = SeededRandom(seed: 31)
        for c in Self.warpCases {
            let x = rng.tensor(c.input, 0.05, 1)
            try OpCase(c.op, [x]).verify(on: kind, atol: 1e-4, rtol: 1e-4)
            try reportMaxError(OpCase(c.op, [x]), "AffineWarp \(c.name)", on: kind)
        }
    }

    /// Exact cases: identity copy, integer shift into the pad band, a quarter turn, PyTorch's resize.
    @Test(arguments: TestBackend.allCases)
    func affineWarpForwardValues(_ kind: TestBackend) throws {
        guard let backend = Backends.get(kind) else { return }
        var rng = SeededRandom(seed: 32)
        let (h, w) = (5, 7)
        let x = rng.tensor([1, 2, h, w], 0.1, 1)
        func warp(_ op: AffineWarp, _ input: HostTensor) throws -> HostTensor {
            try backend.download(backend.run(op, backend.tensor(input)))
        }
        // Identity.
        expectClose(try warp(AffineWarp(matrices: [.identity], outputHeight: h, outputWidth: w), x), x, atol: 1e-6, "identity")
        // Shift by (−2, +1) into a pad band of 2 (value 0.5), fill 0.25 beyond.
        let shifted = try warp(AffineWarp(matrices: [.translation(-2, 1)], outputHeight: h, outputWidth: w + 1,
                                          padding: 2, paddingValue: 0.5, border: .constant(0.25)), x)
        var expected: [Float] = []
        for c in 0..<2 {
            for yo in 0..<h {
                for xo in 0..<(w + 1) {
                    let i = xo - 2, j = yo + 1
                    if i >= 0 && i < w && j >= 0 && j < h { expected.append(x.values[(c * h + j) * w + i]) }
                    else if i >= -2 && i < w + 2 && j >= -2 && j < h + 2 { expected.append(0.5) }
                    else { expected.append(0.25) }
                }
            }
        }
        expectClose(shifted, HostTensor(shape: [1, 2, h, w + 1], values: expected), atol: 1e-6, "integer shift with padding")
        // A quarter turn of a square image about its centre: out(xo, yo) = in(yo, n − 1 − xo) for R(90°).
        let sq = rng.tensor([1, 1, 6, 6], 0.1, 1)
        let turned = try warp(AffineWarp(matrices: [.rotation(Double.pi / 2, aboutX: 3, y: 3)], outputHeight: 6, outputWidth: 6), sq)
        var turnedExpected: [Float] = []
        for yo in 0..<6 { for xo in 0..<6 { turnedExpected.append(sq.values[xo * 6 + (5 - yo)]) } }
        expectClose(turned, HostTensor(shape: [1, 1, 6, 6], values: turnedExpected), atol: 1e-5, "quarter turn")
        // Resize as torch.nn.functional.interpolate(bilinear, align_corners=False).
        for (ho, wo) in [(9, 12), (3, 4)] {
            let resized = try warp(AffineWarp.resize(toHeight: ho, width: wo, from: h, w), x)
            var torch: [Float] = []
            func source(_ d: Int, _ inSize: Int, _ outSize: Int) -> (Int, Int, Double) {
                let s = max((Double(d) + 0.5) * Double(inSize) / Double(outSize) - 0.5, 0)
                let i0 = min(Int(s), inSize - 1)
                return (i0, min(i0 + 1, inSize - 1), s - Double(i0))
            }
            for c in 0..<2 {
                for yo in 0..<ho {
                    let (y0, y1, ly) = source(yo, h, ho)
                    for xo in 0..<wo {
                        let (x0, x1, lx) = source(xo, w, wo)
                        func v(_ j: Int, _ i: Int) -> Double { Double(x.values[(c * h + j) * w + i]) }
                        let top = (1 - lx) * v(y0, x0) + lx * v(y0, x1), bottom = (1 - lx) * v(y1, x0) + lx * v(y1, x1)
                        torch.append(Float((1 - ly) * top + ly * bottom))
                    }
                }
            }
            expectClose(resized, HostTensor(shape: [1, 2, ho, wo], values: torch), atol: 1e-5, "resize to \(ho)×\(wo) vs PyTorch")
        }
    }

    @Test func affineWarpRejectsBadAttributes() {
        #expect(throws: EngineError.self) {
            try AffineWarp(matrices: [.scaling(0, 1)], outputHeight: 4, outputWidth: 4).outputShape([[1, 3, 4, 4]])
        }
        #expect(throws: EngineError.self) {
            try AffineWarp(matrices: [.identity, .identity], outputHeight: 4, outputWidth: 4).outputShape([[3, 3, 4, 4]])
        }
    }

    // MARK: roll, regularizers, blur

    @Test(arguments: TestBackend.allCases)
    func rollMatchesTorchRoll(_ kind: TestBackend) throws {
        var rng = SeededRandom(seed: 41)
        let x = rng.tensor([2, 3, 5, 7])
        if let backend = Backends.get(kind) {
            let out = try backend.download(backend.run(Roll(shiftY: 2, shiftX: -9), backend.tensor(x)))
            var expected: [Float] = []
            for nc in 0..<6 { for i in 0..<5 { for j in 0..<7 {
                let si = ((i - 2) % 5 + 5) % 5, sj = ((j + 9) % 7 + 7) % 7
                expected.append(x.values[(nc * 5 + si) * 7 + sj])
            } } }
            #expect(out.values == expected)
        }
        for (shape, sy, sx) in [([2, 3, 5, 7], 2, -9), ([1, 3, 32, 32], -32, 31), ([4, 6], 1, 0), ([1, 1, 3, 13, 11], -4, 6)] {
            let c = OpCase(Roll(shiftY: sy, shiftX: sx), [rng.tensor(shape)])
            try c.verify(on: kind)
            try reportMaxError(c, "Roll \(shape) by (\(sy), \(sx))", on: kind)
        }
    }

    @Test(arguments: TestBackend.allCases)
    func channelAffine(_ kind: TestBackend) throws {
        var rng = SeededRandom(seed: 42)
        let x = rng.tensor([2, 3, 5, 7])
        let cases: [ChannelAffine] = [
            ChannelAffine(copies: 1, scale: [2, -1, 0.5], shift: [0.1, 0.2, -0.3]),
            ChannelAffine(copies: 3, scale: [2, -1, 0.5], shift: [0.1, 0.2, -0.3]),
            ChannelAffine(copies: 4, scale: (0..<24).map { Float($0) / 10 - 1 }, shift: (0..<24).map { Float($0) / 7 }),
        ]
        for op in cases {
            try OpCase(op, [x]).verify(on: kind)
            try reportMaxError(OpCase(op, [x]), "ChannelAffine copies \(op.copies), \(op.scale.count) scales", on: kind)
        }
        try OpCase(ChannelAffine(copies: 2, scale: [1.5, 0.5, -2], shift: [0, 1, 2]), [rng.tensor([1, 3, 32, 32])]).verify(on: kind)
        if let backend = Backends.get(kind) {
            let op = cases[2]
            let y = try backend.download(backend.run(op, backend.tensor(x)))
            #expect(y.shape == [8, 3, 5, 7])
            var expected: [Float] = []
            for r in 0..<8 { for c in 0..<3 { for q in 0..<35 {
                expected.append(op.scale[r * 3 + c] * x.values[((r / 4) * 3 + c) * 35 + q] + op.shift[r * 3 + c])
            } } }
            expectClose(y, HostTensor(shape: y.shape, values: expected), atol: 1e-6, "ChannelAffine with copies")
        }
        #expect(throws: EngineError.self) { try ChannelAffine(copies: 2, scale: [1, 1], shift: [0, 0]).outputShape([[1, 3, 2, 2]]) }
    }

    @Test(arguments: TestBackend.allCases)
    func neighborDifferences(_ kind: TestBackend) throws {
        var rng = SeededRandom(seed: 43)
        func spread(_ shape: [Int]) -> HostTensor {
            // Distinct values on a coarse grid: no difference is within the FD step of zero.
            var t = rng.tensor(shape)
            t.values = t.values.enumerated().map { i, v in Float((i * 37) % 101) / 101 + 0.001 * v }
            return t
        }
        for (shape, kinds, power) in [([2, 3, 13, 11], NeighborDifferences.Kind.allCases, 2),
                                      ([2, 3, 13, 11], [.horizontal, .vertical], 1),
                                      ([1, 2, 5, 4], [.antiDiagonal, .diagonal], 1),
                                      ([1, 3, 32, 32], NeighborDifferences.Kind.allCases, 2),
                                      ([1, 1, 2, 9], [.vertical, .antiDiagonal], 2)] {
            let c = OpCase(NeighborDifferences(kinds: kinds, power: power), [spread(shape)])
            try c.verify(on: kind)
            try reportMaxError(c, "NeighborDifferences \(shape) p=\(power) \(kinds.count) kinds", on: kind)
        }
    }

    @Test(arguments: TestBackend.allCases)
    func regularizerValues(_ kind: TestBackend) throws {
        guard let backend = Backends.get(kind) else { return }
        var rng = SeededRandom(seed: 51)
        let (n, c, h, w) = (2, 3, 5, 6)
        let x = rng.tensor([n, c, h, w], 0, 1)
        func at(_ b: Int, _ ch: Int, _ j: Int, _ i: Int) -> Double { Double(x.values[((b * c + ch) * h + j) * w + i]) }
        for r in [Regularizer(.tv, weight: 1), Regularizer(.tv2, weight: 1), Regularizer(.l1, weight: 1, center: 0.5),
                  Regularizer(.l2, weight: 1), Regularizer(.l2, weight: 1, center: 0.5)] {
            let g = Graph()
            let id = try g.addInput("x", shape: x.shape)
            let v = try r.addToGraph(g, image: id, name: "r")
            let out = try backend.download(Executor(graph: g, backend: backend).forward(feeds: [id: backend.tensor(x)], targets: [v]).value(v))
            var expected: [Float] = []
            for b in 0..<n {
                var total = 0.0
                switch r.kind {
                case .tv:
                    for ch in 0..<c { for j in 0..<h { for i in 0..<w {
                        if i + 1 < w { total += abs(at(b, ch, j, i + 1) - at(b, ch, j, i)) }
                        if j + 1 < h { total += abs(at(b, ch, j + 1, i) - at(b, ch, j, i)) }
                    } } }
                case .tv2:
                    for ch in 0..<c {
                        var sums = [0.0, 0.0, 0.0, 0.0]
                        for j in 0..<h { for i in 0..<w {
                            if i + 1 < w { sums[0] += pow(at(b, ch, j, i + 1) - at(b, ch, j, i), 2) }
                            if j + 1 < h { sums[1] += pow(at(b, ch, j + 1, i) - at(b, ch, j, i), 2) }
                            if i + 1 < w && j + 1 < h {
                                sums[2] += pow(at(b, ch, j + 1, i + 1) - at(b, ch, j, i), 2)
                                sums[3] += pow(at(b, ch, j + 1, i) - at(b, ch, j, i + 1), 2)
                            }
                        } }
                        total += sums.map { sqrt($0) }.reduce(0, +) / Double(c)
                    }
                case .l1:
                    for i in 0..<(c * h * w) { total += abs(Double(x.values[b * c * h * w + i]) - Double(r.center)) }
                case .l2:
                    for i in 0..<(c * h * w) { total += pow(Double(x.values[b * c * h * w + i]) - Double(r.center), 2) }
                    total = sqrt(total + 1e-6)
                }
                expected.append(Float(total))
            }
            expectClose(out, HostTensor(shape: [n], values: expected), atol: 1e-4, rtol: 1e-5, "\(r.kind) on \(backend.name)")
        }
    }

    @Test(arguments: TestBackend.allCases)
    func regularizerGradients(_ kind: TestBackend) throws {
        var rng = SeededRandom(seed: 52)
        var x = rng.tensor([2, 3, 7, 6], 0, 1)
        // Keep neighbours apart so |Δ| has no kink within the finite-difference step.
        x.values = x.values.enumerated().map { i, v in Float((i * 37) % 101) / 101 + 0.001 * v }
        let regs = [Regularizer(.tv, weight: 0.7), Regularizer(.tv2, weight: 1.3), Regularizer(.l1, weight: 0.2, center: -0.5),
                    Regularizer(.l2, weight: 2, center: 0.5)]
        for r in regs {
            try OpCase("regularizer", input: x) { g, v in try r.addToGraph(g, image: v, name: "r") }
                .verify(on: kind, fdSeed: 17, label: "regularizer \(r.kind)")
        }
        try OpCase("weighted regularizer sum", input: x) { g, v in
            guard let total = try addRegularizers(regs, to: g, image: v) else { throw EngineError.invalidGraph("no penalty") }
            return total
        }.verify(on: kind, fdSeed: 17, label: "weighted regularizer sum")
    }

    @Test(arguments: TestBackend.allCases)
    func blurStepMatchesLucidKernel(_ kind: TestBackend) throws {
        guard let backend = Backends.get(kind) else { return }
        var rng = SeededRandom(seed: 61)
        let (h, w) = (5, 4)
        let x = rng.tensor([2, 3, h, w], 0, 1)
        let t = try backend.tensor(x)
        try blurInPlace(t, amount: 0.3, on: backend)
        let out = try backend.download(t)
        var expected: [Float] = []
        for p in 0..<6 {
            for j in 0..<h {
                for i in 0..<w {
                    var s = 0.0, norm = 0.0
                    for jj in max(j - 1, 0)...min(j + 1, h - 1) {
                        for ii in max(i - 1, 0)...min(i + 1, w - 1) {
                            let k = (jj == j && ii == i) ? 1.0 : 0.5
                            s += k * Double(x.values[(p * h + jj) * w + ii]); norm += k
                        }
                    }
                    expected.append(Float(0.7 * Double(x.values[(p * h + j) * w + i]) + 0.3 * s / norm))
                }
            }
        }
        expectClose(out, HostTensor(shape: x.shape, values: expected), atol: 1e-6, "blur step on \(backend.name)")
        // A constant image is unchanged (edge-aware normalization).
        let flat = try backend.full([1, 3, 4, 4], value: 0.25)
        try blurInPlace(flat, amount: 1, on: backend)
        #expect(try backend.download(flat).values.allSatisfy { abs($0 - 0.25) < 1e-7 })
    }

    // MARK: optimizer

    /// Adam against the textbook formulas in Double for 3 steps: descent, ascent, cosine schedule.
    @Test(arguments: TestBackend.allCases)
    func adamMatchesHandComputation(_ kind: TestBackend) throws {
        guard let backend = Backends.get(kind) else { return }
        let p0: [Double] = [0.5, -0.3, 1.2, 0.0, 2.0]
        let grads: [[Double]] = [[0.1, -0.2, 0.3, 1e-3, -5], [0.05, 0.4, -0.3, 2e-3, -4], [-0.2, 0.1, 0.0, -1e-3, 3]]
        for config in [AdamConfig(learningRate: 0.05), AdamConfig(learningRate: 0.1, beta1: 0.5, beta2: 0.99, maximize: true),
                       AdamConfig(learningRate: 0.1, beta1: 0.5, beta2: 0.99, schedule: .cosine, maximize: false)] {
            let p = try backend.tensor(HostTensor(shape: [5], values: p0.map(Float.init)))
            let adam = try AdamOptimizer(config: config, parameterShape: [5], totalSteps: 3, backend: backend)
            var expected = p0, m = [Double](repeating: 0, count: 5), v = m
            let (b1, b2) = (Double(config.beta1), Double(config.beta2))
            for t in 1...3 {
                let g = grads[t - 1]
                try adam.step(parameters: p, gradient: backend.tensor(HostTensor(shape: [5], values: g.map(Float.init))))
                let lr = config.schedule == .cosine
                    ? Double(config.learningRate) * (1 + cos(Double.pi * Double(t - 1) / 3)) / 2 : Double(config.learningRate)
                for i in 0..<5 {
                    let gi = config.maximize ? -g[i] : g[i]
                    m[i] = b1 * m[i] + (1 - b1) * gi
                    v[i] = b2 * v[i] + (1 - b2) * gi * gi
                    let mHat = m[i] / (1 - pow(b1, Double(t))), vHat = v[i] / (1 - pow(b2, Double(t)))
                    expected[i] -= lr * mHat / (sqrt(vHat) + 1e-8)
                }
                expectClose(try backend.download(p), HostTensor(shape: [5], values: expected.map(Float.init)), atol: 2e-6, rtol: 1e-6,
                            "Adam step \(t) \(config) on \(backend.name)")
            }
            #expect(adam.stepCount == 3)
        }
        // First step of Adam moves every coordinate by ≈ lr in the gradient's direction (ascent).
        let q = try backend.tensor(HostTensor(shape: [2], values: [0, 0]))
        try AdamOptimizer(config: AdamConfig(learningRate: 0.1), parameterShape: [2], totalSteps: 10, backend: backend)
            .step(parameters: q, gradient: backend.tensor(HostTensor(shape: [2], values: [3, -0.5])))
        expectClose(try backend.download(q), HostTensor(shape: [2], values: [0.1, -0.1]), atol: 1e-6, "ascent direction")
    }

    @Test func cosineScheduleMatchesPyTorch() {
        let c = AdamConfig(learningRate: 0.1, schedule: .cosine)
        #expect(c.learningRate(atStep: 0, of: 400) == 0.1)
        #expect(abs(c.learningRate(atStep: 200, of: 400) - 0.05) < 1e-7)
        #expect(abs(c.learningRate(atStep: 400, of: 400)) < 1e-9)
        #expect(abs(c.learningRate(atStep: 100, of: 400) - Float(0.05 * (1 + cos(Double.pi / 4)))) < 1e-7)
        #expect(AdamConfig(learningRate: 0.05).learningRate(atStep: 77, of: 100) == 0.05)
    }

    @Test(arguments: TestBackend.allCases)
    func clampAndFiniteness(_ kind: TestBackend) throws {
        guard let backend = Backends.get(kind) else { return }
        let t = try backend.tensor(HostTensor(shape: [2, 3], values: [-1, 0.2, 1.5, 0.9, 2, -0.1]))
        try clampInPlace(t, on: backend)
        #expect(try backend.download(t).values == [0, 0.2, 1, 0.9, 1, 0])
        var rng = SeededRandom(seed: 71)
        var big = rng.tensor([3, 97, 101])
        #expect(try allFinite(backend.tensor(big), on: backend))
        for bad in [Float.nan, .infinity, -.infinity] {
            for position in [0, 12_345, big.count - 1] {
                var copy = big
                copy.values[position] = bad
                #expect(try !allFinite(backend.tensor(copy), on: backend), "\(bad) at \(position)")
            }
        }
        big.values[7] = .nan
        #expect(throws: EngineError.self) { try requireFinite(backend.tensor(big), "the image", step: 12, on: backend) }
    }

    // MARK: transforms

    static let model = ModelInputSpec(height: 20, width: 18, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225])

    @Test func transformsAreDeterministicPerSeed() throws {
        let cpu = Backends.cpu
        var rng = SeededRandom(seed: 81)
        let image = try cpu.tensor(rng.tensor([2, 3, 16, 16], 0, 1))
        var config = TransformConfig.lucidStandard
        config.copies = 2
        config.colorShift = 0.5
        config.noiseStd = 0.1
        config.roll = 3
        func output(seed: UInt64, step: Int) throws -> (HostTensor, TransformPipeline) {
            let p = try TransformPipeline(config: config, step: step, totalSteps: 10, seed: seed, batch: 2,
                                          imageHeight: 16, imageWidth: 16, model: Self.model)
            return (try cpu.download(p.forward(image, on: cpu, differentiable: false).output), p)
        }
        let (a, pa) = try output(seed: 1, step: 3)
        let (b, pb) = try output(seed: 1, step: 3)
        #expect(a.shape == [4, 3, 20, 18])
        #expect(a.values == b.values)
        #expect(pa.draws == pb.draws && pa.roll == pb.roll)
        let (c, pc) = try output(seed: 2, step: 3)
        let (d, _) = try output(seed: 1, step: 4)
        #expect(a.values != c.values && a.values != d.values)
        #expect(pa.draws != pc.draws)
        // Draws stay inside lucid's sets.
        for step in 0..<30 {
            let p = try TransformPipeline(config: .lucidStandard, step: step, totalSteps: 30, seed: 5, batch: 2,
                                          imageHeight: 16, imageWidth: 16, model: Self.model)
            for draw in p.draws {
                #expect((0...8).contains(draw.jitter.x) && (0...8).contains(draw.jitter.y))
                #expect((0...4).contains(draw.finalJitter.x) && (0...4).contains(draw.finalJitter.y))
                #expect(TransformConfig.lucidStandard.scales.contains(draw.scale))
                #expect(TransformConfig.lucidStandard.rotationsDegrees.contains(draw.degrees))
            }
        }
    }

    /// Without scale or rotation lucid's chain is pad → two integer crops: the composed warp must
    /// reproduce that crop exactly, including the pad band.
    @Test(arguments: TestBackend.allCases)
    func composedWarpEqualsPadAndCrops(_ kind: TestBackend) throws {
        guard let backend = Backends.get(kind) else { return }
        var rng = SeededRandom(seed: 82)
        let (h, w) = (9, 11)
        let x = rng.tensor([1, 3, h, w], 0, 1)
        let config = TransformConfig(padding: 3, paddingValue: 0.5, jitter: 4, finalJitter: 2)
        let out = (h + 6 - 4 - 2, w + 6 - 4 - 2)
        for step in 0..<4 {
            let p = try TransformPipeline(config: config, step: step, totalSteps: 4, seed: 9, batch: 1,
                                          imageHeight: h, imageWidth: w, model: ModelInputSpec(height: out.0, width: out.1))
            let y = try backend.download(p.forward(backend.tensor(x), on: backend, differentiable: false).output)
            let d = p.draws[0]
            var expected: [Float] = []
            for c in 0..<3 { for yo in 0..<out.0 { for xo in 0..<out.1 {
                let i = xo + d.finalJitter.x + d.jitter.x - 3, j = yo + d.finalJitter.y + d.jitter.y - 3
                expected.append(i >= 0 && i < w && j >= 0 && j < h ? x.values[(c * h + j) * w + i] : 0.5)
            } } }
            expectClose(y, HostTensor(shape: [1, 3, out.0, out.1], values: expected), atol: 1e-5, "pad + crops, step \(step)")
        }
    }

    /// Ghiasi's colour/noise/normalize map applied to a known image, and identity when everything is off.
    @Test func colorJitterNoiseAndNormalization() throws {
        let cpu = Backends.cpu
        var rng = SeededRandom(seed: 83)
        let x = rng.tensor([1, 3, 6, 6], 0, 1)
        let config = TransformConfig(copies: 3, colorShift: 1, colorScale: 1, noiseStd: 0.5)
        let spec = ModelInputSpec(height: 6, width: 6, mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3])
        let p = try TransformPipeline(config: config, step: 10, totalSteps: 40, seed: 3, batch: 1, imageHeight: 6, imageWidth: 6, model: spec)
        let y = try cpu.download(p.forward(cpu.tensor(x), on: cpu, differentiable: false).output)
        #expect(y.shape == [3, 3, 6, 6])
        var expected: [Float] = []
        for (k, d) in p.draws.enumerated() {
            #expect(d.copy == k)
            for c in 0..<3 {
                #expect(abs(d.colorShift[c]) <= 1 && d.colorScale[c] >= Float(exp(-1.0)) && d.colorScale[c] <= Float(exp(1.0)))
                for i in 0..<36 {
                    let jittered = (Double(x.values[c * 36 + i]) - Double(d.colorShift[c])) / Double(d.colorScale[c]) + Double(d.noise[c])
                    expected.append(Float((jittered - Double(spec.mean[c])) / Double(spec.std[c])))
                }
            }
        }
        expectClose(y, HostTensor(shape: y.shape, values: expected), atol: 1e-5, rtol: 1e-5, "colour jitter + noise + normalize")
        // Noise decays: its scale at step t is noiseStd·(T − 1 − t)/T; zero at the last step.
        let last = try TransformPipeline(config: config, step: 39, totalSteps: 40, seed: 3, batch: 1, imageHeight: 6, imageWidth: 6, model: spec)
        #expect(last.draws.allSatisfy { $0.noise == [0, 0, 0] })
        // Nothing enabled, same size, identity normalization: the output is the image.
        let none = try TransformPipeline(config: .none, step: 0, totalSteps: 1, seed: 0, batch: 1, imageHeight: 6, imageWidth: 6,
                                         model: ModelInputSpec(height: 6, width: 6))
        #expect(try cpu.download(none.forward(cpu.tensor(x), on: cpu).output) == x)
    }

    // MARK: end to end

    /// P → parameterization → X → transforms → model input, differentiated end to end.
    @Test(arguments: TestBackend.allCases)
    func endToEndImageSide(_ kind: TestBackend) throws {
        var lucid = TransformConfig.lucidStandard
        lucid.copies = 2
        let cases: [(String, ImageParameterization, TransformConfig, Int, ModelInputSpec, Float)] = [
            ("fourier + lucid", .fourier(), lucid, 16, ModelInputSpec(height: 13, width: 11, mean: [0.485, 0.456, 0.406],
                                                                       std: [0.229, 0.224, 0.225]), 40),
            ("pixel clamp + ghiasi", .pixel(.clamp), .ghiasiViT, 10, ModelInputSpec(height: 12, width: 12, mean: [0.5, 0.5, 0.5],
                                                                                     std: [0.5, 0.5, 0.5]), 1),
            ("pixel sigmoid + none", .pixel(.sigmoid, decorrelated: true), .none, 9, .imageNet(size: 9), 100),
        ]
        for (label, param, config, size, spec, gain) in cases {
            let p0 = try param.initialParameters(batch: 2, size: size, seed: 11)
            let input = HostTensor(shape: p0.shape, values: p0.values.map { $0 * gain })
            let build: (Graph, ValueID) throws -> ValueID = { g, pid in
                let x = try param.addToGraph(g, parameters: pid, height: size, width: size)
                return try TransformPipeline.addNodes(to: g, image: x, config: config, step: 5, totalSteps: 20, seed: 77,
                                                      model: spec).output
            }
            try OpCase("end to end \(label)", input: input, build: build).verify(on: kind, atol: 1e-4, rtol: 1e-4, fdSeed: 17,
                                                                             label: "end to end \(label)")
            // The class API (ImageGenerator + TransformPipeline) gives the same gradient as the single graph.
            guard let backend = Backends.get(kind) else { continue }
            var rng = SeededRandom(seed: 5)
            let gen = try ImageGenerator(parameterization: param, batch: 2, height: size, width: size,
                                         regularizers: [Regularizer(.tv2, weight: 0.01)], backend: backend)
            let pipeline = try TransformPipeline(config: config, step: 5, totalSteps: 20, seed: 77, batch: 2,
                                                 imageHeight: size, imageWidth: size, model: spec)
            let seed = rng.tensor(pipeline.graph.shape(of: pipeline.output))
            let params = try backend.tensor(input)
            let imagePass = try gen.forward(params)
            let tPass = try pipeline.forward(imagePass.image, on: backend)
            let dImage = try pipeline.backward(tPass, gradOutput: backend.tensor(seed))
            let dNoPenalty = try backend.download(gen.backward(imagePass, gradImage: dImage, penaltySeed: 0))
            let single = try OpCase("end to end \(label)", input: input, build: build).run(on: backend, seed: seed)
            expectClose(try backend.download(tPass.output), single.output, atol: 1e-6, "\(label): class API forward")
            expectClose(dNoPenalty, single.grads[0]!, atol: 1e-5, rtol: 1e-5, "\(label): class API gradient")
            // The penalty seed adds −∇(0.01·TV2).
            let imagePass2 = try gen.forward(params)
            let dPenalty = try backend.download(gen.backward(imagePass2, gradImage: nil, penaltySeed: -1))
            let dBoth = try backend.download(gen.backward(try gen.forward(params), gradImage: dImage, penaltySeed: -1))
            expectClose(dBoth, HostTensor(shape: dBoth.shape, values: zip(dNoPenalty.values, dPenalty.values).map { $0 + $1 }),
                        atol: 1e-5, rtol: 1e-5, "\(label): penalty gradient adds")
        }
    }

    // MARK: the loop, with a toy linear objective in place of a model

    /// J = Σ w ⊙ modelInput (w fixed): runs the image side of `steps` AM steps as the lead's loop will.
    static func toyRun(_ preset: AMPreset, size: Int, model: ModelInputSpec, steps: Int,
                       on backend: any Backend) throws -> (image: HostTensor, objectives: [Float]) {
        let batch = 2
        let gen = try ImageGenerator(parameterization: preset.parameterization, batch: batch, height: size, width: size,
                                     regularizers: preset.regularizers, backend: backend)
        let params = try backend.tensor(preset.parameterization.initialParameters(batch: batch, size: size, seed: 42))
        let adam = try AdamOptimizer(config: preset.optimizer, parameterShape: params.shape, totalSteps: steps, backend: backend)
        var rng = SeededRandom(seed: 3)
        let w = rng.tensor([batch * preset.transforms.copies, 3, model.height, model.width])
        let wDevice = try backend.tensor(w)
        var objectives: [Float] = []
        for step in 0..<steps {
            let imagePass = try gen.forward(params)                                  // X [N, 3, S, S], penalty [N]
            let pipeline = try TransformPipeline(config: preset.transforms, step: step, totalSteps: steps, seed: 42,
                                                 batch: batch, imageHeight: size, imageWidth: size, model: model)
            let t = try pipeline.forward(imagePass.image, on: backend)              // [N·copies, 3, H, W]
            let input = try backend.download(t.output)
            objectives.append(zip(input.values, w.values).map { $0 * $1 }.reduce(0, +))
            let dImage = try pipeline.backward(t, gradOutput: wDevice)               // dJ/dX
            let dParams = try gen.backward(imagePass, gradImage: dImage, penaltySeed: -1)   // d(J − R)/dP
            try requireFinite(dParams, "the gradient", step: step, on: backend)
            try adam.step(parameters: params, gradient: dParams)                      // ascent
            if preset.parameterization.squash == .clamp { try clampInPlace(params, on: backend) }
            if preset.blurAmount > 0 { try blurInPlace(params, amount: preset.blurAmount, on: backend) }
        }
        return (try gen.render(params), objectives)
    }

    @Test(arguments: TestBackend.allCases)
    func toyLoopClimbsAndBackendsAgree(_ kind: TestBackend) throws {
        guard let backend = Backends.get(kind) else { return }
        var cnn = AMPreset.cnnLucid
        cnn.imageSize = 16
        var vit = AMPreset.vitGhiasi
        vit.transforms.copies = 2
        vit.transforms.roll = 3
        vit.blurAmount = 0.1
        for (preset, size, model) in [(cnn, 16, ModelInputSpec.imageNet(size: 20)), (vit, 12, ModelInputSpec(height: 12, width: 12))] {
            let run = try Self.toyRun(preset, size: size, model: model, steps: 12, on: backend)
            #expect(run.image.values.allSatisfy { $0 >= 0 && $0 <= 1 })
            #expect(run.objectives.last! > run.objectives.first!, "\(preset.name): \(run.objectives)")
            if kind == .opencl {
                let cpu = try Self.toyRun(preset, size: size, model: model, steps: 12, on: Backends.cpu)
                print("amgpu-test: MAXERR \(preset.name) image after 12 toy steps: \(maxAbsDifference(run.image, cpu.image))")
                expectClose(run.image, cpu.image, atol: 2e-3, rtol: 0, "\(preset.name): OpenCL vs CPU image after 12 steps")
            } else {
                let again = try Self.toyRun(preset, size: size, model: model, steps: 12, on: backend)
                #expect(again.image == run.image, "same seed, same image on the CPU")
            }
        }
    }

    // MARK: presets

    @Test func presetsRoundTripAsJSON() throws {
        for preset in AMPreset.all {
            try preset.validate()
            let data = try JSONEncoder().encode(preset)
            #expect(try JSONDecoder().decode(AMPreset.self, from: data) == preset)
        }
        #expect(AMPreset.cnnLucid.parameterization.kind == .fourier && AMPreset.cnnLucid.steps == 512)
        #expect(AMPreset.cnnLucid.optimizer.learningRate == 0.05 && AMPreset.cnnLucid.imageSize == 128)
        #expect(AMPreset.cnnLucid.transforms.scales.count == 11 && AMPreset.cnnLucid.transforms.rotationsDegrees.count == 26)
        let vit = AMPreset.vitGhiasi
        #expect(vit.parameterization.squash == .clamp && vit.optimizer.beta1 == 0.5 && vit.optimizer.beta2 == 0.99)
        #expect(vit.optimizer.schedule == .cosine && vit.steps == 400 && vit.transforms.copies == 8 && vit.transforms.roll == 32)
        #expect(vit.regularizers.count == 1 && vit.regularizers[0].kind == .tv2 && vit.regularizers[0].weight == 5e-5)
        var custom = try AMPreset.named("vit")
        custom.optimizer.learningRate = 0.02
        custom.transforms.copies = 4
        #expect(try JSONDecoder().decode(AMPreset.self, from: JSONEncoder().encode(custom)) == custom)
        #expect(throws: EngineError.self) { try AMPreset.named("nope") }
        var bad = AMPreset.cnnLucid
        bad.blurAmount = 0.5
        #expect(throws: EngineError.self) { try bad.validate() }
    }
}
