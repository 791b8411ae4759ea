import Foundation

/// Turning photos into model inputs, on the host.
public enum ImagePreprocessing {
    /// Resizes an RGB image with a triangle (bilinear) filter whose support widens when shrinking,
    /// as PIL's BILINEAR does, so downscaled photos do not alias.
    public static func resize(_ image: RGBImage, width: Int, height: Int) -> RGBImage {
        func weights(_ inSize: Int, _ outSize: Int) -> [[(Int, Float)]] {
            let scale = Double(inSize) / Double(outSize)
            let support = max(scale, 1.0)
            return (0..<outSize).map { o in
                let center = (Double(o) + 0.5) * scale
                let lo = max(Int((center - support).rounded(.down)), 0)
                let hi = min(Int((center + support).rounded(.up)), inSize)
                var taps: [(Int, Float)] = []
                var total = 0.0
                for i in lo..<max(hi, lo + 1) where i < inSize {
                    let w = max(0, 1 - abs((Double(i) + 0.5 - center) / support))
                    if w > 0 { taps.append((i, Float(w))); total += w }
                }
                if taps.isEmpty { taps = [(min(max(Int(center), 0), inSize - 1), 1)]; total = 1 }
                return taps.map { ($0.0, $0.1 / Float(total)) }
            }
        }
        let wx = weights(image.width, width), wy = weights(image.height, height)
        // Horizontal pass into floats, then vertical.
        var tmp = [Float](repeating: 0, count: width * image.height * 3)
        for y in 0..<image.height {
            for x in 0..<width {
                for c in 0..<3 {
                    var s: Float = 0
                    for (i, w) in wx[x] { s += w * Float(image.pixels[(y * image.width + i) * 3 + c]) }
                    tmp[(y * width + x) * 3 + c] = s
                }
            }
        }
        var out = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<3 {
                    var s: Float = 0
                    for (i, w) in wy[y] { s += w * tmp[(i * width + x) * 3 + c] }
                    out[(y * width + x) * 3 + c] = UInt8(min(max(s.rounded(), 0), 255))
                }
            }
        }
        return RGBImage(width: width, height: height, pixels: out)
    }

    /// Resizes the shorter side to `size / 0.875` (256 for 224) and takes the centre `size`² crop,
    /// the standard ImageNet evaluation transform.
    public static func centerCrop(_ image: RGBImage, size: Int, cropFraction: Double = 0.875) -> RGBImage {
        let short = Double(min(image.width, image.height))
        let target = Double(size) / cropFraction
        let w = max(size, Int((Double(image.width) * target / short).rounded()))
        let h = max(size, Int((Double(image.height) * target / short).rounded()))
        let resized = resize(image, width: w, height: h)
        let x0 = (w - size) / 2, y0 = (h - size) / 2
        var out = [UInt8](repeating: 0, count: size * size * 3)
        for y in 0..<size {
            let src = ((y + y0) * w + x0) * 3
            out.replaceSubrange((y * size * 3)..<((y + 1) * size * 3), with: resized.pixels[src..<(src + size * 3)])
        }
        return RGBImage(width: size, height: size, pixels: out)
    }

    /// x' = (x − mean[c]) / std[c] for a [N, 3, H, W] tensor in [0, 1].
    public static func normalize(_ t: HostTensor, _ p: Preprocessing) -> HostTensor {
        var out = t
        let plane = t.shape[2] * t.shape[3]
        for n in 0..<t.shape[0] {
            for c in 0..<3 {
                let base = (n * 3 + c) * plane
                for i in 0..<plane { out.values[base + i] = (t.values[base + i] - p.mean[c]) / p.std[c] }
            }
        }
        return out
    }

    /// A photo as the model's normalized input [1, 3, S, S] (centre crop, or plain resize with `crop` false).
    public static func modelInput(_ image: RGBImage, _ p: Preprocessing, crop: Bool = true) -> HostTensor {
        let fitted = crop ? centerCrop(image, size: p.inputSize) : resize(image, width: p.inputSize, height: p.inputSize)
        return normalize(fitted.tensor(), p)
    }
}
