import Testing
@testable import GPUEngine

/// The gradient checker's teeth: deliberately wrong backwards must fail it, the true one must pass.
/// Each case computes the finite differences once and compares them with the true CPU gradient and with
/// five corruptions of it: zeroed, sign-flipped, transposed (last two axes), permuted (reversed order)
/// and scaled by 0.9 — plus one wrong entry where the whole input is checked position by position.
@Suite struct GradientCheckTests {
    enum Corruption: String, CaseIterable {
        case zeroed, signFlipped, transposed, permuted, scaledBy0_9, oneEntryZeroed
    }

    static func corrupt(_ g: HostTensor, _ c: Corruption) -> HostTensor {
        var out = g
        switch c {
        case .zeroed: out.values = g.values.map { _ in 0 }
        case .signFlipped: out.values = g.values.map { -$0 }
        case .scaledBy0_9: out.values = g.values.map { $0 * 0.9 }
        case .permuted: out.values = g.values.reversed()
        case .transposed:
            let r = g.shape[g.shape.count - 2], c = g.shape[g.shape.count - 1]
            precondition(r == c, "transposed corruption needs square trailing axes")
            for base in stride(from: 0, to: g.count, by: r * c) {
                for i in 0..<r { for j in 0..<c { out.values[base + i * c + j] = g.values[base + j * c + i] } }
            }
        case .oneEntryZeroed:
            // The largest entry: the check over every position must notice one wrong element.
            let i = g.values.indices.max { abs(g.values[$0]) < abs(g.values[$1]) } ?? 0
            out.values[i] = 0
        }
        return out
    }

    struct TeethCase: CustomStringConvertible, Sendable {
        var name: String
        var make: @Sendable () -> OpCase
        var corruptions: [Corruption]
        var description: String { name }
    }

    /// Small inputs (every position checked) and the large softmax the old check could not see (sampled
    /// positions + random directions), with square trailing axes so a transposed gradient has the same shape.
    static let cases: [TeethCase] = [
        TeethCase(name: "MatMul 6×6 · 6×6", make: {
            var rng = SeededRandom(seed: 41)
            return OpCase(MatMul(), [rng.tensor([6, 6]), rng.tensor([6, 6])])
        }, corruptions: Corruption.allCases),
        TeethCase(name: "LayerNorm 5×5", make: {
            var rng = SeededRandom(seed: 42)
            return OpCase(LayerNorm(epsilon: 1e-5), [rng.tensor([5, 5], -2, 2), rng.tensor([5]), rng.tensor([5])])
        }, corruptions: Corruption.allCases),
        TeethCase(name: "Softmax 1×3×197×197 in [−4, 4]", make: {
            var rng = SeededRandom(seed: 43)
            return OpCase(Softmax(), [rng.tensor([1, 3, 197, 197], -4, 4)])
        }, corruptions: [.zeroed, .signFlipped, .transposed, .permuted, .scaledBy0_9]),
        TeethCase(name: "Unary.tanh 1×4×64×64", make: {
            var rng = SeededRandom(seed: 44)
            return OpCase(Unary(.tanh), [rng.tensor([1, 4, 64, 64], -3, 3)])
        }, corruptions: [.zeroed, .signFlipped, .transposed, .permuted, .scaledBy0_9]),
    ]

    @Test(arguments: cases)
    func wrongBackwardsFailTheCheckAndTheTrueOnePasses(_ c: TeethCase) throws {
        let opCase = c.make()
        let seed = try opCase.lossSeed()
        let check = GradientCheck()
        let numeric = try opCase.numericGradients(check, seed: seed)
        let truth = try opCase.run(on: Backends.cpu, seed: seed).grads
        let passing = check.failures(c.name, numeric: numeric, analytic: truth)
        #expect(passing.isEmpty, "the true gradient must pass: \(passing)")
        for corruption in c.corruptions {
            // Corrupt the first differentiable input's gradient only: one wrong input must be enough.
            var wrong = truth
            wrong[0] = truth[0].map { Self.corrupt($0, corruption) }
            #expect(wrong[0] != truth[0], "\(corruption) changed nothing")
            let failures = check.failures(c.name, numeric: numeric, analytic: wrong)
            #expect(!failures.isEmpty, "\(c.name): a \(corruption) gradient passed the check")
            // Every check set of input 0 must catch it on its own (all positions; or the sampled positions and,
            // separately, the random directions), except one wrong entry, which only a set containing it can see.
            let sets = numeric.filter { $0.input == 0 }.count
            if corruption != .oneEntryZeroed {
                #expect(failures.count == sets, "\(c.name) \(corruption): \(failures.count) of \(sets) check sets failed: \(failures)")
            }
            print("amgpu-test: TEETH \(c.name) \(corruption): \(failures.first ?? "PASSED (bad)")")
        }
    }

    /// A true zero gradient (x·0) passes only with a zero backward: finite differences that are exactly zero
    /// (no output moved) demand g = 0.
    @Test func exactlyZeroFiniteDifferencesDemandAZeroGradient() throws {
        var rng = SeededRandom(seed: 45)
        let opCase = OpCase(Binary(.mul), [rng.tensor([3, 4]), HostTensor(shape: [3, 4], values: Array(repeating: 0, count: 12))],
                            differentiable: [true, false])
        let check = GradientCheck()
        let seed = try opCase.lossSeed()
        let numeric = try opCase.numericGradients(check, seed: seed)
        let truth = try opCase.run(on: Backends.cpu, seed: seed).grads
        #expect(check.failures("x·0", numeric: numeric, analytic: truth).isEmpty)
        let ones = HostTensor(shape: [3, 4], values: Array(repeating: 1, count: 12))
        let failures = check.failures("x·0", numeric: numeric, analytic: [ones, nil])
        #expect(failures.count == 1 && failures[0].contains("no output moved"), "\(failures)")
    }

    /// Finite differences drowned in float32 rounding (x + 3e7: the output's ulp is 2, a step of 1e-2 moves
    /// it by 0 or 2) must not certify anything, not even the true gradient.
    @Test func finiteDifferencesDrownedInRoundingAreRefused() throws {
        var rng = SeededRandom(seed: 46)
        let opCase = OpCase(Binary(.add), [rng.tensor([4, 5]), HostTensor(shape: [1], values: [3e7])], differentiable: [true, false])
        let check = GradientCheck()
        let seed = try opCase.lossSeed()
        let failures = check.failures("x + 3e7", numeric: try opCase.numericGradients(check, seed: seed),
                                      analytic: try opCase.run(on: Backends.cpu, seed: seed).grads)
        #expect(!failures.isEmpty, "a gradient check on rounding noise passed")
        print("amgpu-test: TEETH x + 3e7: \(failures.first ?? "PASSED (bad)")")
    }
}
