// dior.cpp: conditional image embeddings from vision-language models (DIOR), on llama.cpp.
//
// The path of one image, in the order of this header:
//   load_image()      decode to RGB, downscale so the longer side is at most image_max_size
//   instruction()     the DIOR prompt for a condition ("Describe this image in one word ...")
//   model::embed()    chat template -> tokens -> one forward pass -> hidden state of one token,
//                     at one or more layers; the image prefix is computed once for all conditions
//   store             vectors of every (image, setting), crash-safe, in one SQLite file
//   run_embed()       the whole run over many images: listing, checks, a method, the store,
//                     resume, per-image failures, cancel (docs/run.md)
//   evaluate()        labels of the reference's datasets -> mAP@R, P@1, NMI, AMI
//
// Errors are reported as dior::error exceptions whose message names the file and what to do.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace dior {

struct error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// The store cannot be read or written (unwritable place, full disk, corrupt file): unlike a bad
// image, this stops a run. What was committed before stays readable.
struct store_error : error {
    using error::error;
};

// A float32 matrix, row-major: the vectors of a setting, one row per image.
struct matrix {
    size_t             rows = 0;
    size_t             cols = 0;
    std::vector<float> data;  // rows * cols
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

// What is read, checked before the work: a file's size (from stat, before reading) and an
// image's pixel count (from its header, before decoding). Pillow refuses images of more than
// 2 x Image.MAX_IMAGE_PIXELS pixels as decompression bombs; so does dior by default.
struct image_limits {
    int64_t max_file_bytes = (int64_t)1 << 30;  // 1 GiB; 0: no limit
    int64_t max_pixels     = 2 * 89478485;      // Pillow's DecompressionBombError threshold; 0: no limit
};

// Decodes JPEG, PNG, BMP, GIF (first frame), TGA, PSD, HDR, PIC, PNM to RGB (alpha dropped,
// grey expanded, as PIL's convert("RGB")), then downscales so that the longer side is at most
// max_size (Lanczos, as PIL's resize; never upscales). max_size <= 0 keeps the original size.
image load_image(const std::string & path, int max_size = 700, const image_limits & limits = {});
// The bytes of a regular file (not a folder, FIFO or device: refused before opening, so nothing
// hangs), its size checked before reading; dior::error naming the file and the reason.
std::vector<uint8_t> read_file(const std::string & path, int64_t max_bytes = image_limits{}.max_file_bytes);
image                decode_image(const uint8_t * data, size_t size, const std::string & source, int max_size = 700,
                                  const image_limits & limits = {});

// Baseline JPEG of an RGB image (libjpeg-turbo), quality 1-100.
std::vector<uint8_t> encode_jpeg(const image & img, int quality = 85);
// A small JPEG of an image file for pages and reports: the longer side at most max_side.
// dior::error naming the file when it cannot be read or decoded.
std::vector<uint8_t> thumbnail_jpeg(const std::string & path, int max_side = 160, const image_limits & limits = {});

// A path or message made printable on one line: control characters, newlines and bytes that are
// not UTF-8 as C escapes (\n, \x1b, \xe9), an empty name as ''.
std::string printable(const std::string & text);

// The length of the well-formed UTF-8 sequence that starts at text[i] (1 to 4), or 0 when the
// byte there does not start one (Unicode's table: no overlongs, surrogates or code points past
// U+10FFFF). File names on Linux are bytes, not always UTF-8: writers of JSON and HTML use this.
size_t utf8_length_at(const std::string & text, size_t i);

// PIL-compatible Lanczos (a = 3) resampling of an 8-bit RGB image, bit-exact with Pillow's
// Image.resize(..., Image.LANCZOS).
image resize_lanczos(const image & img, int width, int height);

// Pillow-compatible bicubic resampling (Image.BICUBIC), as Hugging Face's slow Qwen2-VL image
// processor resizes.
image resize_bicubic(const image & img, int width, int height);

// Pillow-compatible bilinear resampling (Image.BILINEAR), as Hugging Face's slow Gemma 3 image
// processor resizes.
image resize_bilinear(const image & img, int width, int height);

// PyTorch's antialiased bicubic on uint8 images (torch.nn.functional.interpolate(mode="bicubic",
// antialias=True), as torchvision's resize runs on CPU), bit-exact: what Hugging Face's fast
// Qwen2-VL image processor, and so the reference, resizes with.
image resize_bicubic_torch(const image & img, int width, int height);

// Hugging Face's Qwen2-VL smart_resize: both sides multiples of factor (rounded half to even, as
// Python does), the area kept within [min_pixels, max_pixels] at the same aspect ratio.
void smart_resize(int width, int height, int factor, int64_t min_pixels, int64_t max_pixels, int & out_width,
                  int & out_height);

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

// How Qwen2-VL / Qwen2.5-VL images are resized to the model's grid.
//   fast  what the reference runs: Hugging Face's fast image processor, which transformers 4.56
//         forces for Qwen2-VL when torchvision is installed (torch's antialiased bicubic on uint8)
//   slow  Hugging Face's slow image processor (Pillow's bicubic)
//   mtmd  llama.cpp's own resize (pads instead of stretching; rounds sizes differently)
enum class image_processor { fast, slow, mtmd };

const char *                   image_processor_name(image_processor p);  // "fast", "slow", "mtmd"
std::optional<image_processor> parse_image_processor(const std::string & name);

struct model_params {
    std::string model_path;           // GGUF text model
    std::string mmproj_path;          // GGUF multimodal projector
    int         n_threads    = 0;     // 0: all hardware threads
    int         n_ctx        = 4096;  // longest prompt, image tokens included
    int         n_batch      = 512;   // tokens per forward pass (also the micro-batch)
    int         n_gpu_layers = -1;    // layers offloaded to a GPU backend, if one is built in
    // Images that model::embed_many evaluates together. 1: one at a time; 0: automatic (1 on a
    // CPU, where batching buys little; on a GPU up to 16, as its memory allows).
    int  image_batch = 0;
    bool flash_attn  = false;  // text model: off by default, Q would be rounded to F16
    bool kv_f16      = false;  // F32 KV cache by default, for fidelity
    // Vision encoder: flash attention (Q, K, V rounded to F16, F32 sums). On by default: 8x faster
    // attention on CPU, and its error stays far inside the reference's own bf16 noise
    // (docs/parity.md). Off: the strict F32 path.
    bool vision_flash_attn = true;
    bool verbose           = false;  // let llama.cpp / mtmd log
    // Qwen2-VL / Qwen2.5-VL projectors: how an image is resized to the model's grid of 28-px cells
    // (Hugging Face's smart_resize), see image_processor. Other projectors use mtmd's own.
    image_processor processor = image_processor::fast;
};

// Where a vector is read (the reference's embedding sources, SPEC 1):
//   input_last    the hidden state of one prompt token (-1: the last): DIOR, no generation
//   first_output  the hidden state of the first generated token, at its own position
//   mean_output   the mean of the hidden states of all generated tokens (the stop token included
//                 when the model produced one), each at its own position
enum class embed_source { input_last, first_output, mean_output };

const char *                embed_source_name(embed_source s);  // "input_last", "first_output", ...
std::optional<embed_source> parse_embed_source(const std::string & name);

// Generation after the prompt, as transformers' generate() runs it: greedy (argmax, the first
// maximum on a tie) unless temperature > 0, at most max_new_tokens, stopping after an end-of-turn
// token (the model's end-of-generation tokens except its fill-in-the-middle ones, i.e. Qwen's
// <|im_end|> and <|endoftext|>).
struct generation_params {
    int      max_new_tokens = 16;
    float    temperature    = 0;  // 0: greedy; > 0: sampled from softmax(logits / temperature)
    uint32_t seed           = 0;  // sampling: every generation starts from this seed
    // transformers' repetition_penalty: the logit of every token already in the sequence (prompt
    // and answer) is divided by it when positive, multiplied when negative. 1: off. A model's
    // generation_config.json may set one, which transformers then applies without being asked.
    float repeat_penalty = 1;
    // Sampling only, as transformers' warpers after the temperature: the top_k most likely tokens
    // (transformers' default 50; 0: all), then the smallest set reaching top_p of the mass.
    int   top_k = 50;
    float top_p = 1;
};

struct embed_params {
    prompt_type      prompt       = prompt_type::describe;
    std::vector<int> layers       = { -1 };  // Hugging Face hidden_states indices; negative from the end
    int              token        = -1;      // -1: last prompt token; k >= 0: absolute position k; -k: from the end
    positions        position     = positions::sequential;
    bool             reuse_prefix = true;  // compute system turn + image once for all conditions
    // false (safe): a condition is plain text, "<|im_end|>" in it stays text. true: special-token
    // text in a condition becomes control tokens, as the reference's processor tokenizes.
    bool parse_special = false;
    // first_output and mean_output generate (token is then unused); so does input_last when
    // `generate` is set, which the generative baseline asks for its text.
    embed_source      source   = embed_source::input_last;
    bool              generate = false;
    generation_params generation;
};

// Vectors of one (image, condition): vectors[i] belongs to layers[i] of the resolved layer list.
struct condition_vectors {
    std::optional<std::string>      condition;
    std::string                     instruction;
    int                             n_tokens = 0;  // prompt length in tokens, image included
    std::vector<std::vector<float>> vectors;
    // When generating: the generated token ids (the stop token included when produced), those
    // tokens decoded with special tokens skipped (the answer), and the whole sequence, prompt and
    // answer, decoded so (what the reference's generative baseline embeds). Invalid UTF-8 becomes
    // U+FFFD, as Hugging Face's decode does.
    std::vector<int32_t> generated;
    std::string          answer;
    std::string          text;
};

// Milliseconds spent in the last embed() call.
struct timings {
    double              encode_ms = 0;    // vision encoder (summed over encodes)
    double              prefix_ms = 0;    // text + image tokens of the shared prefix (summed)
    std::vector<double> suffix_ms;        // per condition: its own tokens
    double              generate_ms = 0;  // generation (summed over conditions)
    int                 n_generated = 0;  // tokens generated (summed over conditions)
    int                 most_images = 0;  // most images evaluated together (embed_many)
    double              total_ms    = 0;
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

