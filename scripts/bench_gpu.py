"""GPU check and benchmark (issue 24), run by scripts/gpu_check.sh after it built dior there. Prints
numbers and one verdict line per check; exits non-zero when a check fails. Random weights of the
real shapes (dior-make-tiny-model, F16), 448x448 images, one card:

  checks   dior's vectors on the GPU vs the CPU, and batched (--image-batch) vs one at a time on
           images of mixed sizes (relative L2);
  dior     seconds per image at K=1 and K=5, image batch 1, 8 and --image-batch B (dior embed,
           whole image loop); dior bench's encoder and prefix times turned into TFLOP/s;
  card     its dense F16 GEMM rate (torch.matmul, 8192^3);
  torch    transformers bf16 with sdpa on the same shapes: batch 1 one full forward per condition
           (the reference's default path), the prefix cached and copied per condition (its cache
           path), and 16 images in one forward (K=1; K=5: five such forwards).

    python3 scripts/bench_gpu.py --build BUILD [--shapes 3b,7b] [--work DIR] [--cpu-only]

--cpu-only (no GPU: the script's own check on a development machine) uses the tiny shape, runs
every step on the CPU and skips what needs CUDA.
"""
import argparse
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_server import (CONDITIONS, IMAGE_SIDE, SHAPE_3B, build_paths, log, make_images,  # noqa: E402
                          run_measured, vision_flops)

SHAPES = {
    "3b": dict(args=SHAPE_3B, d=2048, layers=36, heads=16, kv=2, ff=11008),
    "7b": dict(args=["--f16", "--n-embd", "3584", "--n-layer", "28", "--n-head", "28", "--n-head-kv", "4", "--n-ff",
                     "18944", "--v-embd", "1280", "--v-layer", "32", "--v-head", "16", "--v-ff", "3420",
                     "--v-wa-pattern", "8"], d=3584, layers=28, heads=28, kv=4, ff=18944),
    "tiny": dict(args=[], d=64, layers=4, heads=4, kv=2, ff=128),
}


def prefix_flops(tokens, s):
    head = s["d"] // s["heads"]
    return 2 * tokens * s["layers"] * (2 * s["d"] * s["d"] + 2 * s["d"] * s["kv"] * head + 3 * s["d"] * s["ff"])


def make_model(paths, work, shape):
    d = os.path.join(work, "m-" + shape)
    if not os.path.exists(os.path.join(d, "mmproj.gguf")):
        t0 = time.perf_counter()
        vocab = os.path.join(paths["source"], "models", "ggml-vocab-qwen2.gguf")
        subprocess.run([paths["make"], "-o", d, "--vocab", vocab] + SHAPES[shape]["args"], check=True,
                       stdout=subprocess.DEVNULL)
        log(f"{shape}-shaped model written in {time.perf_counter() - t0:.0f} s")
    return os.path.join(d, "text.gguf"), os.path.join(d, "mmproj.gguf")


def embed_npy(paths, text, mmproj, images, out, extra):
    """dior embed into a fresh store, exported as NumPy: {file name: matrix}."""
    import numpy as np
    store = out + ".db"
    for f in (store, store + "-wal", store + "-shm"):
        if os.path.exists(f):
            os.remove(f)
    cmd = [paths["dior"], "embed", "-m", text, "--mmproj", mmproj, "-o", store, "--npy", out, "--layer", "all"]
    for c in CONDITIONS[:2]:
        cmd += ["-c", c]
    run_measured(cmd + list(extra) + images)
    return {f: np.load(os.path.join(out, f)) for f in os.listdir(out) if f.endswith(".npy")}


def worst_rel(a, b):
    import numpy as np
    return max(float(np.max(np.linalg.norm(a[f] - b[f], axis=1) / np.linalg.norm(b[f], axis=1))) for f in b)


def checks(paths, work, text, mmproj, gpu, batch):
    """GPU vs CPU and batched vs one at a time, on 6 images of mixed sizes."""
    from PIL import Image
    import numpy as np
    d = os.path.join(work, "mixed")
    os.makedirs(d, exist_ok=True)
    imgs = []
    rng = np.random.default_rng(2)
    for i, (w, h) in enumerate([(448, 448), (300, 200), (56, 84), (640, 360), (224, 224), (150, 390)]):
        p = os.path.join(d, f"m{i}.png")
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(p)
        imgs.append(p)
    ok = True
    one = embed_npy(paths, text, mmproj, imgs, os.path.join(work, "one"), ["--image-batch", "1"])
    many = embed_npy(paths, text, mmproj, imgs, os.path.join(work, "many"), ["--image-batch", str(batch)])
    r = worst_rel(many, one)
    bound = 1e-5 if not gpu else 2e-3  # the CPU's stated bound; a GPU's kernels change with batch size
    log(f"check batched ({batch}) vs one at a time, every layer, 6 mixed images: worst rel L2 {r:.2e} "
        f"(bound {bound:g}) {'ok' if r <= bound else 'FAILED'}")
    ok &= r <= bound
    if gpu:
        cpu = embed_npy(paths, text, mmproj, imgs, os.path.join(work, "cpu"), ["--gpu-layers", "0", "--image-batch", "1"])
        r = worst_rel(one, cpu)
        log(f"check GPU vs CPU, every layer: worst rel L2 {r:.2e} (bound 2e-3) {'ok' if r <= 2e-3 else 'FAILED'}")
        ok &= r <= 2e-3
    return ok


