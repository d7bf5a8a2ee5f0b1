// CLIP (both towers and projections, as Hugging Face's CLIPModel computes get_image_features and
// get_text_features) on ggml, from the one GGUF that tools/convert-clip writes.
//
//   image: pixels (3, H, W) -> patch conv -> [class; patches] + positions -> pre-LN -> encoder
//          -> post-LN of the class token -> visual projection
//   text:  ids -> token + position embeddings -> causal encoder -> final LN -> the first
//          end-of-text token -> text projection
//   encoder layer: x += attn(LN1(x)); x += fc2(act(fc1(LN2(x)))), act = quick_gelu or gelu (erf)
//
// It runs on the best device of the ggml build (the CPU here; a GPU in a CUDA, Vulkan or Metal
// build), in f32 on the weights' own types (f32, f16 or Q8_0 matrices). Activations are
// composed from exact f32 ops: ggml's gelu_quick goes through an f16 table.
#include "dior.h"
#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml-cpu.h"
#include "ggml.h"
#include "gguf.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <thread>

namespace dior {
namespace {

constexpr const char * k_arch = "dior-clip";

struct tower_hparams {
    int   hidden = 0, intermediate = 0, layers = 0, heads = 0;
    float eps        = 1e-5f;
    bool  quick_gelu = true;
};

struct layer_weights {
    ggml_tensor *ln1_w, *ln1_b, *q_w, *q_b, *k_w, *k_b, *v_w, *v_b, *o_w, *o_b, *ln2_w, *ln2_b, *fc1_w, *fc1_b, *fc2_w,
        *fc2_b;
};

class gguf_reader {
  public:
    gguf_reader(gguf_context * g, const std::string & path) : g_(g), path_(path) {}

    int64_t key(const std::string & k) const {
        const int64_t id = gguf_find_key(g_, k.c_str());
        if (id < 0) {
            throw error(path_ + ": no key " + k +
                        "; convert the model with tools/convert-clip/convert_clip_to_gguf.py");
        }
        return id;
    }

    uint32_t    u32(const std::string & k) const { return gguf_get_val_u32(g_, key(k)); }
    float       f32(const std::string & k) const { return gguf_get_val_f32(g_, key(k)); }
    bool        boolean(const std::string & k) const { return gguf_get_val_bool(g_, key(k)); }
    std::string str(const std::string & k) const { return gguf_get_val_str(g_, key(k)); }

    std::vector<float> f32_array(const std::string & k) const {
        const int64_t      id = key(k);
        std::vector<float> out;
        for (size_t i = 0; i < gguf_get_arr_n(g_, id); ++i) {
            out.push_back(((const float *)gguf_get_arr_data(g_, id))[i]);
        }
        return out;
    }

    std::vector<std::string> str_array(const std::string & k) const {
        const int64_t            id = key(k);
        std::vector<std::string> out;
        for (size_t i = 0; i < gguf_get_arr_n(g_, id); ++i) {
            out.emplace_back(gguf_get_arr_str(g_, id, i));
        }
        return out;
    }

