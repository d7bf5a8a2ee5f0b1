"""Test oracle: transformers on a tiny random model of each LVLM family dior supports.

For every family: a small random Hugging Face model with the real config's structure, its processor
(tokenizer, image processor, chat template) saved and loaded back with AutoProcessor exactly as the
reference loads it, converted with llama.cpp's convert_hf_to_gguf.py (text and --mmproj, f32), and
the reference's vectors for a set of cases: the DIOR prompt through the family's own chat template,
all 7 prompt types with and without a condition, every hidden layer at the last token, tokens inside
the image at every layer, images the family's processor resizes (or tiles), both position modes
where the family has M-RoPE.

Usage: python hf_families.py LLAMA_CPP_SOURCE OUT_DIR [FAMILY ...]   (default: every family)
Writes OUT_DIR/FAMILY/{text,mmproj}.gguf, images/*, cases.json (with the processor's input ids,
image tokens as -1), vectors.npy (one row per case) and family.json (model class, processor class).
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
import transformers  # noqa: E402
from qwen2_vocab import N_BASE, qwen2_tokenizer  # noqa: E402
from transformers import AutoProcessor  # noqa: E402

SRC = sys.argv[1]
OUT = sys.argv[2]

PROMPTS = {
    "describe": ('Describe this image in one word regarding {aspect}: "', 'Describe this image in one word: "'),
    "express": ('Express this image in one word in terms of {aspect}: "', 'Express this image in one word: "'),
    "summarize": ('Summarize this image in one word regarding {aspect}: "', 'Summarize this image in one word: "'),
    "capture": ('Capture this image in one word based on {aspect}: "', 'Capture this image in one word: "'),
    "convey": ('Convey this image in one word with respect to {aspect}: "', 'Convey this image in one word: "'),
    "depict": ('Depict this image in one word, considering {aspect}: "', 'Depict this image in one word: "'),
    "describe_unconstraint": ('Describe this image regarding {aspect}: "', 'Describe this image: "'),
}


def require_transformers(major_minor, family):
    if tuple(int(x) for x in transformers.__version__.split(".")[:2]) < major_minor:
        sys.exit(f"{family} needs transformers >= {'.'.join(map(str, major_minor))} (this is {transformers.__version__}):"
                 " put tests/requirements-transformers-4.57.txt's first on PYTHONPATH (scripts/test.sh does)")


def randomize(model, seed=0):
    """Weights larger than the default init, so that layers differ visibly."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                std = 1.0 if "embed_tokens" in name else 0.5
                p.normal_(0.0, std / p.shape[-1] ** 0.5 if "embed_tokens" not in name else 1.0)
            elif "norm" in name:
                p.normal_(1.0, 0.1)
            else:
                p.normal_(0.0, 0.1)
    return model.eval()


# --- Qwen2-VL ------------------------------------------------------------------------------------

QWEN_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}"
    "<|im_end|>\n{% else %}{% for content in message['content'] %}{% if content['type'] == 'image' or 'image' in "
    "content or 'image_url' in content %}{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}"
    "Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] "
    "== 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}"
    "Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>{% elif 'text' in content "
    "%}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt %}"
    "<|im_start|>assistant\n{% endif %}"
)
QWEN_SPECIAL = ["<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>",
                "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
                "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"]


def qwen_tokenizer(model_dir):
    tok = qwen2_tokenizer(SRC, model_dir, unk_token=None, bos_token=None, eos_token="<|endoftext|>",
                          pad_token="<|endoftext|>")
    tok.add_special_tokens({"additional_special_tokens": QWEN_SPECIAL})
    tok.eos_token = "<|im_end|>"
    tok.chat_template = QWEN_TEMPLATE
    assert tok.convert_tokens_to_ids("<|image_pad|>") == 151655
    return tok


def build_qwen2_vl(model_dir):
    """Qwen2-VL-2B-Instruct's structure: quick-GELU vision tower without window attention, the
    qwen2vl_merger projector, M-RoPE."""
    from transformers import (Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLImageProcessor,
                              Qwen2VLProcessor, Qwen2VLVideoProcessor)
    tok = qwen_tokenizer(model_dir)
    cfg = Qwen2VLConfig(
        vocab_size=151936, hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=32768, rms_norm_eps=1e-6, rope_theta=1000000.0,
        rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]}, tie_word_embeddings=False,
        image_token_id=151655, video_token_id=151656, vision_start_token_id=151652, vision_end_token_id=151653,
        vision_token_id=151654,
        vision_config={"depth": 3, "embed_dim": 32, "hidden_size": 64, "mlp_ratio": 2, "num_heads": 2,
                       "in_channels": 3, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2,
                       "hidden_act": "quick_gelu"},
        torch_dtype="float32",
    )
    model = randomize(Qwen2VLForConditionalGeneration(cfg))
    model.save_pretrained(model_dir, safe_serialization=True)
    Qwen2VLProcessor(image_processor=Qwen2VLImageProcessor(min_pixels=3136, max_pixels=12845056), tokenizer=tok,
                     video_processor=Qwen2VLVideoProcessor(), chat_template=QWEN_TEMPLATE).save_pretrained(model_dir)
    return dict(model=model, image_token_id=151655, mrope=True,
                sizes={"square_224": (224, 224), "wide_420x140": (420, 140), "odd_131x97": (131, 97),
                       "large_900x610": (900, 610)})


