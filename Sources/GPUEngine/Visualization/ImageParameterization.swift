import Foundation

/// How the optimized parameters P become an image X [N, 3, H, W] with values in [0, 1].
///
/// - `pixel` + `sigmoid`: X = σ(C·P) (C = lucid's decorrelation matrix when `decorrelated`, else I);
///   P: [N, 3, H, W]. lucid `param/spatial.py:pixel_image` + `param/color.py:to_valid_rgb`.
/// - `pixel` + `clamp`: X = P, and the loop clamps P to [0, 1] after every optimizer step
///   (`clampInPlace`), as Ghiasi et al.'s `Clip` post-augmentation. P: [N, 3, H, W].
/// - `fourier`: lucid's `fft_image` followed by `to_valid_rgb(decorrelate:, sigmoid: true)`:
///     S = P[..., 0] + i·P[..., 1],  P: [N, 3, H, Wf, 2] with Wf = W/2 + 1 (W even) or W/2 + 2 (W odd),
///     Ŝ[kh, kw] = S[kh, kw] · √(H·W) / max(f(kh, kw), 1/max(H, W))^decay,
///       f = √(fy² + fx²), fy = numpy fftfreq(H)[kh], fx = fftfreq(W)[kw] (only |f| matters),
///     Y = irfft2(Ŝ) [numpy/TF semantics, FFT length (H, 2(Wf − 1)), cropped to W columns] / 4,
///     X = σ(C·Y) with C = lucid's `color_correlation_svd_sqrt` / its largest column norm
///     (C = I when not `decorrelated`), applied per pixel to the 3 channels.
///   The inverse DFT is a product with constant cos/sin matrices along each axis (see
///   `addInverseRealDFT2D`), so forward and backward run on the device.
/// - `maco` (Fel et al. 2023; xplique `maco_image_parametrization`): only the phase is optimized,
///   P = φ [N, 3, H, Wf]; the magnitude M [3, H, Wf] is fixed (`MacoSpectrum`, from `macoSpectrum`
///   or the built-in natural-image profile):
///     Y = irfft2(M · e^{iφ})  [N, 3, H, W]  (same irfft2 as `fourier`),
///     Z = (Y − mean_n(Y)) / (std_n(Y) + 1e-5), mean and (population) std over each image's 3·H·W values,
///     X = σ(C·Z) (C as above when `decorrelated`, xplique's `recorrelate_colors`).
///   Differences from xplique: the phase itself is not standardized (xplique divides φ by its std
///   before use, which would scramble a photo's phase for `--init`), and the imaginary parts of the
///   kw = 0 and kw = W'/2 columns are dropped by irfft2 as in numpy/TF, so those two columns of
///   |rfft2(Y)| equal M only after Hermitian symmetrization; every other column equals M exactly.
///
/// Initialization (`initialParameters`): normal(0, sd = 0.01) as lucid, or uniform [lo, hi) as
/// Ghiasi's `torch.rand` init for pixel + clamp (MaCo: normal sd 1 as xplique), or a photo
/// (`photoParameters`). Image n of the batch draws from its own stream of the seed, so it does not
/// depend on the batch size.
public struct ImageParameterization: Codable, Equatable, Sendable {
    public enum Kind: String, Codable, Sendable, CaseIterable { case pixel, fourier, maco }
    public enum Squash: String, Codable, Sendable, CaseIterable { case sigmoid, clamp }
    public enum Initialization: Codable, Equatable, Sendable {
        /// Normal with mean 0 and standard deviation `sd`.
        case normal(sd: Float)
        /// Uniform in [low, high).
        case uniform(low: Float, high: Float)
        /// The photo at `path` (JPEG or PNG), centre-cropped to the image size, as `photoParameters`
        /// maps it, plus normal noise of standard deviation `noise` on the parameters.
        case photo(path: String, noise: Float)
    }

    public var kind: Kind
    public var squash: Squash
    /// Multiply the 3 channels by lucid's color-correlation square root before squashing.
    public var decorrelated: Bool
    /// Fourier only: spectrum scale 1/f^decay (lucid: 1).
    public var decay: Float
    public var initialization: Initialization
    /// MaCo only: the .npy magnitude spectrum [3, H, Wf] (`amgpu maco-spectrum`); nil = built-in profile.
    public var macoSpectrum: String?

