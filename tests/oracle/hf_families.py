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
image tokens as -1), vectors.npy (one row per case) and family.json (model class, processor class);
where the converter keeps tensors in F16 whatever --outtype says (Gemma 3), mmproj.gguf is an all-F32
copy and mmproj-converter.gguf the converter's own file. Qwen3-VL needs transformers 4.57.3 first on
PYTHONPATH (tests/requirements-transformers-4.57.txt; scripts/test.sh installs it).
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
from qwen2_vocab import QWEN_VL_SPECIAL, QWEN_VL_TEMPLATE, qwen2_tokenizer  # noqa: E402
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

def qwen_tokenizer(model_dir):
    tok = qwen2_tokenizer(SRC, model_dir, unk_token=None, bos_token=None, eos_token="<|endoftext|>",
                          pad_token="<|endoftext|>")
    tok.add_special_tokens({"additional_special_tokens": QWEN_VL_SPECIAL})
    tok.eos_token = "<|im_end|>"
    tok.chat_template = QWEN_VL_TEMPLATE
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
                     video_processor=Qwen2VLVideoProcessor(), chat_template=QWEN_VL_TEMPLATE).save_pretrained(model_dir)
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


# google/gemma-3-4b-it's chat template
GEMMA3_TEMPLATE = (
    "{{ bos_token }}\n{%- if messages[0]['role'] == 'system' -%}\n    {%- if messages[0]['content'] is string -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}\n    {%- else -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}\n    {%- endif -%}\n"
    "    {%- set loop_messages = messages[1:] -%}\n{%- else -%}\n    {%- set first_user_prefix = \"\" -%}\n"
    "    {%- set loop_messages = messages -%}\n{%- endif -%}\n{%- for message in loop_messages -%}\n"
    "    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}\n"
    "        {{ raise_exception(\"Conversation roles must alternate user/assistant/user/assistant/...\") }}\n"
    "    {%- endif -%}\n    {%- if (message['role'] == 'assistant') -%}\n        {%- set role = \"model\" -%}\n"
    "    {%- else -%}\n        {%- set role = message['role'] -%}\n    {%- endif -%}\n"
    "    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else \"\") }}\n"
    "    {%- if message['content'] is string -%}\n        {{ message['content'] | trim }}\n"
    "    {%- elif message['content'] is iterable -%}\n        {%- for item in message['content'] -%}\n"
    "            {%- if item['type'] == 'image' -%}\n                {{ '<start_of_image>' }}\n"
    "            {%- elif item['type'] == 'text' -%}\n                {{ item['text'] | trim }}\n"
    "            {%- endif -%}\n        {%- endfor -%}\n    {%- else -%}\n"
    "        {{ raise_exception(\"Invalid content type\") }}\n    {%- endif -%}\n    {{ '<end_of_turn>\n' }}\n"
    "{%- endfor -%}\n{%- if add_generation_prompt -%}\n    {{'<start_of_turn>model\n'}}\n{%- endif -%}\n"
)


