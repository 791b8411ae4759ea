import Foundation
import Testing
@testable import GPUEngine

/// Every elementwise function (`Unary`) and binary op (`Binary`) against independent float64 values from
/// numpy/scipy (Fixtures/reference/elementwise.json, written by scripts/tools/reference_tables.py): the
/// forward and the backward (seed 1, so the gradient is f′(x), ∂/∂a, ∂/∂b) on the CPU and on OpenCL.
///
/// Tolerance per entry: |got − ref| ≤ rtol·|ref| + atol, with
/// • rtol: CPU 4.8e-7 (4 float32 ulps: Unary computes in Double and rounds once, Binary in Float with up to two roundings); OpenCL 2e-6
///   (16 ulps, the OpenCL 1.2 bound for pow/exp-family built-ins on a full-profile device);
/// • atol: 1e-37 everywhere (a flushed denormal); OpenCL geluErf and its derivative add 2e-7·max(1, |x|)
///   (0.5·x·(1 + erf(x/√2)) inherits erf_fast's 1.5e-7 absolute error above |x/√2| = 0.5); erf itself has
///   none: erf_fast is relative-accurate (≤ 1e-6, checked near 0 by `erfRelativeErrorNearZero`);
///   geluTanh adds 5e-7·|x| (its derivative σ(2u) + 2x·σ(2u)σ(−2u)·u′ cancels in float32 at negative x).
/// Found by these tables and fixed in elementwise.cl and the CPU reference (2026-12-01): σ′, tanh′, SiLU′ and
/// GELU-tanh computed 1 − σ, 1 − tanh² and 1 + tanh(u) by cancellation (GELU-tanh′(−80) was −0.0033, not 0).
/// A zero, a sign flip or an off-by-one-ulp-scale formula error fails every row whose value is not tiny.
@Suite struct ElementwiseReferenceTests {
    struct UnaryRow: Decodable { var function: String; var alpha: Float; var beta: Float; var x: [Double]; var y: [Double]; var dydx: [Double?] }
    struct BinaryRow: Decodable { var function: String; var a: [Double]; var b: [Double]; var y: [Double]; var dyda: [Double?]; var dydb: [Double?] }
    struct Tables: Decodable { var unary: [UnaryRow]; var binary: [BinaryRow] }

    static let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/reference/elementwise.json")

    static func tables() throws -> Tables {
        try JSONDecoder().decode(Tables.self, from: Data(contentsOf: path))
    }

    /// Compares `got` with `reference` entry by entry (nil reference entries are skipped: no derivative).
    static func check(_ what: String, got: HostTensor, reference: [Double?], inputs: [Double], rtol: Double,
                      atol: (Double) -> Double, sourceLocation: SourceLocation = #_sourceLocation) -> Double {
        var worst = 0.0, bad: [String] = []
        for (i, r) in reference.enumerated() {
            guard let r else { continue }
            let g = Double(got.values[i])
            let err = abs(g - r), allowed = rtol * abs(r) + atol(inputs[i])
            if !(err <= allowed) { bad.append("x=\(inputs[i]): got \(g), reference \(r), |Δ| \(err) > \(allowed)") }
            if abs(r) > 1e-30 { worst = max(worst, err / abs(r)) }
        }
        if !bad.isEmpty {
            Issue.record("\(what): \(bad.count) of \(reference.compactMap { $0 }.count) values off: \(bad.prefix(4).joined(separator: "; "))",
                         sourceLocation: sourceLocation)
        }
        return worst
    }

    @Test func tablesCoverEveryFunctionAndOp() throws {
        let t = try Self.tables()
        #expect(Set(t.unary.map(\.function)) == Set(UnaryFunction.allCases.map { "\($0)" }))
        #expect(Set(t.binary.map(\.function)) == Set(BinaryFunction.allCases.map { "\($0)" }))
    }

