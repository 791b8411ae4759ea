import Foundation

/// Numbers that describe how spatially coherent an image is, used to compare CNN and ViT
/// visualizations (docs/results.md, finding 3). All are computed on the luminance
/// Y = 0.299·R + 0.587·G + 0.114·B (values in [0, 1]) with its mean removed.
///
/// - `lowFrequencyFraction`: the share of the (DC-free) power spectrum |DFT(Y)|² at spatial
///   frequencies of radius ≤ `cutoff` cycles per pixel, r = √(f_x² + f_y²), f ∈ [−½, ½).
///   White noise gives ≈ π·cutoff² (the disk's share of the frequency square); an image made of
///   structures larger than 1/cutoff pixels gives ≈ 1.
/// - `autocorrelation(lag)`: Pearson correlation of Y with itself shifted by `lag` pixels,
///   horizontally and vertically (pairs inside the image only), averaged over the two directions.
///   1 for structure much larger than the lag, ≈ 0 for white noise, −1 for a one-pixel checkerboard at lag 1.
public struct ImageStatistics: Codable, Equatable, Sendable {
    public var width: Int
    public var height: Int
    /// Cut-off radius of `lowFrequencyFraction`, in cycles per pixel.
    public var cutoff: Double
    public var lowFrequencyFraction: Double
    /// Lags (pixels) and the autocorrelation at each.
    public var lags: [Int]
    public var autocorrelations: [Double]

    /// Default cut-off: structures with a period of 16 pixels or more (14 of them across a 224-pixel image).
    public static let defaultCutoff = 1.0 / 16

    public init(image: RGBImage, cutoff: Double = ImageStatistics.defaultCutoff, lags: [Int] = [1, 4, 16]) throws {
        guard image.width >= 2, image.height >= 2 else {
            throw EngineError.invalidInput("image statistics need an image of at least 2×2 pixels, got \(image.width)×\(image.height)")
        }
        guard cutoff > 0, cutoff <= 0.5 * 2.0.squareRoot() else {
            throw EngineError.invalidAttribute("the frequency cut-off must lie in (0, 0.707] cycles per pixel, got \(cutoff)")
        }
        guard lags.allSatisfy({ $0 >= 1 && $0 < min(image.width, image.height) }) else {
            throw EngineError.invalidAttribute("autocorrelation lags must lie in [1, \(min(image.width, image.height) - 1)], got \(lags)")
        }
        width = image.width
        height = image.height
        self.cutoff = cutoff
        self.lags = lags
        let luminance = ImageStatistics.centredLuminance(image)
        lowFrequencyFraction = ImageStatistics.lowFrequencyFraction(luminance, width: image.width, height: image.height, cutoff: cutoff)
        autocorrelations = lags.map { ImageStatistics.autocorrelation(luminance, width: image.width, height: image.height, lag: $0) }
    }

    /// Y − mean(Y), row-major [height, width].
    static func centredLuminance(_ image: RGBImage) -> [Double] {
        let n = image.width * image.height
        var y = [Double](repeating: 0, count: n)
        for i in 0..<n {
            let r = Double(image.pixels[3 * i]), g = Double(image.pixels[3 * i + 1]), b = Double(image.pixels[3 * i + 2])
            y[i] = (0.299 * r + 0.587 * g + 0.114 * b) / 255
        }
        let mean = y.reduce(0, +) / Double(n)
        return y.map { $0 - mean }
    }

