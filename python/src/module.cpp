// dior._dior: the dior library for Python (nanobind). The friendly layer (PIL images, docs, Ray)
// is python/dior/*.py; this file converts and releases the GIL around every computation.
#include "dior.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/unique_ptr.h>
#include <nanobind/stl/vector.h>

namespace nb = nanobind;
using namespace nb::literals;

namespace {

using rgb_array = nb::ndarray<const uint8_t, nb::ndim<3>, nb::c_contig, nb::device::cpu>;

// File names are bytes: a str path goes in as os.fsencode() gives it, and a path comes out as
// os.fsdecode() would (a byte that is not UTF-8 as a lone surrogate, U+DC80 to U+DCFF).
std::string fs_bytes(nb::handle path) {
    if (nb::isinstance<nb::bytes>(path)) {
        nb::bytes b = nb::borrow<nb::bytes>(path);
        return std::string(b.c_str(), b.size());
    }
    PyObject * b = PyUnicode_EncodeFSDefault(path.ptr());
    if (!b) {
        throw nb::python_error();
    }
    std::string out(PyBytes_AS_STRING(b), (size_t)PyBytes_GET_SIZE(b));
    Py_DECREF(b);
    return out;
}

nb::object fs_str(const std::string & path) {
    PyObject * s = PyUnicode_DecodeFSDefaultAndSize(path.data(), (Py_ssize_t)path.size());
    if (!s) {
        throw nb::python_error();
    }
    return nb::steal(s);
}

nb::list fs_strs(const std::vector<std::string> & paths) {
    nb::list out;
    for (const auto & p : paths) {
        out.append(fs_str(p));
    }
    return out;
}

// One image of a batch: a path, encoded bytes, or an RGB array (height x width x 3), decoded and
// downscaled exactly as dior embed does (Lanczos to image_max_size on the longer side).
dior::image to_image(const nb::handle & item, size_t index, int max_size, const dior::image_limits & limits) {
    if (nb::isinstance<nb::str>(item)) {
        const std::string      path = fs_bytes(item);
        nb::gil_scoped_release free;
        return dior::load_image(path, max_size, limits);
    }
    if (nb::isinstance<nb::bytes>(item)) {
        nb::bytes              b      = nb::borrow<nb::bytes>(item);  // immutable, held while the GIL is free
        const std::string      source = "image " + std::to_string(index) + " (bytes)";
        nb::gil_scoped_release free;
        return dior::decode_image((const uint8_t *)b.c_str(), b.size(), source, max_size, limits);
    }
    rgb_array a;
    if (!nb::try_cast(item, a) || a.shape(2) != 3) {
        throw dior::error("image " + std::to_string(index) +
                          ": expected a path (str), encoded bytes, a PIL image or a uint8 array of shape "
                          "(height, width, 3)");
    }
    dior::image img;
    img.source = "image " + std::to_string(index) + " (array)";
    img.height = (int)a.shape(0);
    img.width  = (int)a.shape(1);
    if (img.width <= 0 || img.height <= 0) {
        throw dior::error(img.source + ": the array is empty");
    }
    img.rgb.assign(a.data(), a.data() + a.size());
    int w = 0, h = 0;
    dior::fit_size(img.width, img.height, max_size, w, h);
    return (w == img.width && h == img.height) ? img : dior::resize_lanczos(img, w, h);
}

// Python callbacks of a computation that runs without the GIL. Each call takes the GIL; an
// exception it raises, or a pending signal's (Ctrl-C), is kept and sets `cancel`, so that the
// computation stops, and run() raises it once the computation has returned.
class python_calls {
  public:
    std::atomic<bool> cancel{ false };

    template <class F>
    void call(F && f) {
        nb::gil_scoped_acquire hold;
        if (raised_) {
            return;
        }
        try {
            if (PyErr_CheckSignals() != 0) {
                throw nb::python_error();
            }
            f();
            if (PyErr_CheckSignals() != 0) {
                throw nb::python_error();
            }
        } catch (nb::python_error & e) {
            raised_.emplace(std::move(e));
            cancel = true;
        }
    }

    // Runs the computation without the GIL; the Python exception that stopped it comes first.
    template <class F>
    void run(F && computation) {
        try {
            nb::gil_scoped_release free;
            computation();
        } catch (const dior::error &) {
            if (!raised_) {
                throw;
            }
        }
        if (raised_) {
            nb::python_error e = std::move(*raised_);
            raised_.reset();
            throw e;
        }
    }

