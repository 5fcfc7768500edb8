// Paths named in requests resolve inside the server's data root, or not at all.
// Immutable after construction, so thread-safe. The constructor throws std::runtime_error for a root that is not a
// folder; Resolve throws StatusError (INVALID_ARGUMENT) naming the field and the path.
#pragma once

#include <string>

namespace facet::server {

enum class PathKind { kFolder, kFile };

class DataRoot {
 public:
  explicit DataRoot(const std::string& root);  // throws std::runtime_error when the root is not a folder

  // Resolves `relative` (as given in a request) to a canonical path inside the root. Absolute paths, `..` that
  // leave the root, symbolic links that point outside it and NUL bytes are refused with INVALID_ARGUMENT naming
  // `field`; a path that does not exist, or is not of the `kind` expected, is INVALID_ARGUMENT too.
  std::string Resolve(const std::string& relative, const std::string& field, PathKind kind) const;
  const std::string& path() const { return root_; }

 private:
  std::string root_;  // canonical
};

}  // namespace facet::server