  private:
    gguf_context * g_;
    std::string    path_;
};

class clip_impl final : public clip_model {
  public:
    explicit clip_impl(const clip_params & p) : params_(p) {
        gguf_init_params gp{ true, &ctx_w_ };
        gguf_ = gguf_init_from_file(p.path.c_str(), gp);
        if (!gguf_) {
            throw error(p.path + ": not a GGUF file that can be read");
        }
        const gguf_reader r(gguf_, p.path);
        const int64_t     arch = gguf_find_key(gguf_, "general.architecture");
        if (arch < 0 || std::string(gguf_get_val_str(gguf_, arch)) != k_arch) {
            throw error(p.path + ": not a dior CLIP model (general.architecture is not " + k_arch +
                        "); convert it with tools/convert-clip/convert_clip_to_gguf.py");
        }
        const std::string a = k_arch;
        read_tower(r, a + ".vision", vision_);
        read_tower(r, a + ".text", text_);
        image_size_    = (int)r.u32(a + ".vision.image_size");
        patch_size_    = (int)r.u32(a + ".vision.patch_size");
        projection_    = (int)r.u32(a + ".projection_dim");
        n_text_pos_    = (int)r.u32(a + ".text.max_position_embeddings");
        eos_id_        = (int32_t)r.u32(a + ".text.eos_token_id");
        model_id_      = r.str(a + ".model_id");
        shortest_edge_ = (int)r.u32(a + ".preprocess.shortest_edge");
        center_crop_   = r.boolean(a + ".preprocess.do_center_crop");
        crop_h_        = (int)r.u32(a + ".preprocess.crop_height");
        crop_w_        = (int)r.u32(a + ".preprocess.crop_width");
        rescale_       = r.f32(a + ".preprocess.rescale_factor");
        mean_          = r.f32_array(a + ".preprocess.image_mean");
        std_           = r.f32_array(a + ".preprocess.image_std");
        if (mean_.size() != 3 || std_.size() != 3 || crop_h_ != image_size_ || crop_w_ != image_size_) {
            throw error(p.path + ": preprocessing parameters do not fit the vision tower (crop " +
                        std::to_string(crop_h_) + "x" + std::to_string(crop_w_) + ", image size " +
                        std::to_string(image_size_) + ")");
        }
        tokenizer_ = std::make_unique<clip_tokenizer>(r.str_array("tokenizer.ggml.tokens"),
                                                      r.str_array("tokenizer.ggml.merges"));
        load_weights();
    }

    ~clip_impl() override {
        if (galloc_) {
            ggml_gallocr_free(galloc_);
        }
        if (buffer_) {
            ggml_backend_buffer_free(buffer_);
        }
        if (backend_) {
            ggml_backend_free(backend_);
        }
        if (ctx_w_) {
            ggml_free(ctx_w_);
        }
        if (gguf_) {
            gguf_free(gguf_);
        }
    }

    int                    projection_dim() const override { return projection_; }
    std::string            name() const override { return model_id_; }
    const clip_tokenizer & tokenizer() const override { return *tokenizer_; }
    int                    image_size() const override { return image_size_; }

    // CLIPImageProcessor (the slow one, which the reference's CLIPProcessor uses): the shortest edge
    // resized to shortest_edge (Pillow bicubic, the long side truncated), a centre crop, then
    // float32(x * rescale) and (x - mean) / std in float32, planar (3, H, W).
    std::vector<float> preprocess(const image & img) const override {
        const int   w = img.width, h = img.height;
        const int   s = std::min(w, h), l = std::max(w, h);
        const int   new_s = shortest_edge_, new_l = (int)((double)shortest_edge_ * l / s);
        const int   rw = w <= h ? new_s : new_l, rh = w <= h ? new_l : new_s;
        const image r   = (rw == w && rh == h) ? img : resize_bicubic(img, rw, rh);
        int         top = 0, left = 0, ch = rh, cw = rw;
        if (center_crop_) {
            if (rh < crop_h_ || rw < crop_w_) {
                throw error(img.source + ": image smaller than CLIP's crop after resizing");
            }
            top  = (rh - crop_h_) / 2;
            left = (rw - crop_w_) / 2;
            ch   = crop_h_;
            cw   = crop_w_;
        }
        if (ch != image_size_ || cw != image_size_) {
            throw error(img.source + ": preprocessed to " + std::to_string(cw) + "x" + std::to_string(ch) +
                        ", but the vision tower takes " + std::to_string(image_size_));
        }
        // HF multiplies in float64 by the Python float 1/255; the GGUF keeps its float32 rounding.
        const double       rescale = rescale_ == (float)(1.0 / 255.0) ? 1.0 / 255.0 : (double)rescale_;
        std::vector<float> out((size_t)3 * ch * cw);
        for (int c = 0; c < 3; ++c) {
            for (int y = 0; y < ch; ++y) {
                for (int x = 0; x < cw; ++x) {
                    const uint8_t u                    = r.rgb[((size_t)(y + top) * rw + (x + left)) * 3 + c];
                    const float   v                    = (float)((double)u * rescale);
                    out[((size_t)c * ch + y) * cw + x] = (v - mean_[c]) / std_[c];
                }
            }
        }
        return out;
    }

    std::vector<float> image_features(const image & img) override {
        return image_features_from_pixels(preprocess(img));
    }