def dior_speed(paths, text, mmproj, images, batches, extra):
    """{(K, batch): seconds per image} from dior embed's image loop."""
    out = {}
    for k in (1, 5):
        for b in batches:
            store = os.path.join(os.path.dirname(images[0]), "speed.db")
            for f in (store, store + "-wal", store + "-shm"):
                if os.path.exists(f):
                    os.remove(f)
            cmd = [paths["dior"], "embed", "-m", text, "--mmproj", mmproj, "-o", store, "--image-batch", str(b)]
            for c in CONDITIONS[:k]:
                cmd += ["-c", c]
            _, _, err = run_measured(cmd + list(extra) + images)
            m = re.search(r"; ([\d.]+) s, [\d.]+ img/s", err)
            out[(k, b)] = float(m.group(1)) / len(images) if m else float("nan")
    return out


def dior_rates(paths, text, mmproj, image, shape, batch, extra):
    _, _, err = run_measured([paths["dior"], "bench", "-m", text, "--mmproj", mmproj, "-K", "5", "--image", image,
                              "--image-batch", str(batch), "--repeat", "2"] + list(extra))
    get = lambda name: float(re.search(name + r"\s+([\d.]+) ms", err).group(1)) / 1000.0  # noqa: E731
    s = SHAPES[shape]
    vf = vision_flops(out=s["d"]) if shape != "tiny" else float("nan")
    pf = prefix_flops(288, s)
    rows = {"encode": (get("image encode"), vf), "prefix": (get("prefix"), pf)}
    if batch > 1:
        rows["batched encode"] = (get("batched encode"), vf)
        rows["batched prefix"] = (get("batched prefix"), pf)
    return {k: (t, f / t / 1e12) for k, (t, f) in rows.items()}


