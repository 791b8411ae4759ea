import COpenBLAS
import Foundation

/// Principal component analysis through LAPACK (OpenBLAS's `ssyevd`): the built-in 2-D layout of
/// `amgpu activation-atlas`.
///
/// For n row vectors x₁…xₙ ∈ ℝᵈ (row-major [n, d]): μ = mean xᵢ, X̃ = rows xᵢ − μ,
/// C = X̃ᵀX̃ / (n − 1) ∈ ℝ^{d×d} (cblas_ssyrk), C = V Λ Vᵀ (ssyevd, eigenvalues ascending), and the
/// k components are the eigenvectors of the k largest eigenvalues, each sign-normalized so that its entry
/// of largest magnitude is positive (the sign of an eigenvector is arbitrary; this fixes it).
/// The coordinates are yᵢⱼ = (xᵢ − μ)·vⱼ, [n, k] row-major.
public struct PCA: Sendable, Equatable {
    public var mean: [Float]
    /// k components, each of length d (unit norm).
    public var components: [[Float]]
    /// The variance along each component (its eigenvalue λⱼ).
    public var explainedVariance: [Float]
    /// Σ of all eigenvalues (the total variance, trace C).
    public var totalVariance: Float
    /// [n, k] row-major.
    public var coordinates: [Float]

    /// Fits k components to `vectors` ([n, d] row-major). Needs n ≥ 2 and 1 ≤ k ≤ d.
    public static func fit(_ vectors: [Float], count n: Int, dimension d: Int, components k: Int = 2) throws -> PCA {
        guard n >= 2 else { throw EngineError.invalidInput("PCA needs at least 2 vectors, got \(n): sample more positions (more images or --samples)") }
        guard d >= 1, k >= 1, k <= d else { throw EngineError.invalidInput("PCA to \(k) dimensions needs vectors of at least \(k) entries, got \(d)") }
        guard vectors.count == n * d else { throw EngineError.shapeMismatch("PCA: \(vectors.count) values for \(n) vectors of \(d)") }
        guard vectors.allSatisfy(\.isFinite) else { throw EngineError.numerical("the sampled activations hold NaN or infinite values: the layer's output is not finite on these images") }
        var mean = [Double](repeating: 0, count: d)
        for i in 0..<n { for j in 0..<d { mean[j] += Double(vectors[i * d + j]) } }
        for j in 0..<d { mean[j] /= Double(n) }
        var centered = vectors
        for i in 0..<n { for j in 0..<d { centered[i * d + j] = Float(Double(vectors[i * d + j]) - mean[j]) } }
        // C (row-major upper triangle) = X̃ᵀX̃ / (n−1); as column-major that is the lower triangle.
        var cov = [Float](repeating: 0, count: d * d)
        centered.withUnsafeBufferPointer { x in
            cov.withUnsafeMutableBufferPointer { c in
                cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, Int32(d), Int32(n), 1 / Float(n - 1),
                            x.baseAddress, Int32(d), 0, c.baseAddress, Int32(d))
            }
        }
        let (values, vectorsColumnMajor) = try symmetricEigen(cov, order: d)
        var components: [[Float]] = []
        var explained: [Float] = []
        for c in 0..<k {
            let j = d - 1 - c
            var v = Array(vectorsColumnMajor[(j * d)..<((j + 1) * d)])
            var largest = 0
            for t in 1..<d where abs(v[t]) > abs(v[largest]) { largest = t }
            if v[largest] < 0 { v = v.map { -$0 } }
            components.append(v)
            explained.append(max(values[j], 0))
        }
        var coordinates = [Float](repeating: 0, count: n * k)
        for i in 0..<n {
            for c in 0..<k {
                var s = 0.0
                for j in 0..<d { s += Double(centered[i * d + j]) * Double(components[c][j]) }
                coordinates[i * k + c] = Float(s)
            }
        }
        return PCA(mean: mean.map { Float($0) }, components: components, explainedVariance: explained,
                   totalVariance: values.reduce(0) { $0 + max($1, 0) }, coordinates: coordinates)
    }

    /// Eigenvalues (ascending) and eigenvectors (column j = eigenvector j, column-major) of the symmetric
    /// `order`×`order` matrix whose lower triangle (column-major) is given, through LAPACK's `ssyevd`.
    public static func symmetricEigen(_ matrix: [Float], order d: Int) throws -> (values: [Float], vectors: [Float]) {
        var a = matrix
        var w = [Float](repeating: 0, count: d)
        var n = Int32(d), lda = Int32(d), info: Int32 = 0
        var jobz = CChar(UInt8(ascii: "V")), uplo = CChar(UInt8(ascii: "L"))
        // Workspace query, then the solve.
        var workSize: Float = 0, iworkSize: Int32 = 0, query: Int32 = -1
        ssyevd_(&jobz, &uplo, &n, &a, &lda, &w, &workSize, &query, &iworkSize, &query, &info, 1, 1)
        guard info == 0 else { throw EngineError.numerical("LAPACK ssyevd workspace query failed (info \(info))") }
        var lwork = Int32(workSize.rounded(.up)), liwork = max(iworkSize, 1)
        var work = [Float](repeating: 0, count: Int(max(lwork, 1)))
        var iwork = [Int32](repeating: 0, count: Int(liwork))
        ssyevd_(&jobz, &uplo, &n, &a, &lda, &w, &work, &lwork, &iwork, &liwork, &info, 1, 1)
        guard info == 0 else {
            throw EngineError.numerical("LAPACK ssyevd did not converge on the \(d)×\(d) covariance (info \(info)); the activations may be degenerate")
        }
        return (w, a)
    }
}
