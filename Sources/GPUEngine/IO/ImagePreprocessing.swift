import Foundation

/// Turning photos into model inputs, on the host.
public enum ImagePreprocessing {
    /// Resizes an RGB image with a triangle (bilinear) or Keys-cubic (bicubic, a = −0.5, support 2)
    /// filter whose support widens when shrinking, as PIL's BILINEAR/BICUBIC do, so downscaled photos
    /// do not alias.
    public static func resize(_ image: RGBImage, width: Int, height: Int, interpolation: Interpolation = .bilinear) -> RGBImage {
        func kernel(_ t: Double) -> Double {
            let x = abs(t)
            switch interpolation {
            case .bilinear: return max(0, 1 - x)
            case .bicubic:
                let a = -0.5
                if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
                if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
                return 0
            }
        }
        let radius: Double = interpolation == .bicubic ? 2 : 1
        func weights(_ inSize: Int, _ outSize: Int) -> [[(Int, Float)]] {
            let scale = Double(inSize) / Double(outSize)
            let filterScale = max(scale, 1.0)
            let support = radius * filterScale
            return (0..<outSize).map { o in
                let center = (Double(o) + 0.5) * scale
                let lo = max(Int((center - support).rounded(.down)), 0)
                let hi = min(Int((center + support).rounded(.up)), inSize)
                var taps: [(Int, Float)] = []
                var total = 0.0
                for i in lo..<max(hi, lo + 1) where i < inSize {
                    let w = kernel((Double(i) + 0.5 - center) / filterScale)
                    if w != 0 { taps.append((i, Float(w))); total += w }
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

    /// Resizes the shorter side to `size / cropFraction` (256 for 224) and takes the centre `size`²
    /// crop, the standard ImageNet evaluation transform.
    public static func centerCrop(_ image: RGBImage, size: Int, cropFraction: Double = 0.875,
                                  interpolation: Interpolation = .bilinear) -> RGBImage {
        centerCrop(image, height: size, width: size, cropFraction: cropFraction, interpolation: interpolation)
    }

    /// The size (width, height) a photo of `imageWidth`×`imageHeight` is resized to before the
    /// centre `height`×`width` crop, as timm 1.0's `transforms_imagenet_eval` computes it, with the
    /// scale size (S_h, S_w) = (⌊height / cropFraction⌋, ⌊width / cropFraction⌋):
    /// - `squash == false`, S_h = S_w = S (torchvision `Resize(S)`): the shorter side becomes S and
    ///   the longer ⌊S · long / short⌋;
    /// - `squash == false`, S_h ≠ S_w (timm `ResizeKeepRatio`): r = min(imageHeight / S_h,
    ///   imageWidth / S_w), size = (round(imageWidth / r), round(imageHeight / r)), halves to even;
    /// - `squash == true` (timm crop_mode 'squash'): (S_w, S_h), aspect not kept.
    /// Each side is at least the crop's (for crop_pct > 1 timm would pad instead).
    public static func resizedSize(imageWidth: Int, imageHeight: Int, height: Int, width: Int,
                                   cropFraction: Double, squash: Bool = false) -> (width: Int, height: Int) {
        let sh = Int((Double(height) / cropFraction).rounded(.down))
        let sw = Int((Double(width) / cropFraction).rounded(.down))
        let w: Int, h: Int
        if squash {
            (w, h) = (sw, sh)
        } else if sh == sw {
            if imageWidth <= imageHeight {
                (w, h) = (sw, Int(Double(sw) * Double(imageHeight) / Double(imageWidth)))
            } else {
                (w, h) = (Int(Double(sh) * Double(imageWidth) / Double(imageHeight)), sh)
            }
        } else {
            let r = min(Double(imageHeight) / Double(sh), Double(imageWidth) / Double(sw))
            w = Int((Double(imageWidth) / r).rounded(.toNearestOrEven))
            h = Int((Double(imageHeight) / r).rounded(.toNearestOrEven))
        }
        return (max(width, w), max(height, h))
    }

    /// The centre `height`×`width` crop after the resize `resizedSize` gives (timm's eval
    /// transform; `squash` selects its crop_mode 'squash'). The crop's top-left corner is
    /// round((resized − crop) / 2), halves to even, as torchvision's `CenterCrop`.
    public static func centerCrop(_ image: RGBImage, height: Int, width: Int, cropFraction: Double,
                                  interpolation: Interpolation = .bilinear, squash: Bool = false) -> RGBImage {
        let (w, h) = resizedSize(imageWidth: image.width, imageHeight: image.height, height: height, width: width,
                                 cropFraction: cropFraction, squash: squash)
        let resized = resize(image, width: w, height: h, interpolation: interpolation)
        let x0 = cropOffset(w, width), y0 = cropOffset(h, height)
        var out = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            let src = ((y + y0) * w + x0) * 3
            out.replaceSubrange((y * width * 3)..<((y + 1) * width * 3), with: resized.pixels[src..<(src + width * 3)])
        }
        return RGBImage(width: width, height: height, pixels: out)
    }

    /// torchvision CenterCrop's offset: int(round((size − crop) / 2)) with Python's halves-to-even.
    public static func cropOffset(_ size: Int, _ crop: Int) -> Int {
        Int((Double(size - crop) / 2).rounded(.toNearestOrEven))
    }

    /// The photo fitted to the model's `height`×`width` as `p.fit` says (an image already that size
    /// is returned unchanged except with `.resizeCrop`).
    public static func fitted(_ image: RGBImage, _ p: Preprocessing) -> RGBImage {
        let exact = image.width == p.width && image.height == p.height
        switch p.fit {
        case .auto: return exact ? image : centerCrop(image, height: p.height, width: p.width, cropFraction: p.cropFraction, interpolation: p.interpolation)
        case .resizeCrop: return centerCrop(image, height: p.height, width: p.width, cropFraction: p.cropFraction, interpolation: p.interpolation)
        case .squash: return exact ? image : centerCrop(image, height: p.height, width: p.width, cropFraction: p.cropFraction, interpolation: p.interpolation, squash: true)
        case .noCrop: return exact ? image : resize(image, width: p.width, height: p.height, interpolation: p.interpolation)
        }
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

    /// A photo as the model's normalized input [1, 3, H, W], fitted as `p.fit` says.
    public static func modelInput(_ image: RGBImage, _ p: Preprocessing) -> HostTensor {
        normalize(fitted(image, p).tensor(), p)
    }
}
