#!/usr/bin/env python3
"""Makes the folders of JPEGs that scripts/bench-decode.sh times.

  OUT/cifar32  the first N CIFAR-10 training JPEGs (32x32) of a .tar.gz
  OUT/photos   500x375 crops, at three scales, of the colour photographs
               Debian's python3-skimage ships (astronaut, coffee, chelsea,
               motorcycles, rocket, ...), saved by PIL at quality 90 (4:2:0)

Usage: decode-bench-sets.py CIFAR_TAR_GZ SKIMAGE_DATA_DIR OUT [N]

SKIMAGE_DATA_DIR needs no installation:
  apt-get download python3-skimage && dpkg -x python3-skimage_*.deb sk
  # then sk/usr/lib/python3/dist-packages/skimage/data
"""
import os
import random
import sys
import tarfile

from PIL import Image

PHOTOS = ["astronaut.png", "chelsea.png", "coffee.png", "motorcycle_left.png",
          "motorcycle_right.png", "rocket.jpg", "retina.jpg", "hubble_deep_field.jpg", "ihc.png"]
W, H = 500, 375


def cifar(tar_path, out, n):
    os.makedirs(out, exist_ok=True)
    done = 0
    with tarfile.open(tar_path, "r|gz") as tar:
        for m in tar:
            if done == n:
                break
            if m.isfile() and m.name.lower().endswith(".jpg"):
                with open(os.path.join(out, f"{done:05d}.jpg"), "wb") as f:
                    f.write(tar.extractfile(m).read())
                done += 1
    print(f"{out}: {done} JPEGs")


def photos(src, out):
    os.makedirs(out, exist_ok=True)
    rng = random.Random(1)
    done = 0
    for name in PHOTOS:
        im = Image.open(os.path.join(src, name)).convert("RGB")
        cover = max(W / im.width, H / im.height)
        for scale in (1.0, 1.3, 1.7):
            s = cover * scale
            big = im.resize((max(W, round(im.width * s)), max(H, round(im.height * s))), Image.LANCZOS)
            for _ in range(3):
                x, y = rng.randint(0, big.width - W), rng.randint(0, big.height - H)
                big.crop((x, y, x + W, y + H)).save(os.path.join(out, f"{done:03d}.jpg"), quality=90)
                done += 1
    print(f"{out}: {done} JPEGs of {W}x{H}")


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    tar_path, src, out = sys.argv[1:4]
    n = int(sys.argv[4]) if len(sys.argv) == 5 else 5000
    cifar(tar_path, os.path.join(out, "cifar32"), n)
    photos(src, os.path.join(out, "photos"))


if __name__ == "__main__":
    main()
