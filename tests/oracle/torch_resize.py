"""Test oracle: PyTorch's antialiased bicubic on uint8 images, the resize of Hugging Face's fast
image processors (torchvision's resize calls torch.nn.functional.interpolate on CPU).

Writes OUT_DIR/cases.txt with "name in_w in_h out_w out_h" lines and, per case, NAME.in.rgb and
NAME.out.rgb (HWC uint8): downscales, upscales, one axis only, Qwen-like multiples of 28, noise
and hard edges (which overshoot and clamp), photo-like gradients.
Usage: python torch_resize.py OUT_DIR
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F


def image(rng, h, w, kind):
    if kind == "noise":
        return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    if kind == "binary":
        return (rng.integers(0, 2, (h, w, 3)) * 255).astype(np.uint8)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w, 3))
    for c in range(3):
        fx, fy = rng.uniform(0.5, 6, 2)
        img[:, :, c] = 127 + 100 * np.sin(xx / w * fx * np.pi + c) * np.cos(yy / h * fy * np.pi)
    img[(xx > w * 0.6) & (yy < h * 0.4)] = [250, 10, 30]
    return np.clip(np.round(img + rng.normal(0, 6, img.shape)), 0, 255).astype(np.uint8)


def main(out):
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(11)
    sizes = [(140, 420, 140, 420), (97, 131, 112, 140), (474, 700, 476, 700), (390, 150, 392, 140), (84, 56, 84, 56),
             (1, 1, 28, 28), (3, 701, 28, 700), (300, 300, 150, 150), (300, 300, 77, 33), (50, 60, 200, 240),
             (224, 224, 224, 168), (37, 23, 37, 56), (611, 457, 308, 224)]
    for _ in range(40):
        h, w = int(rng.integers(1, 320)), int(rng.integers(1, 320))
        oh = int(rng.integers(1, 2 * h + 30)) if rng.random() < 0.7 else h
        ow = int(rng.integers(1, 2 * w + 30)) if rng.random() < 0.7 or oh == h else w
        sizes.append((h, w, oh, ow))
    lines = []
    for i, (h, w, oh, ow) in enumerate(sizes):
        img = image(rng, h, w, ["photo", "noise", "binary"][i % 3])
        t = torch.from_numpy(img).permute(2, 0, 1)[None]
        res = F.interpolate(t, size=(oh, ow), mode="bicubic", antialias=True, align_corners=False)
        name = f"case{i:03d}"
        img.tofile(os.path.join(out, name + ".in.rgb"))
        res[0].permute(1, 2, 0).contiguous().numpy().tofile(os.path.join(out, name + ".out.rgb"))
        lines.append(f"{name} {w} {h} {ow} {oh}")
    with open(os.path.join(out, "cases.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {len(lines)} torch resize cases to {out} (cpu capability {torch.backends.cpu.get_cpu_capability()})")


if __name__ == "__main__":
    main(sys.argv[1])
