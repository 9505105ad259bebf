#!/usr/bin/env python3
"""bench/make_image.py - deterministic test images for the service benches.

    make_image.py OUT.png|OUT.jpg WIDTHxHEIGHT [--quality 90]

Up to 128 px a side (what the service takes as a face crop) the image is 8-bit
grayscale: 128 + 60 sin(x/5) cos(y/7) plus Gaussian noise (sigma 12, seed 48),
at 48x48 exactly the PNG bench/service.sh has always posted. Larger images are
RGB and photo-like: a diagonal colour gradient, a few soft low-frequency
blobs and mild noise (sigma 6, seed from the size), so that a JPEG at quality
90 is in the range a camera writes (1920x1080 ~430 KB, 3840x2160 ~1.7 MB). The format
comes from the file name (.png or .jpg/.jpeg); JPEGs are baseline, 4:2:0, no
EXIF. Prints "WIDTHxHEIGHT FORMAT BYTES".
"""
import argparse
import os
import sys

import numpy as np
from PIL import Image


def crop_pixels(w, h):
    y, x = np.mgrid[0:h, 0:w]
    noise = np.random.default_rng(48).normal(0, 12, (h, w))
    img = 128 + 60 * np.sin(x / 5.0) * np.cos(y / 7.0) + noise
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "L")


def photo_pixels(w, h):
    rng = np.random.default_rng(w * 100003 + h)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    u, v = x / w, y / h
    base = np.stack([70 + 120 * u, 60 + 100 * v, 150 - 80 * (u + v) / 2], axis=-1)
    for _ in range(6):  # soft blobs, a few hundred pixels wide
        cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.08, 0.3)
        amp = rng.uniform(-60, 60, 3).astype(np.float32)
        g = np.exp(-(((u - cx) * w / h) ** 2 + (v - cy) ** 2) / (2 * r * r))
        base += g[..., None] * amp
    base += 12 * np.sin(u * 37.0 + v * 11.0)[..., None]  # some texture
    base += rng.normal(0, 6, base.shape).astype(np.float32)
    return Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("size", help="WIDTHxHEIGHT")
    ap.add_argument("--quality", type=int, default=90)
    a = ap.parse_args()
    w, h = (int(s) for s in a.size.lower().split("x"))
    img = crop_pixels(w, h) if max(w, h) <= 128 else photo_pixels(w, h)
    ext = os.path.splitext(a.out)[1].lower()
    if ext == ".png":
        img.save(a.out, "PNG")
        fmt = "png"
    elif ext in (".jpg", ".jpeg"):
        img.save(a.out, "JPEG", quality=a.quality, subsampling=2, optimize=False)
        fmt = "jpeg"
    else:
        sys.exit("make_image.py: OUT must end in .png, .jpg or .jpeg")
    print("%dx%d %s %d" % (w, h, fmt, os.path.getsize(a.out)))


if __name__ == "__main__":
    main()
