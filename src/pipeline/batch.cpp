// The batch step shared by runs, the Python Embedder, Ray workers and the service's queries.
#include "dior.h"

namespace dior {

std::vector<std::vector<method::output>> embed_batch(method & m, const std::vector<image> & images,
                                                     const std::vector<size_t> & which) {
    return m.embed_many(images, which);
}

}  // namespace dior