  private:
    std::optional<nb::python_error> raised_;
};

dior::image_processor to_processor(const std::string & name) {
    const auto p = dior::parse_image_processor(name);
    if (!p) {
        throw dior::error("image_processor " + name + ": use fast, slow or mtmd");
    }
    return *p;
}

// A str as UTF-8; dior::error for one that has none (a lone surrogate, U+D800 to U+DFFF).
std::string to_text(nb::handle s, const char * what) {
    try {
        return nb::cast<std::string>(s);
    } catch (const nb::cast_error &) {
        throw dior::error(std::string(what) + " " + nb::cast<std::string>(nb::repr(s)) +
                          " is not valid text: it has no UTF-8 form (a lone surrogate?)");
    }
}

std::vector<std::optional<std::string>> to_conditions(const nb::handle & conditions) {
    std::vector<std::optional<std::string>> out;
    if (conditions.is_none() || nb::isinstance<nb::str>(conditions)) {
        out.push_back(conditions.is_none() ? std::nullopt
                                           : std::optional<std::string>(to_text(conditions, "condition")));
        return out;
    }
    for (nb::handle c : conditions) {
        if (!c.is_none() && !nb::isinstance<nb::str>(c)) {
            throw dior::error("conditions: each is a str or None (no condition)");
        }
        out.push_back(c.is_none() ? std::nullopt : std::optional<std::string>(to_text(c, "condition")));
    }
    if (out.empty()) {
        throw dior::error("conditions: give at least one (None: the prompt without a condition)");
    }
    return out;
}

nb::ndarray<nb::numpy, float> to_numpy(std::vector<float> && data, std::vector<size_t> shape) {
    auto *      owned = new std::vector<float>(std::move(data));
    nb::capsule free(owned, [](void * p) noexcept { delete static_cast<std::vector<float> *>(p); });
    return nb::ndarray<nb::numpy, float>(owned->data(), shape.size(), shape.data(), free);
}

class embedder {
  public:
    embedder(const std::string & model, const std::string & mmproj, int threads, int layer, int token,
             const std::string & prompt, int image_max_size, int ctx_size, int batch_size, int gpu_layers,
             bool flash_attn, bool kv_f16, bool vision_flash_attn, const std::string & image_processor,
             bool reuse_prefix, bool verbose, const std::string & image_batch)
        : max_size_(image_max_size) {
        dior::model_params p;
        p.model_path        = model;
        p.mmproj_path       = mmproj;
        p.n_threads         = threads;
        p.n_ctx             = ctx_size;
        p.n_batch           = batch_size;
        p.n_gpu_layers      = gpu_layers;
        p.flash_attn        = flash_attn;
        p.kv_f16            = kv_f16;
        p.vision_flash_attn = vision_flash_attn;
        p.verbose           = verbose;
        p.processor         = to_processor(image_processor);
        p.image_batch       = dior::parse_image_batch(image_batch);
        dior::check_model_params(p);  // dior embed's checks and messages
        const auto ptype = dior::parse_prompt_type(prompt);
        if (!ptype) {
            throw dior::error("prompt " + prompt + ": unknown prompt type");
        }
        ep_.prompt       = *ptype;
        ep_.layers       = { layer };
        ep_.token        = token;
        ep_.reuse_prefix = reuse_prefix;
        if (model.empty() || mmproj.empty()) {
            throw dior::error("Embedder needs model= (GGUF text model) and mmproj= (its projector), or hf=");
        }
        nb::gil_scoped_release free;
        model_ = dior::model::load(p);
        model_->resolve_layers(ep_.layers);  // an index out of range fails here, not at the first image
    }

    int n_embd() const { return model_->n_embd(); }

    int n_layer() const { return model_->n_layer(); }

