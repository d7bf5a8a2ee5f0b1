"""Test oracle: the reference's own engine (Hugging Face transformers) on a tiny random Qwen2.5-VL.

1. Builds a small random Qwen2_5_VLForConditionalGeneration (fixed seed) with a working processor:
   the real Qwen2 BPE tokenizer rebuilt from llama.cpp's models/ggml-vocab-qwen2.gguf plus
   Qwen2.5-VL's added tokens and chat template, the Qwen2-VL image processor with Qwen2.5-VL's
   pixel limits, saved as a processor folder and loaded back with AutoProcessor.from_pretrained
   exactly as the reference does (with torchvision installed: the fast image processor).
2. Converts it with llama.cpp's convert_hf_to_gguf.py: text model and mmproj, in f32 and f16.
3. Computes what the reference computes for every case: image downscaled to at most 700 px
   (Lanczos), the chat template applied to [image, prompt] with the generation prompt, the
   processor, one forward pass with hidden states, vector = hidden_states[layer][0, token];
   position ids either sequential (the reference's single-image path) or none (native 3-D M-RoPE,
   its batched path). Cases also cover the slow image processor, JPEG inputs, layer 0 at image
   tokens, and special-token text in a condition tokenized both ways.

4. Generation (the generative baseline, first_output and mean_output): greedy token ids, decoded
   texts and the hidden states of the generated tokens (see generation_cases).

Usage: python hf_parity.py LLAMA_CPP_SOURCE OUT_DIR
Writes OUT_DIR/{f32,f16,q8_0}/{text,mmproj}.gguf, OUT_DIR/images/*, OUT_DIR/cases.json,
OUT_DIR/vectors.npy (one row per case), OUT_DIR/vectors_bf16.npy (the same cases through a bfloat16
copy of the model: the reference's own noise) and OUT_DIR/pixels/{fast,slow}/IMAGE.npy (the
processor's pixel_values put back into a (3, H, W) image) with OUT_DIR/pixels.json.
"""
import copy
import json
import os
import subprocess
import sys

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torchvision_cpu  # noqa: E402,F401  (before transformers)
from qwen2_vocab import QWEN_VL_SPECIAL, QWEN_VL_TEMPLATE, qwen2_tokenizer  # noqa: E402

SRC = sys.argv[1]
OUT = sys.argv[2]
from transformers import (  # noqa: E402
    AutoProcessor,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2_5_VLProcessor,
    Qwen2VLImageProcessor,
    Qwen2VLVideoProcessor,
)

AFTER = [("<tool_call>", False), ("</tool_call>", False), ("<|fim_prefix|>", True), ("<|fim_middle|>", True),
         ("<|fim_suffix|>", True), ("<|fim_pad|>", True), ("<|repo_name|>", True), ("<|file_sep|>", True)]

PROMPTS = {
    "describe": ('Describe this image in one word regarding {aspect}: "', 'Describe this image in one word: "'),
    "express": ('Express this image in one word in terms of {aspect}: "', 'Express this image in one word: "'),
    "summarize": ('Summarize this image in one word regarding {aspect}: "', 'Summarize this image in one word: "'),
    "capture": ('Capture this image in one word based on {aspect}: "', 'Capture this image in one word: "'),
    "convey": ('Convey this image in one word with respect to {aspect}: "', 'Convey this image in one word: "'),
    "depict": ('Depict this image in one word, considering {aspect}: "', 'Depict this image in one word: "'),
    "describe_unconstraint": ('Describe this image regarding {aspect}: "', 'Describe this image: "'),
}


def build_tokenizer(model_dir):
    tok = qwen2_tokenizer(SRC, model_dir, unk_token=None, bos_token=None, eos_token="<|endoftext|>",
                          pad_token="<|endoftext|>")
    tok.add_special_tokens({"additional_special_tokens": QWEN_VL_SPECIAL})
    for t, special in AFTER:
        if special:
            tok.add_special_tokens({"additional_special_tokens": tok.additional_special_tokens + [t]})
        else:
            tok.add_tokens([t])
    tok.eos_token = "<|im_end|>"  # as Qwen2.5-VL's tokenizer_config.json
    tok.chat_template = QWEN_VL_TEMPLATE
    assert tok.convert_tokens_to_ids("<|endoftext|>") == 151643, tok.convert_tokens_to_ids("<|endoftext|>")
    assert tok.convert_tokens_to_ids("<|image_pad|>") == 151655
    assert tok.convert_tokens_to_ids("<|file_sep|>") == 151664
    ids = tok("<|im_start|>system\nYou are a helpful assistant.<|im_end|>")["input_ids"]
    assert ids == [151644, 8948, 198, 2610, 525, 264, 10950, 17847, 13, 151645], ids
    return tok