    public init(kind: Kind, squash: Squash, decorrelated: Bool, decay: Float = 1, initialization: Initialization,
                macoSpectrum: String? = nil) {
        self.kind = kind
        self.squash = squash
        self.decorrelated = decorrelated
        self.decay = decay
        self.initialization = initialization
        self.macoSpectrum = macoSpectrum
    }

    /// Pixel parameterization. With `.clamp` the default init is uniform [0, 1) (Ghiasi), else normal sd 0.01 (lucid).
    public static func pixel(_ squash: Squash = .sigmoid, decorrelated: Bool = false,
                             initialization: Initialization? = nil) -> ImageParameterization {
        ImageParameterization(kind: .pixel, squash: squash, decorrelated: decorrelated, decay: 1,
                              initialization: initialization ?? (squash == .clamp ? .uniform(low: 0, high: 1) : .normal(sd: 0.01)))
    }

    /// lucid's default: Fourier, 1/f scaling with `decay`, decorrelated colour, sigmoid, init sd 0.01.
    public static func fourier(decay: Float = 1, decorrelated: Bool = true, sd: Float = 0.01) -> ImageParameterization {
        ImageParameterization(kind: .fourier, squash: .sigmoid, decorrelated: decorrelated, decay: decay,
                              initialization: .normal(sd: sd))
    }

    /// MaCo (xplique's recipe): phase init normal sd 1, decorrelated colour, sigmoid; `spectrum` nil = built-in.
    public static func maco(spectrum: String? = nil, decorrelated: Bool = true, sd: Float = 1) -> ImageParameterization {
        ImageParameterization(kind: .maco, squash: .sigmoid, decorrelated: decorrelated, decay: 1,
                              initialization: .normal(sd: sd), macoSpectrum: spectrum)
    }

    /// Throws for combinations that have no meaning.
    public func validate() throws {
        if kind == .maco && squash == .clamp {
            throw EngineError.invalidAttribute("the MaCo parameterization needs the sigmoid squash; set \(SettingName.parameterization.mention) to pixel for clamp")
        }
        if kind == .fourier && squash == .clamp {
            throw EngineError.invalidAttribute("the Fourier parameterization needs the sigmoid squash (clamping a spectrum does not bound the image); set \(SettingName.parameterization.mention) to pixel for clamp")
        }
        if squash == .clamp && decorrelated {
            throw EngineError.invalidAttribute("pixel + clamp works on the image itself and cannot be decorrelated; drop decorrelation or use the sigmoid squash")
        }
        if !(decay.isFinite && decay >= 0) {
            throw EngineError.invalidAttribute("Fourier decay must be a finite number ≥ 0, got \(decay)")
        }
        switch initialization {
        case .normal(let sd):
            guard sd.isFinite && sd >= 0 else { throw EngineError.invalidAttribute("init sd must be finite and ≥ 0, got \(sd)") }
        case .uniform(let lo, let hi):
            guard lo.isFinite && hi.isFinite && lo <= hi else {
                throw EngineError.invalidAttribute("uniform init needs finite low ≤ high, got [\(lo), \(hi))")
            }
        case .photo(_, let noise):
            guard noise.isFinite && noise >= 0 else { throw EngineError.invalidAttribute("init noise must be finite and ≥ 0, got \(noise)") }
        }
    }

    /// The parameter tensor's shape for a batch of `batch` images of height × width.
    public func parameterShape(batch: Int, height: Int, width: Int) -> [Int] {
        switch kind {
        case .pixel: return [batch, 3, height, width]
        case .fourier: return [batch, 3, height, FourierBasis.spectrumWidth(width), 2]
        case .maco: return [batch, 3, height, FourierBasis.spectrumWidth(width)]
        }
    }

    /// Starting parameters for square images of `size` (see `initialParameters(batch:height:width:seed:)`).
    public func initialParameters(batch: Int, size: Int, seed: UInt64) throws -> HostTensor {
        try initialParameters(batch: batch, height: size, width: size, seed: seed)
    }

