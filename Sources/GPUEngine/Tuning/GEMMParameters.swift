import Foundation

/// The build options of the GPU-style GEMM kernel `matmul_tiled` (Sources/Kernels/gemm.cl), with
/// CLBlast's Xgemm names: a work-group computes an `mwg`×`nwg` tile of C from `kwg`-deep slices of A and
/// B staged (double-buffered) in local memory; its `mdimc`×`ndimc` threads each hold an
/// (mwg/mdimc)×(nwg/ndimc) register block; global loads are `vwm`/`vwn`-wide vectors along each
/// operand's contiguous axis. Local memory: 2·kwg·(mwg + nwg)·4 bytes.
public struct GEMMParameters: Codable, Equatable, Hashable, Sendable, CustomStringConvertible {
    public var mwg: Int, nwg: Int, kwg: Int
    public var mdimc: Int, ndimc: Int
    public var vwm: Int, vwn: Int

    public init(mwg: Int, nwg: Int, kwg: Int, mdimc: Int, ndimc: Int, vwm: Int, vwn: Int) {
        self.mwg = mwg; self.nwg = nwg; self.kwg = kwg
        self.mdimc = mdimc; self.ndimc = ndimc
        self.vwm = vwm; self.vwn = vwn
    }

    /// Work-group size (threads).
    public var threads: Int { mdimc * ndimc }
    /// Local memory the kernel declares, in bytes (two buffers of each operand's tile).
    public var localMemoryBytes: Int { 2 * kwg * (mwg + nwg) * 4 }
    /// Largest work-group and local memory a parameter set may use: the OpenCL 1.2 full-profile minimum
    /// of local memory (32 KiB), and 256 threads (AMD's and Intel's usual maximum work-group size).
    public static let maxThreads = 256
    public static let maxLocalMemoryBytes = 32 * 1024

    public var description: String {
        "MWG=\(mwg) NWG=\(nwg) KWG=\(kwg) MDIMC=\(mdimc) NDIMC=\(ndimc) VWM=\(vwm) VWN=\(vwn)"
    }

    /// Why this set cannot build (the divisibility rules gemm.cl checks with #error), or nil when it can.
    /// Both orientations of each operand must work (A_MCONTIG, B_NCONTIG 0 or 1), so one set serves A·B,
    /// A·Bᵀ and Aᵀ·B.
    public var invalidReason: String? {
        let widths: Set<Int> = [1, 2, 4, 8, 16]
        if [mwg, nwg, kwg, mdimc, ndimc].contains(where: { $0 <= 0 }) { return "sizes must be positive" }
        if !widths.contains(vwm) || !widths.contains(vwn) { return "VWM and VWN must be 1, 2, 4, 8 or 16" }
        if mwg % mdimc != 0 || nwg % ndimc != 0 { return "MWG must be a multiple of MDIMC and NWG of NDIMC" }
        if (mwg * kwg) % (threads * vwm) != 0 || (nwg * kwg) % (threads * vwn) != 0 {
            return "a tile's vectors (MWG·KWG/VWM, NWG·KWG/VWN) must divide evenly among the \(threads) threads"
        }
        if mwg % vwm != 0 || kwg % vwm != 0 || nwg % vwn != 0 || kwg % vwn != 0 {
            return "VWM must divide MWG and KWG, VWN must divide NWG and KWG"
        }
        if threads > Self.maxThreads { return "work-group of \(threads) threads is over \(Self.maxThreads)" }
        if localMemoryBytes > Self.maxLocalMemoryBytes {
            return "needs \(localMemoryBytes) bytes of local memory, over \(Self.maxLocalMemoryBytes)"
        }
        return nil
    }

    /// The `-D` options of gemm.cl for these sizes and the operands' layouts.
    func buildOptions(aMContiguous: Bool, bNContiguous: Bool, biasPerRow: Bool) -> String {
        "-DMWG=\(mwg) -DNWG=\(nwg) -DKWG=\(kwg) -DMDIMC=\(mdimc) -DNDIMC=\(ndimc) -DVWM=\(vwm) -DVWN=\(vwn)"
            + " -DA_MCONTIG=\(aMContiguous ? 1 : 0) -DB_NCONTIG=\(bNContiguous ? 1 : 0) -DBIAS_M=\(biasPerRow ? 1 : 0)"
    }
}