    // (images, conditions, width) float32: every image under every condition. With `keep_going`,
    // an image that cannot be read or embedded gets NaN rows and an entry (index, message) in the
    // second result instead of failing the whole list; without it, the first failure raises.
    std::pair<nb::ndarray<nb::numpy, float>, std::vector<std::pair<size_t, std::string>>> embed(
        const nb::list & images, const nb::handle & conditions, bool keep_going) {
        const auto                                  conds = to_conditions(conditions);
        const size_t                                n = nb::len(images), k = conds.size(), d = (size_t)model_->n_embd();
        std::vector<float>                          out(n * k * d, std::numeric_limits<float>::quiet_NaN());
        std::vector<std::pair<size_t, std::string>> failed;
        std::vector<dior::image>                    decoded;
        std::vector<size_t>                         at;  // the list index of each decoded image
        for (size_t i = 0; i < n; ++i) {
            try {
                decoded.push_back(to_image(images[i], i, max_size_, limits_));
                at.push_back(i);
            } catch (const dior::error & e) {
                if (!keep_going) {
                    throw;
                }
                failed.emplace_back(i, e.what());
            }
        }
        // The batch step of every run (dior::embed_batch), with one setting per condition.
        std::vector<size_t> which(k);
        for (size_t c = 0; c < k; ++c) {
            which[c] = c;
        }
        {
            nb::gil_scoped_release      free;      // taken back before the arrays are made
            std::lock_guard<std::mutex> lock(m_);  // one model, one computation at a time
            const auto                  meth  = dior::make_dior_method(*model_, conds, ep_);
            const auto                  store = [&](size_t i, const std::vector<dior::method::output> & r) {
                for (size_t c = 0; c < k; ++c) {
                    std::memcpy(out.data() + (at[i] * k + c) * d, r[c].vector.data(), d * sizeof(float));
                }
            };
            try {
                const auto r = dior::embed_batch(*meth, decoded, which);
                for (size_t i = 0; i < decoded.size(); ++i) {
                    store(i, r[i]);
                }
            } catch (const dior::error &) {
                if (!keep_going) {
                    throw;
                }
                for (size_t i = 0; i < decoded.size(); ++i) {  // one at a time: each image its own answer
                    try {
                        store(i, dior::embed_batch(*meth, { decoded[i] }, which).at(0));
                    } catch (const dior::error & e) {
                        failed.emplace_back(at[i], e.what());
                    }
                }
            }
        }
        std::sort(failed.begin(), failed.end());
        return { to_numpy(std::move(out), { n, k, d }), std::move(failed) };
    }

  private:
    std::unique_ptr<dior::model> model_;
    dior::embed_params           ep_;
    int                          max_size_;
    dior::image_limits           limits_;
    std::mutex                   m_;
};

// n rows of width d, row i from row(i), computed without the GIL and under `mu` (one computation
// of a model at a time).
template <class Row>
nb::ndarray<nb::numpy, float> rows_of(size_t n, size_t d, std::mutex & mu, Row && row) {
    std::vector<float> out(n * d);
    {
        nb::gil_scoped_release      free;
        std::lock_guard<std::mutex> lock(mu);
        for (size_t i = 0; i < n; ++i) {
            const std::vector<float> v = row(i);
            std::memcpy(out.data() + i * d, v.data(), d * sizeof(float));
        }
    }
    return to_numpy(std::move(out), { n, d });
}

// CLIP: image features (images loaded as dior embed --method clip loads them) and text features,
// clip_model's calls, (N, projection_dim) float32.
class clip_model {
  public:
    clip_model(const std::string & path, int threads, bool gpu, int image_max_size) : max_size_(image_max_size) {
        nb::gil_scoped_release free;
        m_ = dior::clip_model::load({ path, threads, gpu });
    }

    int         dim() const { return m_->projection_dim(); }
    std::string name() const { return m_->name(); }

    nb::ndarray<nb::numpy, float> embed_images(const nb::list & images) {
        std::vector<dior::image> decoded;
        for (size_t i = 0; i < nb::len(images); ++i) {
            decoded.push_back(to_image(images[i], i, max_size_, limits_));
        }
        return rows_of(decoded.size(), (size_t)m_->projection_dim(), mu_,
                       [&](size_t i) { return m_->image_features(decoded[i]); });
    }

    nb::ndarray<nb::numpy, float> embed_texts(const std::vector<std::string> & texts) {
        return rows_of(texts.size(), (size_t)m_->projection_dim(), mu_,
                       [&](size_t i) { return m_->text_features(texts[i]); });
    }

    std::vector<int32_t> tokenize(const std::string & text) const { return m_->tokenizer().encode(text); }

  private:
    std::unique_ptr<dior::clip_model> m_;
    int                               max_size_;
    dior::image_limits                limits_;
    std::mutex                        mu_;
};

// A sentence encoder: sentence_encoder::encode per text, (N, dim) float32.
class sentence_model {
  public:
    sentence_model(const std::string & path, int threads, int gpu_layers, bool verbose) {
        nb::gil_scoped_release free;
        m_ = dior::sentence_encoder::load({ path, threads, gpu_layers, verbose });
    }

