/// Seeded random numbers for activation maximization: SplitMix64 (Steele, Lea & Flood 2014).
///
/// Every draw uses only integer arithmetic and IEEE-754 `+ − × ÷ √` in `Double`
/// (the transcendental functions come from `DeterministicMath`, not the platform's libm),
/// so a seed gives bit-identical values on every platform and in every build mode.
///
/// Streams: `RandomSource(seed: s, stream: [step, image])` derives an independent generator
/// for each (step, image) pair, so one image's draws do not depend on how many draws another made.
///
/// ```swift
/// var rng = RandomSource(seed: 42, stream: [UInt64(step)])
/// let dx = rng.int(in: -32...32)       // uniform integer, both ends included
/// let z = rng.normal()                 // N(0, 1)
/// ```
public struct RandomSource: Sendable, Equatable {
    public private(set) var state: UInt64

    public init(seed: UInt64) {
        state = seed
    }

    /// A generator for the sub-stream `stream` of `seed` (each key is mixed in with SplitMix64's finalizer).
    public init(seed: UInt64, stream: [UInt64]) {
        var s = RandomSource.mix(seed &+ 0x9E37_79B9_7F4A_7C15)
        for key in stream { s = RandomSource.mix(s ^ RandomSource.mix(key &+ 0xD1B5_4A32_D192_ED03)) }
        state = s
    }

    /// SplitMix64's output function (a bijective 64-bit mixer).
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return RandomSource.mix(state)
    }

    /// Uniform in [0, 1) with 53 random bits.
    public mutating func uniform() -> Double {
        Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// Uniform in [lo, hi).
    public mutating func uniform(_ lo: Double, _ hi: Double) -> Double {
        lo + (hi - lo) * uniform()
    }

    /// Uniform integer in `range` (both ends included); the multiply-shift map has a bias below 2⁻³².
    public mutating func int(in range: ClosedRange<Int>) -> Int {
        let span = UInt64(range.upperBound - range.lowerBound) &+ 1
        if span == 0 { return Int(truncatingIfNeeded: next()) }   // the full 64-bit range
        let high = next().multipliedFullWidth(by: span).high
        return range.lowerBound + Int(high)
    }

    /// One element of `values`, uniformly; nil (drawing nothing) when `values` is empty.
    public mutating func choice<T>(_ values: [T]) -> T? {
        values.isEmpty ? nil : values[int(in: 0...(values.count - 1))]
    }

    /// Standard normal N(0, 1) by Marsaglia's polar method.
    public mutating func normal() -> Double {
        while true {
            let u = uniform(-1, 1), v = uniform(-1, 1)
            let s = u * u + v * v
            if s > 0 && s < 1 {
                return u * (-2 * DeterministicMath.log(s) / s).squareRoot()
            }
        }
    }
}

/// exp, log, sin and cos in `Double` from `+ − × ÷` only, so results are bit-identical on every
/// IEEE-754 platform (the platform libm may differ in the last bit). Accurate to a few ulp.
public enum DeterministicMath {
    static let ln2 = 0.693_147_180_559_945_309_417_232_121_458
    // Cody–Waite splits (fdlibm): the high parts have trailing zero bits, so k·hi is exact for small k.
    static let ln2Hi = 6.931_471_803_691_238_164_90e-01
    static let ln2Lo = 1.908_214_929_270_587_700_02e-10
    static let halfPiHi = 1.570_796_326_734_125_614_17e+00
    static let halfPiLo = 6.077_100_506_506_192_249_32e-11
    static let pi = 3.141_592_653_589_793_238_462_643_383_279_5

    /// Natural logarithm for x > 0 (NaN for x ≤ 0 or NaN, +∞ for +∞).
    public static func log(_ x: Double) -> Double {
        guard x > 0, x.isFinite else { return x == .infinity ? .infinity : (x == 0 ? -.infinity : .nan) }
        // x = m · 2^e with m in [1/√2, √2): log x = e·ln2 + 2·atanh((m − 1)/(m + 1)).
        var e = x.exponent
        var m = x.significand   // in [1, 2)
        if m > 1.414_213_562_373_095_048_8 { m /= 2; e += 1 }
        let t = (m - 1) / (m + 1)   // |t| ≤ 0.1716
        let t2 = t * t
        var term = t, sum = 0.0
        var k = 1.0
        for _ in 0..<14 {          // t^29/29 < 1e-23
            sum += term / k
            term *= t2
            k += 2
        }
        return Double(e) * ln2 + 2 * sum
    }

    /// e^x (0 below −745, +∞ above 709.8).
    public static func exp(_ x: Double) -> Double {
        if x.isNaN { return x }
        if x > 709.78 { return .infinity }
        if x < -745.2 { return 0 }
        // x = k·ln2 + r, |r| ≤ ln2/2; e^r by its Taylor series, then scaled by 2^k exactly.
        let k = (x / ln2).rounded()
        let r = (x - k * ln2Hi) - k * ln2Lo
        var term = 1.0, sum = 1.0
        for i in 1...20 {          // (ln2/2)^21/21! < 1e-28
            term *= r / Double(i)
            sum += term
        }
        return sum * scalePowerOfTwo(Int(k))
    }

    /// 2^k as an exact Double (for |k| within the exponent range, product of exact factors otherwise).
    static func scalePowerOfTwo(_ k: Int) -> Double {
        var result = 1.0
        var k = k
        while k > 1000 { result *= Double(sign: .plus, exponent: 1000, significand: 1); k -= 1000 }
        while k < -1000 { result *= Double(sign: .plus, exponent: -1000, significand: 1); k += 1000 }
        return result * Double(sign: .plus, exponent: k, significand: 1)
    }

    /// sin(x); the argument is reduced by multiples of π/2 (exact enough for |x| ≲ 10⁶).
    public static func sin(_ x: Double) -> Double { sinCos(x).sin }

    /// cos(x); see `sin`.
    public static func cos(_ x: Double) -> Double { sinCos(x).cos }

    static func sinCos(_ x: Double) -> (sin: Double, cos: Double) {
        guard x.isFinite, Swift.abs(x) < 1e15 else { return (.nan, .nan) }
        let q = (x / (pi / 2)).rounded()
        let r = (x - q * halfPiHi) - q * halfPiLo        // |r| ≤ π/4 (plus a hair)
        let r2 = r * r
        // Taylor series to r^25 (error < 1e-25 for |r| ≤ π/4).
        var sTerm = r, s = r
        var cTerm = 1.0, c = 1.0
        var n = 1.0
        for _ in 0..<12 {
            sTerm *= -r2 / ((n + 1) * (n + 2))
            s += sTerm
            cTerm *= -r2 / (n * (n + 1))
            c += cTerm
            n += 2
        }
        let quadrant = ((Int(q) % 4) + 4) % 4
        switch quadrant {
        case 0: return (s, c)
        case 1: return (c, -s)
        case 2: return (-s, -c)
        default: return (-c, s)
        }
    }
}
