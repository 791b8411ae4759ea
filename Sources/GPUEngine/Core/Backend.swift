import Foundation

/// A place where tensors live and operators run: the CPU reference or an OpenCL device.
/// Operators reach a backend's kernels through `kernels` (see `KernelBackend`); code that needs
/// OpenCL-only facts (profiling, device limits) asks `backend as? OpenCLBackend`.
public protocol Backend: AnyObject, Sendable {
    /// A short name for messages and reports: "cpu" or "opencl:0 (device name)".
    var name: String { get }
    /// Copies host values into a new tensor of this backend.
    func tensor(_ host: HostTensor) throws -> Tensor
    /// A tensor of values that never change again (graph constants: weights). Kernels may cache
    /// buffers derived from it (packed panels), and a backend whose device memory is host memory may
    /// use `host`'s array in place instead of copying it. Default: `tensor(host)`.
    func constant(_ host: HostTensor) throws -> Tensor
    /// A new tensor of `shape` with every element `value`.
    func full(_ shape: [Int], value: Float) throws -> Tensor
    /// Copies a tensor's values to the host (waits for pending work).
    func download(_ tensor: Tensor) throws -> HostTensor
    /// Waits until all queued work is done.
    func synchronize() throws
}

extension Backend {
    public func constant(_ host: HostTensor) throws -> Tensor { try tensor(host) }

    public func zeros(_ shape: [Int]) throws -> Tensor { try full(shape, value: 0) }

    /// Runs `op` forward on `inputs` and returns its output (saved values are dropped).
    public func run(_ op: any Operator, _ inputs: Tensor...) throws -> Tensor {
        try op.forward(inputs, on: self).output
    }

    public func run(_ op: any Operator, _ inputs: [Tensor]) throws -> Tensor {
        try op.forward(inputs, on: self).output
    }
}

/// What an operator's forward pass produces: the output and any values its backward needs
/// besides inputs and output (e.g. layer norm's mean and reciprocal standard deviation).
public struct OpResult {
    public var output: Tensor
    public var saved: [Tensor]

    public init(_ output: Tensor, saved: [Tensor] = []) {
        self.output = output
        self.saved = saved
    }
}

/// What an operator's backward pass receives.
public struct BackwardContext {
    /// dL/d(output), shaped like the output.
    public var gradOutput: Tensor
    /// The forward inputs; an entry is nil when `backwardUses` said it is not needed.
    public var inputs: [Tensor?]
    /// Shapes of all forward inputs (always available).
    public var inputShapes: [[Int]]
    /// The forward output, if `backwardUses` asked for it.
    public var output: Tensor?
    /// Values the forward saved.
    public var saved: [Tensor]
    /// Which inputs need a gradient; backward returns nil for the others.
    public var needsGrad: [Bool]

    public func input(_ index: Int) throws -> Tensor {
        guard index < inputs.count, let value = inputs[index] else {
            throw EngineError.invalidGraph("backward needs input \(index), which the executor did not keep")
        }
        return value
    }

    public func requireOutput() throws -> Tensor {
        guard let output else { throw EngineError.invalidGraph("backward needs the output, which the executor did not keep") }
        return output
    }
}

/// An operator: shape inference, forward on each backend, and backward to its inputs.
/// No weight gradients: inputs that are constants never get one.
public protocol Operator: Sendable, CustomStringConvertible {
    /// The operator's type, e.g. "MatMul".
    var typeName: String { get }
    /// The output shape for the given input shapes; throws for inputs the operator rejects.
    func outputShape(_ inputShapes: [[Int]]) throws -> [Int]
    /// Which forward values backward reads, given which inputs need a gradient:
    /// `inputs[i]` true keeps input i alive, `output` keeps the output.
    func backwardUses(needsGrad: [Bool]) -> (inputs: [Bool], output: Bool)
    func forward(_ inputs: [Tensor], on backend: any Backend) throws -> OpResult
    /// Gradients for each input (nil where `needsGrad` is false).
    func backward(_ context: BackwardContext, on backend: any Backend) throws -> [Tensor?]
}

extension Operator {
    public var description: String { typeName }
    public func backwardUses(needsGrad: [Bool]) -> (inputs: [Bool], output: Bool) {
        (needsGrad.map { _ in true }, false)
    }
}

/// Checks that there are `count` inputs.
func expectInputs(_ shapes: [[Int]], _ count: Int, _ op: String) throws {
    guard shapes.count == count else {
        throw EngineError.invalidGraph("\(op) takes \(count) input(s), got \(shapes.count)")
    }
}
