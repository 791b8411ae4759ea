import Foundation

/// Full-reference image-quality metrics of 8-bit RGB images, matching scikit-image 0.26
/// (`skimage.metrics`), which the test fixtures (`scripts/tools/ssim_fixtures.py`) were computed with.
public enum ImageQuality {
    /// Peak signal-to-noise ratio in dB: 10·log10(255² / MSE), MSE the mean of (a − b)² over all 3·H·W
    /// values in 0–255 units (`peak_signal_noise_ratio(a, b, data_range=255)`). nil when the images are identical.
    public static func psnr(_ a: RGBImage, _ b: RGBImage) throws -> Double? {
        try checkSameSize(a, b)
        var sum = 0.0
        for i in a.pixels.indices {
            let d = Double(a.pixels[i]) - Double(b.pixels[i])
            sum += d * d
        }
        let mse = sum / Double(a.pixels.count)
        guard mse > 0 else { return nil }
        return 10 * Foundation.log10(255.0 * 255.0 / mse)
    }

    /// The 11 taps of the normalized Gaussian (σ = 1.5, radius ⌊3.5·σ + 0.5⌋ = 5), as scipy's `gaussian_filter`.
    static let gaussianTaps: [Double] = {
        let sigma = 1.5, radius = 5
        let w = (-radius...radius).map { Foundation.exp(-0.5 * Double($0 * $0) / (sigma * sigma)) }
        let s = w.reduce(0, +)
        return w.map { $0 / s }
    }()

    /// Mean structural similarity (Wang et al. 2004) as `structural_similarity(a, b, channel_axis=-1,
    /// gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)`:
    ///
    /// per channel, with G the 11×11 Gaussian window (σ = 1.5) and local statistics
    ///   μa = G∗a, μb = G∗b, σa² = G∗a² − μa², σb² = G∗b² − μb², σab = G∗(ab) − μa·μb,
    ///   S = (2μaμb + C1)(2σab + C2) / ((μa² + μb² + C1)(σa² + σb² + C2)),  C1 = (0.01·255)², C2 = (0.03·255)²,
    /// SSIM_c = mean of S over the pixels at least 5 from every border (skimage crops the filter's radius,
    /// so the border mode never matters); the result is the mean over the 3 channels.
    /// Both images must be at least 11×11.
    public static func ssim(_ a: RGBImage, _ b: RGBImage) throws -> Double {
        try checkSameSize(a, b)
        let w = a.width, h = a.height, r = 5
        guard w >= 2 * r + 1, h >= 2 * r + 1 else {
            throw EngineError.invalidInput("SSIM needs images of at least 11×11 pixels, got \(w)×\(h)")
        }
        let c1 = (0.01 * 255.0) * (0.01 * 255.0), c2 = (0.03 * 255.0) * (0.03 * 255.0)
        let taps = gaussianTaps
        let ow = w - 2 * r, oh = h - 2 * r
        var total = 0.0
        // Horizontal pass for all rows (only the output columns), then vertical for the output rows.
        var hx = [Double](repeating: 0, count: h * ow), hy = hx, hxx = hx, hyy = hx, hxy = hx
        for channel in 0..<3 {
            for y in 0..<h {
                for ox in 0..<ow {
                    var sx = 0.0, sy = 0.0, sxx = 0.0, syy = 0.0, sxy = 0.0
                    for k in 0..<(2 * r + 1) {
                        let p = (y * w + ox + k) * 3 + channel
                        let u = Double(a.pixels[p]), v = Double(b.pixels[p]), t = taps[k]
                        sx += t * u
                        sy += t * v
                        sxx += t * u * u
                        syy += t * v * v
                        sxy += t * u * v
                    }
                    let i = y * ow + ox
                    hx[i] = sx; hy[i] = sy; hxx[i] = sxx; hyy[i] = syy; hxy[i] = sxy
                }
            }
            var sum = 0.0
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var mx = 0.0, my = 0.0, mxx = 0.0, myy = 0.0, mxy = 0.0
                    for k in 0..<(2 * r + 1) {
                        let i = (oy + k) * ow + ox, t = taps[k]
                        mx += t * hx[i]
                        my += t * hy[i]
                        mxx += t * hxx[i]
                        myy += t * hyy[i]
                        mxy += t * hxy[i]
                    }
                    let vx = mxx - mx * mx, vy = myy - my * my, vxy = mxy - mx * my
                    let num = (2 * mx * my + c1) * (2 * vxy + c2)
                    let den = (mx * mx + my * my + c1) * (vx + vy + c2)
                    sum += num / den
                }
            }
            total += sum / Double(ow * oh)
        }
        return total / 3
    }

    static func checkSameSize(_ a: RGBImage, _ b: RGBImage) throws {
        guard a.width == b.width, a.height == b.height, a.pixels.count == b.pixels.count else {
            throw EngineError.shapeMismatch("image-quality metrics need images of the same size, got \(a.width)×\(a.height) and \(b.width)×\(b.height)")
        }
    }
}