def build_gemma3(model_dir):
    """gemma-3-4b-it's structure at small widths: SigLIP tower, 4x4 average pooling, the soft-embedding
    norm and projection; scaled token embeddings, 5 sliding-window layers to 1 global (two rope
    bases), q/k norms, bidirectional attention among image tokens; the slow Gemma3ImageProcessor
    (bilinear squash to the encoder's square) and a tokenizer that adds a BOS to the template's own."""
    from PIL.Image import Resampling
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration, Gemma3ImageProcessor, Gemma3Processor
    special = ["<bos>", "<eos>", "<pad>", "<start_of_turn>", "<end_of_turn>", "<start_of_image>", "<end_of_image>",
               "<image_soft_token>"]
    tok = qwen2_tokenizer(SRC, model_dir, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token=None,
                          extra_special_tokens={"image_token": "<image_soft_token>", "boi_token": "<start_of_image>",
                                                "eoi_token": "<end_of_image>"})
    tok.add_special_tokens({"additional_special_tokens": special})
    tok.chat_template = GEMMA3_TEMPLATE
    ids = {t: tok.convert_tokens_to_ids(t) for t in special}
    n_tokens = len(tok)  # the converter cuts token_embd to the tokenizer's size
    cfg = Gemma3Config(
        text_config=dict(vocab_size=n_tokens, hidden_size=64, intermediate_size=128, num_hidden_layers=6,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=16, query_pre_attn_scalar=16,
                         sliding_window=32, rope_theta=1000000.0, rope_local_base_freq=10000.0, rms_norm_eps=1e-6,
                         max_position_embeddings=32768, hidden_activation="gelu_pytorch_tanh",
                         bos_token_id=ids["<bos>"], eos_token_id=ids["<eos>"], pad_token_id=ids["<pad>"]),
        vision_config=dict(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=2,
                           image_size=224, patch_size=14, hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6,
                           vision_use_head=False),
        mm_tokens_per_image=16, boi_token_index=ids["<start_of_image>"], eoi_token_index=ids["<end_of_image>"],
        image_token_index=ids["<image_soft_token>"], torch_dtype="float32",
    )
    model = randomize(Gemma3ForConditionalGeneration(cfg))
    with torch.no_grad():  # the converter keeps this one in F16 whatever --outtype says
        w = model.model.multi_modal_projector.mm_input_projection_weight
        w.copy_(w.half().float())
    model.save_pretrained(model_dir, safe_serialization=True)
    ip = Gemma3ImageProcessor(size={"height": 224, "width": 224}, resample=Resampling.BILINEAR,
                              image_mean=[0.5] * 3, image_std=[0.5] * 3)
    Gemma3Processor(image_processor=ip, tokenizer=tok, chat_template=GEMMA3_TEMPLATE,
                    image_seq_length=16).save_pretrained(model_dir)
    set_json(os.path.join(model_dir, "tokenizer_config.json"), add_bos_token=True)

    def after_convert():  # Gemma's tokenizer class, which adds a BOS (the converter needs the Qwen2 one)
        set_json(os.path.join(model_dir, "tokenizer_config.json"), tokenizer_class="GemmaTokenizerFast")

    return dict(model=model, image_token_id=ids["<image_soft_token>"], mrope=False, after_convert=after_convert,
                f16_in_f32_conversion=True,
                sizes={"square_224": (224, 224), "wide_420x140": (420, 140), "odd_131x97": (131, 97),
                       "large_900x610": (900, 610)})


