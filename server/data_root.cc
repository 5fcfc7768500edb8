#include "server/data_root.h"

#include "server/status.h"

#include <filesystem>

namespace facet::server {

namespace fs = std::filesystem;

DataRoot::DataRoot(const std::string& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) throw std::runtime_error("data root '" + root + "' is not a folder");
  root_ = fs::canonical(root).string();
}

std::string DataRoot::Resolve(const std::string& relative, const std::string& field, PathKind kind) const {
  auto refuse = [&](const std::string& why) {
    return StatusError(grpc::StatusCode::INVALID_ARGUMENT, field + ": '" + relative + "' " + why);
  };
  if (relative.empty()) throw refuse("is empty");
  if (relative.find('\0') != std::string::npos) throw refuse("contains a NUL byte");
  if (fs::path(relative).is_absolute()) throw refuse("must be relative to the data root");
  std::error_code ec;
  const fs::path resolved = fs::canonical(fs::path(root_) / relative, ec);  // follows every symbolic link
  if (ec) throw refuse("does not exist under the data root");
  const std::string r = resolved.string();
  if (r != root_ && r.rfind(root_ + "/", 0) != 0) throw refuse("leaves the data root");
  if (kind == PathKind::kFolder && !fs::is_directory(resolved, ec)) throw refuse("is not a folder");
  if (kind == PathKind::kFile && !fs::is_regular_file(resolved, ec)) throw refuse("is not a regular file");
  return r;
}

}  // namespace facet::server