    // The image as dior hands it to mtmd: resized as the family's Hugging Face image processor
    // resizes it (Qwen-VL, GLM-4.1V, Mistral 3, Gemma 3), or as it is where mtmd preprocesses.
    virtual image processor_input(const image & img) const = 0;

    // Token ids of the whole prompt for an image; image tokens appear as -1. For tests and tools.
    virtual std::vector<int32_t> prompt_tokens(const image & img, const std::string & instruction,
                                               bool parse_special = false) = 0;

    // One image, K conditions (nullopt = the unconditional prompt). Returns one entry per condition.
    virtual std::vector<condition_vectors> embed(const image &                                   img,
                                                 const std::vector<std::optional<std::string>> & conditions,
                                                 const embed_params &                            params) = 0;

    // Several images, the same conditions: one entry per image, the vectors embed() gives for it
    // (on a CPU within relative L2 1e-5 with F32 weights, 1e-4 with F16: attention sums over a
    // cache the images share are grouped differently; the vision encoder is bit-equal), computed in
    // shared forward passes, up to model_params::image_batch images at a time. Generation and
    // reuse_prefix = false go one image at a time. Throws dior::error naming the image at fault.
    virtual std::vector<std::vector<condition_vectors>> embed_many(
        const std::vector<image> & images, const std::vector<std::optional<std::string>> & conditions,
        const embed_params & params) = 0;

