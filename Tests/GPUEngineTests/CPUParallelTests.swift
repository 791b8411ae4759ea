import Foundation
import Testing
@testable import GPUEngine

/// The CPU backend's threaded loops (`CPUParallel`, Backends/CPU/CPUParallel.swift) and its pointwise
/// convolution path (no im2col/col2im).
///
/// • Threaded against serial: each op below runs forward and backward on `CPUBackend(serial: false)` and
///   `CPUBackend(serial: true)`; outputs and gradients must be bit-identical (every threaded loop computes
///   each element with the serial expression, in the serial order). Shapes are large enough for several
///   chunks (≥ 2·16384 elements; awkward sizes and one power of two), inputs random and non-zero.
/// • Pointwise convolution against a plain Double loop written here (forward and backward to the input),
///   with tolerances ~50 float32 ulps of the sums: a zero, a sign flip or a wrong channel fails.
/// • `IndexMap.forEach(from:to:)` against the matching slice of `forEach`, on broadcast and negative strides.
@Suite struct CPUParallelTests {
    static let threaded = CPUBackend(serial: false)
    static let serial = CPUBackend(serial: true)

    /// Fails unless a and b have the same shape and the same bit patterns everywhere.
    static func expectIdentical(_ a: HostTensor, _ b: HostTensor, _ what: String,
                                sourceLocation: SourceLocation = #_sourceLocation) {
        guard a.shape == b.shape else {
            Issue.record("\(what): shape \(a.shape) != \(b.shape)", sourceLocation: sourceLocation)
            return
        }
        let differing = zip(a.values, b.values).enumerated().filter { $0.element.0.bitPattern != $0.element.1.bitPattern }
        if let first = differing.first {
            Issue.record("\(what): \(differing.count) of \(a.count) values differ; first at \(first.offset) \(unravel(first.offset, a.shape)): threaded \(first.element.0), serial \(first.element.1)",
                         sourceLocation: sourceLocation)
        }
    }

    /// Runs `c` forward and backward on both backends and compares everything bit for bit.
    static func checkThreadedEqualsSerial(_ c: OpCase, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let seed = try c.lossSeed()
        let t = try c.run(on: threaded, seed: seed)
        let s = try c.run(on: serial, seed: seed)
        #expect(t.output.values.contains { $0 != 0 }, "\(c.name): an all-zero output proves nothing", sourceLocation: sourceLocation)
        expectIdentical(t.output, s.output, "\(c.name) forward", sourceLocation: sourceLocation)
        for k in c.inputs.indices {
            guard let a = t.grads[k], let b = s.grads[k] else { continue }
            expectIdentical(a, b, "\(c.name) backward to input \(k)", sourceLocation: sourceLocation)
        }
    }

    /// The cases: (label, op case). Every one has more than one chunk at the default grain.
    static func cases() -> [(String, OpCase)] {
        var rng = SeededRandom(seed: 1601)
        var out: [(String, OpCase)] = []
        out.append(("gelu", OpCase(Unary(.geluErf), [rng.tensor([3, 7, 41, 43])])))
        out.append(("relu pow2", OpCase(Unary(.relu), [rng.tensorAwayFromZero([1, 16, 64, 64])])))
        out.append(("mul broadcast", OpCase(Binary(.mul), [rng.tensor([2, 24, 37, 41]), rng.tensor([1, 24, 1, 41])])))
        out.append(("add pow2", OpCase(Binary(.add), [rng.tensor([1, 16, 64, 64]), rng.tensor([1, 16, 64, 64])])))
        out.append(("div broadcast", OpCase(Binary(.div), [rng.tensor([2, 3, 97, 71]), rng.tensor([2, 3, 97, 1], 0.5, 2)])))
        out.append(("batchnorm", OpCase(BatchNorm(epsilon: 1e-3), [rng.tensor([2, 24, 37, 41]), rng.tensor([24], 0.5, 1.5),
                                                                   rng.tensor([24]), rng.tensor([24]), rng.tensor([24], 0.2, 2)],
                                        differentiable: [true, false, false, false, false])))
        out.append(("maxpool", OpCase(MaxPool2D(kernel: [3, 3], strides: [2, 2], pads: Padding2D(1)), [rng.tensor([2, 24, 75, 77])])))
        out.append(("avgpool", OpCase(AveragePool2D(kernel: [3, 3], strides: [2, 2], pads: Padding2D(1)), [rng.tensor([2, 20, 63, 65])])))
        out.append(("layernorm", OpCase(LayerNorm(epsilon: 1e-6), [rng.tensor([3, 197, 96]), rng.tensor([96], 0.5, 1.5), rng.tensor([96])],
                                        differentiable: [true, false, false])))
        out.append(("softmax last", OpCase(Softmax(axis: -1), [rng.tensor([2, 3, 97, 197], -4, 4)])))
        out.append(("log-softmax inner", OpCase(LogSoftmax(axis: 1), [rng.tensor([2, 50, 37, 31], -4, 4)])))
        out.append(("attention", OpCase(Attention(scale: 0.125), [rng.tensor([6, 97, 24]), rng.tensor([6, 97, 24]), rng.tensor([6, 97, 24])])))
        out.append(("attention probabilities", OpCase(AttentionProbabilities(scale: 0.3), [rng.tensor([4, 128, 16]), rng.tensor([4, 128, 16])])))
        out.append(("reduce sum", OpCase(Reduce(.sum, axes: [1, 3]), [rng.tensor([3, 29, 211, 13])])))
        out.append(("conv 3x3", OpCase(Conv2D(pads: Padding2D(1)), [rng.tensor([2, 40, 29, 31]), rng.tensor([24, 40, 3, 3]), rng.tensor([24])], differentiable: [true, false, true])))
        out.append(("conv grouped s2", OpCase(Conv2D(strides: [2, 2], pads: Padding2D(1), groups: 4),
                                              [rng.tensor([2, 64, 33, 35]), rng.tensor([32, 16, 3, 3])], differentiable: [true, false])))
        out.append(("conv 1x1 pow2", OpCase(Conv2D(), [rng.tensor([2, 32, 32, 32]), rng.tensor([16, 32, 1, 1]), rng.tensor([16])], differentiable: [true, false, true])))
        return out
    }