    std::vector<float> image_features_from_pixels(const std::vector<float> & pixels) override {
        if (pixels.size() != (size_t)3 * image_size_ * image_size_) {
            throw error("CLIP: pixels of the wrong size");
        }
        graph         g(*this);
        ggml_tensor * inp = ggml_new_tensor_4d(g.ctx, GGML_TYPE_F32, image_size_, image_size_, 3, 1);
        ggml_set_input(inp);
        const int n_side = image_size_ / patch_size_, n_patches = n_side * n_side;
        // The patch embedding as im2col in F32 and one product: ggml_conv_2d builds its im2col in
        // F16 (unless the kernel is BF16), which rounds the pixels and the kernel to F16.
        ggml_tensor * kernel = w("vision_model.embeddings.patch_embedding.weight");  // [p, p, 3, hidden]
        ggml_tensor * cols   = ggml_im2col(g.ctx, kernel, inp, patch_size_, patch_size_, 0, 0, 1, 1, true,
                                           GGML_TYPE_F32);  // [3 p p, n_side, n_side, 1]
        cols                 = ggml_reshape_2d(g.ctx, cols, cols->ne[0], n_patches);
        ggml_tensor * x      = ggml_mul_mat(g.ctx, ggml_reshape_2d(g.ctx, kernel, cols->ne[0], vision_.hidden),
                                            cols);  // [hidden, n_patches], patches row by row
        ggml_tensor * cls    = ggml_reshape_2d(g.ctx, w("vision_model.embeddings.class_embedding"), vision_.hidden, 1);
        x                    = ggml_concat(g.ctx, cls, x, 1);  // [hidden, 1 + n_patches]
        x                    = ggml_add(g.ctx, x, w("vision_model.embeddings.position_embedding.weight"));
        x                    = layer_norm(g.ctx, x, "vision_model.pre_layrnorm", vision_.eps);
        x                    = encoder(g.ctx, x, "vision_model.encoder.layers.", vision_, false);
        x                    = ggml_view_2d(g.ctx, x, vision_.hidden, 1, x->nb[1], 0);  // the class token
        x                    = layer_norm(g.ctx, x, "vision_model.post_layernorm", vision_.eps);
        x                    = ggml_mul_mat(g.ctx, w("visual_projection.weight"), x);
        return g.run(x, inp, pixels.data(), pixels.size() * sizeof(float));
    }

    std::vector<float> text_features(const std::string & text) override {
        return text_features_from_ids(tokenizer_->encode(text, (size_t)n_text_pos_));
    }

    std::vector<float> text_features_from_ids(const std::vector<int32_t> & ids) override {
        if (ids.empty() || ids.size() > (size_t)n_text_pos_) {
            throw error("CLIP: a text of " + std::to_string(ids.size()) + " tokens (1.." + std::to_string(n_text_pos_) +
                        ")");
        }
        // Causal attention: the tokens after the first end-of-text token change nothing before it.
        size_t eos = 0;
        while (eos + 1 < ids.size() && ids[eos] != eos_id_) {
            ++eos;
        }
        const int     n = (int)eos + 1;
        graph         g(*this);
        ggml_tensor * inp = ggml_new_tensor_1d(g.ctx, GGML_TYPE_I32, n);
        ggml_set_input(inp);
        ggml_tensor * x   = ggml_get_rows(g.ctx, w("text_model.embeddings.token_embedding.weight"), inp);
        ggml_tensor * pos = w("text_model.embeddings.position_embedding.weight");
        x                 = ggml_add(g.ctx, x, ggml_view_2d(g.ctx, pos, text_.hidden, n, pos->nb[1], 0));
        x                 = encoder(g.ctx, x, "text_model.encoder.layers.", text_, true);
        x = ggml_view_2d(g.ctx, x, text_.hidden, 1, x->nb[1], (size_t)(n - 1) * x->nb[1]);  // the end-of-text token
        x = layer_norm(g.ctx, x, "text_model.final_layer_norm", text_.eps);
        x = ggml_mul_mat(g.ctx, w("text_projection.weight"), x);
        return g.run(x, inp, ids.data(), (size_t)n * sizeof(int32_t));
    }

