// dior.cpp: conditional image embeddings from vision-language models (DIOR), on llama.cpp.
//
// The path of one image, in the order of this header:
//   load_image()      decode to RGB, downscale so the longer side is at most image_max_size
//   instruction()     the DIOR prompt for a condition ("Describe this image in one word ...")
//   model::embed()    chat template -> tokens -> one forward pass -> hidden state of one token,
//                     at one or more layers; the image prefix is computed once for all conditions
//
// Errors are reported as dior::error exceptions whose message names the file and what to do.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace dior {

struct error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// ---------------------------------------------------------------------------------------------
// Images
// ---------------------------------------------------------------------------------------------

struct image {
    std::string          source;  // where it came from (path or a name), for messages
    int                  width  = 0;
    int                  height = 0;
    std::vector<uint8_t> rgb;  // width * height * 3, row-major
};

// Decodes JPEG, PNG, BMP, GIF (first frame), TGA, PSD, HDR, PIC, PNM to RGB (alpha dropped,
// grey expanded, as PIL's convert("RGB")), then downscales so that the longer side is at most
// max_size (Lanczos, as PIL's resize; never upscales). max_size <= 0 keeps the original size.
image load_image(const std::string & path, int max_size = 700);
image decode_image(const uint8_t * data, size_t size, const std::string & source, int max_size = 700);

// PIL-compatible Lanczos (a = 3) resampling of an 8-bit RGB image, bit-exact with Pillow's
// Image.resize(..., Image.LANCZOS).
image resize_lanczos(const image & img, int width, int height);

// The size load_image() downscales to: the longer side becomes max_size exactly, the other side
// is scaled by the same ratio and truncated. Unchanged when the longer side is <= max_size.
void fit_size(int width, int height, int max_size, int & out_width, int & out_height);

// ---------------------------------------------------------------------------------------------
// Prompts
// ---------------------------------------------------------------------------------------------

enum class prompt_type { describe, express, summarize, capture, convey, depict, describe_unconstraint };

// "describe", "express", ...; parse_prompt_type() returns nullopt for an unknown name.
const char *               prompt_type_name(prompt_type type);
std::optional<prompt_type> parse_prompt_type(const std::string & name);
std::vector<prompt_type>   all_prompt_types();

// The user text of a DIOR prompt, e.g. `Describe this image in one word regarding car color: "`.
// Without a condition: `Describe this image in one word: "`.
std::string instruction(prompt_type type, const std::optional<std::string> & condition);

// ---------------------------------------------------------------------------------------------
// Model and vectors
// ---------------------------------------------------------------------------------------------

// How image tokens are positioned. sequential: every token at its own index (the reference's
// default, single-image path). native: the model's own scheme (3-D M-RoPE for Qwen2-VL/2.5-VL).
enum class positions { sequential, native };

struct model_params {
    std::string model_path;            // GGUF text model
    std::string mmproj_path;           // GGUF multimodal projector
    int         n_threads    = 0;      // 0: all hardware threads
    int         n_ctx        = 4096;   // longest prompt, image tokens included
    int         n_batch      = 512;    // tokens per forward pass (also the micro-batch)
    int         n_gpu_layers = -1;     // layers offloaded to a GPU backend, if one is built in
    bool        flash_attn   = false;  // off by default: Q would be rounded to F16
    bool        kv_f16       = false;  // F32 KV cache by default, for fidelity
    bool        verbose      = false;  // let llama.cpp / mtmd log
};

struct embed_params {
    prompt_type      prompt       = prompt_type::describe;
    std::vector<int> layers       = { -1 };  // Hugging Face hidden_states indices; negative from the end
    int              token        = -1;      // -1: last prompt token; k >= 0: absolute position k
    positions        position     = positions::sequential;
    bool             reuse_prefix = true;  // compute system turn + image once for all conditions
};

// Vectors of one (image, condition): vectors[i] belongs to layers[i] of the resolved layer list.
struct condition_vectors {
    std::optional<std::string>      condition;
    std::string                     instruction;
    int                             n_tokens = 0;  // prompt length in tokens, image included
    std::vector<std::vector<float>> vectors;
};

// Milliseconds spent in the last embed() call.
struct timings {
    double              encode_ms = 0;  // vision encoder (summed over encodes)
    double              prefix_ms = 0;  // text + image tokens of the shared prefix (summed)
    std::vector<double> suffix_ms;      // per condition: its own tokens
    double              total_ms = 0;
};

class model {
  public:
    // Loads the text model and its projector; throws dior::error naming the file on failure.
    static std::unique_ptr<model> load(const model_params & params);
    virtual ~model() = default;

    virtual int         n_embd() const  = 0;  // width of every vector
    virtual int         n_layer() const = 0;  // decoder layers; HF indices run 0..n_layer
    virtual std::string name() const    = 0;  // general.name of the text model, or its file name

    // Resolves HF hidden_states indices (negative counts from the end) to 0..n_layer.
    // Throws dior::error for an index out of range.
    virtual std::vector<int> resolve_layers(const std::vector<int> & layers) const = 0;
    virtual std::vector<int> all_layers() const                                    = 0;

    // The full prompt text as the model's chat template renders it, with the media marker
    // `<__media__>` where the image goes.
    virtual std::string render_prompt(const std::string & instruction) const = 0;

    // Token ids of the whole prompt for an image; image tokens appear as -1. For tests and tools.
    virtual std::vector<int32_t> prompt_tokens(const image & img, const std::string & instruction) = 0;

    // One image, K conditions (nullopt = the unconditional prompt). Returns one entry per condition.
    virtual std::vector<condition_vectors> embed(const image &                                   img,
                                                 const std::vector<std::optional<std::string>> & conditions,
                                                 const embed_params &                            params) = 0;

    virtual const timings & last_timings() const = 0;
};

// ---------------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------------

// A float32 matrix in NumPy's .npy format (version 1.0, little-endian '<f4', C order). The file
// is written beside and renamed into place, so a reader never sees half a file.
struct matrix {
    size_t             rows = 0;
    size_t             cols = 0;
    std::vector<float> data;  // rows * cols
};

void   write_npy(const std::string & path, const matrix & m);
matrix read_npy(const std::string & path);

// Engine (llama.cpp) identification, for manifests.
std::string engine_version();

}  // namespace dior
