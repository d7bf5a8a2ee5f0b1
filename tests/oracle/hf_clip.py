"""Test oracle: Hugging Face's CLIPModel (transformers 4.56.1, the reference's engine) on tiny random
CLIP configurations, converted by dior's converter (tools/convert-clip/convert_clip_to_gguf.py).

Five configurations: "quick" (quick_gelu, 32 px images, 8 px patches), "gelu" (exact gelu, an odd
30 px image of 6 px patches, three heads of width 16, other text and vision widths), and the real
models' image sizes, narrow: "p14_224" (224 px, 14 px patches), "p16_336" (336 px, 16 px, gelu) and
"p16_250" (250 px in 16 px patches: not a multiple). Texts: InDiReCT texts and hard_texts.py's
cases in every script. Both use the
real CLIP tokenizer. Each is saved as a Hugging Face folder (model, CLIPImageProcessor,
CLIPTokenizerFast), read back with AutoProcessor as the reference reads it (the slow image
processor, the fast tokenizer), and converted to f32, f16 and q8_0.

What the reference computes: images loaded with Pillow, downscaled to at most 700 px (Lanczos),
processor(images=...) -> pixel_values -> get_image_features; texts -> processor(text=..., padding=True,
truncation=True) -> get_text_features.

Usage: python hf_clip.py LLAMA_CPP_SOURCE DATA_REFERENCE_DIR OUT_DIR
Writes OUT_DIR/cases.json, OUT_DIR/images/*, and per configuration OUT_DIR/NAME/{f32,f16,q8_0}.gguf,
image_features.npy, text_features.npy and pixels_K.npy ((3 H, W) pixel_values of image K).
"""
import json
import os
import subprocess
import sys

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torchvision_cpu  # noqa: E402,F401  (before transformers)
from clip_vocab import write_hf_files  # noqa: E402
from hard_texts import hard_texts  # noqa: E402
from transformers import (AutoProcessor, CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor,  # noqa: E402
                          CLIPTokenizerFast)

SRC, REF, OUT = sys.argv[1], sys.argv[2], sys.argv[3]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CONFIGS = {
    "quick": dict(
        text=dict(vocab_size=49408, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                  max_position_embeddings=77, hidden_act="quick_gelu", eos_token_id=2),
        vision=dict(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4, image_size=32,
                    patch_size=8, hidden_act="quick_gelu"),
        projection_dim=16),
    "gelu": dict(
        text=dict(vocab_size=49408, hidden_size=40, intermediate_size=72, num_hidden_layers=2, num_attention_heads=4,
                  max_position_embeddings=77, hidden_act="gelu", eos_token_id=49407),
        vision=dict(hidden_size=48, intermediate_size=80, num_hidden_layers=3, num_attention_heads=3, image_size=30,
                    patch_size=6, hidden_act="gelu"),
        projection_dim=24),
    # the sizes of the real models (ViT-B/32 and L/14 take 224 px, L/14-336 336 px), narrow
    "p14_224": dict(
        text=dict(vocab_size=49408, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                  max_position_embeddings=77, hidden_act="quick_gelu", eos_token_id=49407),
        vision=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=224,
                    patch_size=14, hidden_act="quick_gelu"),
        projection_dim=16),
    "p16_336": dict(
        text=dict(vocab_size=49408, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                  max_position_embeddings=77, hidden_act="gelu", eos_token_id=49407),
        vision=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=336,
                    patch_size=16, hidden_act="gelu"),
        projection_dim=16),
    # an image size that is not a multiple of the patch (the convolution drops the last 10 px)
    "p16_250": dict(
        text=dict(vocab_size=49408, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                  max_position_embeddings=77, hidden_act="quick_gelu", eos_token_id=49407),
        vision=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=250,
                    patch_size=16, hidden_act="quick_gelu"),
        projection_dim=16),
}


