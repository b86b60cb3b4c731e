"""Runs a classifier written by simclr.SaveClassifier in torchvision and
saves its logits, to check the Go forward pass and the file layout against.

usage: torchvision_classifier.py CLASSIFIER.safetensors INPUT.npy OUTPUT.npy [...]

(any number of such triples, to pay torch's start-up once)

The file is loaded into the stock torchvision.models.resnetXX(num_classes=K)
with load_state_dict(strict=True). A classifier on the projection head's
layer n gets the head's n hidden layers first (m.head, as the format's
documentation says), and after loading m.fc = Sequential(m.head, m.fc).
INPUT is float32 images [N, H, W, 3] (NHWC, as the Go side uses); OUTPUT is
the logits [N, K] in eval mode. For each triple a line of JSON is printed:
{"ok": true} or {"error": "..."} when the strict load fails.

Needs torch and torchvision (tested with 1.13 and 0.14).
"""
import json
import sys

import numpy as np
import torch
import torchvision
from torch import nn

from torchvision_forward import load_safetensors


def run(path, in_path, out_path):
    state, meta = load_safetensors(path)
    depth, selector, classes = int(meta["depth"]), int(meta["selector"]), int(meta["classes"])
    m = getattr(torchvision.models, "resnet%d" % depth)(num_classes=classes)
    if selector > 0:
        layers = []
        for i in range(selector):
            out_dim, in_dim = state["head.%d.weight" % (3 * i)].shape
            layers += [nn.Linear(in_dim, out_dim), nn.BatchNorm1d(out_dim), nn.ReLU()]
        m.head = nn.Sequential(*layers)
        m.fc = nn.Linear(state["fc.weight"].shape[1], classes)
    try:
        m.load_state_dict(state, strict=True)
    except RuntimeError as e:
        print(json.dumps({"error": str(e)}))
        return
    if selector > 0:
        m.fc = nn.Sequential(m.head, m.fc)
    m.eval()
    x = torch.from_numpy(np.load(in_path)).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        logits = m(x)
    np.save(out_path, logits.numpy().astype(np.float32))
    print(json.dumps({"ok": True}))


def main():
    args = sys.argv[1:]
    if not args or len(args) % 3:
        sys.exit(__doc__)
    for i in range(0, len(args), 3):
        run(*args[i : i + 3])


if __name__ == "__main__":
    main()
