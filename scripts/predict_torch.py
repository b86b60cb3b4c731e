#!/usr/bin/python3
"""PyTorch eval-mode inference on a simclr-go classifier file, to compare
`simclr predict` with: the same model, the same images, the same views.

usage: predict_torch.py --model CLS.safetensors --data DIR [options]

The classifier (simclr-go/classifier/2: a torchvision state dict with fc.*,
its architecture in the metadata) is loaded with load_state_dict(strict=True)
into torchvision.models.resnetXX(num_classes=K); a file with cifar_stem=true
gets the CIFAR stem first (3x3 stride-1 conv1, no max pool), as in
shared/reference/simclr_step.py. Width 64 only.

Images are every file under DIR with an image extension, read with PIL and
turned into the view `simclr predict` makes: the central square (PIL crop at
((W-side)//2, (H-side)//2)), ToTensor, bilinear Resize to --image-size
without antialiasing (torchvision's tensor Resize, as our resize is), and
Normalize by the file's input_mean/input_std (mean 0, std 1 when the file has
none, as for our own classifiers).

Printed, one JSON line each:
  end_to_end   images/s of the whole pass: a DataLoader with --workers
               worker processes decoding and transforming, the model on the
               main process's --threads threads (the clock starts before the
               loader's workers do, as predict's starts before its loader)
  model_only   images/s of the forward pass alone on views decoded
               beforehand (--model-images of them, at least one batch),
               after one warm-up batch
With --check-with BIN the logits are first compared with ours: BIN predict
--json --top-k K on --check-images images of --check-data (default --data)
gives each image's probabilities; their logs, centred, are our logits up to
the constant softmax removes, and must agree with PyTorch's centred logits to
a relative error below 1e-4 (else the script stops with exit status 1). The
check needs images whose side is already --image-size, so that neither side
resizes.

Run it with GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=1099511627776
(glibc then keeps freed memory instead of returning it to the system, which
here makes PyTorch 3-4x faster). Needs torch and torchvision (tested with
1.13 and 0.14); safetensors is read here.
"""
import argparse
import json
import math
import os
import struct
import subprocess
import sys
import time

import numpy as np
import torch
import torchvision
from PIL import Image
from torch import nn
from torchvision import transforms

DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32}
EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def load_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    data = raw[8 + n :]
    state = {}
    for name, e in header.items():
        lo, hi = e["data_offsets"]
        a = np.frombuffer(data[lo:hi], dtype=DTYPES[e["dtype"]]).reshape(e["shape"])
        state[name] = torch.from_numpy(a.copy())
    return state, meta


def build_model(path):
    """The torchvision ResNet of a classifier file, its weights loaded strictly."""
    state, meta = load_safetensors(path)
    if not meta.get("format", "").startswith("simclr-go/classifier/"):
        sys.exit("%s: format %r, want a simclr-go classifier" % (path, meta.get("format")))
    depth, classes = int(meta["depth"]), int(meta["classes"])
    selector, width = int(meta.get("selector", "0")), int(meta.get("width", "64"))
    if width != 64:
        sys.exit("%s: width %d; this script runs torchvision's width-64 ResNets only" % (path, width))
    m = getattr(torchvision.models, "resnet%d" % depth)(num_classes=classes)
    if meta.get("cifar_stem") == "true":
        m.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        m.maxpool = nn.Identity()
    if selector > 0:  # the head's hidden layers before fc, as the format says
        layers = []
        for i in range(selector):
            out_dim, in_dim = state["head.%d.weight" % (3 * i)].shape
            layers += [nn.Linear(in_dim, out_dim), nn.BatchNorm1d(out_dim), nn.ReLU()]
        m.head = nn.Sequential(*layers)
        m.fc = nn.Linear(state["fc.weight"].shape[1], classes)
    m.load_state_dict(state, strict=True)
    if selector > 0:
        m.fc = nn.Sequential(m.head, m.fc)
    m.eval()
    mean = [float(v) for v in meta["input_mean"].split(",")] if "input_mean" in meta else [0.0] * 3
    std = [float(v) for v in meta["input_std"].split(",")] if "input_std" in meta else [1.0] * 3
    return m, meta, mean, std


class CenterSquare:
    """The central square of a PIL image, where simclr predict takes it."""

    def __call__(self, img):
        w, h = img.size
        side = min(w, h)
        x, y = (w - side) // 2, (h - side) // 2
        return img.crop((x, y, x + side, y + side))


def view_transform(size, mean, std):
    return transforms.Compose(
        [
            CenterSquare(),
            transforms.ToTensor(),
            transforms.Resize((size, size), interpolation=transforms.InterpolationMode.BILINEAR, antialias=False),
            transforms.Normalize(mean, std),
        ]
    )


class Files(torch.utils.data.Dataset):
    def __init__(self, paths, tf):
        self.paths, self.tf = paths, tf

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        with Image.open(self.paths[i]) as img:
            return self.tf(img.convert("RGB"))


def image_files(root):
    out = []
    for d, _, names in os.walk(root):
        out += [os.path.join(d, n) for n in names if n.lower().endswith(EXTENSIONS)]
    if not out:
        sys.exit("--data %s: no images" % root)
    return sorted(out)