    @Test(arguments: TestBackend.allCases)
    func unaryMatchesReference(_ kind: TestBackend) throws {
        guard let backend = Backends.get(kind) else { return }
        let rtol = kind == .cpu ? 4.8e-7 : 2e-6
        for row in try Self.tables().unary {
            guard let function = UnaryFunction.allCases.first(where: { "\($0)" == row.function }) else {
                Issue.record("unknown function \(row.function) in the table"); continue
            }
            let atol: (Double) -> Double = { x in
                guard kind == .opencl else { return 1e-37 }
                switch function {
                case .geluErf: return 1e-37 + 2e-7 * max(1, abs(x))
                case .geluTanh: return 1e-37 + 5e-7 * abs(x)
                default: return 1e-37
                }
            }
            let n = row.x.count
            let x = HostTensor(shape: [n], values: row.x.map { Float($0) })
            let (out, grads) = try OpCase(Unary(function, alpha: row.alpha, beta: row.beta), [x])
                .run(on: backend, seed: HostTensor(shape: [n], values: Array(repeating: 1, count: n)))
            let e1 = Self.check("\(function) forward on \(backend.name)", got: out, reference: row.y, inputs: row.x, rtol: rtol, atol: atol)
            let grad = try #require(grads[0])
            let e2 = Self.check("\(function) derivative on \(backend.name)", got: grad, reference: row.dydx, inputs: row.x, rtol: rtol, atol: atol)
            print("amgpu-test: REFERENCE \(function) on \(backend.name): max relative error forward \(e1), derivative \(e2)")
        }
    }

    @Test(arguments: TestBackend.allCases)
    func binaryMatchesReference(_ kind: TestBackend) throws {
        guard let backend = Backends.get(kind) else { return }
        let rtol = kind == .cpu ? 4.8e-7 : 2e-6
        for row in try Self.tables().binary {
            guard let function = BinaryFunction.allCases.first(where: { "\($0)" == row.function }) else {
                Issue.record("unknown op \(row.function) in the table"); continue
            }
            let n = row.a.count
            let a = HostTensor(shape: [n], values: row.a.map { Float($0) })
            let b = HostTensor(shape: [n], values: row.b.map { Float($0) })
            let (out, grads) = try OpCase(Binary(function), [a, b])
                .run(on: backend, seed: HostTensor(shape: [n], values: Array(repeating: 1, count: n)))
            let tiny: (Double) -> Double = { _ in 1e-37 }
            let e1 = Self.check("\(function) forward on \(backend.name)", got: out, reference: row.y, inputs: row.a, rtol: rtol, atol: tiny)
            let e2 = Self.check("\(function) ∂/∂a on \(backend.name)", got: try #require(grads[0]), reference: row.dyda, inputs: row.a, rtol: rtol, atol: tiny)
            let e3 = Self.check("\(function) ∂/∂b on \(backend.name)", got: try #require(grads[1]), reference: row.dydb, inputs: row.b, rtol: rtol, atol: tiny)
            print("amgpu-test: REFERENCE \(function) on \(backend.name): max relative error forward \(e1), ∂/∂a \(e2), ∂/∂b \(e3)")
        }
    }

    /// erf on both backends against glibc's double erf, in relative error ≤ 1e-6 at small and tiny |x| where
    /// erf(x) ≈ 2x/√π: a log grid 1e-30…1, a dense grid over (0, 1) across the kernel's series/A&S switch at
    /// 0.5, both signs. OpenCL's former erf_fast (A&S 7.1.26 alone, 1 − p·exp(−x²)) fails here: it returned 0
    /// for |x| ≲ 1e-8 and was 6 % off at 1e-6, 5e-4 at 1e-4 (it passed the tables' 2e-7·max(1, |x|) atol).
    @Test(arguments: TestBackend.allCases)
    func erfRelativeErrorNearZero(_ kind: TestBackend) throws {
        guard let backend = Backends.get(kind) else { return }
        var xs: [Float] = []
        for e in stride(from: -30.0, through: 0.0, by: 0.25) { xs.append(Float(Foundation.pow(10.0, e))) }
        for i in 1..<1000 { xs.append(Float(i) / 1000) }               // 0.001…0.999, across 0.5
        xs += [0.4999999, 0.5, 0.5000001, 1.5, 2, 3, 4, 6]
        xs += xs.map { -$0 }                                           // 2 × 1129 = 2258 values (not a power of two)
        let n = xs.count
        let (out, _) = try OpCase(Unary(.erf), [HostTensor(shape: [n], values: xs)])
            .run(on: backend, seed: HostTensor(shape: [n], values: Array(repeating: 1, count: n)))
        var worst = 0.0, worstX: Float = 0, bad = 0
        for (i, x) in xs.enumerated() {
            let r = Foundation.erf(Double(x)), rel = abs(Double(out.values[i]) - r) / abs(r)
            if !(rel <= 1e-6) { bad += 1 }
            if !(rel <= worst) { worst = rel; worstX = x }
        }
        print("amgpu-test: REFERENCE erf near 0 on \(backend.name): max relative error \(worst) at x = \(worstX)")
        #expect(bad == 0, "erf on \(backend.name): \(bad) of \(n) values off by > 1e-6 relative; worst \(worst) at x = \(worstX)")
    }
}
