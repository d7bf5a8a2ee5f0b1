"""Benchmark: dior against llama-server and against the reference's engine (transformers), per image,
on random weights shaped like Qwen2.5-VL-3B. Prints numbers; asserts nothing (docs/benchmarks.md
records a run). Needs a build (scripts/setup.sh) and, for the reference, the oracle environment
(scripts/test.sh makes .venv).

    .venv/bin/python scripts/bench_server.py [--threads 2] [--work ~/.cache/dior.cpp/bench]

What it does, all on this machine, the same thread count everywhere:
  1. the machine's float32 GEMM rate (OpenBLAS, `dior bench-eval`'s N x N x D product);
  2. the 3B-shaped model (F16 text and vision) made once by dior-make-tiny-model, four 448x448 images;
  3. dior embed at its defaults, K = 1 and K = 5 conditions, each in a fresh store: seconds per image
     for compute (the image loop) and for the whole process (model load, hashing, writing), peak
     memory; the first run with an empty hash cache (start-up), the others with it;
  4. dior bench on one image: encoder and prefix times, turned into GFLOP/s next to the GEMM rate;
  5. llama-server built from the pinned source as published (scripts/setup.sh --llama-server: the
     same CMake flags, none of dior's patches), at its defaults and at dior's strict settings: the
     same prompts through /completion (n_predict 0), the image cached across a image's conditions;
  6. the reference: transformers in float32 on a model of 3B widths at reduced depth, one full forward
     per condition (its default path) and prefix once + suffix per condition (its cache path), next
     to dior on the same weights converted to GGUF.
"""
import argparse
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONDITIONS = ["car color", "car model", "background color", "movie genre", "bird species"]
SHAPE_3B = ["--f16", "--n-embd", "2048", "--n-layer", "36", "--n-head", "16", "--n-head-kv", "2", "--n-ff", "11008",
            "--v-embd", "1280", "--v-layer", "32", "--v-head", "16", "--v-ff", "3420", "--v-wa-pattern", "8"]
IMAGE_SIDE = 448


def log(msg):
    print(msg, flush=True)


def build_paths(build):
    cache = open(os.path.join(build, "CMakeCache.txt")).read()
    prefix = re.search(r"^DIOR_LLAMA_PREFIX:\w+=(.*)$", cache, re.M).group(1)
    return dict(dior=os.path.join(build, "bin", "dior"), make=os.path.join(build, "bin", "dior-make-tiny-model"),
                source=os.path.join(prefix, "source"))


