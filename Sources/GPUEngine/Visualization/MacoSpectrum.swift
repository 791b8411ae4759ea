import Foundation

/// The fixed magnitude spectrum M of MaCo (Fel et al. 2023, "Unlocking feature visualization for deeper
/// networks with magnitude constrained optimization"; xplique `maco`), and the host-side real DFT that
/// `--init PHOTO` and `amgpu maco-spectrum` use.
///
/// M has shape [3, H, Wf] (Wf = `FourierBasis.spectrumWidth(W)`, the same layout as the Fourier
/// parameterization's spectrum) and holds, per channel of the *decorrelated* colour space
/// t = C⁻¹·x (C = `ColorDecorrelation.normalizedMatrix`), the mean modulus of the photos' 2-D real DFT
///   M[c, kh, kw] = mean_photos |Σ_h Σ_w t[c, h, w] · e^{−2πi(kh·h/H + kw·w/W')}|,  W' = 2(Wf − 1)
/// (for odd W the photo is extended by repeating its last column to W' = W + 1 columns).
///
/// Sources:
/// - a file (`--maco-spectrum FILE`): an .npy [3, H, Wf] float32 written by `amgpu maco-spectrum` at the
///   image size (it must match; no resampling);
/// - the built-in default: `MacoDefaultProfile`, a radial profile per channel (mean M over rings of
///   equal spatial frequency f = √(fy² + fx²) cycles/pixel, orthonormal scaling M/√(H·W')) made by
///   `scripts/maco-default-spectrum` from 500 ImageNet photos at 128 px; evaluated at any size as
///   M[c, kh, kw] = profile_c(f(kh, kw)) · √(H·W') with linear interpolation between ring centres.
public enum MacoSpectrum {
    /// The magnitude [3, H, Wf] for images of height × width: from the .npy at `path`, else the built-in profile.
    public static func magnitude(path: String?, height: Int, width: Int) throws -> HostTensor {
        let wf = FourierBasis.spectrumWidth(width)
        guard let path else { return builtin(height: height, width: width) }
        let t: HostTensor
        do { t = try NPYFile.read(path) } catch {
            throw EngineError.io("cannot read the MaCo spectrum '\(path)': \(error); write one with `amgpu maco-spectrum --images DIR --size S --out FILE.npy`")
        }
        guard t.shape == [3, height, wf] else {
            throw EngineError.invalidInput("the MaCo spectrum '\(path)' has shape \(t.shape), but \(height)×\(width) images need [3, \(height), \(wf)]; estimate one at this size with `amgpu maco-spectrum --size \(height)`")
        }
        guard t.values.allSatisfy({ $0.isFinite && $0 >= 0 }), t.values.contains(where: { $0 > 0 }) else {
            throw EngineError.invalidInput("the MaCo spectrum '\(path)' must hold finite magnitudes ≥ 0, not all zero")
        }
        return t
    }

    /// The built-in spectrum at height × width (see the type's comment).
    public static func builtin(height: Int, width: Int) -> HostTensor {
        let wf = FourierBasis.spectrumWidth(width)
        let wp = 2 * (wf - 1)
        let root = (Double(height) * Double(wp)).squareRoot()
        var values = [Float](repeating: 0, count: 3 * height * wf)
        for c in 0..<3 {
            for kh in 0..<height {
                for kw in 0..<wf {
                    let fy = FourierBasis.frequency(kh, height), fx = FourierBasis.frequency(kw, wp)
                    let f = (fy * fy + fx * fx).squareRoot()
                    values[(c * height + kh) * wf + kw] = Float(profile(channel: c, frequency: f) * root)
                }
            }
        }
        return HostTensor(shape: [3, height, wf], values: values)
    }

    /// The built-in radial profile of channel `c` at frequency f (cycles/pixel): the DC value at f = 0,
    /// else linear interpolation between ring centres (i + ½)·Δ, Δ = (√½)/R, clamped at the ends.
    static func profile(channel c: Int, frequency f: Double) -> Double {
        if f == 0 { return MacoDefaultProfile.dc[c] }
        let rings = MacoDefaultProfile.rings[c]
        let delta = 0.5.squareRoot() / Double(rings.count)
        let position = f / delta - 0.5
        if position <= 0 { return rings[0] }
        let i = Int(position)
        if i >= rings.count - 1 { return rings[rings.count - 1] }
        let a = position - Double(i)
        return rings[i] * (1 - a) + rings[i + 1] * a
    }

    /// Mean |rfft2| of the photos in the decorrelated colour space, [3, size, Wf]: each photo is
    /// centre-cropped (shorter side resized to `size`) to size × size first.
    public static func estimate(_ photos: [RGBImage], size: Int) throws -> HostTensor {
        guard !photos.isEmpty else { throw EngineError.invalidInput("estimating a MaCo spectrum needs at least one photo") }
        guard size >= 2, size <= 1024 else { throw EngineError.invalidAttribute("the spectrum size must lie in 2...1024, got \(size)") }
        let wf = FourierBasis.spectrumWidth(size)
        let dft = RealDFT2D(height: size, width: size)
        var sums = [Double](repeating: 0, count: 3 * size * wf)
        for photo in photos {
            let x = ImagePreprocessing.centerCrop(photo, size: size, cropFraction: 1).tensor()
            let t = ColorDecorrelation.decorrelate(x.values.map(Double.init), plane: size * size)
            for c in 0..<3 {
                let (re, im) = dft.forward(Array(t[(c * size * size)..<((c + 1) * size * size)]))
                for i in 0..<(size * wf) { sums[c * size * wf + i] += (re[i] * re[i] + im[i] * im[i]).squareRoot() }
            }
        }
        return HostTensor(shape: [3, size, wf], values: sums.map { Float($0 / Double(photos.count)) })
    }
}