def build_model(model_dir):
    os.makedirs(model_dir, exist_ok=True)
    tok = build_tokenizer(model_dir)
    cfg = Qwen2_5_VLConfig(
        vocab_size=151936, hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=32768, rms_norm_eps=1e-6, rope_theta=1000000.0,
        rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]}, tie_word_embeddings=False,
        image_token_id=151655, video_token_id=151656, vision_start_token_id=151652, vision_end_token_id=151653,
        vision_token_id=151654,
        vision_config={"depth": 4, "hidden_size": 32, "intermediate_size": 48, "num_heads": 2, "out_hidden_size": 64,
                       "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 112,
                       "fullatt_block_indexes": [1, 3], "in_channels": 3, "hidden_act": "silu"},
        torch_dtype="float32",
    )
    torch.manual_seed(0)
    model = Qwen2_5_VLForConditionalGeneration(cfg).eval()
    with torch.no_grad():  # larger than the default init, so that layers differ visibly
        # (vision depth 4: the converter maps merger.mlp.{0,2} as if they were blocks, so depth must exceed 2)
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                # an untied, wide output layer: tied to embeddings this large, a random model only
                # repeats its last input token; spread logits keep greedy choices clear of ties
                std = 1.0 if "embed_tokens" in name else 4.0 if "lm_head" in name else 0.5
                p.normal_(0.0, std / p.shape[-1] ** 0.5 if "embed_tokens" not in name else 1.0)
            elif "norm" in name:
                p.normal_(1.0, 0.1)
            else:
                p.normal_(0.0, 0.1)
    model.save_pretrained(model_dir, safe_serialization=True)
    # The processor folder as published models have it, read back the way the reference reads it.
    image_processor = Qwen2VLImageProcessor(min_pixels=3136, max_pixels=12845056)
    Qwen2_5_VLProcessor(image_processor=image_processor, tokenizer=tok, video_processor=Qwen2VLVideoProcessor(),
                        chat_template=QWEN_VL_TEMPLATE).save_pretrained(model_dir)
    processors = {"fast": AutoProcessor.from_pretrained(model_dir),  # what the reference runs
                  "slow": AutoProcessor.from_pretrained(model_dir, use_fast=False)}
    assert type(processors["fast"].image_processor).__name__ == "Qwen2VLImageProcessorFast", processors["fast"]
    assert type(processors["slow"].image_processor).__name__ == "Qwen2VLImageProcessor", processors["slow"]
    return model, processors


