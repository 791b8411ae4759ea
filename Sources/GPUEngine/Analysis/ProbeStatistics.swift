import Foundation

/// A mergeable quantile sketch (DDSketch, Masson et al. 2019): values are counted in logarithmic buckets
/// of ratio γ = (1 + α)/(1 − α), one store for positive and one for negative values, and a zero bucket for
/// |x| < `minMagnitude`. Bucket i (i = ⌈log_γ |x|⌉) holds γ^(i−1) < |x| ≤ γ^i and stands for the value
/// 2γ^i/(γ + 1), within relative error α of every value in it.
///
/// Accuracy: `quantile(q)` returns the representative of the bucket holding the value of rank
/// ⌊q·(n − 1)⌋ (0-based, the lower nearest rank) of the values added, so it is within relative error α = 1 %
/// of that value (absolute error below `minMagnitude` for values in the zero bucket). Merging adds bucket
/// counts, so the merged sketch equals the sketch of all values, whatever the split: a sharded run's
/// quantiles are those of the unsharded run exactly.
public struct QuantileSketch: Codable, Sendable, Equatable {
    public static let relativeAccuracy = 0.01
    public static let minMagnitude = 1e-9
    static let gamma = (1 + relativeAccuracy) / (1 - relativeAccuracy)
    static let logGamma = log(gamma)

    public private(set) var positive: [Int: Int] = [:]
    public private(set) var negative: [Int: Int] = [:]
    public private(set) var zero = 0
    public var count: Int { zero + positive.values.reduce(0, +) + negative.values.reduce(0, +) }

    public init() {}

    static func bucket(_ magnitude: Double) -> Int { Int((log(magnitude) / logGamma).rounded(.up)) }
    static func representative(_ i: Int) -> Double { 2 * pow(gamma, Double(i)) / (gamma + 1) }

    public mutating func add(_ x: Double) {
        guard x.isFinite else { return }
        if abs(x) < Self.minMagnitude { zero += 1 }
        else if x > 0 { positive[Self.bucket(x), default: 0] += 1 }
        else { negative[Self.bucket(-x), default: 0] += 1 }
    }

    public mutating func merge(_ other: QuantileSketch) {
        zero += other.zero
        for (i, c) in other.positive { positive[i, default: 0] += c }
        for (i, c) in other.negative { negative[i, default: 0] += c }
    }

    /// The value of rank ⌊q·(n − 1)⌋ within relative error α, or nil when empty. q in [0, 1].
    public func quantile(_ q: Double) -> Double? {
        let n = count
        guard n > 0 else { return nil }
        var rank = Int((min(max(q, 0), 1) * Double(n - 1)).rounded(.down))
        // Ascending: negatives from the largest magnitude down, then zero, then positives up.
        for i in negative.keys.sorted(by: >) {
            let c = negative[i]!
            if rank < c { return -Self.representative(i) }
            rank -= c
        }
        if rank < zero { return 0 }
        rank -= zero
        for i in positive.keys.sorted() {
            let c = positive[i]!
            if rank < c { return Self.representative(i) }
            rank -= c
        }
        return nil
    }

    // Stored as sorted [bucket, count] pairs (JSON object keys must be strings).
    enum CodingKeys: String, CodingKey { case positive, negative, zero }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func store(_ key: CodingKeys) throws -> [Int: Int] {
            var out: [Int: Int] = [:]
            for pair in try c.decode([[Int]].self, forKey: key) {
                guard pair.count == 2, pair[1] > 0 else { throw EngineError.invalidInput("a quantile sketch bucket must be [index, count > 0], got \(pair)") }
                out[pair[0], default: 0] += pair[1]
            }
            return out
        }
        positive = try store(.positive)
        negative = try store(.negative)
        zero = try c.decode(Int.self, forKey: .zero)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(positive.keys.sorted().map { [$0, positive[$0]!] }, forKey: .positive)
        try c.encode(negative.keys.sorted().map { [$0, negative[$0]!] }, forKey: .negative)
        try c.encode(zero, forKey: .zero)
    }
}

