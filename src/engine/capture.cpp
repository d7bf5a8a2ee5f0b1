#include "engine/capture.h"

#include "dior.h"
#include "ggml-backend.h"
#include "ggml.h"

#include <cstring>
#include <string>

namespace dior {

void hidden_capture::set_layers(int n_layer, int n_embd, const std::vector<int> & layers) {
    n_layer_ = n_layer;
    n_embd_  = n_embd;
    want_layer_.assign(n_layer + 1, false);
    for (int l : layers) {
        want_layer_.at(l) = true;
    }
    got_.clear();
}

void hidden_capture::begin_batch(int64_t first, int n_tokens, std::vector<int64_t> wanted, bool logits_read) {
    std::vector<std::pair<int, int64_t>> rows;
    for (int64_t t : wanted) {
        rows.emplace_back((int)(t - first), t);
    }
    begin_rows(n_tokens, std::move(rows), logits_read);
}

void hidden_capture::begin_rows(int n_tokens, std::vector<std::pair<int, int64_t>> wanted, bool logits_read) {
    n_tokens_ = n_tokens;
    error_.clear();
    wanted_      = std::move(wanted);
    skip_output_ = !logits_read && !wanted_.empty();  // without outputs there is no projection to skip
}

int hidden_capture::layer_of(const char * name) const {
    int layer = -1;
    if (std::strcmp(name, "embd") == 0 || std::strcmp(name, "inp_scaled") == 0) {
        layer = 0;  // inp_scaled (Gemma): the embeddings times sqrt(n_embd), computed after embd
    } else if (std::strcmp(name, "result_norm") == 0) {
        layer = naming_.final_before_norm ? -1 : n_layer_;
    } else if (std::strncmp(name, "l_out-", 6) == 0) {
        const int il = std::atoi(name + 6);
        if (il < naming_.n_deepstack) {
            layer = -1;  // read after the DeepStack features are added
        } else if (il + 1 < n_layer_) {
            layer = il + 1;
        } else {  // the last l_out is the output before the final norm
            layer = naming_.final_before_norm ? n_layer_ : -1;
        }
    } else if (std::strncmp(name, "deepstack_out-", 14) == 0) {
        const int il = std::atoi(name + 14);
        layer        = il < naming_.n_deepstack ? il + 1 : -1;
    }
    return (layer >= 0 && layer <= n_layer_ && want_layer_[layer]) ? layer : -1;
}

void hidden_capture::copy_rows(const ggml_tensor * t, int layer) {
    // Runs inside ggml's scheduler: report problems through error_, never by throwing.
    if (t->type != GGML_TYPE_F32 || t->ne[0] != n_embd_ || t->nb[0] != sizeof(float)) {
        error_ = std::string("unexpected hidden-state tensor layout for ") + t->name;
        return;
    }
    // Either every row of the batch is there, or (last layer) only the output rows.
    const bool all_rows = t->ne[1] == n_tokens_;
    if (!all_rows && t->ne[1] != (int64_t)wanted_.size()) {
        error_ = std::string("cannot map rows of hidden-state tensor ") + t->name;
        return;
    }
    for (size_t i = 0; i < wanted_.size(); ++i) {
        const int64_t      row = all_rows ? wanted_[i].first : (int64_t)i;
        std::vector<float> v(n_embd_);
        ggml_backend_tensor_get(const_cast<ggml_tensor *>(t), v.data(), row * t->nb[1], n_embd_ * sizeof(float));
        got_[{ wanted_[i].second, layer }] = std::move(v);
    }
}

bool hidden_capture::callback(ggml_tensor * t, bool ask, void * user_data) {
    auto *     self  = static_cast<hidden_capture *>(user_data);
    const int  layer = self->wanted_.empty() ? -1 : self->layer_of(t->name);
    const bool last  = self->skip_output_ && std::strcmp(t->name, "result_norm") == 0;
    if (ask) {
        return layer >= 0 || last;
    }
    if (layer >= 0) {
        self->copy_rows(t, layer);
    }
    // false stops the scheduler's pass over the rest of this part of the graph: the logits.
    return !last;
}

bool hidden_capture::has(int64_t token, int layer) const {
    return got_.count({ token, layer }) != 0;
}

const std::vector<float> & hidden_capture::get(int64_t token, int layer) const {
    auto it = got_.find({ token, layer });
    if (it == got_.end()) {
        throw error("hidden state of token " + std::to_string(token) + " at layer " + std::to_string(layer) +
                    " was not captured (the engine did not name it as expected)");
    }
    return it->second;
}

}  // namespace dior
