// NumPy .npy files (format 1.0): magic, header length, a Python-dict header padded to 64 bytes.
#include "dior.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>

namespace dior {

void write_npy(const std::string & path, const matrix & m) {
    if (m.data.size() != m.rows * m.cols) {
        throw error("write_npy " + path + ": data size does not match the shape");
    }
    std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(m.rows) + ", " +
                         std::to_string(m.cols) + "), }";
    const size_t unpadded = 10 + header.size() + 1;  // magic(6) + version(2) + len(2) + header + '\n'
    header.append((64 - unpadded % 64) % 64, ' ');
    header.push_back('\n');

    const std::string tmp = path + ".tmp";
    {
        std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
        if (!f) {
            throw error("cannot write " + tmp + ": check that the folder exists and is writable");
        }
        const uint16_t len = (uint16_t)header.size();
        f.write("\x93NUMPY\x01\x00", 8);
        f.put((char)(len & 0xff));
        f.put((char)(len >> 8));
        f.write(header.data(), (std::streamsize)header.size());
        f.write(reinterpret_cast<const char *>(m.data.data()), (std::streamsize)(m.data.size() * sizeof(float)));
        f.flush();
        if (!f) {
            throw error("cannot write " + tmp + " (disk full?)");
        }
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) {
        throw error("cannot rename " + tmp + " to " + path + ": " + ec.message());
    }
}

matrix read_npy(const std::string & path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) {
        throw error("cannot open " + path);
    }
    char magic[10];
    f.read(magic, 10);
    if (!f || std::memcmp(magic, "\x93NUMPY", 6) != 0 || magic[6] != 1) {
        throw error(path + ": not a version 1 .npy file");
    }
    const size_t len = (uint8_t)magic[8] | ((size_t)(uint8_t)magic[9] << 8);
    std::string  header(len, '\0');
    f.read(header.data(), (std::streamsize)len);
    static const std::regex re(R"('descr': '<f4', 'fortran_order': False, 'shape': \((\d+), (\d+)\))");
    std::smatch             mt;
    if (!std::regex_search(header, mt, re)) {
        throw error(path + ": only 2-D little-endian float32 C-order .npy files are supported");
    }
    matrix m;
    m.rows = std::stoull(mt[1].str());
    m.cols = std::stoull(mt[2].str());
    m.data.resize(m.rows * m.cols);
    f.read(reinterpret_cast<char *>(m.data.data()), (std::streamsize)(m.data.size() * sizeof(float)));
    if (!f) {
        throw error(path + ": file is shorter than its shape says");
    }
    return m;
}

}  // namespace dior