    int         dim() const { return m_->n_embd(); }
    int         max_seq_length() const { return m_->max_seq_length(); }
    std::string name() const { return m_->name(); }

    nb::ndarray<nb::numpy, float> encode(const std::vector<std::string> & texts) {
        return rows_of(texts.size(), (size_t)m_->n_embd(), mu_, [&](size_t i) { return m_->encode(texts[i]); });
    }

    std::vector<int32_t> tokenize(const std::string & text) const { return m_->tokenize(text); }

  private:
    std::unique_ptr<dior::sentence_encoder> m_;
    std::mutex                              mu_;
};

// run_options from the keyword arguments of dior.embed (python/dior/_run.py names them after the
// options of dior embed); an unknown name is an error, not a silent default.
using option_setter = std::function<void(dior::run_options &, nb::handle)>;

template <class T>
option_setter run_field(T dior::run_options::*field) {
    return [field](dior::run_options & o, nb::handle v) { o.*field = nb::cast<T>(v); };
}

template <class T>
option_setter model_field(T dior::model_params::*field) {
    return [field](dior::run_options & o, nb::handle v) { o.model.*field = nb::cast<T>(v); };
}

template <class T>
option_setter limit_field(T dior::image_limits::*field) {
    return [field](dior::run_options & o, nb::handle v) { o.limits.*field = nb::cast<T>(v); };
}

dior::run_options to_run_options(const nb::dict & kw) {
    using O                                                 = dior::run_options;
    using M                                                 = dior::model_params;
    static const std::map<std::string, option_setter> table = {
        { "inputs",
          [](O & o, nb::handle v) {
              for (nb::handle p : v) {
                  o.inputs.push_back(fs_bytes(p));
              }
          } },
        { "list_file", run_field(&O::list_file) },
        { "dataset", run_field(&O::dataset) },
        { "datasets_dir", run_field(&O::datasets_dir) },
        { "shard", run_field(&O::shard) },
        { "name", run_field(&O::name) },
        { "conditions",
          [](O & o, nb::handle v) {
              if (!v.is_none()) {
                  o.conditions = nb::cast<std::vector<std::optional<std::string>>>(v);
              }
          } },
        { "method", run_field(&O::method) },
        { "model", model_field(&M::model_path) },
        { "mmproj", model_field(&M::mmproj_path) },
        { "threads", model_field(&M::n_threads) },
        { "ctx_size", model_field(&M::n_ctx) },
        { "batch_size", model_field(&M::n_batch) },
        { "image_batch",
          [](O & o, nb::handle v) { o.model.image_batch = dior::parse_image_batch(nb::str(v).c_str()); } },
        { "gpu_layers", model_field(&M::n_gpu_layers) },
        { "flash_attn", model_field(&M::flash_attn) },
        { "kv_f16", model_field(&M::kv_f16) },
        { "vision_flash_attn", model_field(&M::vision_flash_attn) },
        { "verbose", model_field(&M::verbose) },
        { "image_processor", [](O & o, nb::handle v) { o.model.processor = to_processor(nb::cast<std::string>(v)); } },
        { "model_id", run_field(&O::model_id) },
        { "prompt", run_field(&O::prompt_type) },
        { "layers", run_field(&O::layers) },
        { "token", run_field(&O::token) },
        { "image_max_size", run_field(&O::image_max_size) },
        { "positions", run_field(&O::positions) },
        { "reuse_prefix", run_field(&O::reuse_prefix) },
        { "parse_special", run_field(&O::parse_special) },
        { "source", run_field(&O::source) },
        { "max_new_tokens", run_field(&O::max_new_tokens) },
        { "temperature", run_field(&O::temperature) },
        { "do_sample", run_field(&O::do_sample) },
        { "top_k", run_field(&O::top_k) },
        { "top_p", run_field(&O::top_p) },
        { "seed", run_field(&O::seed) },
        { "repeat_penalty", run_field(&O::repeat_penalty) },
        { "text_encoder", run_field(&O::text_encoder) },
        { "text_encoder_id", run_field(&O::text_encoder_id) },
        { "embed_text", run_field(&O::embed_text) },
        { "clip_model", run_field(&O::clip_model) },
        { "indirect_texts", run_field(&O::indirect_texts) },
        { "components", run_field(&O::components) },
        { "indirect_seed", run_field(&O::indirect_seed) },
        { "store", run_field(&O::store) },
        { "max_file_size", limit_field(&dior::image_limits::max_file_bytes) },
        { "max_image_pixels", limit_field(&dior::image_limits::max_pixels) },
    };
    dior::run_options o;
    for (auto [k, v] : kw) {
        const std::string key = nb::cast<std::string>(k);
        const auto        it  = table.find(key);
        if (it == table.end()) {
            throw dior::error("embed: unknown option " + key);
        }
        try {
            it->second(o, v);
        } catch (const nb::cast_error &) {
            throw dior::error("embed: option " + key + " has the wrong type (" +
                              nb::cast<std::string>(nb::str(v.type().attr("__name__"))) +
                              "), or text with no UTF-8 form (a lone surrogate?)");
        }
    }
    return o;
}

}  // namespace