# Qwen3-VL-2B-Instruct's chat template, less the tool-call and reasoning branches: no default system turn.
QWEN3_TEMPLATE = (
    "{%- if messages[0].role == 'system' %}{{- '<|im_start|>system\\n' }}{%- if messages[0].content is string %}"
    "{{- messages[0].content }}{%- else %}{%- for content in messages[0].content %}{%- if 'text' in content %}"
    "{{- content.text }}{%- endif %}{%- endfor %}{%- endif %}{{- '<|im_end|>\\n' }}{%- endif %}"
    "{%- set image_count = namespace(value=0) %}{%- for message in messages %}{%- if message.role == 'user' %}"
    "{{- '<|im_start|>' + message.role + '\\n' }}{%- if message.content is string %}{{- message.content }}{%- else %}"
    "{%- for content in message.content %}{%- if content.type == 'image' or 'image' in content %}"
    "{%- set image_count.value = image_count.value + 1 %}{%- if add_vision_id %}Picture {{ image_count.value }}: "
    "{% endif -%}<|vision_start|><|image_pad|><|vision_end|>{%- elif 'text' in content %}{{- content.text }}"
    "{%- endif %}{%- endfor %}{%- endif %}{{- '<|im_end|>\\n' }}{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def build_qwen3_vl(model_dir):
    """Qwen3-VL-2B-Instruct's structure: patch 16, learned position embeddings interpolated to the
    grid, DeepStack features added to the first text layers, interleaved M-RoPE, q/k norms."""
    require_transformers((4, 57), "Qwen3-VL")
    from transformers import (Qwen2VLImageProcessor, Qwen3VLConfig, Qwen3VLForConditionalGeneration,
                              Qwen3VLProcessor, Qwen3VLVideoProcessor)
    tok = qwen_tokenizer(model_dir)
    tok.chat_template = QWEN3_TEMPLATE
    cfg = Qwen3VLConfig(
        text_config=dict(vocab_size=151936, hidden_size=64, intermediate_size=128, num_hidden_layers=4,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=32, max_position_embeddings=32768,
                         rms_norm_eps=1e-6, rope_theta=5000000.0, tie_word_embeddings=False,
                         rope_scaling={"rope_type": "default", "mrope_section": [6, 5, 5], "mrope_interleaved": True}),
        vision_config=dict(depth=3, hidden_size=32, intermediate_size=48, num_heads=2, in_channels=3, patch_size=16,
                           spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=64,
                           num_position_embeddings=2304, deepstack_visual_indexes=[0, 1]),
        image_token_id=151655, video_token_id=151656, vision_start_token_id=151652, vision_end_token_id=151653,
        tie_word_embeddings=False, torch_dtype="float32",
    )
    model = randomize(Qwen3VLForConditionalGeneration(cfg))
    model.save_pretrained(model_dir, safe_serialization=True)
    Qwen3VLProcessor(image_processor=Qwen2VLImageProcessor(), tokenizer=tok, video_processor=Qwen3VLVideoProcessor(),
                     chat_template=QWEN3_TEMPLATE).save_pretrained(model_dir)
    with open(os.path.join(model_dir, "preprocessor_config.json"), "w") as f:  # Qwen3-VL-2B-Instruct's, as published
        json.dump({"size": {"longest_edge": 16777216, "shortest_edge": 65536}, "patch_size": 16,
                   "temporal_patch_size": 2, "merge_size": 2, "image_mean": [0.5, 0.5, 0.5],
                   "image_std": [0.5, 0.5, 0.5], "processor_class": "Qwen3VLProcessor",
                   "image_processor_type": "Qwen2VLImageProcessorFast"}, f, indent=1)
    return dict(model=model, image_token_id=151655, mrope=True,
                sizes={"square_224": (224, 224), "wide_420x140": (420, 140), "odd_131x97": (131, 97),
                       "large_900x610": (900, 610)})


FAMILIES = {
    "qwen2_vl": build_qwen2_vl,
    "qwen3_vl": build_qwen3_vl,
}


# --- the reference's computation, for any family ----------------------------------------------------

def make_images(img_dir, sizes):
    os.makedirs(img_dir, exist_ok=True)
    rng = np.random.default_rng(5)
    for name, (w, h) in sizes.items():
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([(xx * 255 // w), (yy * 255 // h), ((xx // 16 + yy // 16) % 2) * 180], -1)
        noise = rng.integers(0, 60, (h, w, 3))
        Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)).save(os.path.join(img_dir, name + ".png"))
    return [n + ".png" for n in sizes]


def load_like_reference(path, max_size=700):
    img = Image.open(path).convert("RGB")
    w, h = img.size
    if max(w, h) > max_size:
        ratio = max_size / max(w, h)
        size = (max_size, int(h * ratio)) if w >= h else (int(w * ratio), max_size)
        img = img.resize(size, Image.LANCZOS)
    return img


def convert(model_dir, out_dir):
    script = os.path.join(SRC, "convert_hf_to_gguf.py")
    for extra, name in (([], "text.gguf"), (["--mmproj"], "mmproj.gguf")):
        r = subprocess.run([sys.executable, script, model_dir, "--outfile", os.path.join(out_dir, name), "--outtype",
                            "f32"] + extra, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            sys.exit(f"convert_hf_to_gguf.py {' '.join(extra)} failed on {model_dir}:\n{r.stdout[-4000:]}")


def forward(model, processor, image, prompt, positions):
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=[image], return_tensors="pt")
    kwargs = {}
    if positions == "sequential":
        kwargs["position_ids"] = torch.arange(inputs["input_ids"].shape[1])[None]
    with torch.no_grad():
        out = model(**inputs, **kwargs, output_hidden_states=True)
    return inputs["input_ids"][0].tolist(), [h[0].double().numpy() for h in out.hidden_states]


def run_family(name, build):
    out = os.path.join(OUT, name)
    model_dir = os.path.join(out, "hf")
    fam = build(model_dir)
    model = fam["model"]
    processor = AutoProcessor.from_pretrained(model_dir)  # as the reference loads it
    convert(model_dir, out)
    images = make_images(os.path.join(out, "images"), fam["sizes"])
    n_layer = model.config.get_text_config().num_hidden_layers
    modes = ["sequential", "native"] if fam["mrope"] else ["sequential"]

    def case(image, cond, layer=-1, token=-1, pos="sequential", prompt_type="describe"):
        return dict(image=image, prompt_type=prompt_type, condition=cond, layer=layer, token=token, positions=pos)

    cases = []
    for image in images:  # every image, with and without a condition, every hidden layer
        for cond in ["car color", None]:
            for layer in range(n_layer + 1):
                for pos in modes:
                    cases.append(case(image, cond, layer, pos=pos))
    for pt in PROMPTS:  # every prompt type
        for cond in ["bird species", None]:
            for pos in modes:
                cases.append(case(images[0], cond, pos=pos, prompt_type=pt))

    cache, vectors = {}, []
    for c in cases:
        with_c, without_c = PROMPTS[c["prompt_type"]]
        prompt = with_c.replace("{aspect}", c["condition"]) if c["condition"] is not None else without_c
        key = (c["image"], prompt, c["positions"])
        if key not in cache:
            img = load_like_reference(os.path.join(out, "images", c["image"]))
            cache[key] = forward(model, processor, img, prompt, c["positions"])
        ids, hs = cache[key]
        c["ids"] = [-1 if t == fam["image_token_id"] else t for t in ids]
        vectors.append(hs[c["layer"]][c["token"]])
    # tokens inside the image (first, middle, last image token) and the one after it, every layer
    image = images[1]
    for pos in modes:
        key = (image, PROMPTS["describe"][0].replace("{aspect}", "car color"), pos)
        ids, hs = cache[key]
        at = [i for i, t in enumerate(ids) if t == fam["image_token_id"]]
        for token in [at[0], at[len(at) // 2], at[-1], at[-1] + 1]:
            for layer in range(n_layer + 1):
                c = case(image, "car color", layer, token, pos)
                c["ids"] = [-1 if t == fam["image_token_id"] else t for t in ids]
                cases.append(c)
                vectors.append(hs[layer][token])
    np.save(os.path.join(out, "vectors.npy"), np.stack(vectors).astype(np.float32))
    with open(os.path.join(out, "cases.json"), "w") as f:
        json.dump(cases, f)
    with open(os.path.join(out, "family.json"), "w") as f:
        json.dump(dict(family=name, model_class=type(model).__name__,
                       processor_class=type(processor).__name__,
                       image_processor_class=type(processor.image_processor).__name__,
                       transformers=transformers.__version__, n_layer=n_layer, positions=modes), f, indent=1)
    print(f"{name}: {type(model).__name__}, {len(cases)} cases")


def main():
    names = sys.argv[3:] or list(FAMILIES)
    for name in names:
        run_family(name, FAMILIES[name])


if __name__ == "__main__":
    main()
