#!/usr/bin/python3
"""One-off: copies the colour / blur reference vectors the augment tests need
from /work/shared/reference/reference_values.json (key "color") into
color.json, converting CHW images to HWC (the layout of augment.Image).

Usage (from augment/testdata): /usr/bin/python3 gen_color.py
"""
import json

SRC = "/work/shared/reference/reference_values.json"


def chw_to_hwc(chw):
    """[C][H][W] nested list -> flat HWC list, plus (H, W, C)."""
    c, h, w = len(chw), len(chw[0]), len(chw[0][0])
    return [chw[k][y][x] for y in range(h) for x in range(w) for k in range(c)], (h, w, c)


def main():
    col = json.load(open(SRC))["color"]
    t = col["tensor"]
    out = {"source": SRC + ' key "color" (torchvision 0.14 tensor path); images converted CHW -> flat HWC',
           "description": col["description"], "tensor": {}}
    for key in ("input_f64", "input_f32", "rgb2hsv_f64", "rgb2hsv_f32"):
        flat, shape = chw_to_hwc(t[key])
        out["tensor"][key] = flat
        out["shape"] = list(shape)
    for key, v in t.items():
        if isinstance(v, dict):
            out["tensor"][key] = {sfx: chw_to_hwc(v[sfx])[0] for sfx in ("f64", "f32")}
    gb = col["gaussian_blur"]
    inp, shp = chw_to_hwc(gb["input"])
    outp, _ = chw_to_hwc(gb["output_f32"])
    out["gaussian_blur"] = {"description": gb["description"], "shape": list(shp),
                            "kernel1d_5_sigma1_f32": gb["kernel1d_5_sigma1_f32"],
                            "input": inp, "output_f32": outp}
    with open("color.json", "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