NB_MODULE(_dior, m) {
    m.doc() = "dior.cpp: conditional image embeddings (DIOR) on llama.cpp";
    nb::exception<dior::error>(m, "Error", PyExc_RuntimeError);

    nb::class_<embedder>(m, "Embedder")
        .def(nb::init<const std::string &, const std::string &, int, int, int, const std::string &, int, int, int, int,
                      bool, bool, bool, const std::string &, bool, bool, const std::string &>(),
             "model"_a, "mmproj"_a, "threads"_a = 0, "layer"_a = -1, "token"_a = -1, "prompt"_a = "describe",
             "image_max_size"_a = 700, "ctx_size"_a = 4096, "batch_size"_a = 512, "gpu_layers"_a = -1,
             "flash_attn"_a = false, "kv_f16"_a = false, "vision_flash_attn"_a = true, "image_processor"_a = "fast",
             "reuse_prefix"_a = true, "verbose"_a = false, "image_batch"_a = "auto")
        .def_prop_ro("n_embd", &embedder::n_embd)
        .def_prop_ro("n_layer", &embedder::n_layer)
        .def("embed", &embedder::embed, "images"_a, "conditions"_a.none(), "keep_going"_a = false);

    nb::class_<clip_model>(m, "ClipModel")
        .def(nb::init<const std::string &, int, bool, int>(), "path"_a, "threads"_a = 0, "gpu"_a = true,
             "image_max_size"_a = 700)
        .def_prop_ro("dim", &clip_model::dim)
        .def_prop_ro("name", &clip_model::name)
        .def("embed_images", &clip_model::embed_images, "images"_a)
        .def("embed_texts", &clip_model::embed_texts, "texts"_a)
        .def("tokenize", &clip_model::tokenize, "text"_a);

    nb::class_<sentence_model>(m, "SentenceModel")
        .def(nb::init<const std::string &, int, int, bool>(), "path"_a, "threads"_a = 0, "gpu_layers"_a = -1,
             "verbose"_a = false)
        .def_prop_ro("dim", &sentence_model::dim)
        .def_prop_ro("max_seq_length", &sentence_model::max_seq_length)
        .def_prop_ro("name", &sentence_model::name)
        .def("encode", &sentence_model::encode, "texts"_a)
        .def("tokenize", &sentence_model::tokenize, "text"_a);

    // progress(file, done, total) is called with the GIL held; an exception it raises, or Ctrl-C
    // (checked at each call), stops the download (what came stays, and a later call resumes it) and
    // is raised here.
    m.def(
        "hub_fetch_model",
        [](const std::string & spec, const std::string & token, bool offline, nb::object progress) {
            dior::hub_options o;
            python_calls      py;
            o.token   = token;
            o.offline = offline;
            o.cancel  = &py.cancel;
            if (!progress.is_none()) {
                o.progress = [&](const std::string & file, uint64_t done, uint64_t total) {
                    py.call([&] { progress(file, done, total); });
                };
            }
            dior::hub_model h;
            py.run([&] { h = dior::hub_fetch_model(spec, o); });
            return std::make_pair(h.model, h.mmproj);
        },
        "spec"_a, "token"_a = "", "offline"_a = false, "progress"_a = nb::none());

    nb::class_<dior::store>(m, "Store")
        .def_static(
            "open", [](const std::string & path, bool read_only) { return dior::store::open(path, read_only); },
            "path"_a, "read_only"_a = true)
        .def("settings",
             [](const dior::store & st) {
                 nb::list out;
                 for (const auto & s : st.settings()) {
                     nb::dict d;
                     d["id"]          = s.id;
                     d["name"]        = dior::reference_dir_name(s.s);
                     d["dataset"]     = s.s.dataset;
                     d["model_id"]    = s.s.model_id;
                     d["prompt_type"] = s.s.prompt_type;
                     d["condition"]   = s.s.condition;
                     d["layer"]       = s.s.layer;
                     d["token"]       = s.s.token;
                     d["source"]      = s.s.source;
                     d["n_embd"]      = s.s.n_embd;
                     d["n_vectors"]   = s.n_vectors;
                     out.append(d);
                 }
                 return out;
             })
        .def(
            "vectors",
            [](const dior::store & st, int64_t setting_id) {
                std::vector<std::string> paths;
                dior::matrix             x;
                {
                    nb::gil_scoped_release free;
                    x = st.vectors(setting_id, &paths);
                }
                return nb::make_tuple(to_numpy(std::move(x.data), { x.rows, x.cols }), fs_strs(paths));
            },
            "setting_id"_a)
        .def(
            "merge", [](dior::store & st, const std::string & other) { st.merge(other); }, "other_path"_a);

    m.def(
        "evaluate",
        [](nb::ndarray<const float, nb::ndim<2>, nb::c_contig, nb::device::cpu> x, const std::vector<int> & labels,
           bool clustering) {
            if (labels.size() != x.shape(0)) {
                throw dior::error("evaluate: " + std::to_string(labels.size()) + " labels for " +
                                  std::to_string(x.shape(0)) + " vectors");
            }
            dior::matrix m;
            m.rows = x.shape(0);
            m.cols = x.shape(1);
            m.data.assign(x.data(), x.data() + x.size());
            dior::eval_params p;
            p.clustering = clustering;
            dior::accuracy a;
            {
                nb::gil_scoped_release free;
                a = dior::evaluate(m, labels, p);
            }
            nb::dict d;
            d["mean_average_precision_at_r"] = a.mean_average_precision_at_r;
            d["precision_at_1"]              = a.precision_at_1;
            if (clustering) {
                d["NMI"] = a.NMI;
                d["AMI"] = a.AMI;
            }
            d["n_queries"] = a.n_queries;
            return d;
        },
        "x"_a, "labels"_a, "clustering"_a = true);

    // The library's run (dior embed's): the store, resume, per-image failures. progress(done,
    // total, path) and message(line) are called with the GIL held; an exception either raises, or
    // Ctrl-C (checked at each image), stops the run after the image being embedded (it is
    // committed; the same call again resumes) and is raised here.
    m.def(
        "run_embed",
        [](const nb::dict & options, nb::object progress, nb::object message) {
            const dior::run_options o = to_run_options(options);
            python_calls            py;
            dior::run_events        ev;
            ev.cancel   = &py.cancel;
            ev.progress = [&](size_t done, size_t total, size_t, const std::string & path) {
                py.call([&] {
                    if (!progress.is_none()) {
                        progress(done, total, fs_str(path));
                    }
                });
            };
            ev.start = [&](size_t total) {
                py.call([&] {
                    if (!progress.is_none()) {
                        progress(0, total, "");
                    }
                });
            };
            ev.message = [&](const std::string & line) {
                py.call([&] {
                    if (!message.is_none()) {
                        message(line);
                    }
                });
            };
            dior::run_result r;
            py.run([&] { r = dior::run_embed(o, ev); });
            nb::dict d;
            d["listed"]   = r.listed;
            d["images"]   = r.images;
            d["embedded"] = r.embedded;
            d["skipped"]  = r.skipped;
            d["failed"]   = r.failed;
            nb::list failures;
            for (const auto & f : r.failures) {
                failures.append(nb::make_tuple(fs_str(f.image), f.reason));
            }
            d["failures"] = failures;
            nb::list settings;
            for (size_t i = 0; i < r.settings.size(); ++i) {
                nb::dict s;
                s["id"]        = r.setting_ids[i];
                s["name"]      = dior::reference_dir_name(r.settings[i]);
                s["condition"] = r.settings[i].condition;
                s["layer"]     = r.settings[i].layer;
                settings.append(s);
            }
            d["settings"]  = settings;
            d["width"]     = r.width;
            d["seconds"]   = r.seconds;
            d["cancelled"] = r.cancelled;
            return d;
        },
        "options"_a, "progress"_a = nb::none(), "message"_a = nb::none());

    m.def("engine_version", &dior::engine_version);
    m.def("startup_environment", &dior::startup_environment);
}
