// The model options every model-using subcommand shares (-m, --mmproj, -hf, threads, engine flags).
#include "commands.h"

namespace dior::cli {

void model_options::add(CLI::App & app) {
    app.add_option("-m,--model", params.model_path, "GGUF text model (e.g. Qwen2.5-VL-7B-Instruct-Q8_0.gguf)");
    app.add_option("--mmproj", params.mmproj_path, "GGUF multimodal projector of that model");
    hf.add(app);
    app.add_option("-t,--threads", params.n_threads, "CPU threads (0: all)");
    app.add_option("--ctx-size", params.n_ctx, "longest prompt in tokens, image included");
    app.add_option("--batch-size", params.n_batch, "tokens per forward pass");
    app.add_option("--image-batch", image_batch,
                   "images evaluated together: a count, or auto (default: 1 on a CPU, up to 16 on a GPU)");
    app.add_option("--gpu-layers", params.n_gpu_layers, "layers to offload to a GPU build (-1: all)");
    app.add_flag("--flash-attn", params.flash_attn, "use flash attention (faster; rounds Q to F16)");
    app.add_flag("--kv-f16", params.kv_f16, "F16 KV cache (less memory; rounds K and V)");
    app.add_flag("!--no-vision-flash-attn", params.vision_flash_attn,
                 "exact F32 attention in the vision encoder (default: flash attention, F16 inputs)");
    app.add_flag("--strict", strict,
                 "every computation in F32, as transformers in float32 (same as no --flash-attn, no --kv-f16, "
                 "--no-vision-flash-attn)");
    app.add_option("--image-processor", processor,
                   "Qwen2-VL/2.5-VL image resize: fast (default, as the reference runs: Hugging Face's fast "
                   "processor), slow (Hugging Face's Pillow processor) or mtmd (llama.cpp's own)");
    app.add_flag("--mtmd-image-resize", mtmd_resize, "same as --image-processor mtmd");
    app.add_flag("-v,--verbose", params.verbose, "show llama.cpp's and mtmd's logs");
}

model_params model_options::resolved() const {
    const auto p = parse_image_processor(mtmd_resize ? "mtmd" : processor);
    if (!p) {
        throw error("--image-processor " + processor + ": use fast, slow or mtmd");
    }
    model_params out = params;
    out.processor    = *p;
    out.image_batch  = parse_image_batch(image_batch);
    if (strict) {
        if (params.flash_attn || params.kv_f16) {
            throw error("--strict computes everything in F32: leave out --flash-attn and --kv-f16");
        }
        out.vision_flash_attn = false;
    }
    return out;
}

std::string model_options::engine_options() const {
    return engine_options_text(resolved());
}

}  // namespace dior::cli