    /// Σ_{r ≤ cutoff} |F|² / Σ |F|² over the 2-D DFT F of `signal` (DC excluded; 0 for a constant image).
    /// The DFT is separable: rows, then columns, O(H·W·(H + W)) with precomputed twiddles.
    static func lowFrequencyFraction(_ signal: [Double], width w: Int, height h: Int, cutoff: Double) -> Double {
        func twiddles(_ n: Int) -> (cos: [Double], sin: [Double]) {
            ((0..<n).map { cos(2 * Double.pi * Double($0) / Double(n)) }, (0..<n).map { -sin(2 * Double.pi * Double($0) / Double(n)) })
        }
        let tw = twiddles(w), th = twiddles(h)
        // Row transforms: R[y, u] = Σ_x s[y, x] e^{−2πi u x / w}.
        var rowRe = [Double](repeating: 0, count: h * w), rowIm = rowRe
        for y in 0..<h {
            for u in 0..<w {
                var re = 0.0, im = 0.0
                for x in 0..<w {
                    let k = (u * x) % w, v = signal[y * w + x]
                    re += v * tw.cos[k]
                    im += v * tw.sin[k]
                }
                rowRe[y * w + u] = re
                rowIm[y * w + u] = im
            }
        }
        // Column transforms and the power split.
        var low = 0.0, total = 0.0
        for u in 0..<w {
            let fx = Double(u < (w + 1) / 2 ? u : u - w) / Double(w)
            for v in 0..<h {
                if u == 0 && v == 0 { continue }
                var re = 0.0, im = 0.0
                for y in 0..<h {
                    let k = (v * y) % h
                    let (a, b) = (rowRe[y * w + u], rowIm[y * w + u])
                    re += a * th.cos[k] - b * th.sin[k]
                    im += a * th.sin[k] + b * th.cos[k]
                }
                let power = re * re + im * im
                let fy = Double(v < (h + 1) / 2 ? v : v - h) / Double(h)
                total += power
                if (fx * fx + fy * fy).squareRoot() <= cutoff { low += power }
            }
        }
        return total > 0 ? low / total : 0
    }

    /// Mean of the horizontal and vertical Pearson correlations between Y and Y shifted by `lag`
    /// (0 when a direction has no variance).
    static func autocorrelation(_ s: [Double], width w: Int, height h: Int, lag: Int) -> Double {
        func pearson(_ pairs: [(Double, Double)]) -> Double {
            let n = Double(pairs.count)
            let ma = pairs.reduce(0) { $0 + $1.0 } / n, mb = pairs.reduce(0) { $0 + $1.1 } / n
            var sab = 0.0, saa = 0.0, sbb = 0.0
            for (a, b) in pairs {
                sab += (a - ma) * (b - mb)
                saa += (a - ma) * (a - ma)
                sbb += (b - mb) * (b - mb)
            }
            return saa > 0 && sbb > 0 ? sab / (saa * sbb).squareRoot() : 0
        }
        var horizontal: [(Double, Double)] = [], vertical: [(Double, Double)] = []
        horizontal.reserveCapacity(h * (w - lag))
        vertical.reserveCapacity((h - lag) * w)
        for y in 0..<h {
            for x in 0..<(w - lag) { horizontal.append((s[y * w + x], s[y * w + x + lag])) }
        }
        for y in 0..<(h - lag) {
            for x in 0..<w { vertical.append((s[y * w + x], s[(y + lag) * w + x])) }
        }
        return (pearson(horizontal) + pearson(vertical)) / 2
    }
}

/// Statistics of a group of images (one layer's visualizations): mean and standard deviation of each number.
public struct ImageStatisticsSummary: Codable, Equatable, Sendable {
    public var count: Int
    public var lowFrequencyFractionMean: Double
    public var lowFrequencyFractionStd: Double
    public var lags: [Int]
    public var autocorrelationMeans: [Double]

    public init(_ stats: [ImageStatistics]) throws {
        guard let first = stats.first else { throw EngineError.invalidInput("no images to summarize") }
        guard stats.allSatisfy({ $0.lags == first.lags }) else { throw EngineError.invalidInput("images summarized together must use the same lags") }
        count = stats.count
        let fractions = stats.map(\.lowFrequencyFraction)
        let mean = fractions.reduce(0, +) / Double(count)
        lowFrequencyFractionMean = mean
        lowFrequencyFractionStd = count > 1
            ? (fractions.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(count - 1)).squareRoot() : 0
        lags = first.lags
        let n = Double(stats.count)
        autocorrelationMeans = first.lags.indices.map { i in stats.reduce(0) { $0 + $1.autocorrelations[i] } / n }
    }
}