extension ColorDecorrelation {
    /// C⁻¹ (row-major [3, 3]) in Double, so that t = C⁻¹·rgb undoes rgb = C·t.
    public static let inverseMatrix: [Double] = {
        let m = normalizedMatrix.map(Double.init)
        let det = m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6]) + m[2] * (m[3] * m[7] - m[4] * m[6])
        let cof: [Double] = [
            m[4] * m[8] - m[5] * m[7], m[2] * m[7] - m[1] * m[8], m[1] * m[5] - m[2] * m[4],
            m[5] * m[6] - m[3] * m[8], m[0] * m[8] - m[2] * m[6], m[2] * m[3] - m[0] * m[5],
            m[3] * m[7] - m[4] * m[6], m[1] * m[6] - m[0] * m[7], m[0] * m[4] - m[1] * m[3],
        ]
        return cof.map { $0 / det }
    }()

    /// t[c] = Σ_k C⁻¹[c][k] · v[k] for every pixel of a [3, plane] array.
    static func decorrelate(_ v: [Double], plane: Int) -> [Double] {
        var out = [Double](repeating: 0, count: 3 * plane)
        for i in 0..<plane {
            for c in 0..<3 {
                out[c * plane + i] = (0..<3).map { inverseMatrix[c * 3 + $0] * v[$0 * plane + i] }.reduce(0, +)
            }
        }
        return out
    }
}

/// The forward real 2-D DFT on the host, in the layout of `addInverseRealDFT2D`: for a real plane
/// y [H, W], S [H, Wf] (Wf = `FourierBasis.spectrumWidth(W)`, W' = 2(Wf − 1)) with
///   S[kh, kw] = Σ_h Σ_w' ỹ[h, w'] · e^{−2πi(kh·h/H + kw·w'/W')},
/// ỹ = y extended to W' columns by repeating its last column (W' = W + 1 for odd W, else ỹ = y).
/// Then `addInverseRealDFT2D` of S gives back y exactly (up to rounding): ỹ is real, so S is
/// Hermitian and the imaginary parts c2r ignores (kw = 0, W'/2) are 0.
struct RealDFT2D {
    let height: Int, width: Int, wf: Int, wp: Int
    let cosW: [Double], sinW: [Double], cosH: [Double], sinH: [Double]

    init(height: Int, width: Int) {
        self.height = height
        self.width = width
        wf = FourierBasis.spectrumWidth(width)
        wp = 2 * (wf - 1)
        var cw = [Double](repeating: 0, count: wf * wp), sw = cw
        for kw in 0..<wf {
            for w in 0..<wp {
                let angle = 2 * DeterministicMath.pi * Double((kw * w) % wp) / Double(wp)
                cw[kw * wp + w] = DeterministicMath.cos(angle)
                sw[kw * wp + w] = DeterministicMath.sin(angle)
            }
        }
        var ch = [Double](repeating: 0, count: height * height), sh = ch
        for kh in 0..<height {
            for h in 0..<height {
                let angle = 2 * DeterministicMath.pi * Double((kh * h) % height) / Double(height)
                ch[kh * height + h] = DeterministicMath.cos(angle)
                sh[kh * height + h] = DeterministicMath.sin(angle)
            }
        }
        cosW = cw; sinW = sw; cosH = ch; sinH = sh
    }

    /// (re, im) of S [H, Wf] for a plane y [H, W] (row-major).
    func forward(_ y: [Double]) -> (re: [Double], im: [Double]) {
        // Along the width: R[h, kw] = Σ_w' ỹ[h, w'] e^{−iθ}.
        var rr = [Double](repeating: 0, count: height * wf), ri = rr
        for h in 0..<height {
            for kw in 0..<wf {
                var a = 0.0, b = 0.0
                for w in 0..<wp {
                    let v = y[h * width + min(w, width - 1)]
                    a += v * cosW[kw * wp + w]
                    b -= v * sinW[kw * wp + w]
                }
                rr[h * wf + kw] = a
                ri[h * wf + kw] = b
            }
        }
        // Along the height: S[kh, kw] = Σ_h R[h, kw] e^{−iφ}.
        var re = [Double](repeating: 0, count: height * wf), im = re
        for kh in 0..<height {
            for h in 0..<height {
                let c = cosH[kh * height + h], s = sinH[kh * height + h]
                for kw in 0..<wf {
                    let a = rr[h * wf + kw], b = ri[h * wf + kw]
                    re[kh * wf + kw] += a * c + b * s
                    im[kh * wf + kw] += b * c - a * s
                }
            }
        }
        return (re, im)
    }
}
