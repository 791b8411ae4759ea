import Foundation
import Testing
@testable import GPUEngine

/// The bad-input corpus: every case runs the real `amgpu` binary on a broken model file, image,
/// setting or environment, and must end with exit status 1 (not a signal) — 64 (EX_USAGE) for a bad flag
/// refused while the flags are parsed or in `validate()`, before any model loads — exactly one
/// `amgpu: error:` (or ArgumentParser's `Error:`) line that names the problem and the fix, no crash report, and no output left
/// behind (the case's output folder absent or empty, no temporary files). Files are built in a
/// temporary folder; ONNX models are written with the engine's own protobuf types.
/// (`okCases` are the unusual-but-valid inputs next to them: they must succeed.)
@Suite struct BadInputTests {
    /// One case: the arguments (built from the fixtures folder and the case's output path), the
    /// substrings that name the problem and the fix, and the environment.
    struct Case: Sendable {
        var name: String
        var args: @Sendable (_ dir: String, _ out: String) -> [String]
        var problem: String
        var fix: String
        var environment: [String: String] = [:]
        /// Run under `ulimit -f` (KiB) with SIGXFSZ ignored: writes past it fail with EFBIG, as on a full disk.
        var fileSizeLimitKiB: Int? = nil
        var needsOpenCL = false
        /// The case's message names ImageNet classes, which come from `data/imagenet_classes.txt` (scripts/fetch-models);
        /// without that file `random:resnet18` has no class names and says so instead.
        var needsClassNames = false
        /// A usage error: a flag value refused by the argument parser or `validate()` (exit 64, EX_USAGE).
        var usageError = false
    }