    /// Starting parameters: image n draws its values, in row-major order, from stream (seed, "init", n).
    public func initialParameters(batch: Int, height: Int, width: Int, seed: UInt64) throws -> HostTensor {
        try validate()
        try validateSize(batch: batch, height: height, width: width)
        let shape = parameterShape(batch: batch, height: height, width: width)
        let perImage = shape.dropFirst().reduce(1, *)
        var values = [Float](repeating: 0, count: batch * perImage)
        var photo: [Float]? = nil
        if case .photo(let path, _) = initialization {
            let image = try ImageFile.read(path)
            photo = try photoParameters(ImagePreprocessing.centerCrop(image, height: height, width: width, cropFraction: 1).tensor())
        }
        for n in 0..<batch {
            var rng = RandomSource(seed: seed, stream: [0x1417, UInt64(n)])
            for i in 0..<perImage {
                switch initialization {
                case .normal(let sd): values[n * perImage + i] = Float(rng.normal() * Double(sd))
                case .uniform(let lo, let hi): values[n * perImage + i] = Float(rng.uniform(Double(lo), Double(hi)))
                case .photo(_, let noise):
                    values[n * perImage + i] = (photo?[i] ?? 0) + (noise > 0 ? Float(rng.normal() * Double(noise)) : 0)
                }
            }
        }
        return HostTensor(shape: shape, values: values)
    }

    func validateSize(batch: Int, height: Int, width: Int) throws {
        guard batch >= 1, height >= 2, width >= 2 else {
            throw EngineError.invalidAttribute("image batch and size must be ≥ 1 and ≥ 2×2, got batch \(batch), \(height)×\(width)")
        }
    }

    /// Adds the map P → X to `graph`. `parameters` must have `parameterShape(batch:height:width:)`;
    /// the result is X [N, 3, height, width]. Constants are named "`name`.…".
    public func addToGraph(_ graph: Graph, parameters: ValueID, height: Int, width: Int,
                           name: String = "image") throws -> ValueID {
        try validate()
        let shape = graph.shape(of: parameters)
        guard let batch = shape.first else { throw EngineError.shapeMismatch("image parameters must not be a scalar") }
        try validateSize(batch: batch, height: height, width: width)
        let expected = parameterShape(batch: batch, height: height, width: width)
        guard shape == expected else {
            throw EngineError.shapeMismatch("\(kind) parameters for \(batch) image(s) of \(height)×\(width) must have shape \(expected), got \(shape)")
        }
        var y: ValueID
        switch kind {
        case .pixel:
            if squash == .clamp { return parameters }
            y = parameters
        case .fourier:
            let scale = FourierBasis.spectrumScale(height: height, width: width, decay: Double(decay))
            let scaleID = try graph.addConstant("\(name).spectrum_scale", scale)
            let scaled = try graph.add(Binary(.mul), [parameters, scaleID], name: "\(name).scaled_spectrum")
            y = try addInverseRealDFT2D(graph, spectrum: scaled, height: height, width: width, name: "\(name).irfft2")
        case .maco:
            let magnitude = try MacoSpectrum.magnitude(path: macoSpectrum, height: height, width: width)
            let raw = try addMacoImage(graph, phase: parameters, magnitude: magnitude, height: height, width: width, name: name)
            y = try addPerImageStandardization(graph, raw, name: "\(name).standardized")
        }
        if decorrelated {
            let c = try graph.addConstant("\(name).color_matrix", HostTensor(shape: [3, 3], values: ColorDecorrelation.normalizedMatrix))
            let flat = try graph.add(Reshape(shape: [batch, 3, height * width]), [y], name: "\(name).flat")
            let mixed = try graph.add(MatMul(), [c, flat], name: "\(name).decorrelated")
            y = try graph.add(Reshape(shape: [batch, 3, height, width]), [mixed], name: "\(name).rgb")
        }
        return try graph.add(Unary(.sigmoid), [y], name: "\(name).sigmoid")
    }
}

extension ImageParameterization {
    /// 0.4 of an 8-bit step: photos are clipped to [ε, 1 − ε] before the logit, so σ(logit(x)) rounds
    /// to the same 8-bit value as x and the logits stay within ±6.5.
    public static let photoEpsilon: Float = 0.4 / 255