  private:
    // One forward pass: a metadata-only context, the graph allocated by gallocr, computed on the backend.
    struct graph {
        explicit graph(clip_impl & model) : m(model) {
            ggml_init_params ip{ ggml_tensor_overhead() * 8192 + ggml_graph_overhead_custom(8192, false), nullptr,
                                 true };
            ctx = ggml_init(ip);
        }

        ~graph() { ggml_free(ctx); }

        std::vector<float> run(ggml_tensor * out, ggml_tensor * inp, const void * data, size_t bytes) {
            ggml_set_output(out);
            ggml_cgraph * gf = ggml_new_graph_custom(ctx, 8192, false);
            ggml_build_forward_expand(gf, out);
            if (!m.galloc_) {
                m.galloc_ = ggml_gallocr_new(ggml_backend_get_default_buffer_type(m.backend_));
            }
            if (!ggml_gallocr_alloc_graph(m.galloc_, gf)) {
                throw error("CLIP: cannot allocate the compute graph");
            }
            ggml_backend_tensor_set(inp, data, 0, bytes);
            if (ggml_backend_graph_compute(m.backend_, gf) != GGML_STATUS_SUCCESS) {
                throw error("CLIP: the forward pass failed");
            }
            std::vector<float> v((size_t)ggml_nelements(out));
            ggml_backend_tensor_get(out, v.data(), 0, v.size() * sizeof(float));
            return v;
        }

        clip_impl &    m;
        ggml_context * ctx = nullptr;
    };

    static void read_tower(const gguf_reader & r, const std::string & p, tower_hparams & t) {
        t.hidden       = (int)r.u32(p + ".hidden_size");
        t.intermediate = (int)r.u32(p + ".intermediate_size");
        t.layers       = (int)r.u32(p + ".num_hidden_layers");
        t.heads        = (int)r.u32(p + ".num_attention_heads");
        t.eps          = r.f32(p + ".layer_norm_eps");
        t.quick_gelu   = r.str(p + ".hidden_act") == "quick_gelu";
        if (t.heads <= 0 || t.hidden % t.heads != 0) {
            throw error("CLIP: " + p + " hidden size " + std::to_string(t.hidden) + " is not a multiple of " +
                        std::to_string(t.heads) + " heads");
        }
    }

    ggml_tensor * w(const std::string & name) const {
        ggml_tensor * t = ggml_get_tensor(ctx_w_, name.c_str());
        if (!t) {
            throw error(params_.path + ": tensor " + name + " is missing");
        }
        return t;
    }

    void load_weights() {
        // The best device of this ggml build (a GPU in a CUDA / Vulkan / Metal build), else the CPU.
        backend_ = params_.use_gpu ? ggml_backend_init_best() : ggml_backend_cpu_init();
        if (!backend_) {
            throw error("CLIP: cannot start a ggml backend");
        }
        if (ggml_backend_is_cpu(backend_)) {
            const int n_threads =
                params_.n_threads > 0 ? params_.n_threads : (int)std::max(1u, std::thread::hardware_concurrency());
            ggml_backend_cpu_set_n_threads(backend_, n_threads);
        }
        buffer_ = ggml_backend_alloc_ctx_tensors(ctx_w_, backend_);
        if (!buffer_) {
            throw error(params_.path + ": cannot allocate the weights");
        }
        std::ifstream f(params_.path, std::ios::binary);
        if (!f) {
            throw error(params_.path + ": cannot read");
        }
        const size_t      base = gguf_get_data_offset(gguf_);
        std::vector<char> buf;
        for (int64_t i = 0; i < gguf_get_n_tensors(gguf_); ++i) {
            ggml_tensor * t = ggml_get_tensor(ctx_w_, gguf_get_tensor_name(gguf_, i));
            buf.resize(ggml_nbytes(t));
            f.seekg((std::streamoff)(base + gguf_get_tensor_offset(gguf_, i)));
            f.read(buf.data(), (std::streamsize)buf.size());
            if (!f) {
                throw error(params_.path + ": truncated (tensor " + gguf_get_tensor_name(gguf_, i) + ")");
            }
            ggml_backend_tensor_set(t, buf.data(), 0, buf.size());
        }
    }