def forward(model, x, channels_last, inference_mode):
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    ctx = torch.inference_mode() if inference_mode else torch.no_grad()
    with ctx:
        return model(x)


def end_to_end(model, paths, tf, a):
    began = time.perf_counter()
    loader = torch.utils.data.DataLoader(Files(paths, tf), batch_size=a.batch, num_workers=a.workers, shuffle=False)
    n = 0
    for x in loader:
        logits = forward(model, x, a.channels_last, a.inference_mode)
        torch.softmax(logits, dim=1)
        n += x.shape[0]
    return n, time.perf_counter() - began


def model_only(model, paths, tf, a):
    count = max(a.batch, min(a.model_images, len(paths)))
    xs = torch.stack([Files(paths, tf)[i % len(paths)] for i in range(count)])
    forward(model, xs[: a.batch], a.channels_last, a.inference_mode)  # warm-up
    began = time.perf_counter()
    for i in range(0, count, a.batch):
        forward(model, xs[i : i + a.batch], a.channels_last, a.inference_mode)
    return count, time.perf_counter() - began


def check(model, meta, tf, a):
    """Compares centred logits with those implied by BIN predict's probabilities."""
    classes = int(meta["classes"])
    root = a.check_data or a.data
    cmd = [a.check_with, "predict", "--model", a.model, "--data", root, "--limit", str(a.check_images),
           "--top-k", str(classes), "--json", "--quiet", "--threads", str(a.threads), "--image-size", str(a.image_size)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit("%s failed:\n%s" % (" ".join(cmd), res.stderr))
    names = json.loads(meta["class_names"]) if "class_names" in meta else None
    worst = 0.0
    lines = [json.loads(s) for s in res.stdout.splitlines() if s.strip()]
    for line in lines:
        path = line["file"]
        if not os.path.exists(path):
            path = os.path.join(root, path)
        with Image.open(path) as img:
            if img.size != (a.image_size, a.image_size):
                sys.exit("--check-data: %s is %dx%d; the check needs %dx%d images, which neither side resizes"
                         % (path, img.size[0], img.size[1], a.image_size, a.image_size))
            x = tf(img.convert("RGB"))
        want = forward(model, x[None], False, False)[0].double().numpy()
        logp = np.full(classes, np.nan)
        for c in line["top"]:
            logp[names.index(c["class"]) if names else int(c["class"])] = math.log(c["prob"])
        ours, theirs = logp - logp.mean(), want - want.mean()
        worst = max(worst, float(np.linalg.norm(ours - theirs) / np.linalg.norm(theirs)))
    ok = worst < 1e-4 and len(lines) > 0
    print(json.dumps({"check": "logits", "images": len(lines), "max_rel_err": worst, "ok": ok}), flush=True)
    if not ok:
        sys.exit(1)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="classifier file (simclr finetune --out)")
    p.add_argument("--data", required=True, help="folder of images")
    p.add_argument("--image-size", type=int, default=0, help="view side (0: the file's image_size)")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--workers", type=int, default=2, help="DataLoader worker processes")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    p.add_argument("--channels-last", action="store_true", help="run the model in channels_last")
    p.add_argument("--inference-mode", action="store_true", help="torch.inference_mode() instead of torch.no_grad()")
    p.add_argument("--limit", type=int, default=0, help="use the first N images (sorted by path; 0: all)")
    p.add_argument("--model-images", type=int, default=512, help="views preloaded for the model-only timing")
    p.add_argument("--skip-end-to-end", action="store_true")
    p.add_argument("--skip-model-only", action="store_true")
    p.add_argument("--check-with", default="", help="simclr binary whose predict output the logits are checked against")
    p.add_argument("--check-data", default="", help="images for the check, of side --image-size (default --data)")
    p.add_argument("--check-images", type=int, default=8)
    a = p.parse_args()
    if a.batch < 1 or a.workers < 0 or a.threads < 1:
        sys.exit("--batch, --threads must be positive and --workers at least 0")
    torch.set_num_threads(a.threads)
    model, meta, mean, std = build_model(a.model)
    if a.image_size <= 0:
        a.image_size = int(meta.get("image_size", "0"))
    if a.image_size <= 0:
        sys.exit("--image-size: the file records no image size; give one")
    if a.channels_last:
        model = model.to(memory_format=torch.channels_last)
    tf = view_transform(a.image_size, mean, std)
    if a.check_with:
        check(model, meta, tf, a)
    paths = image_files(a.data)
    if a.limit > 0:
        paths = paths[: a.limit]
    common = {"model": os.path.basename(a.model), "depth": int(meta["depth"]), "image_size": a.image_size,
              "batch": a.batch, "threads": a.threads, "workers": a.workers, "channels_last": a.channels_last,
              "inference_mode": a.inference_mode, "torch": torch.__version__}
    if not a.skip_end_to_end:
        n, s = end_to_end(model, paths, tf, a)
        print(json.dumps(dict(common, what="end_to_end", images=n, seconds=round(s, 3), images_per_s=round(n / s, 2))), flush=True)
    if not a.skip_model_only:
        n, s = model_only(model, paths, tf, a)
        print(json.dumps(dict(common, what="model_only", images=n, seconds=round(s, 3), images_per_s=round(n / s, 2))), flush=True)


if __name__ == "__main__":
    main()
