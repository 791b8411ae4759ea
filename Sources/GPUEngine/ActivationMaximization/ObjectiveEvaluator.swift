/// Runs a model and an objective on one backend: scores per image and, when asked, the gradient of
/// Σ_b score_b with respect to the model input. Forward stops at the deepest layer the objective
/// reads; only the activations backward needs are kept. Shared by `visualize` and `adversarial`.
public final class ObjectiveEvaluator {
    public let model: Model
    public let objective: ObjectiveGraph
    public let backend: any Backend
    let modelExecutor: Executor
    let objectiveExecutor: Executor

    /// `observing`: terms evaluated next to the objective, returned by `evaluate(_:gradient:observe:gate:)`;
    /// `warmTerm`: see `ObjectiveGraph.init` (its gate is fed by `evaluate`).
    public init(model: Model, objective: Objective, backend: any Backend, observing: [ObjectiveTerm] = [],
                warmTerm: ObjectiveTerm? = nil) throws {
        self.model = model
        self.objective = try ObjectiveGraph(objective, model: model, observing: observing, warmTerm: warmTerm)
        self.backend = backend
        try model.graph.checkFits(on: backend, what: "\(model.name) at batch \(model.batchSize)")
        modelExecutor = Executor(graph: model.graph, backend: backend)
        objectiveExecutor = Executor(graph: self.objective.graph, backend: backend)
    }

    /// Scores [B] for `input` [B, 3, H, W] (already normalized for the model), and d(Σ score)/d input.
    public func evaluate(_ input: Tensor, gradient: Bool = true) throws -> (scores: Tensor, inputGradient: Tensor?) {
        let r = try evaluate(input, gradient: gradient, observe: false, gate: nil)
        return (r.scores, r.inputGradient)
    }

    /// As `evaluate(_:gradient:)`, plus the observed terms' values ([B] each) when `observe` is true. `gate` [B] feeds
    /// the warm term's gate (all zero when nil: the plain objective).
    public func evaluate(_ input: Tensor, gradient: Bool, observe: Bool, gate: [Float]?) throws -> (scores: Tensor, inputGradient: Tensor?, observed: [Tensor]) {
        let targets = objective.inputs.map(\.model)
        let pass = try modelExecutor.forward(feeds: [model.input: input], targets: targets,
                                             differentiable: gradient ? [model.input] : [])
        var feeds: [ValueID: Tensor] = [:]
        for (m, o) in objective.inputs { feeds[o] = try pass.value(m) }
        if let g = objective.gate {
            let b = model.batchSize
            let values = gate ?? [Float](repeating: 0, count: b)
            guard values.count == b else { throw EngineError.invalidInput("the warm-start gate has \(values.count) entries for a batch of \(b)") }
            feeds[g] = try backend.tensor(HostTensor(shape: [b], values: values))
        }
        let observedIDs = observe ? objective.observed : []
        let objectivePass = try objectiveExecutor.forward(feeds: feeds, targets: [objective.score] + observedIDs,
                                                          differentiable: gradient ? Set(objective.inputs.map(\.objective)) : [])
        let scores = try objectivePass.value(objective.score)
        let observed = try observedIDs.map { try objectivePass.value($0) }
        guard gradient else { return (scores, nil, observed) }
        let ones = try backend.full(scores.shape, value: 1)
        let seeds = try objectiveExecutor.backward(objectivePass, seeds: [objective.score: ones])
        var modelSeeds: [ValueID: Tensor] = [:]
        for (m, o) in objective.inputs { if let g = seeds[o] { modelSeeds[m] = g } }
        let grads = try modelExecutor.backward(pass, seeds: modelSeeds)
        return (scores, grads[model.input], observed)
    }

    /// As `evaluate(_:gradient:observe:gate:)` with the gate chosen from this very input: one model forward, the
    /// observed terms [B] computed and downloaded first, then `gate(observed)` [B] feeds the warm term's gate for the
    /// score and its gradient d(Σ score)/d input. The model runs once; only the small objective graph runs twice.
    /// Used by the warm start, so that an image whose unit is already above the threshold is never warmed.
    public func evaluate(_ input: Tensor, gateFrom gate: ([[Float]]) throws -> [Float]) throws -> (scores: Tensor, inputGradient: Tensor?, observed: [[Float]]) {
        guard let g = objective.gate, !objective.observed.isEmpty else {
            throw EngineError.invalidGraph("a gate chosen from the observed terms needs a warm term and an observed term")
        }
        let targets = objective.inputs.map(\.model)
        let pass = try modelExecutor.forward(feeds: [model.input: input], targets: targets, differentiable: [model.input])
        let b = model.batchSize
        var feeds: [ValueID: Tensor] = [:]
        for (m, o) in objective.inputs { feeds[o] = try pass.value(m) }
        feeds[g] = try backend.tensor(HostTensor(shape: [b], values: [Float](repeating: 0, count: b)))
        let observedPass = try objectiveExecutor.forward(feeds: feeds, targets: objective.observed, differentiable: [])
        let observed = try objective.observed.map { try backend.download(observedPass.value($0)).values }
        let values = try gate(observed)
        guard values.count == b else { throw EngineError.invalidInput("the warm-start gate has \(values.count) entries for a batch of \(b)") }
        feeds[g] = try backend.tensor(HostTensor(shape: [b], values: values))
        let objectivePass = try objectiveExecutor.forward(feeds: feeds, targets: [objective.score],
                                                          differentiable: Set(objective.inputs.map(\.objective)))
        let scores = try objectivePass.value(objective.score)
        let seeds = try objectiveExecutor.backward(objectivePass, seeds: [objective.score: backend.full(scores.shape, value: 1)])
        var modelSeeds: [ValueID: Tensor] = [:]
        for (m, o) in objective.inputs { if let s = seeds[o] { modelSeeds[m] = s } }
        let grads = try modelExecutor.backward(pass, seeds: modelSeeds)
        return (scores, grads[model.input], observed)
    }

    /// Runs the model to `layers` (no gradient) and returns their values.
    public func activations(_ input: Tensor, layers: [ValueID]) throws -> [ValueID: Tensor] {
        let pass = try modelExecutor.forward(feeds: [model.input: input], targets: layers)
        var out: [ValueID: Tensor] = [:]
        for v in layers { out[v] = try pass.value(v) }
        return out
    }
}

/// Runs a model forward to any values (no objective), e.g. for classification or `amgpu activations`.
public final class ModelRunner {
    public let model: Model
    public let backend: any Backend
    let executor: Executor

    /// Throws `EngineError.deviceMemory` before any work when the model cannot fit an OpenCL device.
    public init(model: Model, backend: any Backend) throws {
        self.model = model
        self.backend = backend
        try model.graph.checkFits(on: backend, what: "\(model.name) at batch \(model.batchSize)", backward: false)
        executor = Executor(graph: model.graph, backend: backend)
    }

    /// Values of `layers` for a model input [B, 3, H, W] (normalized).
    public func run(_ input: HostTensor, layers: [ValueID]) throws -> [ValueID: HostTensor] {
        let pass = try executor.forward(feeds: [model.input: backend.tensor(input)], targets: layers)
        var out: [ValueID: HostTensor] = [:]
        for v in layers { out[v] = try backend.download(pass.value(v)) }
        return out
    }
}