    /// The parameters (one image, without the batch axis) whose image is the photo x [1, 3, H, W] in [0, 1]:
    /// - pixel + clamp: P = x;
    /// - pixel + sigmoid: P = C⁻¹·logit(x̂), x̂ = clip(x, ε, 1 − ε) (C = I when not decorrelated);
    /// - fourier: P = rfft2(C⁻¹·logit(x̂)) / scale (`RealDFT2D`, scale = `FourierBasis.spectrumScale`,
    ///   which includes lucid's /4), as (re, im) pairs, so that the image at step 0 is x̂;
    /// - maco: P = arg rfft2(C⁻¹·logit(x̂)), the photo's phase; its magnitude is replaced by M, so the
    ///   image at step 0 keeps the photo's layout and edges but not its exact colours and contrast.
    public func photoParameters(_ photo: HostTensor) throws -> [Float] {
        guard photo.shape.count == 4, photo.shape[0] == 1, photo.shape[1] == 3 else {
            throw EngineError.shapeMismatch("an init photo must be a [1, 3, H, W] tensor, got \(photo.shape)")
        }
        let height = photo.shape[2], width = photo.shape[3], plane = height * width
        guard photo.values.allSatisfy({ $0.isFinite }) else { throw EngineError.invalidInput("the init photo holds NaN or infinite values") }
        if kind == .pixel && squash == .clamp { return photo.values.map { min(max($0, 0), 1) } }
        let eps = Double(Self.photoEpsilon)
        var t = photo.values.map { v -> Double in
            let x = min(max(Double(v), eps), 1 - eps)
            return DeterministicMath.log(x / (1 - x))
        }
        if decorrelated { t = ColorDecorrelation.decorrelate(t, plane: plane) }
        switch kind {
        case .pixel:
            return t.map(Float.init)
        case .fourier, .maco:
            let dft = RealDFT2D(height: height, width: width)
            let wf = dft.wf
            let scale = FourierBasis.spectrumScale(height: height, width: width, decay: Double(decay)).values
            var out = [Float](repeating: 0, count: 3 * height * wf * (kind == .fourier ? 2 : 1))
            for c in 0..<3 {
                let (re, im) = dft.forward(Array(t[(c * plane)..<((c + 1) * plane)]))
                for i in 0..<(height * wf) {
                    if kind == .fourier {
                        out[(c * height * wf + i) * 2] = Float(re[i] / Double(scale[i]))
                        out[(c * height * wf + i) * 2 + 1] = Float(im[i] / Double(scale[i]))
                    } else {
                        out[c * height * wf + i] = Float(atan2(im[i], re[i]))
                    }
                }
            }
            return out
        }
    }
}

/// MaCo's image before standardization: Y = irfft2(M · e^{iφ}) for phases φ [N, 3, H, Wf] and a fixed
/// magnitude M [3, H, Wf]: re = M·cos φ, im = M·sin φ, stacked to [N, 3, H, Wf, 2], then
/// `addInverseRealDFT2D`. Result [N, 3, H, W]. Backward: dφ = M·(−sin φ·dre + cos φ·dim), by the graph.
public func addMacoImage(_ graph: Graph, phase: ValueID, magnitude: HostTensor, height: Int, width: Int,
                         name: String) throws -> ValueID {
    let shape = graph.shape(of: phase)
    let wf = FourierBasis.spectrumWidth(width)
    guard shape.count == 4, shape[1] == 3, shape[2] == height, shape[3] == wf, magnitude.shape == [3, height, wf] else {
        throw EngineError.shapeMismatch("MaCo needs phases [N, 3, \(height), \(wf)] and a magnitude [3, \(height), \(wf)], got \(shape) and \(magnitude.shape)")
    }
    let m = try graph.addConstant("\(name).maco_magnitude", magnitude)
    let cosine = try graph.add(Unary(.cos), [phase], name: "\(name).cos_phase")
    let sine = try graph.add(Unary(.sin), [phase], name: "\(name).sin_phase")
    let re = try graph.add(Binary(.mul), [cosine, m], name: "\(name).spectrum_re")
    let im = try graph.add(Binary(.mul), [sine, m], name: "\(name).spectrum_im")
    let re5 = try graph.add(Reshape(shape: shape + [1]), [re], name: "\(name).spectrum_re5")
    let im5 = try graph.add(Reshape(shape: shape + [1]), [im], name: "\(name).spectrum_im5")
    let spectrum = try graph.add(Concat(axis: -1), [re5, im5], name: "\(name).spectrum")
    return try addInverseRealDFT2D(graph, spectrum: spectrum, height: height, width: width, name: "\(name).irfft2")
}