    static let fixtures: String = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("amgpu-badinput-\(getpid())").path
        do { try writeFixtures(dir) } catch { Issue.record("cannot write fixtures: \(error)") }
        return dir
    }()

    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    // MARK: the cases

    static let cpu = ["--device", "cpu"]
    static func layers(_ file: String, _ extra: [String] = []) -> @Sendable (String, String) -> [String] {
        { dir, _ in ["layers", dir + "/" + file] + extra }
    }
    static func classify(_ model: String, image: String = "photo.png", _ extra: [String] = []) -> @Sendable (String, String) -> [String] {
        { dir, _ in ["classify", "--model", model.hasPrefix("random:") ? model : dir + "/" + model, "--image", dir + "/" + image] + cpu + extra }
    }
    static let tinyModel = ["--model", "random:resnet18", "--size", "32"]
    static func visualize(_ extra: [String]) -> @Sendable (String, String) -> [String] {
        { _, out in ["visualize"] + tinyModel + ["--steps", "2", "--no-baseline", "--quiet", "--out", out] + cpu + extra }
    }
    /// `visualize(extra)` with "{dir}" in `extra` replaced by the fixtures folder.
    static func visualizeFixture(_ extra: [String]) -> @Sendable (String, String) -> [String] {
        { dir, out in visualize(extra.map { $0.replacingOccurrences(of: "{dir}", with: dir) })(dir, out) }
    }
    static func activationAtlas(_ folder: String, layer: String = "layer1", _ extra: [String] = []) -> @Sendable (String, String) -> [String] {
        { dir, out in ["activation-atlas"] + tinyModel + ["--steps", "2", "--grid", "2", "--samples", "50", "--quiet", "--images", dir + "/" + folder,
                                                          "--layer", layer, "--out", out] + cpu + extra }
    }
    static func adversarial(_ extra: [String], image: String = "photo.png") -> @Sendable (String, String) -> [String] {
        { dir, out in ["adversarial"] + tinyModel + ["--steps", "2", "--quiet", "--out", out, "--image", dir + "/" + image] + cpu + extra }
    }

    static let cases: [Case] = [
        // ONNX model files
        Case(name: "onnx-empty", args: layers("empty.onnx"), problem: "is empty", fix: "re-export"),
        Case(name: "onnx-garbage", args: layers("garbage.onnx"), problem: "not a valid ONNX model", fix: "check that the file is complete"),
        Case(name: "onnx-truncated", args: layers("truncated.onnx"), problem: "not a valid ONNX model", fix: "check that the file is complete"),
        Case(name: "onnx-no-graph", args: layers("nograph.onnx"), problem: "holds no ONNX graph", fix: "re-export"),
        Case(name: "onnx-unknown-op", args: layers("unknownop.onnx"), problem: "FancyOp (first at node 'fancy1')", fix: "Re-export the model without them"),
        Case(name: "onnx-cumsum-on-image", args: layers("cumsumimage.onnx"), problem: "CumSum of a value that depends on the image (first at node 'cumsum1')", fix: "Re-export the model without them"),
        Case(name: "onnx-cycle", args: layers("cycle.onnx"), problem: "which no node or initializer defines", fix: "re-export"),
        Case(name: "onnx-undefined-input", args: layers("undefined.onnx"), problem: "reads 'ghost'", fix: "re-export"),
        Case(name: "onnx-input-rank0", args: layers("rank0.onnx"), problem: "has no shape (rank 0)", fix: "re-export the model"),
        Case(name: "onnx-input-rank3-conv", args: layers("rank3conv.onnx"), problem: "Conv", fix: "re-export"),
        Case(name: "onnx-two-inputs", args: layers("twoinputs.onnx"), problem: "exactly one image input", fix: "re-export"),
        Case(name: "onnx-five-channels", args: layers("fivechannels.onnx"), problem: "has 5 channels", fix: "RGB"),
        Case(name: "onnx-terabyte-initializer", args: layers("terabyte.onnx"), problem: "more than 2147483648 elements", fix: "the file is corrupt"),
        Case(name: "onnx-shape-product-overflow", args: layers("overflow.onnx"), problem: "more than 2147483648 elements", fix: "the file is corrupt"),
        Case(name: "onnx-negative-dim", args: layers("negative.onnx"), problem: "negative dimension", fix: "re-export"),
        Case(name: "onnx-raw-data-short", args: layers("shortraw.onnx"), problem: "raw data has 3 bytes", fix: "re-export"),
        Case(name: "onnx-external-data-missing", args: layers("external.onnx"), problem: "cannot be opened", fix: "keep it next to the model"),
        Case(name: "onnx-external-data-escapes", args: layers("escape.onnx"), problem: "bad external data location", fix: "must be a file beside the model"),
        Case(name: "onnx-string-initializer", args: layers("string.onnx"), problem: "data type 8", fix: "supported:"),
        Case(name: "onnx-output-independent", args: layers("constout.onnx"), problem: "does not depend on its input", fix: "re-export"),
        Case(name: "onnx-huge-input", args: layers("hugeinput.onnx"), problem: "more than 2147483648 elements", fix: "the file is corrupt"),
        Case(name: "onnx-reshape-overflow", args: layers("reshapeoverflow.onnx"), problem: "cannot reshape", fix: "re-export"),
        Case(name: "onnx-unsqueeze-repeated-axis", args: layers("unsqueezerepeat.onnx"), problem: "repeat an axis", fix: "re-export"),
        Case(name: "onnx-unsqueeze-repeated-axis-folded", args: layers("unsqueezerepeatconst.onnx"), problem: "repeat an axis", fix: "re-export"),
        Case(name: "onnx-symbolic-size-without-size", args: classify("symbolic.onnx"), problem: "has a symbolic size", fix: "--size 224"),
        Case(name: "onnx-fixed-size-mismatch", args: classify("relu.onnx", ["--size", "64"]), problem: "takes 8×8 images", fix: "--size 64 does not fit"),
        // model cards
        Case(name: "card-labels-wrong-count", args: { dir, _ in ["classify", "--model", "random:resnet18", "--size", "32", "--image", dir + "/photo.png", "--labels", dir + "/labels999.txt"] + cpu },
             problem: "has 999 class names, but the model has 1000 outputs", fix: "give one name per output"),
        Case(name: "card-mean-two-values", args: classify("random:resnet18", ["--size", "32", "--mean", "0.5,0.5"]),
             problem: "--mean needs 3 values (R,G,B)", fix: "or 1"),
        Case(name: "card-std-zero", args: visualize(["--layer", "output", "--unit", "1", "--std", "0.2,0,0.2"]),
             problem: "--std has a std of 0", fix: "every std must be positive"),
        Case(name: "card-config-json-not-json", args: layers("badconfig/model.safetensors", ["--arch", "resnet18"]),
             problem: "is not valid JSON", fix: "fix it, or move it away"),
        Case(name: "card-labels-missing-file", args: classify("random:resnet18", ["--size", "32", "--labels", "nothere.txt"]),
             problem: "cannot read the label file", fix: "check the path"),
        Case(name: "card-size-not-a-size", args: classify("random:resnet18", ["--size", "32x"]),
             problem: "--size '32x' is not N or H,W", fix: "--size 192,256"),
        // safetensors
        Case(name: "st-shorter-than-header", args: layers("short.safetensors", ["--arch", "resnet18"]), problem: "shorter than its 8-byte header length", fix: "re-download or re-export it"),
        Case(name: "st-header-past-end", args: layers("headerlen.safetensors", ["--arch", "resnet18"]), problem: "the header claims", fix: "re-download or re-export it"),
        Case(name: "st-header-not-json", args: layers("notjson.safetensors", ["--arch", "resnet18"]), problem: "not a JSON object", fix: "re-download or re-export it"),
        Case(name: "st-offsets-past-end", args: layers("pastend.safetensors", ["--arch", "resnet18"]), problem: "outside the", fix: "re-download or re-export it"),
        Case(name: "st-overlapping-tensors", args: layers("overlap.safetensors", ["--arch", "resnet18"]), problem: "tensors overlap", fix: "re-download or re-export it"),
        Case(name: "st-size-mismatch", args: layers("sizemismatch.safetensors", ["--arch", "resnet18"]), problem: "spans 8 bytes but F32 [4] needs 16", fix: "re-download or re-export it"),
        Case(name: "st-terabyte-shape", args: layers("terabyte.safetensors", ["--arch", "resnet18"]), problem: "more than 2147483648 elements", fix: "the file is corrupt"),
        Case(name: "st-shape-product-overflow", args: layers("overflow.safetensors", ["--arch", "resnet18"]), problem: "more than 2147483648 elements", fix: "the file is corrupt"),
        Case(name: "st-unknown-dtype", args: layers("dtype.safetensors", ["--arch", "resnet18"]), problem: "unknown dtype 'F7'", fix: "re-download or re-export it"),
        Case(name: "st-no-architecture", args: layers("valid.safetensors"), problem: "does not say which architecture", fix: "pass --arch NAME"),
        Case(name: "st-wrong-architecture-tensors", args: layers("valid.safetensors", ["--arch", "resnet18"]), problem: "conv1.weight", fix: "--arch"),
        Case(name: "model-missing-file", args: layers("nothere.onnx"), problem: "does not exist", fix: "check the path"),
        Case(name: "model-unknown-name", args: { _, _ in ["layers", "no_such_model"] }, problem: "unknown model 'no_such_model'", fix: "give an .onnx or .safetensors path"),
        Case(name: "model-unknown-architecture", args: { _, _ in ["layers", "random:resnet19"] }, problem: "resnet19", fix: "resnet18"),
        // images
        Case(name: "image-missing", args: classify("random:resnet18", image: "nothere.png"), problem: "no such file", fix: "check the path"),
        Case(name: "image-empty-file", args: classify("random:resnet18", image: "empty.png"), problem: "the file is empty", fix: "convert"),
        Case(name: "image-is-text", args: classify("random:resnet18", image: "text.png"), problem: "it looks like text", fix: "convert photo.webp photo.png"),
        Case(name: "image-jpeg-garbage", args: classify("random:resnet18", image: "photo.jpg"), problem: "cannot read image", fix: "re-export it"),
        Case(name: "image-jpeg-truncated", args: classify("random:resnet18", image: "truncated.jpg"), problem: "Premature end of JPEG file", fix: "re-export it"),
        Case(name: "image-jpeg-progressive-corrupt", args: classify("random:resnet18", image: "progressive_corrupt.jpg"), problem: "Invalid progressive parameters", fix: "re-export it"),
        Case(name: "image-jpeg-60000-by-60000", args: classify("random:resnet18", image: "huge.jpg"), problem: "is 60000×60000 pixels", fix: "downscale it first"),
        Case(name: "image-jpeg-zero-bytes", args: classify("random:resnet18", image: "empty.jpg"), problem: "the file is empty", fix: "convert"),
        Case(name: "image-text-named-jpg", args: classify("random:resnet18", image: "notes.jpg"), problem: "not a JPEG or PNG file (it looks like text)", fix: "convert other formats first"),
        Case(name: "image-gif", args: classify("random:resnet18", image: "anim.gif"), problem: "it looks like GIF", fix: "convert other formats first"),
        Case(name: "image-jpeg-truncated-adversarial", args: adversarial(["--target", "3"], image: "truncated.jpg"), problem: "Premature end of JPEG file", fix: "re-export it"),
        Case(name: "image-jpeg-truncated-toward", args: { dir, out in ["visualize"] + tinyModel + ["--steps", "2", "--no-baseline", "--quiet", "--layer", "layer1", "--unit", "0", "--toward", dir + "/truncated.jpg", "--out", out] + cpu },
             problem: "Premature end of JPEG file", fix: "re-export it"),
        Case(name: "visualize-caricature-missing-photo", args: { dir, out in ["visualize"] + tinyModel + ["--steps", "2", "--no-baseline", "--quiet", "--objective", "caricature", "--layer", "layer1", "--toward", dir + "/no-such-photo.png", "--out", out] + cpu },
             problem: "no-such-photo.png': no such file", fix: "check the path"),
        Case(name: "visualize-invert-without-toward", args: visualize(["--objective", "invert", "--layer", "layer1"]),
             problem: "--objective invert needs --toward PHOTO", fix: "the photo whose activation at --layer it matches", usageError: true),
        Case(name: "visualize-caricature-vector-layer", args: { dir, out in ["visualize"] + tinyModel + ["--steps", "2", "--no-baseline", "--quiet", "--objective", "caricature", "--layer", "output", "--toward", dir + "/photo.png", "--out", out] + cpu },
             problem: "a caricature needs a layer with positions", fix: "use the direction objective for a vector layer"),
        Case(name: "image-bad-background", args: classify("random:resnet18", image: "rgba.png", ["--background", "red"]), problem: "unknown background 'red'", fix: "R,G,B", usageError: true),
        Case(name: "image-folder-empty", args: { dir, out in ["classify", "--model", "random:resnet18", "--size", "32", "--images", dir + "/emptyfolder", "--output", out + "/r.csv"] + cpu },
             problem: "has no JPEG or PNG image: it holds no files", fix: "amgpu reads JPEG and PNG files"),
        Case(name: "image-folder-all-corrupt", args: { dir, out in ["classify", "--model", "random:resnet18", "--size", "32", "--images", dir + "/badfolder", "--format", "csv", "--output", out + "/r.csv"] + cpu },
             problem: "no image could be classified (2 skipped)", fix: "re-export it"),
        Case(name: "image-folder-is-a-file", args: { dir, _ in ["classify", "--model", "random:resnet18", "--size", "32", "--images", dir + "/photo.png"] + cpu },
             problem: "is a file, not a folder", fix: "--image"),
        // probe (dataset examples) and --baseline
        Case(name: "probe-folder-empty", args: { dir, out in ["probe"] + tinyModel + ["--images", dir + "/emptyfolder", "--layers", "layer1", "--out", out] + cpu },
             problem: "has no JPEG or PNG image: it holds no files", fix: "amgpu reads JPEG and PNG files"),
        Case(name: "probe-all-files-bad", args: { dir, out in ["probe"] + tinyModel + ["--images", dir + "/badfolder", "--layers", "layer1", "--out", out, "--quiet"] + cpu },
             problem: "no image could be read (2 skipped)", fix: "re-export it"),
        Case(name: "probe-unknown-layer", args: { dir, out in ["probe"] + tinyModel + ["--images", dir + "/samestem", "--layers", "layer9", "--out", out] + cpu },
             problem: "no layer named 'layer9'", fix: "amgpu layers"),
        Case(name: "probe-unit-out-of-range", args: { dir, out in ["probe"] + tinyModel + ["--images", dir + "/samestem", "--layers", "layer1", "--units", "64", "--out", out] + cpu },
             problem: "unit 64 is out of range for layer 'layer1' (64 units", fix: "narrow --units"),
        Case(name: "probe-top-zero", args: { dir, out in ["probe"] + tinyModel + ["--images", dir + "/samestem", "--layers", "layer1", "--top", "0", "--out", out] + cpu },
             problem: "--top must be at least 1", fix: "got 0", usageError: true),
        Case(name: "probe-out-unwritable", args: { dir, _ in ["probe"] + tinyModel + ["--images", dir + "/samestem", "--layers", "layer1", "--out", dir + "/text.png/sub"] + cpu },
             problem: "cannot create folder", fix: "give a writable --out"),
        Case(name: "probe-merge-nothing", args: { dir, out in ["probe-merge", dir + "/emptyfolder", "--out", out] },
             problem: "holds no probe shard states", fix: "amgpu probe --shard i/n"),
        Case(name: "baseline-other-model", args: { dir, out in ["visualize"] + tinyModel + ["--steps", "2", "--no-baseline", "--quiet", "--layer", "output", "--unit", "1", "--baseline", dir + "/otherprobe.json", "--out", out] + cpu },
             problem: "is a probe of vit_tiny_patch16_224, not of resnet18", fix: "give the probe.json of the same model"),
        Case(name: "baseline-not-a-probe", args: { dir, out in ["atlas"] + tinyModel + ["--layers", "layer1", "--units", "0", "--steps", "2", "--quiet", "--baseline", dir + "/text.png", "--out", out] + cpu },
             problem: "is not an amgpu probe.json", fix: "text.png"),
        // activation-atlas
        Case(name: "activation-atlas-empty-folder", args: activationAtlas("emptyfolder"),
             problem: "has no JPEG or PNG image: it holds no files", fix: "amgpu reads JPEG and PNG files"),
        Case(name: "activation-atlas-all-corrupt", args: activationAtlas("badfolder"), problem: "no image could be read (2 skipped)", fix: "re-export it"),
        Case(name: "activation-atlas-vector-layer", args: activationAtlas("samestem", layer: "fc"),
             problem: "has no spatial positions", fix: "pick a convolutional layer or a transformer block"),
        Case(name: "activation-atlas-grid-zero", args: activationAtlas("samestem", ["--grid", "0"]),
             problem: "--grid must be at least 1", fix: "cells per row and column", usageError: true),
        Case(name: "activation-atlas-unknown-class", args: activationAtlas("samestem", ["--class", "xyzzy-not-a-class"]),
             problem: "no class named 'xyzzy-not-a-class'", fix: "--class takes one of", needsClassNames: true),
        Case(name: "activation-atlas-layout-missing", args: { dir, out in activationAtlas("samestem", ["--layout-2d", dir + "/missing-umap.npy"])(dir, out) },
             problem: "cannot read the layout", fix: "scripts/activation-atlas-umap"),
        Case(name: "activation-atlas-plan-only-and-assemble", args: activationAtlas("samestem", ["--plan-only", "--assemble"]),
             problem: "--plan-only and --assemble exclude each other", fix: "pick one", usageError: true),
        Case(name: "image-classify-bad-format", args: classify("random:resnet18", image: "photo.png", ["--format", "xml"]), problem: "'xml' is invalid for '--format", fix: "'text', 'csv' or 'json'", usageError: true),
        Case(name: "image-truncated-png", args: classify("random:resnet18", image: "truncated.png"), problem: "cannot decode image", fix: "re-export"),
        Case(name: "image-16k-by-16k", args: classify("random:resnet18", image: "huge.png"), problem: "is 16384×16384 pixels", fix: "downscale it first"),
        Case(name: "image-adversarial-same-stem", args: { dir, out in ["adversarial"] + tinyModel + ["--steps", "2", "--quiet", "--out", out, "--images", dir + "/samestem", "--target", "3"] + cpu },
             problem: "samestem/cat.jpg' and '", fix: "samestem/cat.png' would write the same output files (both are named 'cat' without their extension): rename one of them"),
        Case(name: "image-classify-batch-too-big", args: { dir, _ in ["classify", "--model", "random:resnet18", "--size", "32", "--image", dir + "/photo.png", "--image", dir + "/rgba.png", "--batch", "100000"] + cpu },
             problem: "got 100000", fix: "--batch must lie in 1…256", usageError: true),
        Case(name: "image-1x1-adversarial", args: adversarial(["--target", "3"], image: "one.png"), problem: "is 1×1 pixels", fix: "at least 16×16"),
        // outputs
        Case(name: "out-folder-is-a-file", args: { dir, _ in ["visualize"] + tinyModel + ["--steps", "2", "--no-baseline", "--quiet", "--layer", "output", "--unit", "1", "--out", dir + "/text.png/sub"] + cpu },
             problem: "cannot create output folder", fix: "choose a writable folder with --out"),
        Case(name: "out-npy-folder-missing", args: { dir, out in ["activations"] + tinyModel + ["--image", dir + "/photo.png", "--layer", "output", "--out", out + "/missing/a.npy"] + cpu },
             problem: "cannot write", fix: "check that the folder exists"),
        Case(name: "out-disk-full-visualize", args: visualize(["--layer", "output", "--unit", "1"]), problem: "cannot write", fix: "the disk is not full", fileSizeLimitKiB: 1),
        Case(name: "out-disk-full-adversarial", args: adversarial(["--target", "3", "--attack", "fgsm"]), problem: "File too large", fix: "the disk is not full", fileSizeLimitKiB: 1),
        // settings
        Case(name: "setting-lr-nan", args: visualize(["--layer", "output", "--unit", "1", "--lr", "nan"]), problem: "learning rate", fix: "must be a finite number > 0"),
        Case(name: "setting-lr-diverges-to-nan", args: visualize(["--layer", "output", "--unit", "1", "--lr", "1e38"]), problem: "became NaN or infinite", fix: "try a smaller --lr"),
        Case(name: "setting-eps-nan", args: adversarial(["--target", "3", "--eps", "nan"]), problem: "--eps", fix: "--eps", usageError: true),
        Case(name: "setting-steps-zero", args: visualize(["--layer", "output", "--unit", "1", "--steps", "0"]), problem: "steps", fix: "must be ≥ 1"),
        Case(name: "setting-patch-grid-negative", args: visualize(["--layer", "output", "--unit", "1", "--patch-grid=-1"]), problem: "patch grid", fix: "must be ≥ 0"),
        Case(name: "setting-bad-layer", args: visualize(["--layer", "layer9.nope", "--unit", "1"]), problem: "layer9.nope", fix: "amgpu layers"),
        Case(name: "setting-unit-out-of-range", args: visualize(["--layer", "output", "--unit", "1000"]), problem: "1000", fix: "0…999"),
        Case(name: "setting-class-out-of-range", args: visualize(["--class", "1000"]), problem: "1000", fix: "0…999"),
        Case(name: "setting-unknown-class-name", args: visualize(["--class", "flamingoo"]), problem: "flamingoo", fix: "flamingo", needsClassNames: true),
        Case(name: "setting-adversarial-target-out-of-range", args: adversarial(["--target", "5000"]), problem: "5000", fix: "0…999"),
        Case(name: "setting-bad-device", args: visualize(["--layer", "output", "--unit", "1", "--device", "cuda:0"]), problem: "cuda:0", fix: "opencl:N", usageError: true),
        Case(name: "tune-reps-zero", args: { _, _ in ["tune", "--reps", "0"] }, problem: "--reps must be ≥ 1", fix: "--reps", usageError: true),
        Case(name: "tune-unknown-model", args: { _, _ in ["tune", "--models", "resnet_nope"] }, problem: "unknown architecture 'resnet_nope'", fix: "known:", usageError: true),
        Case(name: "tune-max-gflop-negative", args: { _, _ in ["tune", "--max-gflop", "0"] }, problem: "--max-gflop must be a positive number", fix: "--max-gflop", usageError: true),
        Case(name: "tune-on-cpu-backend", args: { _, _ in ["tune", "--device", "cpu", "--quick"] }, problem: "tunes OpenCL kernels", fix: "--device opencl"),
        // devices
        Case(name: "device-no-opencl", args: { _, out in ["visualize"] + tinyModel + ["--steps", "2", "--no-baseline", "--quiet", "--layer", "output", "--unit", "1", "--out", out, "--device", "opencl"] },
             problem: "no OpenCL device", fix: "--device cpu", environment: ["OCL_ICD_VENDORS": "/nonexistent-amgpu-icd"]),
        Case(name: "device-kernel-fails-to-build", args: { dir, out in ["visualize"] + tinyModel + ["--steps", "2", "--no-baseline", "--quiet", "--layer", "output", "--unit", "1", "--out", out, "--device", "opencl"] },
             problem: "undefined_symbol_xyz", fix: "fix the kernel source", environment: ["AMGPU_KERNEL_DIR": "KERNELDIR"], needsOpenCL: true),
        Case(name: "device-bad-attention-choice", args: { _, out in ["visualize"] + tinyModel + ["--steps", "2", "--no-baseline", "--quiet", "--layer", "output", "--unit", "1", "--out", out, "--device", "opencl"] },
             problem: "AMGPU_ATTENTION: attention choice 'fast'", fix: "expected probabilities, flash or flash:ROWS,TILE", environment: ["AMGPU_ATTENTION": "fast"], needsOpenCL: true),
        Case(name: "device-allocation-over-max", args: { _, out in ["visualize", "--model", "random:resnet18", "--size", "640", "--units", "0-15", "--batch", "16", "--steps", "2", "--no-baseline", "--quiet", "--layer", "output", "--out", out, "--device", "opencl"] },
             problem: "out of device memory: resnet18 at batch 16 needs a 400.00 MiB", fix: "smaller --batch or --size", environment: ["POCL_MEMORY_LIMIT": "1"], needsOpenCL: true),
        Case(name: "device-allocation-over-max-classify", args: { dir, _ in ["classify", "--model", "random:resnet18", "--size", "2560", "--image", dir + "/photo.png", "--device", "opencl"] },
             problem: "out of device memory: resnet18 at batch 1 needs a 400.00 MiB", fix: "smaller --batch or --size", environment: ["POCL_MEMORY_LIMIT": "1"], needsOpenCL: true),
        Case(name: "device-allocation-over-max-activations", args: { dir, out in ["activations", "--model", "random:resnet18", "--size", "2560", "--image", dir + "/photo.png", "--layer", "layer1", "--out", out + "/a.npy", "--device", "opencl"] },
             problem: "out of device memory: resnet18 at batch 1 needs a 400.00 MiB", fix: "smaller --batch or --size", environment: ["POCL_MEMORY_LIMIT": "1"], needsOpenCL: true),
        // Image priors (#22): --init PHOTO, MaCo spectra, snapshots
        Case(name: "init-photo-truncated", args: visualizeFixture(["--layer", "output", "--unit", "1", "--init", "{dir}/truncated.jpg"]),
             problem: "Premature end of JPEG file", fix: "re-export it"),
        Case(name: "init-photo-is-text", args: visualizeFixture(["--layer", "output", "--unit", "1", "--param", "fourier", "--init", "{dir}/text.png"]),
             problem: "it looks like text", fix: "convert photo.webp photo.png"),
        Case(name: "init-noise-without-init", args: visualize(["--layer", "output", "--unit", "1", "--init-noise", "0.1"]),
             problem: "--init-noise needs --init", fix: "--init PHOTO", usageError: true),
        Case(name: "maco-spectrum-garbage", args: visualizeFixture(["--layer", "output", "--unit", "1", "--param", "maco", "--maco-spectrum", "{dir}/text.png"]),
             problem: "cannot read the MaCo spectrum", fix: "amgpu maco-spectrum"),
        Case(name: "maco-spectrum-without-maco", args: visualizeFixture(["--layer", "output", "--unit", "1", "--param", "pixel", "--maco-spectrum", "{dir}/text.png"]),
             problem: "--maco-spectrum only applies", fix: "--param maco", usageError: true),
        Case(name: "maco-spectrum-no-photos", args: { dir, out in ["maco-spectrum", "--images", dir + "/emptyfolder", "--out", out + "/s.npy"] },
             problem: "has no JPEG or PNG image", fix: "amgpu reads JPEG and PNG files"),
        Case(name: "snapshot-every-negative", args: visualize(["--layer", "output", "--unit", "1", "--snapshot-every=-2"]),
             problem: "--snapshot-every must be ≥ 0", fix: "≥ 0", usageError: true),
    ]

    /// Valid but unusual inputs next to the bad ones: they must work (exit 0).
    static let okCases: [(name: String, args: @Sendable (String, String) -> [String])] = [
        ("image-1x1-classify", classify("random:resnet18", image: "one.png", ["--size", "32"])),
        ("image-grayscale", classify("random:resnet18", image: "gray.png", ["--size", "32"])),
        ("image-rgba", classify("random:resnet18", image: "rgba.png", ["--size", "32"])),
        ("image-16-bit-gray", classify("random:resnet18", image: "gray16.png", ["--size", "32"])),
        ("image-palette", classify("random:resnet18", image: "palette.png", ["--size", "32"])),
        ("image-jpeg-progressive", classify("random:resnet18", image: "progressive.jpg", ["--size", "32"])),
        ("image-jpeg-cmyk", classify("random:resnet18", image: "cmyk.jpg", ["--size", "32"])),
        ("image-jpeg-exif-rotated", classify("random:resnet18", image: "exif_6.jpg", ["--size", "32"])),
        ("image-png-named-jpg", classify("random:resnet18", image: "png-named.jpg", ["--size", "32", "--background", "0,128,255"])),
        ("onnx-minimal-valid", layers("relu.onnx")),
        ("card-nhwc-softmax-1001-classify", { dir, _ in ["classify", "--model", repoRoot.appendingPathComponent("Tests/GPUEngineTests/Fixtures/layouts/tf_nhwc_prologue.onnx").path,
                                                    "--image", dir + "/photo.png", "--mean", "0.5", "--std", "0.5", "--no-crop"] + cpu }),
        ("card-grey-torch-layers", { _, _ in ["layers", repoRoot.appendingPathComponent("Tests/GPUEngineTests/Fixtures/layouts/torch_grey_softmax.onnx").path] }),
    ]

    @Test(arguments: cases.map(\.name))
    func badInputFailsCleanly(_ name: String) throws {
        guard let c = Self.cases.first(where: { $0.name == name }) else { Issue.record("no case \(name)"); return }
        if c.needsOpenCL && Backends.opencl == nil {
            TestEnvironment.skip("bad input \(name)", because: "OpenCL unavailable: \(Backends.openclUnavailableReason)")
            return
        }
        let classNames = ModelStore.path("data/imagenet_classes.txt")
        if c.needsClassNames && !FileManager.default.fileExists(atPath: classNames) {
            TestEnvironment.skip("bad input \(name)", because: "\(classNames) is absent (run scripts/fetch-models)")
            return
        }
        if c.fileSizeLimitKiB != nil && ProcessInfo.processInfo.environment["AMGPU_SANITIZER"] == "thread" {
            // Measured: a ThreadSanitizer binary dies with SIGBUS in its runtime's start-up under an
            // RLIMIT_FSIZE below about 4 MiB, before main (even `amgpu --version`). The case runs in the
            // ordinary and AddressSanitizer suites.
            print("amgpu-test: SKIPPED bad input \(name) under ThreadSanitizer: its runtime cannot start under ulimit -f")
            return
        }
        let dir = Self.fixtures
        let out = dir + "/out-" + name
        var env = c.environment
        for (k, v) in env where v == "KERNELDIR" { env[k] = dir + "/kernels" }
        let r = try run(c.args(dir, out), environment: env, fileSizeLimitKiB: c.fileSizeLimitKiB)
        let errorLines = r.stderr.split(separator: "\n").filter { $0.hasPrefix("amgpu: error:") || $0.hasPrefix("Error:") }
        #expect(r.status == (c.usageError ? 64 : 1), "\(name): exit status \(r.status) (signal: \(r.signaled)); stderr: \(r.stderr)")
        #expect(!r.signaled, "\(name): killed by a signal")
        #expect(errorLines.count == 1, "\(name): \(errorLines.count) error lines: \(r.stderr)")
        let message = errorLines.first.map(String.init) ?? ""
        #expect(message.contains(c.problem), "\(name): the message does not name the problem ('\(c.problem)'): \(message)")
        #expect(message.contains(c.fix), "\(name): the message does not name the fix ('\(c.fix)'): \(message)")
        for marker in ["Fatal error", "Program crashed", "Stack dump", "Swift runtime failure", "AddressSanitizer"] {
            #expect(!r.stderr.contains(marker), "\(name): crash marker '\(marker)' in stderr")
        }
        // No partial output: the output folder is absent or empty, and no temporary file is left anywhere.
        let left = (try? FileManager.default.contentsOfDirectory(atPath: out)) ?? []
        #expect(left.isEmpty, "\(name): left output behind: \(left)")
        // (Other cases' output folders are left out: the cases run in parallel, and a temporary that another case's
        // process is writing at this moment is not this case's leftover; each case checks its own.)
        let strays = (FileManager.default.enumerator(atPath: dir)?.allObjects as? [String] ?? []).filter {
            $0.contains(".tmp-") && (!$0.hasPrefix("out-") || $0.hasPrefix("out-\(name)/"))
        }
        #expect(strays.isEmpty, "\(name): temporary files left: \(strays)")
    }

    @Test(arguments: okCases.map(\.name))
    func unusualButValidInputWorks(_ name: String) throws {
        guard let c = Self.okCases.first(where: { $0.name == name }) else { Issue.record("no case \(name)"); return }
        let r = try run(c.args(Self.fixtures, Self.fixtures + "/out-ok-" + name), environment: [:], fileSizeLimitKiB: nil)
        #expect(r.status == 0, "\(name): \(r.stderr)")
        #expect(!r.stdout.isEmpty)
    }

    @Test func corpusHasAtLeastFortyCases() {
        #expect(Self.cases.count >= 40)
        #expect(Set(Self.cases.map(\.name)).count == Self.cases.count, "case names are unique")
    }

    /// The real binary, without Swift's crash reporter (a crash must show as a signal, not a backtrace).
    func run(_ arguments: [String], environment: [String: String], fileSizeLimitKiB: Int?) throws
        -> (status: Int32, signaled: Bool, stdout: String, stderr: String) {
        try CLITests.run(arguments, environment: environment.merging(["SWIFT_BACKTRACE": "enable=no"]) { own, _ in own },
                         fileSizeLimitKiB: fileSizeLimitKiB)
    }
}

