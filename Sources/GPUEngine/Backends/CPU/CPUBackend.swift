import Foundation

/// The CPU reference backend: plain Swift loops (matrix products through OpenBLAS's cblas), with
/// independent outputs split across cores unless `serial`.
/// It is the oracle the OpenCL kernels are tested against, and the `--device cpu` fallback.
public final class CPUBackend: Backend, KernelBackend, @unchecked Sendable {
    public let name = "cpu"
    /// When true, every kernel entry point adds its wall time to `kernelTimes` (see CPUParallel.swift).
    public var profiling = false
    let profile = CPUProfile()
    /// When true every kernel runs single-threaded; otherwise per-element loops, im2col/col2im,
    /// pooling, normalization and softmax split their independent outputs across the cores
    /// (`CPUParallel`), with results bit-identical to the serial ones.
    public let serial: Bool

    /// `serial` nil: single-threaded only when the environment sets AMGPU_CPU_SERIAL=1.
    public init(serial: Bool? = nil) {
        self.serial = serial ?? CPUParallel.serialByDefault
    }

    /// A new zero-filled tensor.
    public func make(_ shape: [Int]) -> Tensor {
        Tensor(shape: shape, storage: .host(HostBuffer(count: shape.reduce(1, *))))
    }

    public func tensor(_ host: HostTensor) throws -> Tensor {
        let t = make(host.shape)
        let buffer = try t.host()
        host.values.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { buffer.pointer.update(from: base, count: host.count) }
        }
        return t
    }

    public func full(_ shape: [Int], value: Float) throws -> Tensor {
        let t = make(shape)
        if value != 0 { try t.host().pointer.update(repeating: value, count: t.count) }
        return t
    }

    public func download(_ tensor: Tensor) throws -> HostTensor {
        let buffer = try tensor.host()
        return HostTensor(shape: tensor.shape, values: Array(UnsafeBufferPointer(start: buffer.pointer, count: tensor.count)))
    }

    public func synchronize() throws {}
}
