// SHA-256 digests (OpenSSL), as lowercase hex: token hashes and model file digests.
#pragma once

#include <string>
#include <string_view>

namespace facet {

std::string Sha256Hex(std::string_view bytes);
// Streams the file; throws std::runtime_error naming the path when it cannot be read.
std::string Sha256HexOfFile(const std::string& path);

}  // namespace facet