extension BadInputTests {
    // MARK: fixtures

    static func writeFixtures(_ dir: String) throws {
        let fm = FileManager.default
        try? fm.removeItem(atPath: dir)
        try fm.createDirectory(atPath: dir + "/kernels", withIntermediateDirectories: true)
        func write(_ name: String, _ data: Data) throws { try data.write(to: URL(fileURLWithPath: dir + "/" + name)) }

        // Images: a 40×40 noise photo and its broken variants; the unusual-but-valid PNG seeds of the fuzzer.
        var rng = SeededRandom(seed: 11)
        let photo = RGBImage(width: 40, height: 40, pixels: (0..<40 * 40 * 3).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
        try PNGFile.write(photo, to: dir + "/photo.png")
        let png = try Data(contentsOf: URL(fileURLWithPath: dir + "/photo.png"))
        try write("truncated.png", png.prefix(png.count / 2))
        try write("empty.png", Data())
        try write("text.png", Data("this is not an image\n".utf8))
        try write("photo.jpg", Data([0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 0x4A, 0x46, 0x49, 0x46, 0x00, 0x01] + Array(repeating: 0x20, count: 64)))
        try write("huge.png", pngHeaderOnly(width: 16_384, height: 16_384))
        // JPEG and other formats (the committed fixtures of scripts/tools/image_fixtures.py), folders.
        let images = repoRoot.appendingPathComponent("Tests/GPUEngineTests/Fixtures/images").path
        for (from, to) in [("bad_truncated.jpg", "truncated.jpg"), ("bad_progressive_scan.jpg", "progressive_corrupt.jpg"), ("bad_huge.jpg", "huge.jpg"),
                           ("progressive.jpg", "progressive.jpg"), ("cmyk.jpg", "cmyk.jpg"), ("exif_6.jpg", "exif_6.jpg"), ("rgba.png", "png-named.jpg")] {
            try? fm.removeItem(atPath: dir + "/" + to)
            try fm.copyItem(atPath: images + "/" + from, toPath: dir + "/" + to)
        }
        try write("empty.jpg", Data())
        try write("notes.jpg", Data("my holiday photos are in the other folder\n".utf8))
        try write("anim.gif", Data("GIF89a".utf8) + Data([1, 0, 1, 0, 0x80, 0, 0]))
        // A probe.json of another model (for --baseline).
        try write("otherprobe.json", JSONEncoder().encode(ProbeResult(
            model: "vit_tiny_patch16_224", modelSHA256: nil, images: 1, listed: 1, skipped: [], top: 1, inputSize: [32, 32],
            preprocessing: .imagenet(32), shards: 1, layers: [:], layerInfo: [:], statistics: [:])))
        try fm.createDirectory(atPath: dir + "/emptyfolder", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: dir + "/badfolder", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: dir + "/samestem", withIntermediateDirectories: true)
        for (from, to) in [(images + "/baseline_420.jpg", "cat.jpg"), (dir + "/photo.png", "cat.png")] {
            try? fm.removeItem(atPath: dir + "/samestem/" + to)
            try fm.copyItem(atPath: from, toPath: dir + "/samestem/" + to)
        }
        try fm.copyItem(atPath: images + "/bad_truncated.jpg", toPath: dir + "/badfolder/a.jpg")
        try fm.copyItem(atPath: images + "/bad_progressive_scan.jpg", toPath: dir + "/badfolder/b.jpg")
        let seeds = repoRoot.appendingPathComponent("Fuzz/seeds/png").path
        for (from, to) in [("gray.png", "gray.png"), ("rgba.png", "rgba.png"), ("gray16.png", "gray16.png"), ("palette.png", "palette.png"), ("bilevel_1x1.png", "one.png")] {
            try? fm.removeItem(atPath: dir + "/" + to)
            try fm.copyItem(atPath: seeds + "/" + from, toPath: dir + "/" + to)
        }
        try write("kernels/elementwise.cl", Data("__kernel void unary_forward(__global float* y) { y[0] = undefined_symbol_xyz; }\n".utf8))

        // ONNX.
        let x = ("x", [Int64(1), 3, 8, 8])
        try write("relu.onnx", onnx(inputs: [x], nodes: [("Relu", "relu1", ["x"], ["y"])], outputs: ["y"]))
        let good = onnx(inputs: [x], nodes: [("Relu", "relu1", ["x"], ["y"])], outputs: ["y"])
        try write("empty.onnx", Data())
        try write("garbage.onnx", Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 2654435761 >> 7) }))
        try write("truncated.onnx", good.prefix(good.count - 9))
        var noGraph = Onnx_ModelProto()
        noGraph.irVersion = 8
        noGraph.producerName = "amgpu-test"
        try write("nograph.onnx", try noGraph.serializedData())
        try write("unknownop.onnx", onnx(inputs: [x], nodes: [("FancyOp", "fancy1", ["x"], ["y"])], outputs: ["y"]))
        var cumsumAxis = Onnx_TensorProto()
        cumsumAxis.name = "axis"; cumsumAxis.dataType = 7; cumsumAxis.int64Data = [3]
        try write("cumsumimage.onnx", onnx(inputs: [x], nodes: [("CumSum", "cumsum1", ["x", "axis"], ["y"])], initializers: [cumsumAxis], outputs: ["y"]))
        try write("cycle.onnx", onnx(inputs: [x], nodes: [("Add", "a", ["x", "c"], ["b"]), ("Relu", "r", ["b"], ["c"])], outputs: ["c"]))
        try write("undefined.onnx", onnx(inputs: [x], nodes: [("Add", "add1", ["x", "ghost"], ["y"])], outputs: ["y"]))
        try write("rank0.onnx", onnx(inputs: [("x", [])], nodes: [("Relu", "relu1", ["x"], ["y"])], outputs: ["y"]))
        try write("rank3conv.onnx", onnx(inputs: [("x", [1, 3, 8])], nodes: [("Conv", "conv1", ["x", "w"], ["y"])],
                                         initializers: [floatTensor("w", dims: [4, 3, 3, 3])], outputs: ["y"]))
        try write("twoinputs.onnx", onnx(inputs: [x, ("z", [1, 3, 8, 8])], nodes: [("Add", "add1", ["x", "z"], ["y"])], outputs: ["y"]))
        try write("fivechannels.onnx", onnx(inputs: [("x", [1, 5, 8, 8])], nodes: [("Relu", "relu1", ["x"], ["y"])], outputs: ["y"]))
        try write("terabyte.onnx", onnx(inputs: [x], nodes: [("Add", "add1", ["x", "w"], ["y"])],
                                        initializers: [floatTensor("w", dims: [1 << 20, 1 << 20, 1 << 20], values: false)], outputs: ["y"]))
        try write("overflow.onnx", onnx(inputs: [x], nodes: [("Add", "add1", ["x", "w"], ["y"])],
                                        initializers: [floatTensor("w", dims: [Int64.max / 2, 4], values: false)], outputs: ["y"]))
        try write("negative.onnx", onnx(inputs: [x], nodes: [("Add", "add1", ["x", "w"], ["y"])],
                                        initializers: [floatTensor("w", dims: [-3, 4], values: false)], outputs: ["y"]))
        var short = floatTensor("w", dims: [4, 4], values: false)
        short.rawData = Data([1, 2, 3])
        try write("shortraw.onnx", onnx(inputs: [x], nodes: [("Add", "add1", ["x", "w"], ["y"])], initializers: [short], outputs: ["y"]))
        try write("external.onnx", onnx(inputs: [x], nodes: [("Add", "add1", ["x", "w"], ["y"])], initializers: [external("w", "weights.bin")], outputs: ["y"]))
        try write("escape.onnx", onnx(inputs: [x], nodes: [("Add", "add1", ["x", "w"], ["y"])], initializers: [external("w", "../../etc/passwd")], outputs: ["y"]))
        var text = Onnx_TensorProto()
        text.name = "w"; text.dataType = 8; text.dims = [1]; text.stringData = [Data("hi".utf8)]
        try write("string.onnx", onnx(inputs: [x], nodes: [("Add", "add1", ["x", "w"], ["y"])], initializers: [text], outputs: ["y"]))
        try write("constout.onnx", onnx(inputs: [x], nodes: [("Relu", "relu1", ["x"], ["y"]), ("Identity", "id1", ["w"], ["z"])],
                                        initializers: [floatTensor("w", dims: [2])], outputs: ["z"]))
        try write("hugeinput.onnx", onnx(inputs: [("x", [1, 3, 1 << 20, 1 << 20])], nodes: [("Relu", "relu1", ["x"], ["y"])], outputs: ["y"]))
        var target = Onnx_TensorProto()
        target.name = "shape"; target.dataType = 7; target.dims = [3]; target.int64Data = [Int64.max / 4, 8, -1]
        try write("reshapeoverflow.onnx", onnx(inputs: [x], nodes: [("Reshape", "reshape1", ["x", "shape"], ["y"])], initializers: [target], outputs: ["y"]))
        var axes = Onnx_TensorProto()
        axes.name = "axes"; axes.dataType = 7; axes.dims = [2]; axes.int64Data = [5, 5]
        try write("unsqueezerepeat.onnx", onnx(inputs: [x], nodes: [("Unsqueeze", "unsqueeze1", ["x", "axes"], ["y"])], initializers: [axes], outputs: ["y"]))
        axes.int64Data = [2, 2]
        try write("unsqueezerepeatconst.onnx", onnx(inputs: [x], nodes: [("Unsqueeze", "unsqueeze1", ["w", "axes"], ["u"]), ("Reshape", "reshape1", ["x", "u"], ["y"])],
                                                   initializers: [floatTensor("w", dims: [2]), axes], outputs: ["y"]))
        try write("symbolic.onnx", onnx(inputs: [("x", [1, 3, -1, -1])], nodes: [("Relu", "relu1", ["x"], ["y"])], outputs: ["y"]))

        // safetensors.
        try write("short.safetensors", Data([1, 2, 3]))
        try write("headerlen.safetensors", safetensors(header: "{}", declaredLength: 1 << 40))
        try write("notjson.safetensors", safetensors(header: "[1, 2, 3] not json"))
        try write("pastend.safetensors", safetensors(header: #"{"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}"#, payload: 8))
        try write("overlap.safetensors", safetensors(header: #"{"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}, "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}}"#, payload: 24))
        try write("sizemismatch.safetensors", safetensors(header: #"{"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}"#, payload: 16))
        try write("terabyte.safetensors", safetensors(header: #"{"w": {"dtype": "F32", "shape": [1000000, 1000000, 1000000], "data_offsets": [0, 16]}}"#, payload: 16))
        try write("overflow.safetensors", safetensors(header: #"{"w": {"dtype": "F32", "shape": [4611686018427387904, 4], "data_offsets": [0, 16]}}"#, payload: 16))
        try write("dtype.safetensors", safetensors(header: #"{"w": {"dtype": "F7", "shape": [4], "data_offsets": [0, 16]}}"#, payload: 16))
        try SafetensorsFile.write(["w": HostTensor(shape: [2, 2], values: [1, -2, 3, 0.5])], to: dir + "/valid.safetensors")
        // Model cards: a label file one line short of 1000 classes; a config.json that is not JSON beside a checkpoint.
        try write("labels999.txt", Data((0..<999).map { "class \($0)\n" }.joined().utf8))
        try fm.createDirectory(atPath: dir + "/badconfig", withIntermediateDirectories: true)
        try SafetensorsFile.write(["w": HostTensor(shape: [2, 2], values: [1, -2, 3, 0.5])], to: dir + "/badconfig/model.safetensors")
        try write("badconfig/config.json", Data("{\"pretrained_cfg\": {\"mean\": [0.5, 0.5,".utf8))
    }

    static func onnx(inputs: [(String, [Int64])], nodes: [(String, String, [String], [String])],
                     initializers: [Onnx_TensorProto] = [], outputs: [String]) -> Data {
        var graph = Onnx_GraphProto()
        graph.name = "bad"
        graph.node = nodes.map { op, name, ins, outs in
            var n = Onnx_NodeProto(); n.opType = op; n.name = name; n.input = ins; n.output = outs; return n
        }
        graph.initializer = initializers
        graph.input = inputs.map { name, dims in
            var v = Onnx_ValueInfoProto(); v.name = name
            var t = Onnx_TypeProto.Tensor(); t.elemType = 1
            var s = Onnx_TensorShapeProto()
            s.dim = dims.map { var d = Onnx_TensorShapeProto.Dimension(); if $0 >= 0 { d.dimValue = $0 } else { d.dimParam = "n" }; return d }
            t.shape = s
            v.type.tensorType = t
            return v
        }
        graph.output = outputs.map { var v = Onnx_ValueInfoProto(); v.name = $0; return v }
        var model = Onnx_ModelProto()
        model.irVersion = 8
        var opset = Onnx_OperatorSetIdProto(); opset.version = 17
        model.opsetImport = [opset]
        model.graph = graph
        return (try? model.serializedData()) ?? Data()
    }

    static func floatTensor(_ name: String, dims: [Int64], values: Bool = true) -> Onnx_TensorProto {
        var t = Onnx_TensorProto()
        t.name = name; t.dataType = 1; t.dims = dims
        if values { t.floatData = (0..<Int(dims.reduce(1, *))).map { Float($0 % 7) * 0.25 - 0.5 } }
        return t
    }

    static func external(_ name: String, _ location: String) -> Onnx_TensorProto {
        var t = Onnx_TensorProto()
        t.name = name; t.dataType = 1; t.dims = [4]
        t.dataLocation = .external
        var entry = Onnx_StringStringEntryProto(); entry.key = "location"; entry.value = location
        t.externalData = [entry]
        return t
    }

    static func safetensors(header: String, declaredLength: UInt64? = nil, payload: Int = 0) -> Data {
        var h = Data(header.utf8)
        while h.count % 8 != 0 { h.append(0x20) }
        var length = (declaredLength ?? UInt64(h.count)).littleEndian
        var out = Data(bytes: &length, count: 8)
        out.append(h)
        out.append(Data((0..<payload).map { UInt8(truncatingIfNeeded: $0 * 37 + 1) }))
        return out
    }

    /// A PNG signature and IHDR for `width`×`height` RGB, then an empty IDAT and IEND: libpng reads the
    /// header, so the size check is what must refuse it.
    static func pngHeaderOnly(width: UInt32, height: UInt32) -> Data {
        func chunk(_ type: String, _ body: [UInt8]) -> [UInt8] {
            let typeBytes = Array(type.utf8)
            var crc: UInt32 = 0xFFFF_FFFF
            for b in typeBytes + body {
                crc ^= UInt32(b)
                for _ in 0..<8 { crc = (crc >> 1) ^ (crc & 1 == 1 ? 0xEDB8_8320 : 0) }
            }
            crc = ~crc
            func be(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
            return be(UInt32(body.count)) + typeBytes + body + be(crc)
        }
        func be(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
        let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        let ihdr = be(width) + be(height) + [8, 2, 0, 0, 0]
        return Data(signature + chunk("IHDR", ihdr) + chunk("IDAT", [0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]) + chunk("IEND", []))
    }

}

/// A short soak through the real binary (`--report-memory`, its own process, so other tests'
/// buffers do not count): 150 AM steps on OpenCL must keep the live OpenCL buffer count and bytes
/// flat after warm-up and the resident memory within 16 MiB. scripts/soak runs the 1000-step version.
@Suite struct SoakTests {
    @Test func memoryStaysFlatOver150Steps() throws {
        guard Backends.requireOpenCL() != nil else { return }
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("amgpu-soak-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let r = try CLITests.run(["visualize", "--model", "random:resnet18", "--size", "32", "--layer", "output", "--unit", "1",
                                  "--steps", "150", "--no-baseline", "--quiet", "--report-memory", "--device", "opencl", "--out", out])
        #expect(r.status == 0, "\(r.stderr)")
        // "memory: step S rss_kib N cl_buffers M cl_bytes B"
        let reports = r.stderr.split(separator: "\n").filter { $0.hasPrefix("memory:") }.map { $0.split(separator: " ").compactMap { Int($0) } }
        #expect(reports.map { $0[0] } == [1, 51, 101, 150], "\(r.stderr)")
        guard reports.count == 4, reports.allSatisfy({ $0.count == 4 }) else { return }
        let warm = reports[1], end = reports[3]
        #expect(warm[2] > 0 && end[2] == warm[2], "live OpenCL buffers \(warm[2]) → \(end[2])")
        #expect(end[3] == warm[3], "live OpenCL bytes \(warm[3]) → \(end[3])")
        #expect(end[1] - warm[1] < 16 * 1024, "RSS grew \(end[1] - warm[1]) KiB")
        #expect(reports[2][2] == warm[2])
    }
}
