#!/usr/bin/env python3
"""Writes the decoding test images in decode/ and, for each, what PIL decodes.

decode/vectors.json maps each file to its size, PIL's mode on opening and the
SHA-256 of Image.open(f).convert("RGB").tobytes(), the pixels torchvision's
ImageFolder loader sees. For lossy files, decode/<name>.rgb.png holds those pixels
too, so that decoders that are not exact can be measured against them.

Run with Debian's python3-pil (and python3-numpy); cjpeg (libjpeg-turbo-progs)
adds a file with restart markers when it is installed.
"""
import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import zlib

import numpy as np
from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "decode")


def scene(w, h, seed):
    """A small image with smooth shading, texture and sharp coloured edges,
    the mix that separates one JPEG decoder's upsampling from another's."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w, 3))
    for c in range(3):
        fx, fy, ph = rng.uniform(0.05, 0.3), rng.uniform(0.05, 0.3), rng.uniform(0, 6)
        img[..., c] = 128 + 60 * np.sin(fx * x + ph) * np.cos(fy * y) + 40 * (x / w - 0.5)
    disc = (x - w * 0.6) ** 2 + (y - h * 0.4) ** 2 < (min(w, h) * 0.3) ** 2
    img[disc] = [220, 40, 30]
    img[(x > w * 0.15) & (x < w * 0.3)] = [20, 90, 230]
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def png16(path, rgb16):
    """A 16-bit RGB PNG, written by hand: PIL cannot save one."""
    h, w, _ = rgb16.shape
    raw = b"".join(b"\x00" + rgb16[r].astype(">u2").tobytes() for r in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(raw, 9)))
        f.write(chunk(b"IEND", b""))


def tiff_premultiplied(path, rgba):
    """An uncompressed TIFF with associated (premultiplied) alpha, written
    by hand: PIL cannot save one."""
    h, w, _ = rgba.shape
    a = rgba[..., 3:].astype(np.uint32)
    data = np.concatenate([(rgba[..., :3] * a // 255).astype(np.uint8), rgba[..., 3:]], 2).tobytes()
    tags = [(256, 3, 1, w), (257, 3, 1, h), (258, 3, 4, None), (259, 3, 1, 1), (262, 3, 1, 2),
            (273, 4, 1, None), (277, 3, 1, 4), (278, 3, 1, h), (279, 4, 1, len(data)), (338, 3, 1, 1)]
    bps = 8 + 2 + 12 * len(tags) + 4
    offsets = {258: bps, 273: bps + 8}
    ifd = struct.pack("<H", len(tags))
    for tag, kind, count, value in tags:
        if tag in offsets:
            ifd += struct.pack("<HHII", tag, kind, count, offsets[tag])
        elif kind == 3:
            ifd += struct.pack("<HHIHH", tag, kind, count, value, 0)
        else:
            ifd += struct.pack("<HHII", tag, kind, count, value)
    with open(path, "wb") as f:
        f.write(b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0))
        f.write(struct.pack("<4H", 8, 8, 8, 8) + data)


def gif_on_larger_screen(path, im, screen, offset, transparency):
    """Saves im as a GIF whose first frame sits at offset on a larger logical
    screen, by patching what PIL writes: PIL cannot save one."""
    buf = io.BytesIO()
    im.save(buf, "GIF", transparency=transparency)
    b = bytearray(buf.getvalue())
    struct.pack_into("<HH", b, 6, *screen)
    i = 13 + (3 << ((b[10] & 7) + 1) if b[10] & 0x80 else 0)
    while b[i] == 0x21:  # extensions, up to the image descriptor
        i += 2
        while b[i]:
            i += b[i] + 1
        i += 1
    assert b[i] == 0x2C
    struct.pack_into("<HH", b, i + 1, *offset)
    with open(path, "wb") as f:
        f.write(b)


def main():
    os.makedirs(OUT, exist_ok=True)
    rgb = Image.fromarray(scene(45, 37, 1))
    files = {}

    def save(name, im, **kw):
        im.save(os.path.join(OUT, name), **kw)
        files[name] = True

    save("jpeg_420.jpg", rgb, quality=90, subsampling=2)
    save("jpeg_422.jpg", rgb, quality=90, subsampling=1)
    save("jpeg_444.jpg", rgb, quality=90, subsampling=0)
    save("jpeg_q50.jpg", rgb, quality=50)
    save("jpeg_gray.jpg", rgb.convert("L"), quality=90)
    save("jpeg_progressive.jpg", rgb, quality=90, progressive=True)
    # CMYK with real black: PIL's RGB->CMYK leaves K at 0. PIL writes it
    # Adobe-inverted with an APP14 marker, as Photoshop does.
    a = scene(45, 37, 2)
    k = (np.arange(45)[None, :].repeat(37, 0) * 4).astype(np.uint8)[..., None]
    save("jpeg_cmyk.jpg", Image.fromarray(np.concatenate([a, k], 2), "CMYK"), quality=90)
    # EXIF orientation 6 (rotate 90° clockwise to display): neither PIL's
    # Image.open nor torchvision applies it, so the stored pixels are expected.
    exif = Image.Exif()
    exif[0x0112] = 6
    save("jpeg_exif_rotated.jpg", Image.fromarray(scene(61, 29, 3)), quality=90, exif=exif.tobytes())
    if shutil.which("cjpeg"):
        ppm = io.BytesIO()
        rgb.save(ppm, "PPM")
        out = subprocess.run(["cjpeg", "-quality", "85", "-restart", "1", "-sample", "2x1"],
                             input=ppm.getvalue(), capture_output=True, check=True).stdout
        with open(os.path.join(OUT, "jpeg_restart.jpg"), "wb") as f:
            f.write(out)
        files["jpeg_restart.jpg"] = True

    rgba = np.concatenate([scene(45, 37, 4), (np.arange(45)[None, :, None].repeat(37, 0) * 5).astype(np.uint8)], 2)
    save("png_rgba.png", Image.fromarray(rgba, "RGBA"))
    save("png_gray.png", rgb.convert("L"))
    save("png_gray_alpha.png", Image.fromarray(rgba, "RGBA").convert("LA"))
    pal = rgb.quantize(colors=32)
    save("png_palette.png", pal, transparency=3)
    g16 = (np.arange(45)[None, :].repeat(37, 0) * 1400 + np.arange(37)[:, None] * 3).astype(np.uint16)
    save("png_gray16.png", Image.fromarray(g16, "I;16"))
    png16(os.path.join(OUT, "png_rgb16.png"), scene(45, 37, 5).astype(np.uint16) * 257 + np.uint16(77))
    files["png_rgb16.png"] = True
    save("gif_transparent.gif", pal, transparency=3)
    gif_on_larger_screen(os.path.join(OUT, "gif_small_frame.gif"), pal.crop((0, 0, 20, 15)), (31, 22), (7, 4), 5)
    files["gif_small_frame.gif"] = True
    save("bmp_rgb.bmp", rgb)
    save("bmp_palette.bmp", pal)
    save("tiff_rgb.tif", rgb)
    save("tiff_rgba.tif", Image.fromarray(rgba, "RGBA"), compression="tiff_lzw")
    tiff_premultiplied(os.path.join(OUT, "tiff_premultiplied.tif"), rgba[:20, :24])
    files["tiff_premultiplied.tif"] = True
    save("webp_lossless.webp", Image.fromarray(rgba, "RGBA"), lossless=True)
    save("webp_lossy.webp", rgb, quality=80)

    vectors = {}
    for name in sorted(files):
        with Image.open(os.path.join(OUT, name)) as im:
            mode = im.mode
            out = im.convert("RGB")
        vectors[name] = {
            "width": out.width,
            "height": out.height,
            "mode": mode,
            "sha256": hashlib.sha256(out.tobytes()).hexdigest(),
        }
        if name.endswith(".jpg") or name == "webp_lossy.webp":
            out.save(os.path.join(OUT, name + ".rgb.png"), optimize=True)
    with open(os.path.join(OUT, "vectors.json"), "w") as f:
        json.dump(vectors, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
