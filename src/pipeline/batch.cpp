// The batch step shared by runs, the Python Embedder, Ray workers and the service's queries.
#include "dior.h"

namespace dior {

std::vector<std::vector<method::output>> embed_batch(method & m, const std::vector<image> & images,
                                                     const std::vector<size_t> & which) {
    // One image at a time for now: the engine's batched path goes here, behind this signature.
    std::vector<std::vector<method::output>> out;
    out.reserve(images.size());
    for (const image & img : images) {
        out.push_back(m.embed(img, which));
    }
    return out;
}

}  // namespace dior