    virtual const timings & last_timings() const = 0;

    // Images embed_many evaluates together: model_params::image_batch, resolved when it was 0.
    virtual int image_batch() const = 0;
};

// "auto" -> 0, a count >= 1 -> itself; dior::error otherwise (--image-batch).
int parse_image_batch(const std::string & text);

// The engine build (llama.cpp version, commit, our patches, backend), recorded with every setting.
std::string engine_version();

// Settings OpenBLAS and OpenMP read only when they load, that suit this machine and ggml's use of
// them, among those the environment does not set already (a program sets them and starts again):
// - OPENBLAS_CORETYPE ("Haswell", "SkylakeX") when OpenBLAS did not recognise this CPU and fell
//   back to generic kernels although the CPU has AVX2 or AVX-512;
// - OPENBLAS_THREAD_TIMEOUT=4 with OpenBLAS's own threads, which otherwise spin after each product
//   and take the cores that ggml's threads need between products;
// - GOMP_SPINCOUNT=3000 where libgomp is loaded and OMP_WAIT_POLICY is unset: ggml's OpenMP threads
//   otherwise spin for milliseconds after each part of a graph, on the cores OpenBLAS needs.
std::vector<std::pair<std::string, std::string>> startup_environment();

// ---------------------------------------------------------------------------------------------
// Baselines: CLIP (tokenizer, model) and InDiReCT (SPEC 2)
// ---------------------------------------------------------------------------------------------

// CLIP's BPE tokenizer as Hugging Face's CLIPTokenizerFast (the reference's CLIPProcessor) runs it:
// lower-cased, whitespace collapsed, split into words, byte-level BPE with "</w>" ending each word,
// <|startoftext|> ... <|endoftext|> around, truncated to max_length (CLIP's context, 77).
class clip_tokenizer {
  public:
    // tokens: the vocabulary in id order; merges: "a b" lines in rank order.
    clip_tokenizer(const std::vector<std::string> & tokens, const std::vector<std::string> & merges);
    ~clip_tokenizer();
    std::vector<int32_t> encode(const std::string & text, size_t max_length = 77) const;
    int32_t              bos() const;
    int32_t              eos() const;

  private:
    struct impl;
    std::unique_ptr<impl> p_;
};

// CLIP (SPEC 2), both towers and projections on ggml, from one GGUF written by
// tools/convert-clip/convert_clip_to_gguf.py: get_image_features / get_text_features of Hugging
// Face's CLIPModel, unnormalised, with the preprocessing of the reference's CLIPProcessor.
struct clip_params {
    std::string path;              // the GGUF
    int         n_threads = 0;     // 0: all hardware threads (CPU)
    bool        use_gpu   = true;  // the best device of the ggml build; false: the CPU
};

class clip_model {
  public:
    static std::unique_ptr<clip_model> load(const clip_params & params);  // dior::error naming the file
    virtual ~clip_model() = default;

    virtual int                    projection_dim() const = 0;  // width of both feature kinds
    virtual int                    image_size() const     = 0;  // the vision tower's input side
    virtual std::string            name() const           = 0;  // the model id recorded at conversion
    virtual const clip_tokenizer & tokenizer() const      = 0;