# HuggingFaceTB/SmolVLM-256M-Instruct's chat template
SMOLVLM_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}{% if message['content'][0]['type'] == "
    "'image' %}{{':'}}{% else %}{{': '}}{% endif %}{% for line in message['content'] %}{% if line['type'] == 'text' %}"
    "{{line['text']}}{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n"
    "{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)


def build_smolvlm(model_dir):
    """SmolVLM-256M-Instruct's structure (Idefics3ForConditionalGeneration): the image is resized so
    that its longer side is 4 tiles, cut into tiles of the encoder's size plus a global image, each
    tile a SigLIP pass with Hugging Face's (shifted) position ids, pixel-shuffled by 2 and projected;
    a Llama text model; the slow Idefics3ImageProcessor (Lanczos), the only one AutoProcessor loads."""
    from PIL.Image import Resampling
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration, Idefics3ImageProcessor, Idefics3Processor
    rows = [f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)]
    special = ["<|im_start|>", "<end_of_utterance>", "<fake_token_around_image>", "<image>", "<global-img>"] + rows
    tok = qwen2_tokenizer(SRC, model_dir, bos_token="<|im_start|>", eos_token="<end_of_utterance>",
                          pad_token="<|im_start|>", unk_token=None)
    tok.add_special_tokens({"additional_special_tokens": special})
    tok.chat_template = SMOLVLM_TEMPLATE
    image_id = tok.convert_tokens_to_ids("<image>")
    cfg = Idefics3Config(
        text_config=dict(model_type="llama", architectures=["VLlama3ForCausalLM"], vocab_size=len(tok), hidden_size=64,
                         intermediate_size=128, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                         head_dim=16, rms_norm_eps=1e-5, rope_theta=100000.0, max_position_embeddings=8192,
                         tie_word_embeddings=False),
        vision_config=dict(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=2,
                           image_size=64, patch_size=16, hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6),
        scale_factor=2, image_token_id=image_id, tie_word_embeddings=False, torch_dtype="float32",
    )
    model = randomize(Idefics3ForConditionalGeneration(cfg))
    model.save_pretrained(model_dir, safe_serialization=True)
    ip = Idefics3ImageProcessor(size={"longest_edge": 256}, max_image_size={"longest_edge": 64},
                                resample=Resampling.LANCZOS, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    Idefics3Processor(image_processor=ip, tokenizer=tok, image_seq_len=4,
                      chat_template=SMOLVLM_TEMPLATE).save_pretrained(model_dir)
    return dict(model=model, image_token_id=image_id, mrope=False,
                sizes={"square_224": (224, 224), "wide_420x140": (420, 140), "odd_131x97": (131, 97),
                       "large_900x610": (900, 610)})


# --- GLM-4.1V -----------------------------------------------------------------------------------

# zai-org/GLM-4.1V-9B-Thinking's chat template (chat_template.json, as published). It has no reasoning
# branch (no enable_thinking): the generation prompt is "<|assistant|>\n" and the model itself writes
# "<think>". No default system turn. Rendered with transformers' trim_blocks/lstrip_blocks it gives
# "[gMASK]<sop><|user|>\n<|begin_of_image|><|image|><|end_of_image|>PROMPT<|assistant|>\n".
GLM4V_TEMPLATE = (
    "[gMASK]<sop>\n{%- for msg in messages %}\n    {%- if msg.role == 'system' %}\n<|system|>\n{{ msg.content }}\n"
    "    {%- elif msg.role == 'user' %}\n<|user|>{{ '\\n' }}\n\n        {%- if msg.content is string %}\n"
    "{{ msg.content }}\n        {%- else %}\n            {%- for item in msg.content %}\n"
    "                {%- if item.type == 'video' or 'video' in item %}\n<|begin_of_video|><|video|><|end_of_video|>\n"
    "                {%- elif item.type == 'image' or 'image' in item %}\n<|begin_of_image|><|image|><|end_of_image|>\n"
    "                {%- elif item.type == 'text' %}\n{{ item.text }}\n                {%- endif %}\n"
    "            {%- endfor %}\n        {%- endif %}\n    {%- elif msg.role == 'assistant' %}\n"
    "        {%- if msg.metadata %}\n<|assistant|>{{ msg.metadata }}\n{{ msg.content }}\n        {%- else %}\n"
    "<|assistant|>\n{{ msg.content }}\n        {%- endif %}\n    {%- endif %}\n{%- endfor %}\n"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
# GLM-4's added tokens in the published order (real ids 151329..151344; here they follow the Qwen2 BPE)
GLM4V_SPECIAL = ["[MASK]", "[gMASK]", "[sMASK]", "<sop>", "<eop>", "<|system|>", "<|user|>", "<|assistant|>",
                 "<|observation|>", "<|begin_of_image|>", "<|end_of_image|>", "<|begin_of_video|>", "<|end_of_video|>",
                 "<|image|>", "<|video|>"]


def build_glm4v(model_dir):
    """GLM-4.1V-9B-Thinking's structure (Glm4vForConditionalGeneration) at small widths: patch-14 tower
    with a post-conv RMSNorm, learned 24x24 position embeddings resampled to the grid (bicubic
    grid_sample), 2D vision RoPE, SwiGLU vision MLP (width out_hidden_size), a 2x2 conv downsample and
    the GELU + SwiGLU merger; a GLM-4 text model (four norms per layer, fused gate_up, q/k/v biases)
    with M-RoPE on half of each head (interleaved pairs); the slow Glm4vImageProcessor (PIL bicubic,
    smart_resize factor 28, temporal factor 2). The tokenizer adds no [gMASK]<sop>: the template writes them."""
    from transformers import Glm4vConfig, Glm4vForConditionalGeneration, Glm4vImageProcessor, Glm4vProcessor
    from transformers import Glm4vVideoProcessor
    tok = qwen2_tokenizer(SRC, model_dir, unk_token=None, bos_token=None, eos_token="<|endoftext|>",
                          pad_token="<|endoftext|>")
    tok.add_special_tokens({"additional_special_tokens": ["<|endoftext|>"] + GLM4V_SPECIAL})
    tok.chat_template = GLM4V_TEMPLATE
    ids = {t: tok.convert_tokens_to_ids(t) for t in ["<|endoftext|>"] + GLM4V_SPECIAL}
    cfg = Glm4vConfig(
        text_config=dict(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=4,
                         num_attention_heads=2, num_key_value_heads=1, partial_rotary_factor=0.5,
                         max_position_embeddings=65536, rms_norm_eps=1e-5, rope_theta=10000.0, attention_bias=True,
                         rope_scaling={"rope_type": "default", "mrope_section": [2, 3, 3]}, hidden_act="silu",
                         tie_word_embeddings=False, pad_token_id=ids["<|endoftext|>"],
                         eos_token_id=[ids["<|endoftext|>"], ids["<|user|>"], ids["<|observation|>"]],
                         image_token_id=ids["<|image|>"], video_token_id=ids["<|video|>"]),
        vision_config=dict(depth=3, hidden_size=32, num_heads=2, intermediate_size=96, out_hidden_size=64,
                           image_size=336, patch_size=14, spatial_merge_size=2, temporal_patch_size=2,
                           in_channels=3, hidden_act="silu", attention_bias=False, rms_norm_eps=1e-5),
        image_token_id=ids["<|image|>"], video_token_id=ids["<|video|>"],
        image_start_token_id=ids["<|begin_of_image|>"], image_end_token_id=ids["<|end_of_image|>"],
        video_start_token_id=ids["<|begin_of_video|>"], video_end_token_id=ids["<|end_of_video|>"],
        tie_word_embeddings=False, torch_dtype="float32",
    )
    model = randomize(Glm4vForConditionalGeneration(cfg))
    model.save_pretrained(model_dir, safe_serialization=True)
    Glm4vProcessor(image_processor=Glm4vImageProcessor(), tokenizer=tok, video_processor=Glm4vVideoProcessor(),
                   chat_template=GLM4V_TEMPLATE).save_pretrained(model_dir)
    with open(os.path.join(model_dir, "preprocessor_config.json"), "w") as f:  # GLM-4.1V-9B-Thinking's, as published
        json.dump({"size": {"shortest_edge": 12544, "longest_edge": 9633792}, "do_rescale": True, "patch_size": 14,
                   "temporal_patch_size": 2, "merge_size": 2, "image_mean": [0.48145466, 0.4578275, 0.40821073],
                   "image_std": [0.26862954, 0.26130258, 0.27577711], "image_processor_type": "Glm4vImageProcessor",
                   "processor_class": "Glm4vProcessor"}, f, indent=1)
    # the published tokenizer's class (the processor loads this class whatever the file says; the
    # converter's AutoTokenizer reads the same tokenizer.json either way)
    set_json(os.path.join(model_dir, "tokenizer_config.json"), tokenizer_class="PreTrainedTokenizerFast")
    return dict(model=model, image_token_id=ids["<|image|>"], mrope=True,
                sizes={"square_224": (224, 224), "wide_420x140": (420, 140), "odd_131x97": (131, 97),
                       "large_900x610": (900, 610)})


# --- Mistral 3 ----------------------------------------------------------------------------------

# mistralai/Mistral-Small-3.1-24B-Instruct-2503's chat template, as transformers' own test copies it
# from hf-internal-testing/Mistral-Small-3.1-24B-Instruct-2503-only-processor
# (tests/models/mistral3/test_processing_mistral3.py::prepare_processor_dict), verbatim (its quirks
# kept: `messages[0] is string`, the trailing space after one `{%- else %}`). It always writes a
# default system prompt with today's date (strftime_now) when there is no system message, begins
# with bos_token, and ignores add_generation_prompt: the prompt ends with "[/INST]".
MISTRAL3_TEMPLATE = (
    "{%- set today = strftime_now(\"%Y-%m-%d\") %}\n{%- set default_system_message = \"You are Mistral Small 3, a "
    "Large Language Model (LLM) created by Mistral AI, a French startup headquartered in Paris.\\nYour knowledge base "
    "was last updated on 2023-10-01. The current date is \" + today + \".\\n\\nWhen you're not sure about some "
    "information, you say that you don't have the information and don't make up anything.\\nIf the user's question "
    "is not clear, ambiguous, or does not provide enough context for you to accurately answer the question, you do "
    "not try to answer it right away and you rather ask the user to clarify their request (e.g. \\\"What are some "
    "good restaurants around me?\\\" => \\\"Where are you?\\\" or \\\"When is the next flight to Tokyo\\\" => "
    "\\\"Where do you travel from?\\\")\" %}\n\n{{- bos_token }}\n\n{%- if messages[0]['role'] == 'system' %}\n"
    "    {%- if messages[0] is string %}\n        {%- set system_message = messages[0]['content'] %}\n"
    "        {%- set loop_messages = messages[1:] %}\n    {%- else %} \n"
    "        {%- set system_message = messages[0]['content'][0]['text'] %}\n"
    "        {%- set loop_messages = messages[1:] %}\n    {%- endif %}\n{%- else %}\n"
    "    {%- set system_message = default_system_message %}\n    {%- set loop_messages = messages %}\n{%- endif %}\n"
    "{{- '[SYSTEM_PROMPT]' + system_message + '[/SYSTEM_PROMPT]' }}\n\n{%- for message in loop_messages %}\n"
    "    {%- if message['role'] == 'user' %}\n            {%- if message['content'] is string %}\n"
    "            {{- '[INST]' + message['content'] + '[/INST]' }}\n            {%- else %}\n"
    "                    {{- '[INST]' }}\n                    {%- for block in message['content'] %}\n"
    "                            {%- if block['type'] == 'text' %}\n"
    "                                    {{- block['text'] }}\n"
    "                            {%- elif block['type'] == 'image' or block['type'] == 'image_url' %}\n"
    "                                    {{- '[IMG]' }}\n                                {%- else %}\n"
    "                                    {{- raise_exception('Only text and image blocks are supported in message "
    "content!') }}\n                                {%- endif %}\n                        {%- endfor %}\n"
    "                    {{- '[/INST]' }}\n                {%- endif %}\n    {%- elif message['role'] == 'system' %}\n"
    "        {{- '[SYSTEM_PROMPT]' + message['content'] + '[/SYSTEM_PROMPT]' }}\n"
    "    {%- elif message['role'] == 'assistant' %}\n        {%- if message['content'] is string %}\n"
    "            {{- message['content'] + eos_token }}\n        {%- else %}\n"
    "            {{- message['content'][0]['text'] + eos_token }}\n        {%- endif %}\n    {%- else %}\n"
    "        {{- raise_exception('Only user, system and assistant roles are supported!') }}\n    {%- endif %}\n"
    "{%- endfor %}"
)
# Mistral's control tokens in tekken's order (real ids 0..19; here they follow the Qwen2 BPE)
MISTRAL3_SPECIAL = ["<unk>", "<s>", "</s>", "[INST]", "[/INST]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]",
                    "[TOOL_RESULTS]", "[/TOOL_RESULTS]", "[TOOL_CALLS]", "[IMG]", "<pad>", "[IMG_BREAK]", "[IMG_END]",
                    "[PREFIX]", "[MIDDLE]", "[SUFFIX]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]", "[TOOL_CONTENT]"]


def build_mistral3(model_dir):
    """Mistral-Small-3.1-24B-Instruct-2503's structure (Mistral3ForConditionalGeneration) at small widths:
    a Pixtral tower (patch 14, no bias, RMSNorm ln_pre, 2D RoPE theta 10000, SiLU-gated MLP), the
    Mistral3 projector (RMSNorm with the text eps, 2x2 unfold + merging_layer, linear-GELU(erf)-linear);
    a Mistral text model (1-D RoPE theta 1e9, no sliding window); the slow PixtralImageProcessor
    (longest_edge cap by floor, sides rounded UP to patch*merge, PIL bicubic), [IMG_BREAK] after each
    row of image tokens and [IMG_END] for the last. The tokenizer adds a BOS to the template's own <s>
    (two BOS, as the real LlamaTokenizerFast over tekken does)."""
    from transformers import Mistral3Config, Mistral3ForConditionalGeneration, PixtralImageProcessor, PixtralProcessor
    tok = qwen2_tokenizer(SRC, model_dir, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>")
    tok.add_special_tokens({"additional_special_tokens": MISTRAL3_SPECIAL})
    tok.chat_template = MISTRAL3_TEMPLATE
    ids = {t: tok.convert_tokens_to_ids(t) for t in MISTRAL3_SPECIAL}
    patch, merge, longest = 14, 2, 448  # published: 14, 2, 1540 (= vision image_size)
    cfg = Mistral3Config(
        text_config=dict(model_type="mistral", vocab_size=len(tok), hidden_size=64, intermediate_size=128,
                         num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                         max_position_embeddings=131072, rms_norm_eps=1e-5, rope_theta=1000000000.0,
                         sliding_window=None, hidden_act="silu", tie_word_embeddings=False,
                         bos_token_id=ids["<s>"], eos_token_id=ids["</s>"], pad_token_id=ids["<pad>"]),
        # 3 layers, not 2: the mmproj converter maps multi_modal_projector.linear_{bid} only for bid < the
        # vision block count, so linear_2 needs >= 3 vision layers
        vision_config=dict(model_type="pixtral", hidden_size=32, intermediate_size=48, num_hidden_layers=3,
                           num_attention_heads=2, head_dim=16, num_channels=3, image_size=longest, patch_size=patch,
                           hidden_act="silu", rope_theta=10000.0),
        image_token_index=ids["[IMG]"], projector_hidden_act="gelu", vision_feature_layer=-1,
        multimodal_projector_bias=False, spatial_merge_size=merge, tie_word_embeddings=False, torch_dtype="float32",
    )
    model = randomize(Mistral3ForConditionalGeneration(cfg))
    model.save_pretrained(model_dir, safe_serialization=True)
    ip = PixtralImageProcessor(size={"longest_edge": longest}, patch_size={"height": patch, "width": patch})
    PixtralProcessor(image_processor=ip, tokenizer=tok, patch_size=patch, spatial_merge_size=merge,
                     chat_template=MISTRAL3_TEMPLATE, image_token="[IMG]", image_break_token="[IMG_BREAK]",
                     image_end_token="[IMG_END]").save_pretrained(model_dir)
    with open(os.path.join(model_dir, "preprocessor_config.json"), "w") as f:  # the published one, smaller sizes
        json.dump({"crop_size": None, "data_format": "channels_first", "default_to_square": True, "device": None,
                   "do_center_crop": None, "do_convert_rgb": True, "do_normalize": True, "do_rescale": True,
                   "do_resize": True, "image_mean": [0.48145466, 0.4578275, 0.40821073],
                   "image_processor_type": "PixtralImageProcessor",
                   "image_std": [0.26862954, 0.26130258, 0.27577711], "input_data_format": None,
                   "patch_size": {"height": patch, "width": patch}, "processor_class": "PixtralProcessor",
                   "resample": 3, "rescale_factor": 0.00392156862745098, "return_tensors": None,
                   "size": {"longest_edge": longest}}, f, indent=1)
    # the GGUF gets tokenizer.ggml.add_bos_token = true from here; the converter reads the Qwen2 class,
    # which ignores it, so its pre-tokenizer hash is qwen2's
    set_json(os.path.join(model_dir, "tokenizer_config.json"), add_bos_token=True, add_eos_token=False)

    def after_convert():  # the published tokenizer's class, which adds the BOS on encode
        set_json(os.path.join(model_dir, "tokenizer_config.json"), tokenizer_class="LlamaTokenizerFast")

    # mtmd's image chunk holds the [IMG_BREAK] rows too (their embedding row is in the mmproj)
    return dict(model=model, image_token_id=ids["[IMG]"], more_image_token_ids=[ids["[IMG_BREAK]"]], mrope=False,
                after_convert=after_convert,
                sizes={"square_224": (224, 224), "wide_420x140": (420, 140), "odd_131x97": (131, 97),
                       "large_900x610": (900, 610)})


def set_json(path, **kv):
    with open(path) as f:
        d = json.load(f)
    d.update(kv)
    with open(path, "w") as f:
        json.dump(d, f, indent=1)


FAMILIES = {
    "qwen2_vl": build_qwen2_vl,
    "qwen3_vl": build_qwen3_vl,
    "gemma3": build_gemma3,
    "smolvlm": build_smolvlm,
    "glm4v": build_glm4v,
    "mistral3": build_mistral3,
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


def all_f32(src, dst):
    """A copy of a GGUF file with every F16 tensor in F32 (the converter keeps some in F16 whatever
    --outtype says, e.g. Gemma 3's mm_input_projection; ggml then rounds the activations too)."""
    sys.path.insert(0, os.path.join(SRC, "gguf-py"))
    from gguf import GGMLQuantizationType, GGUFReader, GGUFValueType, GGUFWriter
    r = GGUFReader(src)
    arch = r.fields["general.architecture"]
    w = GGUFWriter(dst, bytes(arch.parts[arch.data[0]]).decode())
    for name, f in r.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        if f.types[0] == GGUFValueType.ARRAY and f.types[-1] == GGUFValueType.STRING:
            w.add_array(name, [bytes(f.parts[i]).decode() for i in f.data])
        elif f.types[0] == GGUFValueType.ARRAY:
            w.add_array(name, [f.parts[i].tolist()[0] for i in f.data])
        elif f.types[0] == GGUFValueType.STRING:
            w.add_string(name, bytes(f.parts[f.data[0]]).decode())
        else:
            w.add_key_value(name, f.parts[f.data[0]].tolist()[0], f.types[0])
    for t in r.tensors:
        data = np.asarray(t.data)
        if t.tensor_type == GGMLQuantizationType.F16:
            data = data.astype(np.float32)
        w.add_tensor(t.name, data.reshape([int(x) for x in reversed(t.shape)]))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def forward(model, processor, image, prompt, positions):
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=[image], return_tensors="pt")
    kwargs = {}
    if positions == "sequential":
        kwargs["position_ids"] = torch.arange(inputs["input_ids"].shape[1])[None]
    with torch.no_grad():
        out = model(**inputs, **kwargs, output_hidden_states=True)
    return inputs["input_ids"][0].tolist(), [h[0].double().numpy() for h in out.hidden_states], inputs


def unpatchify(pixel_values, grid_thw, patch, merge=2, temporal=2):
    """Qwen-VL / GLM-4.1V pixel_values (gt*gh*gw, C*T*P*P) back to the (3, H, W) image of the first frame."""
    gt, gh, gw = (int(v) for v in grid_thw)
    x = pixel_values.reshape(gt, gh // merge, gw // merge, merge, merge, 3, temporal, patch, patch)
    x = x.transpose(0, 6, 5, 1, 3, 7, 2, 4, 8)
    return x.reshape(gt, temporal, 3, gh * patch, gw * patch)[0, 0]


def processor_pixels(inputs, patch):
    """The processor's pixel_values of the one image as (3, H, W): patchified (Qwen-VL, GLM-4.1V) or plain
    (Gemma 3, Pixtral); None for tiled layouts (Idefics3)."""
    pv = inputs["pixel_values"].numpy()
    if "image_grid_thw" in inputs:
        return unpatchify(pv, inputs["image_grid_thw"][0], patch)
    if pv.ndim == 4 and pv.shape[0] == 1:
        return pv[0]
    return None


def run_family(name, build):
    out = os.path.join(OUT, name)
    model_dir = os.path.join(out, "hf")
    fam = build(model_dir)
    model = fam["model"]
    convert(model_dir, out)
    mmproj = os.path.join(out, "mmproj.gguf")
    if fam.get("f16_in_f32_conversion"):  # the f32 setting as the test's; the converter's own beside it
        os.replace(mmproj, os.path.join(out, "mmproj-converter.gguf"))
        all_f32(os.path.join(out, "mmproj-converter.gguf"), mmproj)
    if "after_convert" in fam:
        fam["after_convert"]()
    processor = AutoProcessor.from_pretrained(model_dir)  # as the reference loads it
    images = make_images(os.path.join(out, "images"), fam["sizes"])
    n_layer = model.config.get_text_config().num_hidden_layers
    # ids that mtmd's image chunk holds as embeddings (written -1, as dior lists them)
    in_image = {fam["image_token_id"]} | set(fam.get("more_image_token_ids", []))
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

    cache, vectors, pixels = {}, [], {}
    for c in cases:
        with_c, without_c = PROMPTS[c["prompt_type"]]
        prompt = with_c.replace("{aspect}", c["condition"]) if c["condition"] is not None else without_c
        key = (c["image"], prompt, c["positions"])
        if key not in cache:
            img = load_like_reference(os.path.join(out, "images", c["image"]))
            ids, hs, inputs = forward(model, processor, img, prompt, c["positions"])
            cache[key] = (ids, hs)
            chw = processor_pixels(inputs, model.config.vision_config.patch_size)
            if chw is not None and c["image"] not in pixels:
                os.makedirs(os.path.join(out, "pixels"), exist_ok=True)
                np.save(os.path.join(out, "pixels", c["image"] + ".npy"),
                        np.ascontiguousarray(chw.reshape(-1, chw.shape[2]), dtype=np.float32))  # (3 H, W)
                pixels[c["image"]] = dict(image=c["image"], height=int(chw.shape[1]), width=int(chw.shape[2]))
        ids, hs = cache[key]
        c["ids"] = [-1 if t in in_image else t for t in ids]
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
                c["ids"] = [-1 if t in in_image else t for t in ids]
                cases.append(c)
                vectors.append(hs[layer][token])
    np.save(os.path.join(out, "vectors.npy"), np.stack(vectors).astype(np.float32))
    with open(os.path.join(out, "cases.json"), "w") as f:
        json.dump(cases, f)
    ip = processor.image_processor
    with open(os.path.join(out, "pixels.json"), "w") as f:  # what the processor hands the vision tower
        json.dump(dict(image_mean=list(ip.image_mean), image_std=list(ip.image_std), images=list(pixels.values())),
                  f, indent=1)
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
