#!/usr/bin/env python3
"""Small ONNX fixtures for RecommendedTargetsTests (issue #18 part 3): timm's own classes of three
families exported with PyTorch's TorchScript exporter (the one whose scope names amgpu turns into
layer names), random weights (seed 0), reduced widths/depths so each file is a few tens of KB.

    python scripts/tools/am_family_fixtures.py Tests/GPUEngineTests/Fixtures/am-families

Needs torch + timm (~/.cache/amgpu/bench-venv). Writes vit.onnx (VisionTransformer, 32×32, patch 8),
convnext.onnx (ConvNeXt, 32×32), swin.onnx (SwinTransformer, 32×32, window 4).
"""
import os
import sys
import warnings

import torch

warnings.filterwarnings("ignore")


def main(out):
    from timm.models.vision_transformer import VisionTransformer
    from timm.models.convnext import ConvNeXt
    from timm.models.swin_transformer import SwinTransformer
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    models = {
        "vit": VisionTransformer(img_size=32, patch_size=8, embed_dim=16, depth=2, num_heads=2, num_classes=10),
        "convnext": ConvNeXt(depths=(1, 1, 1, 1), dims=(8, 8, 16, 16), num_classes=10),
        "swin": SwinTransformer(img_size=32, patch_size=4, window_size=4, embed_dim=8, depths=(1, 1),
                                num_heads=(1, 2), num_classes=10),
    }
    for name, model in models.items():
        model.eval()
        path = os.path.join(out, f"{name}.onnx")
        torch.onnx.export(model, (torch.randn(1, 3, 32, 32),), path, opset_version=17, dynamo=False,
                          input_names=["input"], output_names=["logits"])
        print(f"{path}: {type(model).__name__}, {sum(p.numel() for p in model.parameters())} parameters, "
              f"{os.path.getsize(path)} bytes")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "Tests/GPUEngineTests/Fixtures/am-families"))