/// Count, mean, M2 = Σ (x − mean)², min, max, positives and a quantile sketch of a stream of values,
/// mergeable: two summaries combine by Chan et al.'s parallel update
///
///     n = nₐ + n_b,  δ = mean_b − meanₐ,  mean = meanₐ + δ·n_b/n,  M2 = M2ₐ + M2_b + δ²·nₐ·n_b/n,
///
/// which is exact in exact arithmetic (in Double, a merged mean or std differs from a single pass by rounding
/// only, ~1e-15 relative); count, min, max, positives and the sketch merge exactly.
public struct RunningSummary: Codable, Sendable, Equatable {
    public var count = 0
    public var mean = 0.0
    public var m2 = 0.0
    public var min = Double.infinity
    public var max = -Double.infinity
    public var positive = 0
    public var sketch = QuantileSketch()

    public init() {}

    /// Adds one value (Welford's update).
    public mutating func add(_ x: Double) {
        count += 1
        let delta = x - mean
        mean += delta / Double(count)
        m2 += delta * (x - mean)
        min = Swift.min(min, x)
        max = Swift.max(max, x)
        if x > 0 { positive += 1 }
        sketch.add(x)
    }

    public mutating func merge(_ other: RunningSummary) {
        guard other.count > 0 else { return }
        guard count > 0 else { self = other; return }
        let n = count + other.count
        let delta = other.mean - mean
        mean += delta * Double(other.count) / Double(n)
        m2 += other.m2 + delta * delta * Double(count) * Double(other.count) / Double(n)
        count = n
        min = Swift.min(min, other.min)
        max = Swift.max(max, other.max)
        positive += other.positive
        sketch.merge(other.sketch)
    }

    /// Population standard deviation √(M2 / n).
    public var std: Double { count > 0 ? (m2 / Double(count)).squareRoot() : 0 }

    /// The quantiles reported in probe.json.
    public static let reportedQuantiles: [Double] = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99]

    public var report: UnitStatistics {
        var q: [String: Double] = [:]
        for p in Self.reportedQuantiles { q[String(format: "%g", p)] = sketch.quantile(p) }
        return UnitStatistics(count: count, mean: mean, std: std, min: count > 0 ? min : 0, max: count > 0 ? max : 0,
                              quantiles: q, fractionPositive: count > 0 ? Double(positive) / Double(count) : 0)
    }

    // min/max as null while empty (JSON has no infinity).
    enum CodingKeys: String, CodingKey { case count, mean, m2, min, max, positive, sketch }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        count = try c.decode(Int.self, forKey: .count)
        mean = try c.decode(Double.self, forKey: .mean)
        m2 = try c.decode(Double.self, forKey: .m2)
        min = try c.decodeIfPresent(Double.self, forKey: .min) ?? .infinity
        max = try c.decodeIfPresent(Double.self, forKey: .max) ?? -.infinity
        positive = try c.decode(Int.self, forKey: .positive)
        sketch = try c.decode(QuantileSketch.self, forKey: .sketch)
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(count, forKey: .count)
        try c.encode(mean, forKey: .mean)
        try c.encode(m2, forKey: .m2)
        if count > 0 { try c.encode(min, forKey: .min); try c.encode(max, forKey: .max) }
        try c.encode(positive, forKey: .positive)
        try c.encode(sketch, forKey: .sketch)
    }
}

/// A unit's statistics over the data set as written to probe.json.
public struct UnitStatistics: Codable, Sendable, Equatable {
    public var count: Int
    public var mean: Double
    /// Population standard deviation.
    public var std: Double
    public var min: Double
    public var max: Double
    /// "0.01" … "0.99" → the value of that rank, within 1 % relative error (`QuantileSketch`).
    public var quantiles: [String: Double]
    public var fractionPositive: Double

    enum CodingKeys: String, CodingKey {
        case count, mean, std, min, max, quantiles
        case fractionPositive = "fraction_positive"
    }
}
