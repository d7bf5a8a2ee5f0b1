// -hf: models from the Hugging Face hub, for every command that takes -m.
#include "commands.h"
#include "progress.h"

namespace dior::cli {

void hub_source::add(CLI::App & app) {
    app.add_option(
        "--hf-repo", spec,
        "(or -hf) OWNER/NAME[:QUANT]: text model and mmproj from a Hugging Face repository, downloaded into its "
        "cache (e.g. ggml-org/Qwen2.5-VL-3B-Instruct-GGUF; QUANT default Q4_K_M)");
    app.add_option("--hf-token", token, "(or -hft) token for gated or private repositories (default: HF_TOKEN)");
    app.add_flag("--offline", offline, "-hf from the cache only (as HF_HUB_OFFLINE=1)");
}

void hub_source::fetch(std::string & model, std::string & mmproj) const {
    if (spec.empty()) {
        return;
    }
    if (!model.empty()) {
        throw error("give -m MODEL.gguf or -hf " + spec + ", not both");
    }
    byte_progress bar;
    hub_options   o;
    o.token    = token;
    o.offline  = offline;
    o.progress = [&bar](const std::string & file, uint64_t done, uint64_t total) { bar.update(file, done, total); };
    const hub_model m = hub_fetch_model(spec, o);
    model             = m.model;
    if (mmproj.empty()) {
        if (m.mmproj.empty()) {
            throw error("-hf " + spec + ": the repository has no mmproj GGUF; give --mmproj MMPROJ.gguf");
        }
        mmproj = m.mmproj;
    }
}

}  // namespace dior::cli
