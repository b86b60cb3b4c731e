"""Runs an encoder exported by `simclr export` (simclr.SaveEncoder) in
torchvision and saves its features, to check the Go forward pass against.

usage: torchvision_forward.py ENCODER.safetensors INPUT.npy OUTPUT.npy [...]

(any number of such triples, to pay torch's start-up once)

INPUT is float32 images [N, H, W, 3] (NHWC, as the Go side uses); OUTPUT is
the encoder's pooled features [N, D] in eval mode. Width-64 encoders are
loaded into torchvision.models.resnetXX() with load_state_dict(strict=False);
other widths into torchvision's ResNet with the stage widths changed (the
blocks are torchvision's own). For each triple a line of JSON is printed
with the missing and unexpected keys of load_state_dict.

Needs torch and torchvision (tested with 1.13 and 0.14); safetensors is
read here (it is not installed with torch 1.13).
"""
import json
import struct
import sys

import numpy as np
import torch
import torchvision
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32}


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


BLOCKS = {
    18: (BasicBlock, [2, 2, 2, 2]),
    34: (BasicBlock, [3, 4, 6, 3]),
    50: (Bottleneck, [3, 4, 6, 3]),
    101: (Bottleneck, [3, 4, 23, 3]),
    152: (Bottleneck, [3, 8, 36, 3]),
}


class WidthResNet(ResNet):
    """torchvision's ResNet with stage widths w, 2w, 4w, 8w instead of 64..512."""

    def __init__(self, block, layers, width):
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.inplanes, self.dilation, self.groups, self.base_width = width, 1, 1, 64
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, 2 * width, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 4 * width, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 8 * width, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(8 * width * block.expansion, 1000)


def run(enc_path, in_path, out_path):
    state, meta = load_safetensors(enc_path)
    depth, width = int(meta["depth"]), int(meta["width"])
    if width == 64:
        model = getattr(torchvision.models, "resnet%d" % depth)()
    else:
        block, layers = BLOCKS[depth]
        model = WidthResNet(block, layers, width)
    if meta["cifar_stem"] == "true":
        model.conv1 = nn.Conv2d(3, width, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    res = model.load_state_dict(state, strict=False)
    model.fc = nn.Identity()
    model.eval()
    x = torch.from_numpy(np.load(in_path)).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        h = model(x)
    np.save(out_path, h.numpy().astype(np.float32))
    print(json.dumps({"missing": sorted(res.missing_keys), "unexpected": sorted(res.unexpected_keys)}))


def main():
    args = sys.argv[1:]
    if not args or len(args) % 3:
        sys.exit(__doc__)
    for i in range(0, len(args), 3):
        run(*args[i : i + 3])


if __name__ == "__main__":
    main()