def make_images(d):
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(9)
    out = []
    for name, (w, h), fmt in (("wide", (300, 200), "png"), ("tall", (150, 260), "jpg"), ("small", (40, 26), "png"),
                              ("large", (900, 500), "jpg"), ("square", (64, 64), "png"), ("odd", (161, 161), "png"),
                              ("s224", (224, 224), "png"), ("s336", (336, 336), "jpg"), ("odd2", (337, 251), "png")):
        yy, xx = np.mgrid[0:h, 0:w]
        img = np.stack([xx * 255 // w, yy * 255 // h, ((xx // 7 + yy // 5) % 2) * 200], -1)
        img = np.clip(img + rng.integers(0, 50, (h, w, 3)), 0, 255).astype(np.uint8)
        path = os.path.join(d, f"{name}.{fmt}")
        Image.fromarray(img).save(path, **({"quality": 90} if fmt == "jpg" else {}))
        out.append(os.path.basename(path))
    return out


def load_like_reference(path, max_size=700):
    img = Image.open(path).convert("RGB")
    w, h = img.size
    if max(w, h) > max_size:
        ratio = max_size / max(w, h)
        img = img.resize((max_size, int(h * ratio)) if w >= h else (int(w * ratio), max_size), Image.LANCZOS)
    return img


def texts():
    with open(os.path.join(REF, "indirect_texts.json"), encoding="utf-8") as f:
        configs = json.load(f)["configs"]
    out = [c["template"].replace("{item}", item) for c in configs[:3] for item in c["items"][:4]]
    out += ["a photo of a red car", "A PHOTO OF A CAR!!", "café 日本 😀", "x", " ".join(["longer text"] * 60),
            "inside<|endoftext|>text", ""]
    return out + [t for t in hard_texts() if t not in out]  # every script, NFC / NFD, case mappings, controls


def main():
    os.makedirs(OUT, exist_ok=True)
    images = make_images(os.path.join(OUT, "images"))
    the_texts = texts()
    for name, c in CONFIGS.items():
        d = os.path.join(OUT, name)
        hf = os.path.join(d, "hf")
        os.makedirs(hf, exist_ok=True)
        cfg = CLIPConfig(text_config=c["text"], vision_config=c["vision"], projection_dim=c["projection_dim"])
        torch.manual_seed(1)
        model = CLIPModel(cfg).eval()
        with torch.no_grad():  # larger than the default init, so that every layer matters
            for pname, p in model.named_parameters():
                if p.dim() >= 2:
                    p.normal_(0.0, 0.8 / p.shape[-1] ** 0.5 if "token_embedding" not in pname else 1.0)
                elif "norm" in pname:
                    p.normal_(1.0, 0.1)
                else:
                    p.normal_(0.0, 0.1)
        model.save_pretrained(hf, safe_serialization=True)
        vocab_file, merges_file = write_hf_files(hf)
        side = c["vision"]["image_size"]
        CLIPProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": side},
                                                         crop_size={"height": side, "width": side}),
                      tokenizer=CLIPTokenizerFast(vocab_file=vocab_file, merges_file=merges_file,
                                                  model_max_length=77)).save_pretrained(hf)
        proc = AutoProcessor.from_pretrained(hf)  # as the reference
        assert type(proc.image_processor).__name__ == "CLIPImageProcessor", type(proc.image_processor)
        assert type(proc.tokenizer).__name__ == "CLIPTokenizerFast", type(proc.tokenizer)
        for outtype in ("f32", "f16", "q8_0"):
            subprocess.run([sys.executable, os.path.join(ROOT, "tools", "convert-clip", "convert_clip_to_gguf.py"), hf,
                            "--outfile", os.path.join(d, outtype + ".gguf"), "--outtype", outtype,
                            "--model-id", "tiny/clip-" + name, "--gguf-py", os.path.join(SRC, "gguf-py")],
                           check=True, stdout=subprocess.DEVNULL)
        feats = []
        for k, img_name in enumerate(images):
            inputs = proc(images=load_like_reference(os.path.join(OUT, "images", img_name)), return_tensors="pt")
            px = inputs["pixel_values"][0].numpy()
            np.save(os.path.join(d, f"pixels_{k}.npy"), np.ascontiguousarray(px.reshape(-1, px.shape[2])))
            with torch.no_grad():
                feats.append(model.get_image_features(**inputs)[0].numpy())
        np.save(os.path.join(d, "image_features.npy"), np.stack(feats).astype(np.float32))
        t = proc(text=the_texts, padding=True, truncation=True, return_tensors="pt")
        with torch.no_grad():
            tf = model.get_text_features(input_ids=t["input_ids"], attention_mask=t["attention_mask"]).numpy()
        np.save(os.path.join(d, "text_features.npy"), tf.astype(np.float32))
    with open(os.path.join(OUT, "cases.json"), "w", encoding="utf-8") as f:
        json.dump({"configs": list(CONFIGS), "images": images, "texts": the_texts}, f, ensure_ascii=False, indent=1)
    print(f"wrote {len(CONFIGS)} CLIP configurations, {len(images)} images, {len(the_texts)} texts to {OUT}")


if __name__ == "__main__":
    main()