    // CLIPImageProcessor (slow, as the reference's AutoProcessor picks for CLIP): shortest edge
    // resized with Pillow's bicubic, centre crop, rescale and normalize; planar (3, H, W) float32.
    virtual std::vector<float> preprocess(const image & img) const                           = 0;
    virtual std::vector<float> image_features(const image & img)                             = 0;
    virtual std::vector<float> image_features_from_pixels(const std::vector<float> & pixels) = 0;
    // Tokenized (77 at most) and pooled at the first end-of-text token, as CLIPTextModel does.
    virtual std::vector<float> text_features(const std::string & text)                  = 0;
    virtual std::vector<float> text_features_from_ids(const std::vector<int32_t> & ids) = 0;
};

// Sentence encoders (the generative baseline's text side, SPEC 2): a sentence-transformers model
// converted by tools/convert-sentence (llama.cpp's converter + the modules after the pooling);
// the transformer and its pooling run in llama.cpp, then the modules as sentence-transformers
// applies them. BERT-family models with mean pooling and Normalize (e.g. all-MiniLM-L6-v2).
struct sentence_encoder_params {
    std::string path;
    int         n_threads    = 0;
    int         n_gpu_layers = -1;
    bool        verbose      = false;
};

class sentence_encoder {
  public:
    static std::unique_ptr<sentence_encoder> load(const sentence_encoder_params & params);
    virtual ~sentence_encoder()                                           = default;
    virtual int                  n_embd() const                           = 0;
    virtual int                  max_seq_length() const                   = 0;
    virtual std::string          name() const                             = 0;  // the id given at conversion
    virtual std::vector<int32_t> tokenize(const std::string & text) const = 0;  // special tokens added, truncated
    virtual std::vector<float>   encode(const std::string & text)         = 0;  // SentenceTransformer.encode
};

// DimRedRecon: fits U (components x d) on normalised text features x_i (rows of `texts`) so that
// x -> v = normalize(U x) -> xhat = normalize(U^T v) loses the least mean angle arccos(x . xhat),
// by full-batch Adam (PyTorch's defaults but lr), keeping the best U and stopping after
// `patience` iterations without improvement. The arccos is made safe near +-1 by clamping its
// argument to [-1 + k_dimredrecon_clamp, 1 - k_dimredrecon_clamp] (no gradient beyond).
constexpr double k_dimredrecon_clamp = 1e-6;

struct dimredrecon_params {
    int      components = 128;
    double   lr         = 0.01;
    int      patience   = 100;
    int      max_iter   = 100000;  // a bound only; the fit stops on patience long before
    uint64_t seed       = 0;       // U's initialisation N(0, 0.1^2) when no initial U is given
};

struct dimredrecon_result {
    matrix              u;     // the best U
    std::vector<double> loss;  // the loss at every iteration (before its Adam step)
    int                 best_iter = 0;
    double              best_loss = 0;
};

dimredrecon_result fit_dimredrecon(const matrix & texts, const dimredrecon_params & params = {},
                                   const matrix * initial_u = nullptr);
// The mean angle at U; fills the gradient dloss/dU when grad is given.
double dimredrecon_loss(const matrix & texts, const matrix & u, matrix * grad = nullptr);
// The L2-normalised CLIP text features of `texts`, one row each: what DimRedRecon is fitted on.
matrix indirect_text_matrix(clip_model & m, const std::vector<std::string> & texts);
// normalize(U . normalize(image_feature)): InDiReCT's vector of an image.
std::vector<float> indirect_embed(const matrix & u, const std::vector<float> & image_feature);

// ---------------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------------

// NumPy's .npy format (version 1.0, little-endian '<f4', C order). The file is written beside and
// renamed into place, so a reader never sees half a file.
void   write_npy(const std::string & path, const matrix & m);
matrix read_npy(const std::string & path);

// ---------------------------------------------------------------------------------------------
// Store: an SQLite file holding settings, images, vectors and failures
// ---------------------------------------------------------------------------------------------

// Everything that decides a vector besides the image. Two runs with equal settings share rows;
// any difference makes a new setting, so vectors of different settings never mix.
struct setting {
    std::string                dataset;       // registry name, or the folder's name for ad-hoc runs
    std::string                model_id;      // e.g. "Qwen/Qwen2.5-VL-7B-Instruct" (names exports)
    std::string                model_sha256;  // content hashes of the GGUF files
    std::string                mmproj_sha256;
    std::string                engine;               // engine_version() of the build that computed it
    std::string                prompt_type;          // "describe", ... ("" for imported vectors of unknown type)
    std::optional<std::string> condition;            // nullopt: the unconditional prompt
    std::string                prompt;               // the instruction text
    int                        layer          = -1;  // HF hidden_states index as requested (-1 = final)
    int                        token          = -1;
    int                        image_max_size = 700;
    std::string                positions      = "sequential";
    // The method that made the vectors: "input_last" (DIOR), "clip", "indirect" (CLIP features
    // projected by a U fitted on the condition's texts), as the reference names its sources.
    // "first_output" / "mean_output" (DIOR at generated tokens) and "generative" (the answer
    // embedded by a sentence encoder) generate first.
    std::string source = "input_last";
    std::string engine_options;  // e.g. "kv=f32 fa=0"
    int         n_embd     = 0;
    int         components = 0;  // InDiReCT: the rows of U (the reference's num_components)
    // Generation (0 tokens: none), see generation_params.
    int      max_new_tokens = 0;
    double   temperature    = 0;  // 0: greedy
    uint32_t seed           = 0;  // sampling only
    double   repeat_penalty = 1;
    // generative: the sentence encoder (its id, e.g. "sentence-transformers/sentence-t5-base",
    // and its GGUF's hash) and what it embeds: "whole" (prompt + answer decoded, the reference's
    // behaviour) or "answer" (the generated tokens only).
    std::string text_encoder, text_encoder_sha256, text_mode;
    // informational, not part of the identity
    std::string model_path, mmproj_path;
};

struct stored_setting {
    int64_t id = 0;
    setting s;
    int64_t n_vectors = 0;
};

struct stored_failure {
    std::string path;
    std::string reason;
    std::string time;
};

class store {
  public:
    // Opens or creates the file (WAL mode); read_only opens an existing store for reading only
    // (a read-only file or folder is fine). Throws store_error naming the path and what to do: an
    // empty path, a file that is not a dior store, a newer schema, a damaged file.
    static std::unique_ptr<store> open(const std::string & path, bool read_only = false);
    virtual ~store() = default;

    virtual int64_t                     add_setting(const setting & s) = 0;  // existing id when equal
    virtual std::vector<stored_setting> settings() const               = 0;

    // Settings among `ids` that have no vector for this image yet.
    virtual std::vector<int64_t> missing(const std::vector<int64_t> & ids, const std::string & image_path) const = 0;

    // All vectors of one image in one transaction; clears a failure recorded for it.
    struct image_info {
        std::string path, sha256;
        int64_t     bytes = 0;
        int         width = 0, height = 0;  // after downscaling
        int64_t     mtime_ns = -1;          // the file's modification time when embedded (-1: unknown)
    };
    virtual std::optional<image_info> image(const std::string & path) const = 0;
    // Drops an image and all its vectors (its file changed since they were computed).
    virtual void forget_image(const std::string & path) = 0;
    // SQLite's integrity check: {"ok"} for a sound file, else the problems found.
    virtual std::vector<std::string> check() const                                                                = 0;
    virtual void put(const image_info & img, const std::vector<std::pair<int64_t, std::vector<float>>> & vectors) = 0;
    // Many images in one transaction: all of them, or none.
    struct image_vectors {
        image_info                                          image;
        std::vector<std::pair<int64_t, std::vector<float>>> vectors;
        std::vector<std::pair<int64_t, std::string>>        texts;  // generated text, by setting
    };
    virtual void put_all(const std::vector<image_vectors> & images) = 0;

    virtual void                        put_failure(const std::string & path, const std::string & reason) = 0;
    virtual std::vector<stored_failure> failures() const                                                  = 0;
    virtual std::vector<image_info>     images() const                                                    = 0;

    // The vectors of a setting, rows ordered by image path; paths receives the image paths, texts
    // the generated text stored with each ("" where none), all read from one snapshot.
    virtual matrix vectors(int64_t setting_id, std::vector<std::string> * paths,
                           std::vector<std::string> * texts = nullptr) const = 0;

