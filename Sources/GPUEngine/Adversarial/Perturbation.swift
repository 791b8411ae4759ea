import Foundation

/// Host-side math on one image's perturbation δ, stored planar as [3, H, W] (index (c·H + y)·W + x),
/// in [0, 1] units unless a name says 255.
public enum Perturbation {
    /// Anisotropic total variation (p = 1), averaged over the C·H·W values:
    ///
    ///   TV(δ) = ( Σ_{c,y,x<W−1} |δ[c,y,x+1] − δ[c,y,x]| + Σ_{c,y<H−1,x} |δ[c,y+1,x] − δ[c,y,x]| ) / (C·H·W)
    ///
    /// The sum is lucid's / `tf.image.total_variation`; dividing by C·H·W makes λ independent of the image
    /// size. In 0–255 units the value is 255·TV.
    public static func totalVariation(_ delta: [Float], channels: Int = 3, height: Int, width: Int) -> Double {
        precondition(delta.count == channels * height * width, "TV: \(delta.count) values for \(channels)×\(height)×\(width)")
        var sum = 0.0
        for c in 0..<channels {
            let base = c * height * width
            for y in 0..<height {
                let row = base + y * width
                for x in 0..<width {
                    let v = Double(delta[row + x])
                    if x + 1 < width { sum += abs(Double(delta[row + x + 1]) - v) }
                    if y + 1 < height { sum += abs(Double(delta[row + width + x]) - v) }
                }
            }
        }
        return sum / Double(max(channels * height * width, 1))
    }

    /// Adds `scale` · ∂TV/∂δ (a subgradient, sign(0) = 0) to `gradient`:
    ///   ∂TV/∂δ[i] = ( Σ_{neighbour pairs (i, j)} sign(δ[i] − δ[j]) ) / (C·H·W).
    public static func addTotalVariationGradient(_ delta: [Float], channels: Int = 3, height: Int, width: Int,
                                                 scale: Float, into gradient: inout [Float]) {
        precondition(delta.count == gradient.count && delta.count == channels * height * width)
        let k = scale / Float(max(channels * height * width, 1))
        for c in 0..<channels {
            let base = c * height * width
            for y in 0..<height {
                let row = base + y * width
                for x in 0..<width {
                    let i = row + x
                    if x + 1 < width {
                        let s = signum(delta[i] - delta[i + 1]) * k
                        gradient[i] += s
                        gradient[i + 1] -= s
                    }
                    if y + 1 < height {
                        let s = signum(delta[i] - delta[i + width]) * k
                        gradient[i] += s
                        gradient[i + width] -= s
                    }
                }
            }
        }
    }

    /// sign with sign(0) = 0 (as torch.sign).
    @inline(__always)
    public static func signum(_ v: Float) -> Float { v > 0 ? 1 : (v < 0 ? -1 : 0) }

    /// Projects δ onto the ε-ball of `norm`, then onto the box x₀ + δ ∈ [0, 1] (torchattacks' order:
    /// δ ← clip(δ, −ε, ε) or δ·min(1, ε/‖δ‖₂); then δ ← clip(x₀ + δ, 0, 1) − x₀).
    public static func project(_ delta: inout [Float], original x0: [Float], norm: PerturbationNorm, eps: Double) {
        precondition(delta.count == x0.count)
        switch norm {
        case .linf:
            let e = Float(eps)
            for i in delta.indices { delta[i] = min(max(delta[i], -e), e) }
        case .l2:
            let n = l2Norm(delta)
            if n > eps {
                let f = Float(eps / n)
                for i in delta.indices { delta[i] *= f }
            }
        }
        for i in delta.indices { delta[i] = min(max(x0[i] + delta[i], 0), 1) - x0[i] }
    }

    /// ‖v‖₂ in Double.
    public static func l2Norm(_ v: [Float]) -> Double {
        var s = 0.0
        for x in v { s += Double(x) * Double(x) }
        return s.squareRoot()
    }

