// Reads hidden states out of llama.cpp's compute graph while a batch is evaluated.
//
// Hugging Face hidden_states[i] maps to these graph tensors (llama.cpp's naming):
//   i = 0            "embd"          token embeddings entering layer 0 (image tokens enter as input
//                                    embeddings with no named node: the engine stores those rows);
//                                    "inp_scaled" where the model scales them (Gemma), as HF does
//   0 < i < n_layer  "l_out-{i-1}"   output of decoder layer i-1 (0-based)
//   i = n_layer      "result_norm"   output of the last layer after the final norm
// In the last layer llama.cpp keeps only the rows of tokens marked as outputs, so every wanted
// token is marked as an output of its batch.
//
// When nobody reads the batch's logits (embedding without generating), the capture stops the graph
// after "result_norm": the output projection that follows (vocabulary x width, as large as several
// layers of a small model) is not computed. Every layer has run by then, so the KV cache is whole.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

struct ggml_tensor;

namespace dior {

// How a family's Hugging Face implementation defines its hidden states, where it differs from the
// rule above (see hidden_naming_of in model.cpp).
struct hidden_naming {
    // hidden_states[n_layer] is the last layer's output before the final norm ("l_out-{n_layer-1}"):
    // transformers 4.57's Qwen3-VL records it so (no last_hidden_state to tie at its outer level).
    bool final_before_norm = false;
    // Layers 0..n_deepstack-1 add DeepStack image features to their output, in place, after
    // transformers recorded it: its hidden_states[i + 1] include them ("deepstack_out-{i}").
    int n_deepstack = 0;
};

class hidden_capture {
  public:
    void set_naming(const hidden_naming & naming) { naming_ = naming; }

    // layers: resolved HF indices (0..n_layer).
    void set_layers(int n_layer, int n_embd, const std::vector<int> & layers);

    // Called before each llama_decode: absolute index of the batch's first token, the batch size,
    // the absolute indices of the wanted tokens in it (in batch order) and whether the caller reads
    // this batch's logits (if not, the output projection is skipped).
    void begin_batch(int64_t first, int n_tokens, std::vector<int64_t> wanted, bool logits_read = true);
    // The same for a batch whose rows belong to several prompts: each wanted row as {row in the
    // batch, key it is stored under}, in batch order.
    void begin_rows(int n_tokens, std::vector<std::pair<int, int64_t>> wanted, bool logits_read = true);

    // The stored vector of a token at a layer; throws dior::error if it was never captured.
    const std::vector<float> & get(int64_t token, int layer) const;
    bool                       has(int64_t token, int layer) const;
    bool wants_layer(int layer) const { return layer >= 0 && layer <= n_layer_ && want_layer_[layer]; }
    // Stores a vector computed outside the graph (layer 0 of image tokens: the image embedding
    // itself enters the graph as input, not as a named tensor).
    void put(int64_t token, int layer, std::vector<float> v) { got_[{ token, layer }] = std::move(v); }
    void clear() { got_.clear(); }

    // Empty unless the last batch's tensors could not be read (checked after llama_decode).
    const std::string & batch_error() const { return error_; }

    // ggml_backend_sched_eval_callback; user_data is the hidden_capture.
    static bool callback(ggml_tensor * t, bool ask, void * user_data);

  private:
    int  layer_of(const char * name) const;  // HF index, or -1 for tensors we do not want
    void copy_rows(const ggml_tensor * t, int layer);

    hidden_naming                        naming_;
    int                                  n_layer_ = 0;
    int                                  n_embd_  = 0;
    std::vector<bool>                    want_layer_;
    int                                  n_tokens_ = 0;
    std::vector<std::pair<int, int64_t>> wanted_;  // {row, key}
    bool                                 skip_output_ = false;
    std::string                          error_;

    std::map<std::pair<int64_t, int>, std::vector<float>> got_;
};

}  // namespace dior