/// z = (y − mean) / (std + 1e-5) per image of y [N, ...]: mean and population std over all axes but the first.
public func addPerImageStandardization(_ graph: Graph, _ y: ValueID, name: String) throws -> ValueID {
    let rank = graph.shape(of: y).count
    guard rank >= 2 else { throw EngineError.shapeMismatch("per-image standardization needs [N, ...], got \(graph.shape(of: y))") }
    let axes = Array(1..<rank)
    let mean = try graph.add(Reduce(.mean, axes: axes, keepDims: true), [y], name: "\(name).mean")
    let centred = try graph.add(Binary(.sub), [y, mean], name: "\(name).centred")
    let square = try graph.add(Unary(.square), [centred], name: "\(name).square")
    let variance = try graph.add(Reduce(.mean, axes: axes, keepDims: true), [square], name: "\(name).variance")
    let std = try graph.add(Unary(.sqrt), [variance], name: "\(name).std")
    let denominator = try graph.add(Unary(.affine, alpha: 1, beta: 1e-5), [std], name: "\(name).denominator")
    return try graph.add(Binary(.div), [centred, denominator], name: name)
}

/// lucid's colour decorrelation (`param/color.py`): the square root of ImageNet's colour
/// correlation, divided by its largest column norm. rgb[c] = Σ_k M[c][k] · t[k].
public enum ColorDecorrelation {
    public static let svdSqrt: [[Double]] = [[0.26, 0.09, 0.02],
                                             [0.27, 0.00, -0.05],
                                             [0.27, -0.09, 0.03]]

    /// M / max_k ‖M[:, k]‖, row-major [3, 3].
    public static let normalizedMatrix: [Float] = {
        var maxNorm = 0.0
        for k in 0..<3 {
            let norm = (0..<3).map { svdSqrt[$0][k] * svdSqrt[$0][k] }.reduce(0, +).squareRoot()
            maxNorm = max(maxNorm, norm)
        }
        return (0..<9).map { Float(svdSqrt[$0 / 3][$0 % 3] / maxNorm) }
    }()
}

/// Constants of lucid's Fourier parameterization and of the inverse real DFT.
public enum FourierBasis {
    /// Number of stored frequencies along the width (lucid `rfft2d_freqs`): W/2 + 1, or W/2 + 2 for odd W.
    public static func spectrumWidth(_ width: Int) -> Int {
        width % 2 == 1 ? width / 2 + 2 : width / 2 + 1
    }

    /// |numpy.fft.fftfreq(n)[k]| = min(k, n − k)/n.
    static func frequency(_ k: Int, _ n: Int) -> Double {
        Double(min(k, n - k)) / Double(n)
    }

    /// lucid's scale √(H·W) / max(f, 1/max(H, W))^decay with the final /4 folded in: [H, Wf, 1].
    public static func spectrumScale(height: Int, width: Int, decay: Double) -> HostTensor {
        let wf = spectrumWidth(width)
        var values = [Float](repeating: 0, count: height * wf)
        let floor = 1.0 / Double(max(height, width))
        let root = (Double(height) * Double(width)).squareRoot()
        for kh in 0..<height {
            for kw in 0..<wf {
                let fy = frequency(kh, height), fx = frequency(kw, width)
                let f = max((fx * fx + fy * fy).squareRoot(), floor)
                let power = decay == 1 ? f : DeterministicMath.exp(decay * DeterministicMath.log(f))
                values[kh * wf + kw] = Float(root / power / 4)
            }
        }
        return HostTensor(shape: [height, wf, 1], values: values)
    }

    /// Width-axis matrices [2·Wf, W] for spectra stored as (re, im) pairs. With W' = 2(Wf − 1),
    /// θ = 2π·kw·w/W', c = 1 for kw ∈ {0, Wf − 1} else 2:
    ///   U: row 2kw (re) = c·cos θ / W', row 2kw+1 (im) = −c·sin θ / W'
    ///   V: row 2kw (re) = c·sin θ / W', row 2kw+1 (im) =  c·cos θ / W'
    /// so that U = Re, V = Im of Σ_kw c/W'·S[kh, kw]·e^{iθ}.
    static func widthMatrices(spectrumWidth wf: Int, width: Int) -> (u: HostTensor, v: HostTensor) {
        let fftLength = 2 * (wf - 1)
        var u = [Float](repeating: 0, count: 2 * wf * width), v = u
        for kw in 0..<wf {
            let c = (kw == 0 || kw == wf - 1) ? 1.0 : 2.0
            for w in 0..<width {
                let angle = 2 * DeterministicMath.pi * Double((kw * w) % fftLength) / Double(fftLength)
                let cb = Float(c * DeterministicMath.cos(angle) / Double(fftLength))
                let sb = Float(c * DeterministicMath.sin(angle) / Double(fftLength))
                u[(2 * kw) * width + w] = cb
                u[(2 * kw + 1) * width + w] = -sb
                v[(2 * kw) * width + w] = sb
                v[(2 * kw + 1) * width + w] = cb
            }
        }
        return (HostTensor(shape: [2 * wf, width], values: u), HostTensor(shape: [2 * wf, width], values: v))
    }

