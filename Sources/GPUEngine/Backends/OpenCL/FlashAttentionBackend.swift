import Foundation

/// The flash attention kernels (`attention_flash.cl`) as a kernel variant with a fixed parameter set, whatever
/// the base's own `attentionChoice`: `Attention`'s forward stores only O and the row logsumexp L, and its
/// backward recomputes P tile by tile. Every other entry point — `AttentionProbabilities` included, which needs
/// P — runs on `base`. Shapes the parameters do not support throw (`FlashAttentionParameters.unsupportedReason`)
/// instead of falling back, so a test cannot pass on the other kernels by accident. Tests and benchmarks use
/// it; the engine selects the flash kernels through `OpenCLBackend.attentionChoice`.
final class FlashAttentionBackend: KernelBackendWrapper, @unchecked Sendable {
    let cl: OpenCLBackend
    var base: any KernelBackend { cl }
    let parameters: FlashAttentionParameters
    var name: String { "flash-attention(\(cl.name); \(parameters))" }

    init(base: OpenCLBackend, parameters: FlashAttentionParameters) {
        cl = base
        self.parameters = parameters
    }

    /// How many attention forwards have run on the flash kernels with this variant's parameters.
    var flashLaunches: Int { cl.flashLaunches(parameters) }

    func attentionForward(_ q: Tensor, _ k: Tensor, _ v: Tensor, shape: AttentionShape, scale: Float) throws -> (Tensor, AttentionSaved) {
        try cl.attentionFlashForward(q, k, v, shape: shape, scale: scale, parameters: parameters)
    }

    func attentionBackward(_ dO: Tensor?, q: Tensor?, k: Tensor?, v: Tensor?, saved: AttentionSaved, dP: Tensor?,
                           shape: AttentionShape, scale: Float,
                           want: (q: Bool, k: Bool, v: Bool)) throws -> (Tensor?, Tensor?, Tensor?) {
        guard case .logSumExp(let o, let l) = saved else {
            return try cl.attentionBackward(dO, q: q, k: k, v: v, saved: saved, dP: dP, shape: shape, scale: scale, want: want)
        }
        guard let dO, let q, let k, let v else {
            throw EngineError.invalidGraph("flash attention backward needs dO, Q, K and V")
        }
        return try cl.attentionFlashBackward(dO, q: q, k: k, v: v, o: o, l: l, shape: shape, scale: scale, want: want,
                                             parameters: parameters)
    }
}