    // SHA-256 of a file, cached in the store by (path, size, modification time).
    virtual std::string file_sha256(const std::string & path) = 0;

    // Adds another store's settings, images, vectors and failures, in one transaction. Refused
    // (dior::error listing the first conflicts; nothing written) where the two disagree: the same
    // image and setting with other vector bytes, the same image path with other file contents, or
    // settings equal but for the hashes of their model files.
    struct merge_report {
        size_t settings_added = 0, settings_known = 0;
        size_t images_added = 0, vectors_added = 0;
        size_t vectors_known  = 0;  // already here, bit for bit
        size_t failures_added = 0;
    };
    virtual merge_report merge(const std::string & other_path) = 0;
};

std::string sha256_hex(const void * data, size_t size);
// SHA-256 of a file (OpenSSL), remembered in a per-user cache keyed by path, size, modification
// and status-change times and inode (~/.cache/dior.cpp/file-hashes.db; DIOR_HASH_CACHE=FILE or
// off), so that a model is read for its hash once. Safe to call from several threads; throws
// dior::error when `cancel` becomes true while it reads.
std::string sha256_file(const std::string & path, const std::atomic<bool> * cancel = nullptr);

// The reference's directory name of a setting (SPEC section 5), e.g.
// "cub200-Qwen_Qwen2.5-VL-7B-Instruct-describe-bird_species-num_layer=-1-num_token=-1-embedsrc=input_last".
std::string reference_dir_name(const setting & s);

// One vector file of that layout ({"embedding": [...], "prompt": ...}), checked: a non-empty array
// of numbers that fit a float32. Throws dior::error naming `source`; fills the string fields
// given (the generative baseline's files also hold "generated_text" and "text_encoder").
std::vector<float> parse_reference_json(const std::string & text, const std::string & source,
                                        std::string * prompt = nullptr, std::string * generated_text = nullptr,
                                        std::string * text_encoder = nullptr);

// The inverse: fills dataset, model_id (as the name spells it: a "/" that became "_" cannot be
// told apart), prompt_type, condition ("_" back to spaces; an aspect of the dataset registry keeps
// its own spelling), layer, token and source; for the baselines and generated sources what their
// names hold (components; max_new_tokens, temperature, text_encoder with "/" as "_").
// nullopt if it does not parse.
std::optional<setting> parse_reference_dir_name(const std::string & name);

// ---------------------------------------------------------------------------------------------
// Methods: DIOR, CLIP, InDiReCT behind one interface
// ---------------------------------------------------------------------------------------------

// A method turns one image into the vectors of its settings. Listing, the store, resume,
// progress, export, import and evaluation are written once around this interface (dior embed);
// the setting's `source` records which method made a vector.
class method {
  public:
    virtual ~method() = default;
    // The settings this method fills, over `base` (dataset, model identity, engine build, image
    // size limit and engine options already set by the caller).
    virtual std::vector<setting> settings(const setting & base) const = 0;
    struct output {
        std::vector<float> vector;
        std::string        text;  // what a generating method generated ("" otherwise), stored beside
    };
    // The vectors of one image for settings()[i], for each i in `which` (in that order).
    virtual std::vector<output> embed(const image & img, const std::vector<size_t> & which) = 0;
    // How many images embed_many takes at a time to good effect (runs hand it that many).
    virtual size_t batch_size() const { return 1; }
    // The same for several images, one entry per image; a method that can evaluate images together
    // (DIOR, up to model_params::image_batch) overrides this loop.
    virtual std::vector<std::vector<output>> embed_many(const std::vector<image> &  imgs,
                                                        const std::vector<size_t> & which) {
        std::vector<std::vector<output>> out;
        for (const image & img : imgs) {
            out.push_back(embed(img, which));
        }
        return out;
    }
};

// DIOR: one setting per (condition, layer); the image prefix computed once for all conditions.
// With a generated source (first_output, mean_output) the answer is stored as the text.
std::unique_ptr<method> make_dior_method(model & m, std::vector<std::optional<std::string>> conditions,
                                         const embed_params & params);
// The generative baseline: the LVLM answers each condition's DIOR prompt (params.generation), a
// sentence encoder embeds the text: "whole" (the prompt and the answer decoded, as the reference
// does) or "answer" (the generated tokens only). One setting per condition; the text is stored.
std::unique_ptr<method> make_generative_method(model & m, sentence_encoder & encoder,
                                               std::vector<std::optional<std::string>> conditions,
                                               const embed_params & params, const std::string & text_mode);
// CLIP: one setting, the unnormalised get_image_features vector.
std::unique_ptr<method> make_clip_method(clip_model & m);

// InDiReCT's condition texts of one (dataset, aspect): the template filled with every item.
struct indirect_texts {
    std::string              dataset, key, aspect;  // e.g. "movie_posters", "genre", "movie genre"
    std::string              source;                // e.g. "a poster of a {item} movie (21 items)"
    std::vector<std::string> texts;
};
// Reads the reference's layout ({"configs": [{"dataset", "aspect", "template", "items"}]}, as
// data/reference/indirect_texts.json ships it); dior::error naming the file.
std::vector<indirect_texts> load_indirect_texts(const std::string & path);
// The prompt an InDiReCT setting records: the texts' source and a hash of the texts, which decide U.
std::string indirect_setting_prompt(const indirect_texts & t);
// InDiReCT: one setting per aspect, U fitted (DimRedRecon) on the aspect's normalised CLIP text
// features when the method is made.
std::unique_ptr<method> make_indirect_method(clip_model & m, const std::vector<indirect_texts> & aspects,
                                             const dimredrecon_params & params);

// ---------------------------------------------------------------------------------------------
// Datasets (the reference's five; SPEC section 3)
// ---------------------------------------------------------------------------------------------

struct dataset_info {
    std::string                             name;        // "synthetic_cars", "cars196", ...
    std::vector<std::optional<std::string>> aspects;     // nullopt (no condition) first
    size_t                                  images = 0;  // how many the reference evaluates
};

const std::vector<dataset_info> & datasets();
const dataset_info *              find_dataset(const std::string & name);  // nullptr if unknown

// InDiReCT's aspect keys, as the reference's texts and folder names spell them: ("movie_posters",
// "movie genre") <-> "genre", ("deepfashion", "texture type") <-> "texture"; other aspects with
// spaces <-> underscores.
std::string indirect_aspect_key(const std::string & dataset, const std::string & aspect);
std::string indirect_aspect_name(const std::string & dataset, const std::string & key);

// The images of a dataset folder as the reference lists them: the folder's own files (not
// recursive) ending in .png, .jpg, .jpeg, .bmp or .gif (any case), sorted by name.
std::vector<std::string> list_dataset_images(const std::string & folder);

// ---------------------------------------------------------------------------------------------
// Runs: images x one method's settings -> the store, resumable (src/pipeline)
// ---------------------------------------------------------------------------------------------

// Image inputs: files, folders (their image files, sorted, not recursive) and a list file (one
// path per line, relative to the list's folder; # comments). Missing files are kept: a run
// reports them as failures of their own.
std::vector<std::string> collect_images(const std::vector<std::string> & paths, const std::string & list_file = "");
// Conditions from conditions, a conditions file (one per line) and `unconditional`, the
// unconditional prompt (nullopt) first. None given: the unconditional prompt alone.
std::vector<std::optional<std::string>> collect_conditions(const std::vector<std::string> & conditions,
                                                           const std::string &              conditions_file = "",
                                                           bool                             unconditional   = false);
// Layer specs: "all" or integers, repeatable or comma-separated; none: { -1 }.
std::vector<int> parse_layers(const std::vector<std::string> & specs, const model & m);
// The options of a model that change vectors, as recorded with every setting ("kv=f32 fa=0 ...").
std::string engine_options_text(const model_params & params);

// The checks of a model's options that every run makes (threads, GPU layers, context, batch),
// with dior embed's messages; dior::error. The Python Embedder makes them too.
void check_model_params(const model_params & params);

// What to embed, with what, into which store. The same options as `dior embed` (README): every
// check below is made, with the same messages, before anything is loaded or written.
struct run_options {
    // The images: inputs (files, folders) and list_file (collect_images), or a dataset of the
    // reference in datasets_dir/dataset; shard "I/N" keeps positions I, I+N, ... of that listing.
    std::vector<std::string> inputs;
    std::string              list_file, dataset, datasets_dir, shard;
    std::string              name;  // the image set's name (default: the dataset, else the folder's name)
    // nullopt: a dataset's aspects, else the unconditional prompt alone; an empty list is an error.
    std::optional<std::vector<std::optional<std::string>>> conditions;