    /// Height-axis matrices [H, H]: C[h, kh] = cos(2π·kh·h/H)/H and S[h, kh] = −sin(2π·kh·h/H)/H.
    static func heightMatrices(height: Int) -> (cos: HostTensor, negativeSin: HostTensor) {
        var c = [Float](repeating: 0, count: height * height), s = c
        for h in 0..<height {
            for kh in 0..<height {
                let angle = 2 * DeterministicMath.pi * Double((kh * h) % height) / Double(height)
                c[h * height + kh] = Float(DeterministicMath.cos(angle) / Double(height))
                s[h * height + kh] = Float(-DeterministicMath.sin(angle) / Double(height))
            }
        }
        return (HostTensor(shape: [height, height], values: c), HostTensor(shape: [height, height], values: s))
    }
}

/// Adds y = irfft2(S) to `graph` with numpy/TF semantics: `spectrum` [..., H, Wf, 2] holds
/// (re, im) of S[kh, kw]; the FFT length is (H, W' = 2(Wf − 1)) and the result keeps the first
/// `width` ≤ W' columns: y [..., H, width] with
///   y[h, w] = Σ_kh Σ_kw c_kw/(H·W') · Re(S[kh, kw] · e^{2πi(kh·h/H + kw·w/W')}),
/// c_kw = 1 for kw = 0 and kw = W'/2, else 2 (the imaginary parts there are ignored, as c2r does).
/// Computed separably with constant matrices: along the width U = S·Mu, V = S·Mv (the real and
/// imaginary parts of the inverse transform of each row), then along the height
/// y = C·U + (−S)·V. Four products and one add, no data movement.
public func addInverseRealDFT2D(_ graph: Graph, spectrum: ValueID, height: Int, width: Int,
                                name: String) throws -> ValueID {
    let shape = graph.shape(of: spectrum)
    guard shape.count >= 3, shape[shape.count - 1] == 2, shape[shape.count - 3] == height else {
        throw EngineError.shapeMismatch("irfft2 needs a spectrum [..., \(height), Wf, 2], got \(shape)")
    }
    let wf = shape[shape.count - 2]
    guard wf >= 2, width >= 1, width <= 2 * (wf - 1) else {
        throw EngineError.shapeMismatch("irfft2: \(wf) stored frequencies give at most \(2 * max(wf - 1, 0)) columns, asked for \(width)")
    }
    let leading = Array(shape.dropLast(3))
    let (mu, mv) = FourierBasis.widthMatrices(spectrumWidth: wf, width: width)
    let (mc, ms) = FourierBasis.heightMatrices(height: height)
    let muID = try graph.addConstant("\(name).width_re", mu)
    let mvID = try graph.addConstant("\(name).width_im", mv)
    let mcID = try graph.addConstant("\(name).height_cos", mc)
    let msID = try graph.addConstant("\(name).height_negsin", ms)
    let rows = try graph.add(Reshape(shape: leading + [height, 2 * wf]), [spectrum], name: "\(name).rows")
    let u = try graph.add(MatMul(), [rows, muID], name: "\(name).width_re_pass")     // [..., H, W]
    let v = try graph.add(MatMul(), [rows, mvID], name: "\(name).width_im_pass")     // [..., H, W]
    let cu = try graph.add(MatMul(), [mcID, u], name: "\(name).height_cos_pass")     // [..., H, W]
    let sv = try graph.add(MatMul(), [msID, v], name: "\(name).height_sin_pass")     // [..., H, W]
    return try graph.add(Binary(.add), [cu, sv], name: "\(name).image")
}
