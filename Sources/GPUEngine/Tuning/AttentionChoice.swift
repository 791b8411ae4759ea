import Foundation

/// Build options of the tiled (FlashAttention-2 style) attention kernels in `attention_flash.cl`:
///
/// - `rows` (`FA_R`): rows one work-group owns, one per work item — query rows in the forward and the dQ
///   kernel, key rows in the dK/dV kernel — so it is also the work-group size;
/// - `tile` (`FA_T`): rows of the other operand staged in local memory per step — keys (K and V rows) in the
///   forward and dQ kernels, queries (Q, dO rows, L and Dl) in the dK/dV kernel.
///
/// The head dimensions D and Dv are build options too (exact, per program): a work item keeps a D-float
/// query (or dK) row and a Dv-float output (or dV) row in registers. Local memory per work-group, in floats:
/// forward T·(D + Dv); dQ T·(D + Dv) + R·(Dv + 1); dK/dV T·(D + Dv + 2) + R·(D + Dv + 2).
public struct FlashAttentionParameters: Codable, Hashable, Sendable, CustomStringConvertible {
    public var rows: Int
    public var tile: Int

    public init(rows: Int, tile: Int) {
        self.rows = rows
        self.tile = tile
    }

    /// The largest head dimension the kernels take: a work item's register rows grow with D.
    public static let maxHeadDim = 128
    /// Local memory assumed available per work-group (OpenCL 1.2's minimum for a GPU is 32 KiB; NVIDIA,
    /// AMD and Intel GPUs have 48–64 KiB).
    public static let localMemoryLimit = 32 * 1024

    public var description: String { "R\(rows) T\(tile)" }

    /// The `-D` options for head dimensions `d`, `dv`.
    func buildOptions(d: Int, dv: Int) -> String { "-DFA_R=\(rows) -DFA_T=\(tile) -DFA_D=\(d) -DFA_DV=\(dv)" }

    /// Bytes of local memory the largest of the three tiled kernels uses at head dimensions `d`, `dv`.
    public func localBytes(d: Int, dv: Int) -> Int {
        let forward = tile * (d + dv)
        let dq = tile * (d + dv) + rows * (dv + 1)
        let dkv = tile * (d + dv + 2) + rows * (d + dv + 2)
        return 4 * max(forward, dq, dkv)
    }

    /// Why this set cannot run attention with head dimensions `d`, `dv` (nil when it can): sizes out of range,
    /// a head dimension over `maxHeadDim`, or more local memory than `localMemoryLimit`.
    public func unsupportedReason(d: Int, dv: Int) -> String? {
        guard (1...256).contains(rows), (1...256).contains(tile) else {
            return "rows (\(rows)) and tile (\(tile)) must be 1…256"
        }
        guard d >= 1, dv >= 1, d <= Self.maxHeadDim, dv <= Self.maxHeadDim else {
            return "head dimensions D \(d), Dv \(dv): the flash kernels keep a row of each in registers and take D, Dv ≤ \(Self.maxHeadDim)"
        }
        let bytes = localBytes(d: d, dv: dv)
        guard bytes <= Self.localMemoryLimit else {
            return "\(bytes) bytes of local memory at D \(d), Dv \(dv) (limit \(Self.localMemoryLimit)); use a smaller rows or tile"
        }
        return nil
    }
}

/// Which kernels run fused attention (`Attention`) on an OpenCL device.
///
/// - `probabilities`: `attention_forward` stores P [bh, Tq, Tk] and saves it for backward
///   (`attention_backward_q`/`_kv`): register-blocked products, no barriers — what PoCL wants.
/// - `flash(p)`: `attention_flash_forward` stores O and the row logsumexp L [bh, Tq] only; backward recomputes
///   P tile by tile (`attention_flash_backward_delta`, `_q`, `_kv`): work-group tiles in local memory — the
///   GPU-style kernels. Shapes the parameters do not support (see `unsupportedReason`) run on
///   `probabilities` instead.
///
/// `AttentionProbabilities` (P as a graph value, e.g. an attention-map objective) always runs on the
/// P-storing kernels: there P must exist.
public enum AttentionChoice: Codable, Equatable, Sendable, CustomStringConvertible {
    case probabilities
    case flash(FlashAttentionParameters)

    public var flashParameters: FlashAttentionParameters? {
        if case .flash(let p) = self { return p }
        return nil
    }

    public var description: String {
        switch self {
        case .probabilities: return "attention_forward (P stored)"
        case .flash(let p): return "attention_flash (\(p))"
        }
    }

    /// Parses `probabilities`, `flash` (the GPU default parameters) or `flash:R,T` (`AMGPU_ATTENTION`).
    public init(parsing text: String) throws {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        if t == "probabilities" || t == "p" { self = .probabilities; return }
        if t == "flash" { self = .flash(ShippedAttention.gpuDefault); return }
        if t.hasPrefix("flash:") {
            let parts = t.dropFirst(6).split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            if parts.count == 2, let r = parts[0], let tl = parts[1] {
                let p = FlashAttentionParameters(rows: r, tile: tl)
                if let why = p.unsupportedReason(d: 1, dv: 1) { throw EngineError.invalidInput("attention choice '\(text)': \(why)") }
                self = .flash(p)
                return
            }
        }
        throw EngineError.invalidInput("attention choice '\(text)': expected probabilities, flash or flash:ROWS,TILE (e.g. flash:32,16)")
    }
}

/// The attention kernels per kind of device, and the `AMGPU_ATTENTION` override.
public enum ShippedAttention {
    /// The GPU default: 32 query (or key) rows per work-group, 16-row tiles; 24 960 bytes of local memory at
    /// D = Dv = 64, under every GPU's 32 KiB. A design choice, not a measurement: no GPU has run these kernels
    /// yet (scripts/gpu-check times them on the next one).
    public static let gpuDefault = FlashAttentionParameters(rows: 32, tile: 16)

    /// CPU devices (PoCL) keep the P-storing kernels: PoCL runs a work-group's items as loops and its barriers
    /// are costly (docs/opencl-on-pocl.md); the flash kernels are slower there (docs/performance.md). GPUs get
    /// the flash kernels.
    public static func defaults(for device: CLDeviceInfo) -> (choice: AttentionChoice, row: String) {
        if device.type.contains("GPU") { return (.flash(gpuDefault), "GPU: flash attention \(gpuDefault)") }
        return (.probabilities, "\(device.type.contains("CPU") ? "CPU device (PoCL)" : "other device"): P-storing attention")
    }

    /// The choice for `device`: `AMGPU_ATTENTION` when set, else `defaults(for:)`, and where it came from. A value
    /// that does not parse is a usage error (the backend does not start), naming the variable and its values.
    public static func choice(for device: CLDeviceInfo, environment: [String: String] = ProcessInfo.processInfo.environment)
        throws -> (choice: AttentionChoice, source: String) {
        let shipped = defaults(for: device)
        guard let text = environment["AMGPU_ATTENTION"], !text.isEmpty else {
            return (shipped.choice, "shipped default: \(shipped.row)")
        }
        do {
            return (try AttentionChoice(parsing: text), "AMGPU_ATTENTION=\(text)")
        } catch let error as EngineError {
            if case .invalidInput(let why) = error {
                throw EngineError.invalidInput("AMGPU_ATTENTION: \(why); unset it for this device's default (\(shipped.row))")
            }
            throw error
        }
    }
}