    std::string              method = "dior";  // dior, clip, indirect, generative
    model_params             model;            // dior, generative: the LVLM (files, engine options)
    std::string              model_id;         // default: the model file's stem (CLIP: its recorded id)
    std::string              prompt_type = "describe";
    std::vector<std::string> layers;  // parse_layers specs; none: the last
    int                      token          = -1;
    int                      image_max_size = 700;
    std::string              positions;  // sequential or native; default: sequential, native for generative
    bool                     reuse_prefix  = true;
    bool                     parse_special = false;
    // DIOR's vector source and generation (first_output, mean_output, generative)
    std::string source         = "input_last";
    int         max_new_tokens = 16;
    float       temperature    = -1;  // -1: not given (1 when sampling, as transformers)
    bool        do_sample      = false;
    int         top_k          = 50;
    float       top_p          = 1;
    uint32_t    seed           = 0;
    float       repeat_penalty = 1;
    std::string text_encoder, text_encoder_id;  // generative: the sentence encoder GGUF and its id
    std::string embed_text = "whole";           // generative: whole or answer
    // clip, indirect
    std::string clip_model;
    std::string indirect_texts;  // default: the reference's (data/reference/indirect_texts.json)
    int         components    = 128;
    uint64_t    indirect_seed = 0;

    std::string  store = "embeddings.db";  // created if missing, appended to otherwise
    image_limits limits;
};

// What a run reports while it works; every callback is optional and called on the run's thread.
struct run_events {
    // The model files, just before they are loaded (after every check): e.g. a download from the
    // hub into model.model_path / mmproj_path.
    std::function<void(model_params & model)> fetch_model;
    // Before the first image (the settings are in the store): how many images the run handles.
    std::function<void(size_t total)> start;
    // After each image: done (embedded, skipped or failed) of total, work (embedded or failed:
    // those that cost time), the image's path.
    std::function<void(size_t done, size_t total, size_t work, const std::string & path)> progress;
    // A line about one image: "error: PATH: REASON", "changed since it was embedded, ...".
    std::function<void(const std::string & line)> message;
    // Set (by a signal handler, a Python callback...) to stop after the image being embedded: it is
    // committed, and a later run with the same options resumes after it.
    const std::atomic<bool> * cancel = nullptr;
};

struct run_failure {
    std::string image, reason;
};

struct run_result {
    size_t                   listed = 0;                                         // images listed, before the shard
    size_t                   images = 0, embedded = 0, skipped = 0, failed = 0;  // skipped: already stored
    std::vector<run_failure> failures;                                           // this run's, in listing order
    std::vector<setting>     settings;                                           // the method's settings...
    std::vector<int64_t>     setting_ids;                                        // ...and their ids in the store
    size_t                   n_conditions = 0;
    int                      width        = 0;  // of every vector
    double                   seconds      = 0;
    double                   hash_seconds = 0;      // hashing the model files, beside their loading
    bool                     cancelled    = false;  // events.cancel stopped it before the last image
    bool                     no_images    = false;  // a shard that holds none of the images
};

// One step of every run, of the Python Embedder, of Ray workers and of the service's queries:
// decoded images in, for each image the vectors of the method's settings()[i], i in `which`. This
// is where batches of images are formed for the engine.
std::vector<std::vector<method::output>> embed_batch(method & m, const std::vector<image> & images,
                                                     const std::vector<size_t> & which);

// Embeds every listed image that the store does not hold yet for every setting of the method
// (an image whose file changed since is embedded again), one transaction per image. A bad image is
// a failure of its own (recorded in the store, reported through events.message) and the run goes
// on; a store that cannot be written throws dior::store_error (what was committed stays).
// Bad options, models or an empty listing throw dior::error before anything is written.
run_result run_embed(const run_options & options, const run_events & events = {});

// ---------------------------------------------------------------------------------------------
// Labels (SPEC section 3) and evaluation (SPEC section 4), as pytorch-metric-learning computes it
// ---------------------------------------------------------------------------------------------

// The name the reference gives an image's vector file, by which labels are matched: the file name
// with its last extension replaced by ".json" ("a/L.A.T.H.C._Tee-img_1.jpg" -> "L.A.T.H.C._Tee-img_1.json";
// a name already ending in ".json" stays as it is). Names with dots stay whole.
std::string reference_json_name(const std::string & image_path);

// Labels of one aspect, as the reference's evaluation reads them (SPEC section 6).
struct aspect_labels {
    std::string aspect;  // e.g. "bird species"
    // reference_json_name(image) -> label text (deepfashion, movie_posters, cub200, cars196).
    std::map<std::string, std::string> by_name;
    // synthetic_cars: labels paired with the images by position, the i-th image in the order of
    // their reference JSON names getting by_position[i].
    std::vector<std::string> by_position;
    // The metadata's rows in file order, (JSON name, label): the order in which the reference's
    // evaluate.py reads them (deepfashion, movie_posters, cars196; a name listed twice is scored
    // twice, as there). Empty where the reference lists the vector files instead (cub200).
    std::vector<std::pair<std::string, std::string>> rows;
    std::string                                      rows_from;  // the metadata file's name
};

// The label of every image of `images` (any order) for an aspect; nullopt where it has none.
std::vector<std::optional<std::string>> label_images(const aspect_labels &            labels,
                                                     const std::vector<std::string> & images);

// Pandas reads these cells as NaN (its default na_values); the reference's labels then put all of
// them in one class, which dior names by this text.
constexpr const char * k_missing_label = "NaN";

struct label_sources {
    std::string              metadata_dir;        // deepfashion_metadata.csv, movie_posters_metadata.tsv (shipped)
    std::string              synthetic_cars_csv;  // the synthetic cars metadata CSV (not shipped)
    std::string              cars196_labels;      // "file,class" rows of the Stanford Cars test split (not shipped)
    std::vector<std::string> images;              // cub200: the image names to label (labels come from names)
};

// Every labelled aspect of a dataset. Throws dior::error naming a missing file and what to pass.
std::vector<aspect_labels> load_labels(const std::string & dataset, const label_sources & src);

// The colour name the reference gives an RGB triple (webcolors 1.5): the CSS3 name that matches
// exactly, if any ("grey" spellings, "cyan", "magenta", as its reversed table answers), else the
// nearest CSS 2.1 name by squared RGB distance, the later name in webcolors' table winning a tie.
std::string css_color_name(int r, int g, int b);
// Synthetic cars: rgb = hsv_to_rgb((hue + 0.5) mod 1, 0.5 sat, 0.5 val) * 255, truncated.
std::string synthetic_car_color(double hue, double sat, double val);

// pytorch-metric-learning's AccuracyCalculator (2.9, defaults) on raw vectors: exact L2 nearest
// neighbours with the query itself left out, ties in index order; queries whose label occurs once
// are left out of the retrieval metrics. Values are fractions (the reference prints them x100).
struct accuracy {
    double mean_average_precision_at_r = 0;
    double precision_at_1              = 0;
    double NMI                         = 0;
    double AMI                         = 0;
    size_t n_queries                   = 0;  // rows with a label that occurs at least twice
    // NMI and AMI again with k-means started from each of eval_params::spread_seeds: faiss picks
    // the starting centres by row position, so one seed's score can be an accident of the start.
    std::vector<double> NMI_by_seed, AMI_by_seed;
};

struct eval_params {
    bool             clustering  = true;  // NMI and AMI (k-means with k = number of labels)
    int              kmeans_iter = 20;    // as PML's FaissKMeans
    int              kmeans_seed = 1234;  // faiss' default, the reference's value
    std::vector<int> spread_seeds;        // further k-means seeds for NMI_by_seed / AMI_by_seed
};

accuracy evaluate(const matrix & x, const std::vector<int> & labels, const eval_params & params = {});

// The order in which a setting's rows are scored. k-means takes its starting centres by row
// position, so NMI and AMI depend on it, and so do P@1 and mAP@R where distances tie exactly.
enum class row_order {
    reference,  // as the reference's evaluate.py reads them: the metadata's row order (deepfashion,
                // movie_posters, cars196), the folder's listing order (cub200: glob, unsorted),
                // the vector files' sorted names (synthetic_cars, paired with metadata rows)
    sorted,     // by vector file name (reference_json_name), one row per image
};

// The rows of one aspect to score, in order.
struct scored_rows {
    std::vector<size_t>      rows;                  // indices into the setting's images; one may occur twice
    std::vector<std::string> labels;                // the label of each row
    std::vector<std::string> unlabeled;             // images without a label for this aspect, left out
    std::vector<std::string> missing;               // metadata names without a vector (evaluate.py fails there)
    std::string              order;                 // the order used, in words (recorded in the results)
    bool                     as_reference = false;  // the order is the one evaluate.py reads
};
// images: the setting's vector files or images; `listed` says they come in their folder's listing
// order (a tree in the reference's layout), not in name order (a store keeps no folder order).
scored_rows rows_to_score(const aspect_labels & labels, const std::vector<std::string> & images, row_order order,
                          bool listed);

// The pieces, for tests and tools.
void             knn(const matrix & x, size_t k, std::vector<int64_t> & indices);  // n x k, self excluded
double           normalized_mutual_info(const std::vector<int> & a, const std::vector<int> & b);
double           adjusted_mutual_info(const std::vector<int> & a, const std::vector<int> & b);
std::vector<int> kmeans(const matrix & x, int k, int niter, int seed);

// ---------------------------------------------------------------------------------------------
// Search: the nearest stored images of a query, under one setting
// ---------------------------------------------------------------------------------------------

// l2: Euclidean distance, the metric the evaluation ranks by; cosine: 1 - cosine similarity.
enum class metric { l2, cosine };
const char *          metric_name(metric m);  // "l2", "cosine"
std::optional<metric> parse_metric(const std::string & name);

struct neighbor {
    size_t row      = 0;  // row of the indexed matrix (store::vectors orders rows by image path)
    float  distance = 0;
};

// Exact search (every stored vector is compared; one OpenBLAS matrix-vector product per query).
// Throws dior::error for vectors holding NaN or infinities.
class vector_index {
  public:
    vector_index(matrix vectors, metric m);
    ~vector_index();
    vector_index(vector_index &&) noexcept;
    vector_index & operator=(vector_index &&) noexcept;

