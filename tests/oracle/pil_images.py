"""Test oracle: Pillow's decode + convert("RGB") + Lanczos resize, as the reference loads images.

Writes source images in several formats and modes, and for each the RGB bytes that the reference
would feed the model: Image.open(p).convert("RGB"), then, when the longer side exceeds max_size,
resize so that it becomes max_size exactly (other side truncated) with Image.LANCZOS.
Usage: python pil_images.py OUT_DIR
"""
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image


def reference_load(path, max_size):
    img = Image.open(path).convert("RGB")
    w, h = img.size
    if max_size > 0 and max(w, h) > max_size:
        ratio = max_size / max(w, h)
        size = (max_size, max(1, int(h * ratio))) if w >= h else (max(1, int(w * ratio)), max_size)
        img = img.resize(size, Image.LANCZOS)
    return img


def png16_rgb(a):
    """A 16-bit RGB PNG, written by hand (Pillow cannot write one)."""
    h, w, _ = a.shape
    raw = b"".join(b"\x00" + a[y].astype(">u2").tobytes() for y in range(h))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def main(out):
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:960, 0:1400]
    smooth = np.stack([(xx * 255 // 1400), (yy * 255 // 960), ((xx + yy) % 256)], -1).astype(np.uint8)
    cases = []

    def add(name, img, fmt, max_size=700, **kw):
        src = f"{name}.{fmt}"
        img.save(os.path.join(out, src), **kw)
        ref = reference_load(os.path.join(out, src), max_size)
        expected = f"{name}.rgb"
        with open(os.path.join(out, expected), "wb") as f:
            f.write(np.asarray(ref, dtype=np.uint8).tobytes())
        cases.append(f"{src} {max_size} {expected} {ref.size[0]} {ref.size[1]}")

    add("noise_1000x600", Image.fromarray(rng.integers(0, 256, (600, 1000, 3), dtype=np.uint8)), "png")
    add("smooth_1400x960", Image.fromarray(smooth), "png")
    add("tall_640x961", Image.fromarray(np.resize(smooth, (961, 640, 3))), "png")
    add("thin_701x3", Image.fromarray(rng.integers(0, 256, (3, 701, 3), dtype=np.uint8)), "png")
    add("square_2000", Image.fromarray(np.resize(smooth, (2000, 2000, 3))), "png")
    add("small_56x84", Image.fromarray(rng.integers(0, 256, (84, 56, 3), dtype=np.uint8)), "png")
    add("rgba_900x500", Image.fromarray(rng.integers(0, 256, (500, 900, 4), dtype=np.uint8), "RGBA"), "png")
    add("grey_800x800", Image.fromarray(rng.integers(0, 256, (800, 800), dtype=np.uint8), "L"), "png")
    add("palette_750x300", Image.fromarray(smooth[:300, :750]).convert("P"), "png")
    add("bmp_1200x500", Image.fromarray(smooth[:500, :1200]), "bmp")
    add("custom_max_300", Image.fromarray(smooth[:400, :1000]), "png", max_size=300)
    # JPEG, as all five datasets are: Pillow decodes with libjpeg-turbo (islow IDCT, fancy
    # upsampling); max_size 0 compares the decoded pixels themselves, 700 the whole load.
    photo = Image.fromarray(np.clip(smooth.astype(int) + rng.integers(-40, 40, smooth.shape), 0, 255).astype(np.uint8))
    add("jpeg_420_1000x700", photo.crop((0, 0, 1000, 700)), "jpg", max_size=0, quality=90)
    add("jpeg_420_resized", photo.crop((0, 0, 1000, 700)), "jpg", quality=75)
    add("jpeg_444_333x211", photo.crop((5, 7, 338, 218)), "jpg", max_size=0, quality=95, subsampling=0)
    add("jpeg_422_301x199", photo.crop((50, 20, 351, 219)), "jpg", max_size=0, quality=80, subsampling=1)
    add("jpeg_progressive", photo.crop((0, 0, 517, 389)), "jpg", max_size=0, progressive=True, quality=85)
    add("jpeg_optimized_restart", photo.crop((0, 0, 250, 250)), "jpg", max_size=0, optimize=True,
        restart_marker_rows=2)
    add("jpeg_grey_401x257", photo.crop((0, 0, 401, 257)).convert("L"), "jpg", max_size=0)
    add("jpeg_grey_resized", photo.convert("L"), "jpg")
    add("jpeg_cmyk_300x200", photo.crop((0, 0, 300, 200)).convert("CMYK"), "jpg", max_size=0, quality=90)
    add("jpeg_tiny_1x1", photo.crop((0, 0, 1, 1)), "jpg", max_size=0)
    add("jpeg_noise_97x61", Image.fromarray(rng.integers(0, 256, (61, 97, 3), dtype=np.uint8)), "jpg", max_size=0)

    # 16-bit PNGs: Pillow opens greyscale as "I;16" and convert("RGB") clips to 0..255; colour keeps
    # the high byte.
    g16 = (rng.integers(0, 1024, (90, 120)) * np.array([1, 64])[rng.integers(0, 2, (90, 120))]).astype(np.uint16)
    add("png_grey16_120x90", Image.fromarray(g16), "png", max_size=0)
    with open(os.path.join(out, "png_rgb16_50x40.png"), "wb") as f:
        f.write(png16_rgb(rng.integers(0, 65536, (40, 50, 3)).astype(np.uint16)))
    ref = reference_load(os.path.join(out, "png_rgb16_50x40.png"), 0)
    with open(os.path.join(out, "png_rgb16_50x40.rgb"), "wb") as f:
        f.write(np.asarray(ref, dtype=np.uint8).tobytes())
    cases.append(f"png_rgb16_50x40.png 0 png_rgb16_50x40.rgb {ref.size[0]} {ref.size[1]}")

    # Other PNG and BMP modes Pillow writes: 1-bit, greyscale + alpha, a palette with transparency,
    # 8-bit palette BMP and 32-bit BMP.
    add("png_1bit_77x33", Image.fromarray(rng.integers(0, 2, (33, 77)).astype(bool)), "png", max_size=0)
    add("png_la_64x48", Image.fromarray(rng.integers(0, 256, (48, 64, 2), dtype=np.uint8), "LA"), "png", max_size=0)
    pal = Image.fromarray(smooth[:40, :60]).convert("P")
    pal.info["transparency"] = 3
    add("png_palette_trns_60x40", pal, "png", max_size=0, transparency=3)
    add("bmp_palette_70x50", Image.fromarray(smooth[:50, :70]).convert("P"), "bmp", max_size=0)
    add("bmp_rgba_70x50", Image.fromarray(rng.integers(0, 256, (50, 70, 4), dtype=np.uint8), "RGBA"), "bmp", max_size=0)

    frames = [Image.fromarray(smooth[:300, :800]).convert("P"),
              Image.fromarray(255 - smooth[:300, :800]).convert("P")]
    frames[0].save(os.path.join(out, "anim_800x300.gif"), save_all=True, append_images=frames[1:])
    ref = reference_load(os.path.join(out, "anim_800x300.gif"), 700)
    with open(os.path.join(out, "anim_800x300.rgb"), "wb") as f:
        f.write(np.asarray(ref, dtype=np.uint8).tobytes())
    cases.append(f"anim_800x300.gif 700 anim_800x300.rgb {ref.size[0]} {ref.size[1]}")

    # Pillow's BILINEAR (Hugging Face's Gemma 3 processor squashes images to a square with it):
    # raw RGB in, raw RGB out, up and down.
    bilinear = []
    src = rng.integers(0, 256, (97, 131, 3), dtype=np.uint8)
    src[40:70] = smooth[:30, :131]
    with open(os.path.join(out, "bilinear_131x97.rgb"), "wb") as f:
        f.write(src.tobytes())
    for w, h in [(224, 224), (64, 64), (131, 50), (300, 97), (17, 211)]:
        ref = Image.fromarray(src).resize((w, h), Image.BILINEAR)
        with open(os.path.join(out, f"bilinear_{w}x{h}.out"), "wb") as f:
            f.write(np.asarray(ref, dtype=np.uint8).tobytes())
        bilinear.append(f"{w} {h}")
    with open(os.path.join(out, "bilinear.txt"), "w") as f:
        f.write("\n".join(bilinear) + "\n")

    with open(os.path.join(out, "cases.txt"), "w") as f:
        f.write("\n".join(cases) + "\n")
    print(f"wrote {len(cases)} Pillow cases to {out}")


if __name__ == "__main__":
    main(sys.argv[1])
