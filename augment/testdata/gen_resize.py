#!/usr/bin/python3
"""One-off: resize reference vectors from PyTorch itself (no file in
/work/shared covers resizing). torch.nn.functional.interpolate with
align_corners=False, antialias=False -- what torchvision's tensor resize
calls -- on a seeded float32 HWC image, bilinear and bicubic, down- and
up-sampling. Images are stored flat HWC.

Usage (from augment/testdata): /usr/bin/python3 gen_resize.py
"""
import json

import torch
import torch.nn.functional as F


def main():
    g = torch.Generator().manual_seed(7)
    h, w = 7, 9
    img = torch.rand(h, w, 3, generator=g)  # HWC
    chw = img.permute(2, 0, 1).unsqueeze(0)
    out = {"source": "torch %s F.interpolate(align_corners=False, antialias=False), float32" % torch.__version__,
           "w": w, "h": h, "input": img.flatten().double().tolist(), "cases": []}
    for mode in ("bilinear", "bicubic"):
        for ow, oh in ((4, 3), (13, 11), (9, 5)):
            r = F.interpolate(chw, size=(oh, ow), mode=mode, align_corners=False, antialias=False)
            out["cases"].append({"mode": mode, "w": ow, "h": oh,
                                 "output_f32": r[0].permute(1, 2, 0).flatten().double().tolist()})
    with open("resize.json", "w") as f:
        json.dump(out, f)
        f.write("\n")


if __name__ == "__main__":
    main()