    @Test func threadedOpsAreBitIdenticalToSerial() throws {
        for (label, c) in Self.cases() {
            var c = c
            c.name = "\(c.name) (\(label))"
            try Self.checkThreadedEqualsSerial(c)
        }
    }

    @Test func chunksCoverEveryIndexOnce() {
        for (count, grain) in [(0, 16), (1, 16), (31, 16), (32, 16), (65_537, 16_384), (1 << 20, 16_384), (100, 1)] {
            var hits = [Int](repeating: 0, count: count)
            // Serial so the counting is race-free; the chunk boundaries are the same either way.
            CPUParallel.forChunks(count, grain: grain, serial: true) { lo, hi in
                for i in lo..<hi { hits[i] += 1 }
            }
            #expect(hits.allSatisfy { $0 == 1 }, "count \(count) grain \(grain)")
            let chunks = CPUParallel.chunkCount(count, grain: grain)
            #expect(count == 0 ? chunks == 0 : (chunks >= 1 && chunks <= max(1, count / grain)))
        }
    }

    @Test func adamStepThreadedEqualsSerial() throws {
        var rng = SeededRandom(seed: 1602)
        let shape = [2, 3, 127, 131]
        let p0 = rng.tensor(shape), g = rng.tensor(shape), m0 = rng.tensor(shape), v0 = rng.tensor(shape, 0.01, 1)
        var results: [[HostTensor]] = []
        for b in [Self.threaded, Self.serial] {
            let p = try b.tensor(p0), m = try b.tensor(m0), v = try b.tensor(v0)
            for _ in 0..<2 {
                try b.adamStep(parameters: p, gradient: b.tensor(g), m: m, v: v, beta1: 0.9, beta2: 0.999,
                               stepSize: 0.05, rootBiasCorrection2: 0.03, eps: 1e-8, gradientSign: -1)
            }
            results.append([try b.download(p), try b.download(m), try b.download(v)])
        }
        #expect(maxAbsDifference(results[0][0], p0) > 0.01, "Adam moved nothing")
        for (k, name) in ["p", "m", "v"].enumerated() { Self.expectIdentical(results[0][k], results[1][k], "adam \(name)") }
    }

