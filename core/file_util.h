// Small file helpers shared by checkpoints and exports. No LibTorch.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace facet {

// Writes to `<path>.tmp.<pid>`, fsyncs, renames over `path` and fsyncs the folder, so that a crash leaves either
// the old file or the new one, never a torn one. Creates missing parent folders. Throws std::runtime_error.
void WriteFileAtomically(const std::string& path, std::string_view bytes);

// Throws std::runtime_error naming the path when it cannot be read.
std::vector<char> ReadFileBytes(const std::string& path);

}  // namespace facet