def unpatchify(pixel_values, grid_thw, merge=2, temporal=2, patch=14):
    """pixel_values (gt*gh*gw, C*T*P*P) back to the (C, H, W) image of the first frame."""
    gt, gh, gw = (int(v) for v in grid_thw)
    x = pixel_values.reshape(gt, gh // merge, gw // merge, merge, merge, 3, temporal, patch, patch)
    x = x.transpose(0, 6, 5, 1, 3, 7, 2, 4, 8)  # (gt, T, C, gh/m, m, P, gw/m, m, P)
    return x.reshape(gt, temporal, 3, gh * patch, gw * patch)[0, 0]


def model_inputs(processor, text, prompt, img, parse_special):
    """The processor's inputs for one prompt. parse_special=False tokenizes the prompt with special
    tokens split (a condition as plain text), the rest of the template as the processor does; the
    segments between added tokens are tokenized independently either way, so only the prompt's own
    special-token text is affected."""
    if parse_special:
        return processor(text=[text], images=[img], return_tensors="pt")
    at = text.index(prompt)
    head = processor(text=[text[:at]], images=[img], return_tensors="pt")
    tok = processor.tokenizer
    mid = tok(prompt, add_special_tokens=False, split_special_tokens=True)["input_ids"]
    tail = tok(text[at + len(prompt):], add_special_tokens=False)["input_ids"]
    ids = torch.cat([head["input_ids"], torch.tensor([mid + tail], dtype=head["input_ids"].dtype)], 1)
    return {**head, "input_ids": ids, "attention_mask": torch.ones_like(ids)}


def convert(model_dir, out_dir, outtype):
    os.makedirs(out_dir, exist_ok=True)
    script = os.path.join(SRC, "convert_hf_to_gguf.py")
    for extra, name in (([], "text.gguf"), (["--mmproj"], "mmproj.gguf")):
        subprocess.run([sys.executable, script, model_dir, "--outfile", os.path.join(out_dir, name), "--outtype",
                        outtype] + extra, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_images(img_dir):
    os.makedirs(img_dir, exist_ok=True)
    rng = np.random.default_rng(5)
    sizes = {"small_56x84": (56, 84), "square_224": (224, 224), "wide_420x140": (420, 140),
             "tall_150x390": (150, 390), "large_900x610": (900, 610), "odd_131x97": (131, 97)}
    for name, (w, h) in sizes.items():
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([(xx * 255 // w), (yy * 255 // h), ((xx // 16 + yy // 16) % 2) * 180], -1)
        noise = rng.integers(0, 60, (h, w, 3))
        Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)).save(os.path.join(img_dir, name + ".png"))
    # JPEG, as the reference's datasets are: 4:2:0 colour (resized by the processor) and greyscale.
    yy, xx = np.mgrid[0:333, 0:500]
    photo = np.stack([128 + 100 * np.sin(xx / 40.0), 128 + 90 * np.cos(yy / 25.0), (xx + yy) % 256], -1)
    photo = np.clip(photo + rng.normal(0, 8, photo.shape), 0, 255).astype(np.uint8)
    Image.fromarray(photo).save(os.path.join(img_dir, "photo_500x333.jpg"), quality=90)
    Image.fromarray(photo[:170, :300]).convert("L").save(os.path.join(img_dir, "grey_300x170.jpg"))
    return sorted(n + ".png" for n in sizes) + ["grey_300x170.jpg", "photo_500x333.jpg"]


def load_like_reference(path, max_size=700):
    img = Image.open(path).convert("RGB")
    w, h = img.size
    if max(w, h) > max_size:
        ratio = max_size / max(w, h)
        size = (max_size, int(h * ratio)) if w >= h else (int(w * ratio), max_size)
        img = img.resize(size, Image.LANCZOS)
    return img


EOS = [151645, 151643]  # <|im_end|>, <|endoftext|>: Qwen2.5-VL's generation_config.json


def greedy_loop(model, inputs, sequential, max_new_tokens, repetition_penalty):
    """Greedy decoding written out: the whole sequence again at every step (no cache), positions
    sequential (position_ids = arange) or native (none given: transformers' 3-D M-RoPE)."""
    from transformers.generation.logits_process import RepetitionPenaltyLogitsProcessor
    ids = inputs["input_ids"]
    penalty = RepetitionPenaltyLogitsProcessor(repetition_penalty) if repetition_penalty != 1.0 else None
    for _ in range(max_new_tokens):
        kwargs = {k: v for k, v in inputs.items() if k not in ("input_ids", "attention_mask")}
        if sequential:
            kwargs["position_ids"] = torch.arange(ids.shape[1])[None]
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=torch.ones_like(ids), **kwargs).logits[:, -1, :]
        if penalty is not None:
            logits = penalty(ids, logits)
        nxt = int(torch.argmax(logits[0]))
        ids = torch.cat([ids, torch.tensor([[nxt]], dtype=ids.dtype)], 1)
        if nxt in EOS:
            break
    return ids


def generation_cases(model, processor, names):
    """What the generative baseline and the first_output / mean_output sources compute: the token
    ids of greedy generation (native positions: transformers' own generate(), as the reference
    calls it; sequential: the same decoding with position_ids = arange, checked against generate()
    in native mode), the decoded texts, and the hidden states of the generated tokens at layers
    0, 2 and -1 from one forward pass over prompt + answer. Writes OUT/generation.json and
    OUT/generation_vectors.npy (per case: first_output then mean_output, for each layer)."""
    cases, vectors = [], []
    specs = []
    for name in names[:4]:
        for cond in ["car color", None]:
            for pos in ["sequential", "native"]:
                specs.append((name, cond, pos, 16, 1.0))
    for pos in ["sequential", "native"]:
        specs.append(("square_224.png", "movie genre", pos, 16, 1.05))  # a model's repetition_penalty
        specs.append(("wide_420x140.png", "car color", pos, 16, 0.3))  # < 1: seen tokens (prompt, image) win
        specs.append(("photo_500x333.jpg", "bird species", pos, 3, 1.0))
    for name, cond, pos, max_new, rp in specs:
        prompt = PROMPTS["describe"][0].replace("{aspect}", cond) if cond else PROMPTS["describe"][1]
        img = load_like_reference(os.path.join(OUT, "images", name))
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
        text = processor.apply_chat_template(messages, add_generation_prompt=True)
        inputs = processor(text=text, images=img, return_tensors="pt")
        n_prompt = inputs["input_ids"].shape[1]
        ids = greedy_loop(model, inputs, pos == "sequential", max_new, rp)
        if pos == "native":
            with torch.no_grad():
                ref = model.generate(**inputs, max_new_tokens=max_new, do_sample=False, temperature=None,
                                     top_p=None, top_k=None, eos_token_id=EOS, pad_token_id=151643,
                                     repetition_penalty=rp)
            assert torch.equal(ref, ids), (name, cond, ref[0, n_prompt:], ids[0, n_prompt:])
        new = ids[0, n_prompt:].tolist()
        kwargs = {k: v for k, v in inputs.items() if k not in ("input_ids", "attention_mask")}
        if pos == "sequential":
            kwargs["position_ids"] = torch.arange(ids.shape[1])[None]
        with torch.no_grad():
            hs = model(input_ids=ids, attention_mask=torch.ones_like(ids), **kwargs,
                       output_hidden_states=True).hidden_states
        for layer in [0, 2, -1]:
            h = hs[layer][0].double()
            vectors.append(h[n_prompt].numpy())
            vectors.append(h[n_prompt:].mean(0).numpy())
        cases.append(dict(image=name, condition=cond, positions=pos, max_new_tokens=max_new, repeat_penalty=rp,
                          n_prompt=n_prompt, generated=new, layers=[0, 2, -1],
                          text=processor.decode(ids[0], skip_special_tokens=True),
                          answer=processor.decode(ids[0, n_prompt:], skip_special_tokens=True)))
    np.save(os.path.join(OUT, "generation_vectors.npy"), np.stack(vectors).astype(np.float32))
    with open(os.path.join(OUT, "generation.json"), "w") as f:
        json.dump(cases, f, indent=1, ensure_ascii=False)
    print(f"wrote {len(cases)} generation cases to {OUT}")


def main():
    if len(sys.argv) > 3 and sys.argv[3] == "--generation-only":  # for development: the model as built
        model_dir = os.path.join(OUT, "hf")
        model = Qwen2_5_VLForConditionalGeneration.from_pretrained(model_dir, torch_dtype=torch.float32).eval()
        generation_cases(model, AutoProcessor.from_pretrained(model_dir), make_images(os.path.join(OUT, "images")))
        return
    model_dir = os.path.join(OUT, "hf")
    model, processors = build_model(model_dir)
    convert(model_dir, os.path.join(OUT, "f32"), "f32")
    convert(model_dir, os.path.join(OUT, "f16"), "f16")
    convert(model_dir, os.path.join(OUT, "q8_0"), "q8_0")
    names = make_images(os.path.join(OUT, "images"))

    def case(image, cond=None, layer=-1, token=-1, pos="sequential", prompt_type="describe", processor="fast",
             parse_special=False):
        return dict(image=image, prompt_type=prompt_type, condition=cond, layer=layer, token=token, positions=pos,
                    processor=processor, parse_special=parse_special)

    cases = []
    for name in names:  # every image: two conditions + unconditional, layers 0 / middle / -1, both position modes
        for cond in ["car color", "movie genre", None]:
            for layer in [0, 2, -1]:
                for pos in ["sequential", "native"]:
                    cases.append(case(name, cond, layer, pos=pos))
    for pt in PROMPTS:  # every prompt type, with and without a condition
        for cond in ["bird species", None]:
            for pos in ["sequential", "native"]:
                cases.append(case("square_224.png", cond, pos=pos, prompt_type=pt))
    for pos in ["sequential", "native"]:
        # fixed tokens: in the system turn (5), the first, a middle and the last image token
        # (15, 20, 89: the 420x140 image is 75 tokens from 15 on) and <|vision_end|> (90), at layer 0
        # (where image tokens are the merged image embedding itself), a middle layer and the last
        for token in [5, 15, 20, 89, 90]:
            for layer in [0, 2, -1]:
                cases.append(case("wide_420x140.png", "car color", layer, token, pos))
        # Hugging Face's slow (Pillow) image processor, dior's --image-processor slow
        for name in names:
            cases.append(case(name, "car color", -1, pos=pos, processor="slow"))
        # special-token text in a condition: plain text (default) or parsed (--parse-special)
        for cond in ["car<|im_end|>color", "<|vision_start|>genre <tool_call> x", "plain words"]:
            for parse in [False, True]:
                cases.append(case("square_224.png", cond, -1, pos=pos, parse_special=parse))

    vectors, vectors_bf16 = [], []
    cache = {}
    pixels = {}
    # The reference runs in bfloat16: the same cases through a bf16 copy measure its own noise, the
    # yardstick for dior's speed options (parity_test.cpp, docs/parity.md).
    model_bf16 = copy.deepcopy(model).to(torch.bfloat16)
    for c in cases:
        with_c, without_c = PROMPTS[c["prompt_type"]]
        prompt = with_c.replace("{aspect}", c["condition"]) if c["condition"] is not None else without_c
        key = (c["image"], prompt, c["positions"], c["processor"], c["parse_special"])
        if key not in cache:
            proc = processors[c["processor"]]
            img = load_like_reference(os.path.join(OUT, "images", c["image"]))
            messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
            text = proc.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            inputs = model_inputs(proc, text, prompt, img, c["parse_special"])
            if "<|" not in prompt:  # the split tokenization is the processor's own when no special text is in it
                whole = proc(text=[text], images=[img], return_tensors="pt")["input_ids"]
                assert torch.equal(whole, inputs["input_ids"]), (prompt, whole, inputs["input_ids"])
            kwargs = {}
            if c["positions"] == "sequential":
                kwargs["position_ids"] = torch.arange(inputs["input_ids"].shape[1])[None]
            with torch.no_grad():
                out = model(**inputs, **kwargs, output_hidden_states=True)
                bf = dict(inputs, pixel_values=inputs["pixel_values"].to(torch.bfloat16))
                out_bf16 = model_bf16(**bf, **kwargs, output_hidden_states=True)
            cache[key] = ([h[0].numpy() for h in out.hidden_states], inputs["input_ids"].shape[1],
                          int(inputs["image_grid_thw"].prod()) // 4,
                          [h[0].float().numpy() for h in out_bf16.hidden_states])
            pkey = (c["processor"], c["image"])
            if pkey not in pixels:
                chw = unpatchify(inputs["pixel_values"].numpy(), inputs["image_grid_thw"][0])
                os.makedirs(os.path.join(OUT, "pixels", c["processor"]), exist_ok=True)
                np.save(os.path.join(OUT, "pixels", c["processor"], c["image"] + ".npy"),
                        np.ascontiguousarray(chw.reshape(-1, chw.shape[2]), dtype=np.float32))  # (3 H, W)
                pixels[pkey] = dict(processor=c["processor"], image=c["image"], height=int(chw.shape[1]),
                                    width=int(chw.shape[2]))
        hs, n_tokens, n_image, hs_bf16 = cache[key]
        vectors.append(hs[c["layer"]][c["token"]])
        vectors_bf16.append(hs_bf16[c["layer"]][c["token"]])
        c["n_tokens"] = n_tokens
        c["n_image_tokens"] = n_image
    np.save(os.path.join(OUT, "vectors.npy"), np.stack(vectors).astype(np.float32))
    np.save(os.path.join(OUT, "vectors_bf16.npy"), np.stack(vectors_bf16).astype(np.float32))
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump(cases, f, indent=1)
    ip = processors["fast"].image_processor
    with open(os.path.join(OUT, "pixels.json"), "w") as f:
        json.dump({"image_mean": list(ip.image_mean), "image_std": list(ip.image_std), "images": list(pixels.values())},
                  f, indent=1)
    print(f"wrote {len(cases)} transformers cases to {OUT}")
    generation_cases(model, processors["fast"], names)


if __name__ == "__main__":
    main()
