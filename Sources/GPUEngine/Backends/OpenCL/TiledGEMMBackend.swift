import Foundation

/// The GPU-style GEMM as a kernel variant (a `KernelBackendWrapper` over an `OpenCLBackend`) with a fixed
/// parameter set, whatever the base's own `gemmChoice`: matmul in every operand order (A·B, A·Bᵀ, Aᵀ·B —
/// MatMul's backward runs the other orders through it too) and the pointwise (1×1, stride 1, ungrouped)
/// convolution forward and backward-to-input run on `matmul_tiled` (see `OpenCLBackend.gemmTiled`); every
/// other convolution except depthwise ones on the implicit-GEMM kernels `conv2d_forward_tiled` and
/// `conv2d_backward_input_tiled` (`OpenCLBackend.convForwardTiled`); every other entry point, depthwise
/// convolutions and operands without a unit stride run on `base`. Tests and the tuner use it to run
/// a candidate; the engine selects a tuned set through `OpenCLBackend.gemmChoice` instead.
final class TiledGEMMBackend: KernelBackendWrapper, @unchecked Sendable {
    let cl: OpenCLBackend
    var base: any KernelBackend { cl }
    /// The build options of `matmul_tiled` this variant launches with.
    let parameters: GEMMParameters
    var name: String { "tiled-gemm(\(cl.name); \(parameters))" }

    /// Fails for a parameter set that cannot build (see `GEMMParameters.invalidReason`).
    init(base: OpenCLBackend, parameters: GEMMParameters) throws {
        if let why = parameters.invalidReason { throw EngineError.unsupported("GEMM parameters \(parameters): \(why)") }
        cl = base
        self.parameters = parameters
    }

    /// How many times a kernel of the tiled GEMM family (`matmul_tiled`, `conv2d_forward_tiled`,
    /// `conv2d_backward_input_tiled`) has run with this variant's parameters on the base backend.
    var gemmLaunches: Int { cl.tiledLaunches(parameters) }

    func matmul(_ a: Tensor, _ b: Tensor, bias: Tensor?, plan p: MatMul.Plan) throws -> Tensor {
        if let out = try cl.matmulTiled(a, b, bias: bias, plan: p, parameters: parameters) { return out }
        return try cl.matmulCPUStyle(a, b, bias: bias, plan: p)
    }

    func convForward(_ x: Tensor, weight: Tensor, bias: Tensor?, activation: Unary?, savePre: Bool,
                     geometry g: ConvGeometry) throws -> (output: Tensor, pre: Tensor?) {
        if let r = try cl.convForwardTiled(x, weight: weight, bias: bias, activation: activation, savePre: savePre,
                                           geometry: g, parameters: parameters) { return r }
        return try cl.convForwardDirect(x, weight: weight, bias: bias, activation: activation, savePre: savePre, geometry: g)
    }

    func convBackwardInput(_ dy: Tensor, weight: Tensor, bias: Tensor?, geometry g: ConvGeometry) throws -> Tensor {
        if let dx = try cl.convBackwardInputTiled(dy, weight: weight, bias: bias, geometry: g, parameters: parameters) {
            return dx
        }
        return try cl.convBackwardInputDirect(dy, weight: weight, bias: bias, geometry: g)
    }
}