    /// The 8-bit image closest to x = x₀ + δ that keeps the constraint exactly: each value
    /// q = round(255·x) − p₀ (p₀ the original 8-bit value), then
    /// - L∞: |q| ≤ ⌊255·ε⌋ (values rounded past the bound are rounded toward zero instead);
    /// - L2: if ‖q‖₂ > 255·ε after rounding to nearest, the values that rounding enlarged are rounded toward
    ///   zero instead, largest enlargement first, until ‖q‖₂ ≤ 255·ε (with all of them so rounded,
    ///   |q| ≤ |255·δ| elementwise and ‖q‖₂ ≤ 255·‖δ‖₂ ≤ 255·ε); the largest |q| are reduced by 1
    ///   while float slack still leaves ‖q‖₂ above 255·ε.
    /// p₀ + q stays in 0…255 because x ∈ [0, 1]. `x` is planar [3, H, W]; images are interleaved RGB.
    public static func quantize(_ x: [Float], original: RGBImage, norm: PerturbationNorm, eps: Double) throws -> RGBImage {
        let plane = original.width * original.height
        guard x.count == 3 * plane else {
            throw EngineError.shapeMismatch("quantize: \(x.count) values for a \(original.width)×\(original.height) RGB image")
        }
        var q = [Int](repeating: 0, count: 3 * plane)   // planar, 255 units
        var exact = [Double](repeating: 0, count: 3 * plane)
        for c in 0..<3 {
            for i in 0..<plane {
                let p0 = Int(original.pixels[i * 3 + c])
                let v = x[c * plane + i]
                let target = v.isNaN ? Double(p0) : Double(min(max(v, 0), 1)) * 255
                exact[c * plane + i] = target - Double(p0)
                q[c * plane + i] = Int(target.rounded()) - p0
            }
        }
        switch norm {
        case .linf:
            let bound = Int((eps * 255 + 1e-9).rounded(.down))
            for i in q.indices { q[i] = min(max(q[i], -bound), bound) }
        case .l2:
            let limit = eps * 255
            func norm2(_ q: [Int]) -> Double { q.reduce(0.0) { $0 + Double($1 * $1) } }
            var n2 = norm2(q)
            if n2 > limit * limit * (1 + 1e-12) {
                // Round toward zero the values that rounding to nearest enlarged most, until ‖q‖₂ ≤ 255·ε;
                // with all of them rounded toward zero, |q| ≤ |255·δ| elementwise, so the loop ends within the ball.
                let enlarged = q.indices.filter { abs(Double(q[$0])) > abs(exact[$0]) }
                    .sorted { abs(Double(q[$0])) - abs(exact[$0]) > abs(Double(q[$1])) - abs(exact[$1]) }
                for i in enlarged where n2 > limit * limit * (1 + 1e-12) {
                    n2 -= Double(q[i] * q[i])
                    q[i] = Int(exact[i].rounded(.towardZero))
                    n2 += Double(q[i] * q[i])
                }
                // Float slack only: shrink the largest values by one.
                while n2 > limit * limit * (1 + 1e-12) {
                    guard let j = q.indices.max(by: { abs(q[$0]) < abs(q[$1]) }), q[j] != 0 else { break }
                    n2 -= Double(q[j] * q[j])
                    q[j] -= q[j] > 0 ? 1 : -1
                    n2 += Double(q[j] * q[j])
                }
            }
        }
        var pixels = original.pixels
        for c in 0..<3 {
            for i in 0..<plane {
                pixels[i * 3 + c] = UInt8(min(max(Int(original.pixels[i * 3 + c]) + q[c * plane + i], 0), 255))
            }
        }
        return RGBImage(width: original.width, height: original.height, pixels: pixels)
    }

    /// An image's values in [0, 1], planar [3, H, W].
    public static func planar(_ image: RGBImage) -> [Float] {
        let plane = image.width * image.height
        var out = [Float](repeating: 0, count: 3 * plane)
        for i in 0..<plane {
            for c in 0..<3 { out[c * plane + i] = Float(image.pixels[i * 3 + c]) / 255 }
        }
        return out
    }

    /// δ = (b − a)/255 per value, planar [3, H, W], in [0, 1] units.
    public static func difference(_ a: RGBImage, _ b: RGBImage) -> [Float] {
        let plane = a.width * a.height
        var out = [Float](repeating: 0, count: 3 * plane)
        for i in 0..<plane {
            for c in 0..<3 { out[c * plane + i] = (Float(b.pixels[i * 3 + c]) - Float(a.pixels[i * 3 + c])) / 255 }
        }
        return out
    }

    /// The amplified perturbation image δ·(0.5/scale) + 0.5 (grey = unchanged), with `scale` = ε for L∞
    /// (so ±ε maps to 0 and 1) or max |δ| for L2 attacks.
    public static func visualize(_ original: RGBImage, _ adversarial: RGBImage, scale: Double) -> RGBImage {
        let s = scale > 0 ? 0.5 / scale : 0
        var pixels = [UInt8](repeating: 0, count: original.pixels.count)
        for i in pixels.indices {
            let d = (Double(adversarial.pixels[i]) - Double(original.pixels[i])) / 255
            pixels[i] = UInt8(min(max((d * s + 0.5) * 255, 0), 255).rounded())
        }
        return RGBImage(width: original.width, height: original.height, pixels: pixels)
    }
}