def run_measured(cmd, env=None):
    """Runs cmd; returns (wall seconds, peak RSS in MiB, stderr and stdout)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    err = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{err[-3000:]}")
    return wall, usage.ru_maxrss / 1024.0, err


def gemm_rate(paths, threads):
    _, _, err = run_measured([paths["dior"], "bench-eval", "-n", "4096", "-d", "2048"])
    m = re.search(r"SGEMM.*?\(([\d.]+) GFLOP/s\)", err)
    return float(m.group(1)) if m else float("nan")


def make_images(dirname, n):
    from PIL import Image
    import numpy as np
    os.makedirs(dirname, exist_ok=True)
    rng = np.random.default_rng(1)
    out = []
    for i in range(n):
        path = os.path.join(dirname, f"img{i}.png")
        if not os.path.exists(path):
            yy, xx = np.mgrid[0:IMAGE_SIDE, 0:IMAGE_SIDE]
            base = np.stack([(xx + 40 * i) % 256, (yy * (i + 1)) % 256, ((xx // 32 + yy // 32 + i) % 2) * 200], -1)
            noise = rng.integers(0, 40, (IMAGE_SIDE, IMAGE_SIDE, 3))
            Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)).save(path)
        out.append(path)
    return out


def make_model(paths, work):
    d = os.path.join(work, "m3b")
    if not (os.path.exists(os.path.join(d, "text.gguf")) and os.path.exists(os.path.join(d, "mmproj.gguf"))):
        log("making the 3B-shaped model (about 7.5 GB, a few minutes once)")
        vocab = os.path.join(paths["source"], "models", "ggml-vocab-qwen2.gguf")
        subprocess.run([paths["make"], "-o", d, "--vocab", vocab] + SHAPE_3B, check=True, stdout=subprocess.DEVNULL)
    return os.path.join(d, "text.gguf"), os.path.join(d, "mmproj.gguf")


def dior_runs(paths, text, mmproj, images, threads, ks, work, extra=(), first_run=True):
    """{K: dict(compute, whole, rss)} per image, each K in a fresh store. With first_run, one more
    run before them, with an empty hash cache, reported as 'first'."""
    out = {}
    hashes = os.path.join(work, "file-hashes.db")
    if first_run and os.path.exists(hashes):
        os.remove(hashes)
    env = dict(os.environ, DIOR_HASH_CACHE=hashes)
    first = None if first_run else {}
    for k in ([ks[0]] if first_run else []) + list(ks):
        store = os.path.join(work, "store.db")
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(store + suffix):
                os.remove(store + suffix)
        cmd = [paths["dior"], "embed", "-m", text, "--mmproj", mmproj, "-t", str(threads), "-o", store]
        for c in CONDITIONS[:k]:
            cmd += ["-c", c]
        # the first run also tells how long hashing took (-v), on its own threads while the model loaded
        verbose = ["-v"] if first is None else []
        wall, rss, err = run_measured(cmd + verbose + list(extra) + images, env)
        m = re.search(r"; ([\d.]+) s, [\d.]+ img/s", err)
        compute = float(m.group(1)) if m else float("nan")
        row = dict(compute=compute / len(images), whole=wall / len(images), rss=rss, startup=wall - compute)
        if first is None:
            h = re.search(r"model files hashed \(SHA-256\) in ([\d.]+) s", err)
            row["hashing"] = float(h.group(1)) if h else float("nan")
            first = row
        else:
            out[k] = row
    out["first"] = first
    return out


def dior_bench(paths, text, mmproj, image, threads, k=5, extra=()):
    _, _, err = run_measured([paths["dior"], "bench", "-m", text, "--mmproj", mmproj, "-t", str(threads), "-K", str(k),
                              "--image", image] + list(extra))
    get = lambda name: float(re.search(name + r"\s+([\d.]+) ms", err).group(1)) / 1000.0  # noqa: E731
    return dict(encode=get("image encode"), prefix=get("prefix"), suffix=get("suffix/condition"), text=err)


# FLOPs of one 448x448 image (1024 patches, 256 tokens) through the 3B-shaped vision encoder's matrix
# products, and of the text prefix's (288 tokens: 256 image + 32 text) through the text model.
def vision_flops(n=1024, d=1280, ff=3420, layers=32, merged=256, out=2048):
    per_layer = 2 * n * (4 * d * d + 3 * d * ff)
    return layers * per_layer + 2 * merged * (4 * d * 4 * d + 4 * d * out) + 2 * n * d * 3 * 14 * 14 * 2


def prefix_flops(tokens, d=2048, kv=256, ff=11008, layers=36):
    return 2 * tokens * layers * (2 * d * d + 2 * d * kv + 3 * d * ff)


# --- llama-server -----------------------------------------------------------------------------------

def chat_prompt(condition):
    return ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
            "<__media__>" + f'Describe this image in one word regarding "{condition}": "' +
            "<|im_end|>\n<|im_start|>assistant\n")


def openblas_coretype():
    """The OPENBLAS_CORETYPE dior itself starts with (src/engine/startup_environment.cpp), for llama-server
    to get the same kernels: None when OpenBLAS recognises this CPU."""
    import ctypes
    lib = ctypes.CDLL("libopenblas.so.0")
    lib.openblas_get_corename.restype = ctypes.c_char_p
    core = lib.openblas_get_corename().decode()
    if core.lower() not in ("prescott", "core2", "penryn", "dunnington", "nehalem", "sandybridge", "atom", "unknown"):
        return None
    flags = open("/proc/cpuinfo").read().split("flags", 1)[1].split("\n", 1)[0].split()
    if all(f in flags for f in ("avx512f", "avx512bw", "avx512dq", "avx512vl")):
        return "SkylakeX"
    return "Haswell" if "avx2" in flags and "fma" in flags else None


def server_runs(server, text, mmproj, images, threads, ks, extra=(), env=None):
    out = {}
    for k in ks:
        port = 18000 + k
        t0 = time.perf_counter()
        p = subprocess.Popen([server, "-m", text, "--mmproj", mmproj, "-t", str(threads), "-tb", str(threads), "-c",
                              "4096", "-np", "1", "--port", str(port), "--host", "127.0.0.1", "--no-warmup"] +
                             list(extra), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env=dict(os.environ, LLAMA_MEDIA_MARKER="<__media__>",  # else a random one
                                      **(env or {})))
        try:
            url = f"http://127.0.0.1:{port}"
            while True:
                try:
                    with urllib.request.urlopen(url + "/health", timeout=2) as r:
                        if r.status == 200:
                            break
                except Exception:
                    if p.poll() is not None:
                        raise RuntimeError("llama-server exited while starting")
                    time.sleep(0.2)
            compute = 0.0
            for img in images:
                data = base64.b64encode(open(img, "rb").read()).decode()
                for c in CONDITIONS[:k]:
                    body = json.dumps({"prompt": {"prompt_string": chat_prompt(c), "multimodal_data": [data]},
                                       "n_predict": 0, "cache_prompt": True, "temperature": 0}).encode()
                    req = urllib.request.Request(url + "/completion", body, {"Content-Type": "application/json"})
                    t1 = time.perf_counter()
                    with urllib.request.urlopen(req, timeout=3600) as r:
                        json.loads(r.read())
                    compute += time.perf_counter() - t1
            whole = time.perf_counter() - t0
            rss = 0.0
            for line in open(f"/proc/{p.pid}/status"):
                if line.startswith("VmHWM:"):
                    rss = int(line.split()[1]) / 1024.0
        finally:
            p.send_signal(signal.SIGTERM)
            p.wait()
        out[k] = dict(compute=compute / len(images), whole=whole / len(images), rss=rss)
    return out


# --- the reference ------------------------------------------------------------------------------

def reference_runs(paths, work, images, threads, k, text_layers, vision_layers):
    """transformers f32 on 3B widths at reduced depth: (default path, cache path) seconds per image at
    K conditions, and the GGUF conversion of the same weights for dior."""
    sys.path.insert(0, os.path.join(HERE, "tests", "oracle"))
    sys.argv = [sys.argv[0], paths["source"], os.path.join(work, "hf-parity-unused")]  # hf_parity reads them
    import torch
    import torchvision_cpu  # noqa: F401  (before transformers)
    from hf_parity import build_tokenizer, CHAT_TEMPLATE
    from PIL import Image
    from transformers import (AutoProcessor, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration,
                              Qwen2_5_VLProcessor, Qwen2VLImageProcessor, Qwen2VLVideoProcessor)
    torch.set_num_threads(threads)
    d = os.path.join(work, f"ref-{text_layers}x{vision_layers}")
    hf = os.path.join(d, "hf")
    if not os.path.exists(os.path.join(d, "gguf", "mmproj.gguf")):
        log(f"making the reference model (3B widths, {text_layers} text / {vision_layers} vision layers)")
        os.makedirs(hf, exist_ok=True)
        tok = build_tokenizer(hf)
        full = [i for i in range(vision_layers) if (i + 1) % 8 == 0] or [vision_layers - 1]
        cfg = Qwen2_5_VLConfig(
            vocab_size=151936, hidden_size=2048, intermediate_size=11008, num_hidden_layers=text_layers,
            num_attention_heads=16, num_key_value_heads=2, max_position_embeddings=32768, rms_norm_eps=1e-6,
            rope_theta=1000000.0, rope_scaling={"type": "mrope", "mrope_section": [16, 24, 24]},
            tie_word_embeddings=True, image_token_id=151655, video_token_id=151656, vision_start_token_id=151652,
            vision_end_token_id=151653, vision_token_id=151654,
            vision_config={"depth": vision_layers, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
                           "out_hidden_size": 2048, "patch_size": 14, "spatial_merge_size": 2,
                           "temporal_patch_size": 2, "window_size": 112, "fullatt_block_indexes": full,
                           "in_channels": 3, "hidden_act": "silu"},
            torch_dtype="float32")
        torch.manual_seed(0)
        Qwen2_5_VLForConditionalGeneration(cfg).save_pretrained(hf, safe_serialization=True)
        Qwen2_5_VLProcessor(image_processor=Qwen2VLImageProcessor(min_pixels=3136, max_pixels=12845056),
                            tokenizer=tok, video_processor=Qwen2VLVideoProcessor(),
                            chat_template=CHAT_TEMPLATE).save_pretrained(hf)
        script = os.path.join(paths["source"], "convert_hf_to_gguf.py")
        os.makedirs(os.path.join(d, "gguf"), exist_ok=True)
        for extra, name in (([], "text.gguf"), (["--mmproj"], "mmproj.gguf")):
            subprocess.run([sys.executable, script, hf, "--outfile", os.path.join(d, "gguf", name), "--outtype", "f32"]
                           + extra, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(hf, torch_dtype=torch.float32).eval()
    proc = AutoProcessor.from_pretrained(hf)

    def inputs_for(img, condition):
        prompt = f'Describe this image in one word regarding "{condition}": "'
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
        text = proc.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return proc(text=[text], images=[img], return_tensors="pt")

    def default_path(img):  # one full forward per condition
        for c in CONDITIONS[:k]:
            x = inputs_for(img, c)
            model(**x, position_ids=torch.arange(x["input_ids"].shape[1])[None], output_hidden_states=True)

    def cache_path(img):  # the shared prefix once, each condition's own tokens on a copy of its cache
        xs = [inputs_for(img, c) for c in CONDITIONS[:k]]
        ids = [x["input_ids"][0] for x in xs]
        n = 0
        while all(len(i) > n and i[n] == ids[0][n] for i in ids):
            n += 1
        n = min(n, min(len(i) for i in ids) - 1)
        x = xs[0]
        pre = model(input_ids=x["input_ids"][:, :n], attention_mask=x["attention_mask"][:, :n],
                    pixel_values=x["pixel_values"], image_grid_thw=x["image_grid_thw"],
                    position_ids=torch.arange(n)[None], use_cache=True)
        for i in ids:
            cache = pre.past_key_values
            cache.crop(n)
            model(input_ids=i[None, n:], past_key_values=cache, position_ids=torch.arange(n, len(i))[None],
                  cache_position=torch.arange(n, len(i)), output_hidden_states=True, use_cache=True)

    times = {}
    pil = [Image.open(p).convert("RGB") for p in images]
    with torch.no_grad():
        default_path(pil[0])  # warm-up
        for name, fn in (("default", default_path), ("cache", cache_path)):
            t0 = time.perf_counter()
            for img in pil:
                fn(img)
            times[name] = (time.perf_counter() - t0) / len(pil)
    return times, os.path.join(d, "gguf", "text.gguf"), os.path.join(d, "gguf", "mmproj.gguf")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", default=os.path.join(os.path.expanduser("~"), ".cache", "dior.cpp", "bench"))
    ap.add_argument("--build", default=os.path.join(HERE, "build"))
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--skip-server", action="store_true")
    ap.add_argument("--skip-reference", action="store_true")
    ap.add_argument("--skip-extra", action="store_true", help="leave out dior bench, --strict and server's F32 run")
    ap.add_argument("--server", help="this llama-server instead of building one (scripts/setup.sh --llama-server)")
    ap.add_argument("--server-args", default="", help="more llama-server arguments, e.g. '-ngl 999'")
    ap.add_argument("--only-reference", action="store_true", help="just the comparison with transformers")
    ap.add_argument("--server-as-is", action="store_true", help="llama-server with OpenBLAS's own kernel choice")
    ap.add_argument("--reference-layers", default="4,8", help="text,vision layers of the reference's model")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    paths = build_paths(a.build)
    ks = [1, 5]
    images = make_images(os.path.join(a.work, "images"), a.images)
    text, mmproj = make_model(paths, a.work)
    files_mib = (os.path.getsize(text) + os.path.getsize(mmproj)) / 2**20

    if a.only_reference:
        reference_section(paths, a, images)
        return
    rate = gemm_rate(paths, a.threads)
    log(f"machine: {os.cpu_count()} CPUs, {a.threads} threads; float32 GEMM (OpenBLAS): {rate:.1f} GFLOP/s")
    log(f"dior: {subprocess.run([paths['dior'], '--version'], capture_output=True, text=True).stdout.strip()}")

    if not a.skip_extra:
        b = dior_bench(paths, text, mmproj, images[0], a.threads)
        vf, pf = vision_flops(), prefix_flops(288)
        log(f"dior bench (one image, K=5): encode {b['encode']:.2f} s = {vf / b['encode'] / 1e9:.1f} GFLOP/s "
            f"({100 * vf / b['encode'] / 1e9 / rate:.0f}% of GEMM); prefix {b['prefix']:.2f} s = "
            f"{pf / b['prefix'] / 1e9:.1f} GFLOP/s ({100 * pf / b['prefix'] / 1e9 / rate:.0f}%); "
            f"suffix/condition {b['suffix']:.3f} s")

    rows = []
    d = dior_runs(paths, text, mmproj, images, a.threads, ks, a.work)
    log(f"dior start-up, first run (hashing {files_mib / 1024:.2f} GB, model load): {d['first']['startup']:.2f} s, "
        f"of which hashing {d['first']['hashing']:.2f} s; later runs: {d[ks[0]]['startup']:.2f} s")
    rows += [(f"dior embed, defaults, K={k}", d[k]) for k in ks]
    if not a.skip_extra:
        s = dior_runs(paths, text, mmproj, images, a.threads, [5], a.work, extra=["--strict"], first_run=False)
        rows.append(("dior embed --strict, K=5", s[5]))
    for name, r in rows:
        log(f"  {name}: {r}")

    if not a.skip_server:
        server = a.server or subprocess.run(["bash", os.path.join(HERE, "scripts", "setup.sh"), "--llama-server"],
                                            capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        # The same OpenBLAS kernels as dior: where OpenBLAS does not know this CPU, dior starts
        # again with OPENBLAS_CORETYPE set; llama-server gets it from here. --server-as-is leaves
        # the server with OpenBLAS's own choice.
        core = None if a.server_as_is else openblas_coretype()
        env = {"OPENBLAS_CORETYPE": core} if core else {}
        log(f"llama-server: {server}; OPENBLAS_CORETYPE={core or '(unset)'}")
        sv = server_runs(server, text, mmproj, images, a.threads, ks, extra=a.server_args.split(), env=env)
        rows += [(f"llama-server, its defaults, K={k}", sv[k]) for k in ks]
        if not a.skip_extra:
            sv32 = server_runs(server, text, mmproj, images, a.threads, [5],
                               extra=["-fa", "off", "-ctk", "f32", "-ctv", "f32"] + a.server_args.split(), env=env)
            rows.append(("llama-server, F32 KV, no flash attention, K=5", sv32[5]))
            # dior also starts with short spins for OpenBLAS's and OpenMP's threads
            # (src/engine/startup_environment.cpp); what the same settings give the server, for
            # comparison (the ratios above use its defaults)
            svt = server_runs(server, text, mmproj, images, a.threads, [5], extra=a.server_args.split(),
                              env=dict(env, OPENBLAS_THREAD_TIMEOUT="4", GOMP_SPINCOUNT="3000"))
            rows.append(("llama-server, defaults, dior's thread spins, K=5", svt[5]))

    log(f"\nseconds per image ({a.images} images {IMAGE_SIDE}x{IMAGE_SIDE}, 288 prompt tokens each; "
        f"model files {files_mib / 1024:.2f} GiB)")
    log(f"{'system':54} {'compute':>8} {'whole':>8} {'peak MiB':>9}")
    for name, r in rows:
        log(f"{name:54} {r['compute']:8.2f} {r['whole']:8.2f} {r['rss']:9.0f}")
    if not a.skip_server:
        for k in ks:
            log(f"K={k}: dior is {sv[k]['compute'] / d[k]['compute']:.2f}x llama-server's throughput (compute), "
                f"{sv[k]['whole'] / d[k]['whole']:.2f}x (whole process)")
    log(f"peak memory: dior {d[5]['rss']:.0f} MiB = model files + {d[5]['rss'] - files_mib:.0f} MiB")

    if not a.skip_reference:
        reference_section(paths, a, images)


def reference_section(paths, a, images):
    tl, vl = (int(x) for x in a.reference_layers.split(","))
    times, rtext, rmmproj = reference_runs(paths, a.work, images, a.threads, 5, tl, vl)
    rd = dior_runs(paths, rtext, rmmproj, images, a.threads, [5], a.work, first_run=False)
    rs = dior_runs(paths, rtext, rmmproj, images, a.threads, [5], a.work, extra=["--strict"], first_run=False)
    log(f"\nreference (transformers f32, 3B widths, {tl} text / {vl} vision layers), K=5, seconds per image:")
    log(f"  default path (a full forward per condition) {times['default']:8.2f}")
    log(f"  cache path (prefix once, suffix per condition) {times['cache']:8.2f}")
    log(f"  dior embed, defaults, same weights (GGUF f32) {rd[5]['compute']:8.2f}  "
        f"-> {times['default'] / rd[5]['compute']:.2f}x the default path, "
        f"{times['cache'] / rd[5]['compute']:.2f}x the cache path")
    log(f"  dior embed --strict, same weights             {rs[5]['compute']:8.2f}  "
        f"-> {times['default'] / rs[5]['compute']:.2f}x the default path, "
        f"{times['cache'] / rs[5]['compute']:.2f}x the cache path")


if __name__ == "__main__":
    main()