def torch_part(shape, images, batch16, device):
    """transformers bf16 (f32 on a CPU): {(path, K): seconds per image}; and the F16 GEMM rate."""
    import torch
    if device == "cpu":  # the CPU wheel of torch without a matching torchvision, as the oracles run it
        sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "oracle"))
        import torchvision_cpu  # noqa: F401
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration
    s = SHAPES[shape]
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    vis_layers = 32 if shape != "tiny" else 2
    cfg = Qwen2_5_VLConfig(
        vocab_size=151936, hidden_size=s["d"], intermediate_size=s["ff"], num_hidden_layers=s["layers"],
        num_attention_heads=s["heads"], num_key_value_heads=s["kv"], rms_norm_eps=1e-6, rope_theta=1000000.0,
        rope_scaling={"type": "mrope", "mrope_section": [16, 24, 24] if s["d"] // s["heads"] == 128 else [2, 3, 3]},
        image_token_id=151655, video_token_id=151656, vision_start_token_id=151652, vision_end_token_id=151653,
        vision_config={"depth": vis_layers, "hidden_size": 1280 if shape != "tiny" else 32,
                       "intermediate_size": 3420 if shape != "tiny" else 48, "num_heads": 16 if shape != "tiny" else 2,
                       "out_hidden_size": s["d"], "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2,
                       "window_size": 112, "fullatt_block_indexes": [7, 15, 23, 31][: max(1, vis_layers // 8)]},
        attn_implementation="sdpa")
    torch.manual_seed(0)
    model = Qwen2_5_VLForConditionalGeneration(cfg).to(device=device, dtype=dtype).eval()
    grid = IMAGE_SIDE // 14
    n_img = grid * grid // 4
    head = [151644, 8948, 198, 151645, 198, 151644, 872, 198, 151652]
    tail = [151653, 74785, 419, 2168, 304, 825, 3409, 8826] + [1000 + i for i in range(6)] + [151645, 198, 151644,
                                                                                           77091, 198]

    def ids_for(k):
        return torch.tensor(head + [151655] * n_img + tail[:-6] + [2000 + k] + tail[-5:], device=device)

    pix = torch.randn(grid * grid, 3 * 2 * 14 * 14, device=device, dtype=dtype)
    thw = torch.tensor([[1, grid, grid]], device=device)

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    def default(k, n):  # one full forward per condition and image
        for _ in range(n):
            for c in range(k):
                model(input_ids=ids_for(c)[None], pixel_values=pix, image_grid_thw=thw, output_hidden_states=True)

    def cache(k, n):  # the prefix once, each condition's own tokens on a copy of its cache
        import copy
        for _ in range(n):
            ids = ids_for(0)
            npre = len(head) + n_img
            # sequential positions, as scripts/bench_server.py's cache path (the cost is the same)
            pre = model(input_ids=ids[None, :npre], pixel_values=pix, image_grid_thw=thw, use_cache=True,
                        position_ids=torch.arange(npre, device=device)[None])
            for c in range(k):
                own = ids_for(c)[npre:]
                at = torch.arange(npre, npre + len(own), device=device)
                model(input_ids=own[None], past_key_values=copy.deepcopy(pre.past_key_values),
                      output_hidden_states=True, use_cache=True, position_ids=at[None], cache_position=at)

    def batched(k, n):  # n images per forward, K forwards
        for c in range(k):
            model(input_ids=ids_for(c)[None].repeat(n, 1), pixel_values=pix.repeat(n, 1),
                  image_grid_thw=thw.repeat(n, 1), output_hidden_states=True)

    out = {}
    with torch.no_grad():
        default(1, 1)  # warm-up
        for name, fn, n in (("default", default, images), ("cache", cache, images), ("batch16", batched, batch16)):
            for k in (1, 5):
                sync()
                t0 = time.perf_counter()
                fn(k, n)
                sync()
                out[(name, k)] = (time.perf_counter() - t0) / n
    rate = float("nan")
    if device == "cuda":
        a = torch.randn(8192, 8192, device="cuda", dtype=torch.float16)
        b = torch.randn(8192, 8192, device="cuda", dtype=torch.float16)
        a @ b
        sync()
        t0 = time.perf_counter()
        for _ in range(20):
            a @ b
        sync()
        rate = 20 * 2 * 8192**3 / (time.perf_counter() - t0) / 1e12
    del model
    return out, rate


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--work", default="/tmp/dior-gpu-bench")
    ap.add_argument("--shapes", default="3b,7b")
    ap.add_argument("--images", type=int, default=32)
    ap.add_argument("--image-batch", type=int, default=0, help="default: 32 on a GPU, 4 with --cpu-only")
    ap.add_argument("--cpu-only", action="store_true")
    a = ap.parse_args()
    gpu = not a.cpu_only
    a.image_batch = a.image_batch or (32 if gpu else 4)
    shapes = ["tiny"] if a.cpu_only else a.shapes.split(",")
    paths = build_paths(a.build)
    os.makedirs(a.work, exist_ok=True)
    images = make_images(os.path.join(a.work, "images"), a.images)
    extra = [] if gpu else ["-t", str(os.cpu_count())]
    ok = True
    for shape in shapes:
        text, mmproj = make_model(paths, a.work, shape)
        log(f"== {shape}-shaped (F16), {len(images)} images {IMAGE_SIDE}x{IMAGE_SIDE}")
        ok &= checks(paths, os.path.join(a.work, shape), text, mmproj, gpu, a.image_batch)
        batches = sorted({1, 8, a.image_batch} if gpu else {1, a.image_batch})
        speed = dior_speed(paths, text, mmproj, images, batches, extra)
        for (k, b), t in sorted(speed.items()):
            log(f"dior K={k} image batch {b:2d}: {t * 1000:8.1f} ms per image, {1 / t:7.1f} images/s")
        rates = dior_rates(paths, text, mmproj, images[0], shape, a.image_batch, extra)
        try:
            import torch  # noqa: F401
            have_torch = True
        except ImportError:
            have_torch = False
        card = float("nan")
        if have_torch:
            tt, card = torch_part(shape, len(images) if gpu else 2, 16 if gpu else 2, "cuda" if gpu else "cpu")
            for (name, k), t in sorted(tt.items()):
                log(f"transformers {'bf16' if gpu else 'f32'} {name:8s} K={k}: {t * 1000:8.1f} ms per image, "
                    f"{1 / t:7.1f} images/s")
            if gpu:
                best = min(speed[(1, b)] for b in batches)
                log(f"dior's best batch vs transformers 16 images in one forward, K=1: "
                    f"{tt[('batch16', 1)] / best:.2f}x the throughput")
        log(f"card's dense F16 GEMM rate: {card:.0f} TFLOP/s")
        for name, (t, r) in rates.items():
            share = f", {100 * r / card:.0f}% of the GEMM rate" if card == card else ""
            log(f"dior {name:15s} {t * 1000:8.2f} ms per image, {r:7.2f} TFLOP/s{share}")
    log("all checks passed" if ok else "a check FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