    @Test func indexMapSliceEqualsSerialWalk() throws {
        var rng = SeededRandom(seed: 1603)
        let maps = [
            try IndexMap(dims: [3, 5, 7], strides0: [35, 7, 1], strides1: [0, 1, 0]),
            try IndexMap(dims: [4, 1, 6, 2], strides0: [12, 12, 2, 1], strides1: [-6, 0, 1, 0]),
            try IndexMap(dims: [17], strides0: [2], strides1: [-1]),
            try IndexMap(dims: [2, 8, 8], strides0: [64, 8, 1], strides1: [1, 16, 2]),
        ]
        for map in maps {
            var all: [(Int, Int)] = []
            map.forEach { all.append(($0, $1)) }
            #expect(all.count == map.count)
            for _ in 0..<20 {
                let a = Int(rng.next() % UInt64(map.count + 1)), b = Int(rng.next() % UInt64(map.count + 1))
                let lo = min(a, b), hi = max(a, b)
                var slice: [(Int, Int, Int)] = []
                map.forEach(from: lo, to: hi) { slice.append(($0, $1, $2)) }
                let expected = (lo..<hi).map { ($0, all[$0].0, all[$0].1) }
                #expect(slice.count == expected.count && zip(slice, expected).allSatisfy { $0 == $1 },
                        "map \(map.dims) slice \(lo)..<\(hi)")
            }
        }
    }

    /// y[n, co, p] = b[co] + Σ_ci W[co, ci] · x[n, g·Cin/G + ci, p] over the group g of co, in Double.
    static func pointwiseReference(x: HostTensor, w: HostTensor, bias: HostTensor?, groups: Int) -> HostTensor {
        let n = x.shape[0], cin = x.shape[1], p = x.shape[2] * x.shape[3], cout = w.shape[0]
        let cinG = cin / groups, coutG = cout / groups
        var y = [Float](repeating: 0, count: n * cout * p)
        for b in 0..<n {
            for co in 0..<cout {
                let g = co / coutG
                for i in 0..<p {
                    var s = Double(bias?.values[co] ?? 0)
                    for ci in 0..<cinG { s += Double(w.values[co * cinG + ci]) * Double(x.values[(b * cin + g * cinG + ci) * p + i]) }
                    y[(b * cout + co) * p + i] = Float(s)
                }
            }
        }
        return HostTensor(shape: [n, cout, x.shape[2], x.shape[3]], values: y)
    }

    /// dx[n, g·Cin/G + ci, p] = Σ_{co in group g} W[co, ci] · dy[n, co, p], in Double.
    static func pointwiseBackwardReference(dy: HostTensor, w: HostTensor, inputShape: [Int], groups: Int) -> HostTensor {
        let n = inputShape[0], cin = inputShape[1], p = inputShape[2] * inputShape[3], cout = w.shape[0]
        let cinG = cin / groups, coutG = cout / groups
        var dx = [Float](repeating: 0, count: n * cin * p)
        for b in 0..<n {
            for c in 0..<cin {
                let g = c / cinG, ci = c % cinG
                for i in 0..<p {
                    var s = 0.0
                    for k in 0..<coutG {
                        let co = g * coutG + k
                        s += Double(w.values[co * cinG + ci]) * Double(dy.values[(b * cout + co) * p + i])
                    }
                    dx[(b * cin + c) * p + i] = Float(s)
                }
            }
        }
        return HostTensor(shape: inputShape, values: dx)
    }

    @Test(arguments: [
        ([1, 8, 8, 8], [4, 8, 1, 1], 1, true),       // power of two
        ([2, 12, 7, 9], [10, 6, 1, 1], 2, false),    // awkward, grouped
        ([3, 5, 13, 1], [7, 5, 1, 1], 1, true),      // one column
        ([2, 96, 14, 14], [40, 96, 1, 1], 1, false), // a ResNet-like channel count
    ])
    func pointwiseConvMatchesPlainLoop(_ xShape: [Int], _ wShape: [Int], _ groups: Int, _ withBias: Bool) throws {
        var rng = SeededRandom(seed: 1604)
        let x = rng.tensor(xShape), w = rng.tensor(wShape), bias = withBias ? rng.tensor([wShape[0]]) : nil
        let c = OpCase(Conv2D(groups: groups), [x, w] + (bias.map { [$0] } ?? []), differentiable: [true, false] + (withBias ? [true] : []))
        let seed = try c.lossSeed()
        let expectedY = Self.pointwiseReference(x: x, w: w, bias: bias, groups: groups)
        let expectedDx = Self.pointwiseBackwardReference(dy: seed, w: w, inputShape: xShape, groups: groups)
        let k = Float(wShape[1])
        for b in [Self.threaded, Self.serial] {
            let (y, grads) = try c.run(on: b, seed: seed)
            expectClose(y, expectedY, atol: 6e-6 * k, rtol: 1e-5, "pointwise conv forward \(xShape) × \(wShape) g\(groups) serial=\(b.serial)")
            guard let dx = grads[0] else { Issue.record("no gradient for x"); continue }
            expectClose(dx, expectedDx, atol: 6e-6 * Float(wShape[0]), rtol: 1e-5, "pointwise conv backward \(xShape) × \(wShape) g\(groups) serial=\(b.serial)")
        }
        #expect(expectedY.values.contains { abs($0) > 0.1 } && expectedDx.values.contains { abs($0) > 0.1 })
    }

    /// Depthwise (groups = Cin = Cout) forward and backward-to-input as plain Double loops over taps.
    static func depthwiseReference(x: HostTensor, w: HostTensor, dy: HostTensor, stride: Int, pad: Int, dilation: Int,
                                   outShape: [Int]) -> (y: HostTensor, dx: HostTensor) {
        let n = x.shape[0], c = x.shape[1], h = x.shape[2], wd = x.shape[3], kh = w.shape[2], kw = w.shape[3]
        let oh = outShape[2], ow = outShape[3]
        var y = [Float](repeating: 0, count: n * c * oh * ow), dx = [Double](repeating: 0, count: x.count)
        for b in 0..<n {
            for ch in 0..<c {
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        var s = 0.0
                        let o = ((b * c + ch) * oh + oy) * ow + ox
                        for ky in 0..<kh {
                            for kx in 0..<kw {
                                let iy = oy * stride - pad + ky * dilation, ix = ox * stride - pad + kx * dilation
                                guard iy >= 0, iy < h, ix >= 0, ix < wd else { continue }
                                let xi = ((b * c + ch) * h + iy) * wd + ix, wv = Double(w.values[(ch * kh + ky) * kw + kx])
                                s += wv * Double(x.values[xi])
                                dx[xi] += wv * Double(dy.values[o])
                            }
                        }
                        y[o] = Float(s)
                    }
                }
            }
        }
        return (HostTensor(shape: outShape, values: y), HostTensor(shape: x.shape, values: dx.map { Float($0) }))
    }

    @Test(arguments: [
        ([1, 4, 8, 8], 3, 1, 1, 1),      // power of two
        ([2, 5, 13, 11], 3, 2, 1, 1),    // awkward, stride 2
        ([1, 3, 9, 10], 5, 1, 4, 2),     // dilated
        ([2, 64, 37, 37], 1, 1, 0, 1),   // ResNetV2's pre-activation BN (1×1), several chunks
        ([1, 24, 40, 41], 3, 1, 1, 1),   // several chunks
    ])
    func depthwiseConvMatchesPlainLoop(_ xShape: [Int], _ k: Int, _ stride: Int, _ pad: Int, _ dilation: Int) throws {
        var rng = SeededRandom(seed: 1606)
        let c = xShape[1]
        let x = rng.tensor(xShape), w = rng.tensor([c, 1, k, k]), bias = rng.tensor([c])
        let op = Conv2D(strides: [stride, stride], dilations: [dilation, dilation], pads: Padding2D(pad), groups: c)
        let oc = OpCase(op, [x, w, bias], differentiable: [true, false, true])
        let seed = try oc.lossSeed()
        var (y, dx) = Self.depthwiseReference(x: x, w: w, dy: seed, stride: stride, pad: pad, dilation: dilation,
                                              outShape: try oc.outputShape())
        let plane = y.count / (xShape[0] * c)
        for i in 0..<y.count { y.values[i] += bias.values[(i / plane) % c] }
        let atol = 2e-6 * Float(k * k)
        var results: [(HostTensor, HostTensor?)] = []
        for b in [Self.threaded, Self.serial] {
            let (got, grads) = try oc.run(on: b, seed: seed)
            expectClose(got, y, atol: atol, rtol: 1e-5, "depthwise forward \(xShape) k\(k) s\(stride) serial=\(b.serial)")
            if let g = grads[0] { expectClose(g, dx, atol: atol, rtol: 1e-5, "depthwise backward \(xShape) k\(k) s\(stride) serial=\(b.serial)") }
            else { Issue.record("no gradient for x") }
            results.append((got, grads[0]))
        }
        Self.expectIdentical(results[0].0, results[1].0, "depthwise forward threaded vs serial")
        if let a = results[0].1, let b = results[1].1 { Self.expectIdentical(a, b, "depthwise backward threaded vs serial") }
        #expect(y.values.contains { abs($0) > 0.1 } && dx.values.contains { abs($0) > 0.1 })
    }

    @Test func depthwiseConvFiniteDifferences() throws {
        var rng = SeededRandom(seed: 1607)
        try OpCase(Conv2D(strides: [2, 2], pads: Padding2D(1), groups: 3), [rng.tensor([2, 3, 7, 6]), rng.tensor([3, 1, 3, 3]), rng.tensor([3])],
                   differentiable: [true, false, true]).checkGradients()
        try OpCase(Conv2D(groups: 4, activation: Unary(.relu)), [rng.tensorAwayFromZero([1, 4, 5, 5]), rng.tensor([4, 1, 1, 1], 0.5, 1.5)],
                   differentiable: [true, false]).checkGradients()
    }

    @Test func pointwiseConvFiniteDifferences() throws {
        var rng = SeededRandom(seed: 1605)
        try OpCase(Conv2D(groups: 2), [rng.tensor([2, 6, 5, 3]), rng.tensor([4, 3, 1, 1]), rng.tensor([4])], differentiable: [true, false, true]).checkGradients()
        try OpCase(Conv2D(), [rng.tensor([1, 4, 4, 4]), rng.tensor([3, 4, 1, 1])], differentiable: [true, false]).checkGradients()
    }
}