    ggml_tensor * layer_norm(ggml_context * ctx, ggml_tensor * x, const std::string & p, float eps) const {
        x = ggml_norm(ctx, x, eps);
        return ggml_add(ctx, ggml_mul(ctx, x, w(p + ".weight")), w(p + ".bias"));
    }

    ggml_tensor * linear(ggml_context * ctx, ggml_tensor * x, const std::string & p) const {
        return ggml_add(ctx, ggml_mul_mat(ctx, w(p + ".weight"), x), w(p + ".bias"));
    }

    ggml_tensor * encoder(ggml_context * ctx, ggml_tensor * x, const std::string & prefix, const tower_hparams & t,
                          bool causal) const {
        const int   n = (int)x->ne[1], hd = t.hidden / t.heads;
        const float scale = 1.0f / std::sqrt((float)hd);
        for (int l = 0; l < t.layers; ++l) {
            const std::string p   = prefix + std::to_string(l) + ".";
            ggml_tensor *     res = x;
            x                     = layer_norm(ctx, x, p + "layer_norm1", t.eps);
            ggml_tensor * q       = ggml_reshape_3d(ctx, linear(ctx, x, p + "self_attn.q_proj"), hd, t.heads, n);
            ggml_tensor * k       = ggml_reshape_3d(ctx, linear(ctx, x, p + "self_attn.k_proj"), hd, t.heads, n);
            ggml_tensor * v       = ggml_reshape_3d(ctx, linear(ctx, x, p + "self_attn.v_proj"), hd, t.heads, n);
            q                     = ggml_permute(ctx, q, 0, 2, 1, 3);                  // [hd, n, heads]
            k                     = ggml_permute(ctx, k, 0, 2, 1, 3);                  // [hd, n, heads]
            v                     = ggml_cont(ctx, ggml_permute(ctx, v, 1, 2, 0, 3));  // [n, hd, heads]
            ggml_tensor * kq      = ggml_mul_mat(ctx, k, q);                           // [n_k, n_q, heads]
            kq                    = ggml_scale(ctx, kq, scale);
            if (causal) {
                kq = ggml_diag_mask_inf(ctx, kq, 0);
            }
            kq                = ggml_soft_max(ctx, kq);
            ggml_tensor * kqv = ggml_mul_mat(ctx, v, kq);                            // [hd, n_q, heads]
            kqv               = ggml_cont(ctx, ggml_permute(ctx, kqv, 0, 2, 1, 3));  // [hd, heads, n]
            x = ggml_add(ctx, res, linear(ctx, ggml_reshape_2d(ctx, kqv, t.hidden, n), p + "self_attn.out_proj"));

            res = x;
            x   = linear(ctx, layer_norm(ctx, x, p + "layer_norm2", t.eps), p + "mlp.fc1");
            x   = t.quick_gelu ? ggml_mul(ctx, x, ggml_sigmoid(ctx, ggml_scale(ctx, x, 1.702f)))  // x sigmoid(1.702 x)
                               : ggml_gelu_erf(ctx, x);
            x   = ggml_add(ctx, res, linear(ctx, x, p + "mlp.fc2"));
        }
        return x;
    }

    clip_params                     params_;
    gguf_context *                  gguf_    = nullptr;
    ggml_context *                  ctx_w_   = nullptr;
    ggml_backend_t                  backend_ = nullptr;
    ggml_backend_buffer_t           buffer_  = nullptr;
    ggml_gallocr_t                  galloc_  = nullptr;
    tower_hparams                   vision_, text_;
    int                             image_size_ = 0, patch_size_ = 0, projection_ = 0, n_text_pos_ = 0;
    int32_t                         eos_id_ = 0;
    std::string                     model_id_;
    int                             shortest_edge_ = 0, crop_h_ = 0, crop_w_ = 0;
    bool                            center_crop_ = true;
    float                           rescale_     = 1.0f / 255.0f;
    std::vector<float>              mean_, std_;
    std::unique_ptr<clip_tokenizer> tokenizer_;
};

}  // namespace

std::unique_ptr<clip_model> clip_model::load(const clip_params & params) {
    return std::make_unique<clip_impl>(params);
}

}  // namespace dior
