"""Benchmark: the CLIP image tower shaped like ViT-L/14 (random weights) and an InDiReCT fit on 100
texts, dior.cpp (ggml) next to PyTorch on the same weights, shapes and thread count. Prints
numbers; asserts nothing. Needs the oracle environment (scripts/test.sh makes .venv) and a build.

    .venv/bin/python scripts/bench_clip.py [--threads 2] [--work /tmp/dior-bench-clip]
"""
import argparse
import os
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(HERE, "tests", "oracle"))
import torchvision_cpu  # noqa: E402,F401
from clip_vocab import write_hf_files  # noqa: E402
from indirect_fit import fit  # noqa: E402
from transformers import CLIPConfig, CLIPModel  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", default="/tmp/dior-bench-clip")
    ap.add_argument("--images", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    hf = os.path.join(a.work, "hf")
    os.makedirs(hf, exist_ok=True)
    cfg = CLIPConfig(  # openai/clip-vit-large-patch14
        text_config=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                         max_position_embeddings=77, vocab_size=49408, hidden_act="quick_gelu"),
        vision_config=dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                           image_size=224, patch_size=14, hidden_act="quick_gelu"),
        projection_dim=768)
    torch.manual_seed(0)
    model = CLIPModel(cfg).eval()
    if not os.path.exists(os.path.join(a.work, "f16.gguf")):
        model.save_pretrained(hf, safe_serialization=True)
        write_hf_files(hf)
        for t in ("f32", "f16"):
            subprocess.run([sys.executable, os.path.join(HERE, "tools", "convert-clip", "convert_clip_to_gguf.py"), hf,
                            "--outfile", os.path.join(a.work, t + ".gguf"), "--outtype", t,
                            "--model-id", "random/clip-vit-large-patch14-shaped"], check=True)
    px = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        model.get_image_features(pixel_values=px)
        t0 = time.perf_counter()
        for _ in range(a.images):
            model.get_image_features(pixel_values=px)
        s = (time.perf_counter() - t0) / a.images
    print(f"PyTorch {torch.__version__} f32, {a.threads} threads: image tower 224x224: {s:.3f} s per image, "
          f"{1 / s:.2f} images/s")
    ids = torch.randint(0, 49406, (100, 14))
    ids[:, 0], ids[:, -1] = 49406, 49407
    with torch.no_grad():
        t0 = time.perf_counter()
        feats = torch.cat([model.get_text_features(input_ids=ids[i:i + 1]) for i in range(100)])
        s = time.perf_counter() - t0
    print(f"PyTorch text tower: 100 texts (batch 1) in {s:.2f} s")
    x = F.normalize(feats, dim=1)
    t0 = time.perf_counter()
    _, best, _, curve = fit(x, torch.randn(128, x.shape[1]) * 0.1)
    s = time.perf_counter() - t0
    print(f"PyTorch InDiReCT fit: 100 texts x {x.shape[1]}, 128 components: {len(curve)} iterations in {s:.2f} s "
          f"({1000 * s / len(curve):.2f} ms each), best loss {best:.6f}")
    for t in ("f32", "f16"):
        print(f"dior.cpp, {t} weights:", flush=True)
        subprocess.run([os.path.join(HERE, "build", "bin", "dior"), "bench-clip", "--clip-model",
                        os.path.join(a.work, t + ".gguf"), "-t", str(a.threads), "--images", str(a.images)], check=True)


if __name__ == "__main__":
    main()