    size_t size() const;
    size_t dim() const;
    metric kind() const;
    // The indexed vector of a row (with cosine: scaled to unit length).
    std::vector<float> vector(size_t row) const;

    // The k nearest rows to the query (dim values), nearest first, equal distances in row order;
    // `exclude` (the query's own row, when it is stored) is left out. Safe to call from several
    // threads at once. Distances are measured directly (not from |a|^2 + |b|^2 - 2 a.b, which loses
    // digits between close vectors). dior::error when dim is not the index's width.
    std::vector<neighbor> search(const float * query, size_t dim, size_t k,
                                 std::optional<size_t> exclude = std::nullopt) const;

  private:
    struct impl;
    std::unique_ptr<impl> p_;
};

// ---------------------------------------------------------------------------------------------
// Downloads: models from the Hugging Face hub (into its cache layout), the reference's datasets
// ---------------------------------------------------------------------------------------------

// Bytes of one file so far; total is 0 when not known.
using download_progress = std::function<void(const std::string & file, uint64_t done, uint64_t total)>;

// Where and how the hub is reached. Empty fields take the variables huggingface_hub reads:
// endpoint HF_ENDPOINT (https://huggingface.co); cache HF_HUB_CACHE, else HF_HOME/hub, else
// XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub; token HF_TOKEN, else the file
// HF_TOKEN_PATH, else HF_HOME/token; offline when HF_HUB_OFFLINE is 1, true, yes or on.
struct hub_options {
    std::string               endpoint;
    std::string               cache_dir;
    std::string               token;
    bool                      offline = false;
    download_progress         progress;
    const std::atomic<bool> * cancel = nullptr;
};

// A model repository's files in the cache (paths of its snapshot).
struct hub_model {
    std::string              repo, commit;
    std::string              model;        // the text model (its first part when split)
    std::vector<std::string> model_parts;  // every part of a split model, in order
    std::string              mmproj;       // empty when the repository has none
};

// "owner/name[:QUANT]", as llama.cpp's -hf spells it: the GGUF whose name holds QUANT (default
// Q4_K_M, else Q8_0, else the first), all its parts, and the mmproj nearest to it in bits.
// Downloads what the cache lacks (resuming partial files, each checked against the hub's SHA-256)
// into the huggingface_hub cache layout, so other tools share the files. Offline, or when the hub
// cannot be reached, answers from the cache. dior::error names the repository, the file and what
// to do (a gated repository: accept its terms and set HF_TOKEN).
hub_model hub_fetch_model(const std::string & spec, const hub_options & opts = {});

// The cache directory the options resolve to.
std::string hub_cache_dir(const hub_options & opts = {});

// The reference's datasets (SPEC section 3), as scripts/download_datasets.sh of the reference
// fetches them: cub200 (classes 101-200, flattened) and movie_posters are downloaded; the others
// need manual steps (cars196: Kaggle login; deepfashion: its terms, then img.zip is flattened;
// synthetic_cars: a mirror).
struct dataset_download_options {
    std::string               datasets_dir = "datasets";
    std::string               url;     // a mirror of the archive instead of the original host
    std::string               sha256;  // the archive's SHA-256, when a mirror serves another archive
    download_progress         progress;
    const std::atomic<bool> * cancel = nullptr;
};

struct dataset_download_result {
    std::string folder;           // DIR/NAME
    size_t      images  = 0;      // image files in it
    bool        already = false;  // it was there: nothing was downloaded
    std::string manual_steps;     // for a dataset that cannot be fetched: what to do by hand
};

dataset_download_result download_dataset(const std::string & name, const dataset_download_options & opts);

// A dataset folder against what the reference's labels expect (SPEC section 3).
struct dataset_check_result {
    std::string              folder;
    size_t                   images = 0, expected = 0;  // expected 0: not known
    std::vector<std::string> missing;                   // expected images that are not there
    std::vector<std::string> extra;                     // images there that no label covers
    std::vector<std::string> notes;                     // what else was found (class counts, unreadable files)
    bool ok() const { return missing.empty() && extra.empty() && images > 0 && (expected == 0 || images == expected); }
};

dataset_check_result check_dataset(const std::string & name, const std::string & datasets_dir,
                                   const label_sources & labels);

}  // namespace dior
