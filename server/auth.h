// Bearer-token authentication and role-based authorization for the gRPC services.
//
// The token file holds one token per line as `ROLE SHA256_HEX [NAME]` (`#` starts a comment): only the SHA-256 of
// each token is stored, so a leaked file does not leak the tokens. Tokens are high-entropy random strings
// (`facetctl token create`), so an unsalted hash is enough; they are not passwords.
#pragma once

#include <grpcpp/server_context.h>

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace facet::server {

// What a caller may do. Each role includes nothing else, except admin, which may do everything.
enum class Role { kRead, kPredict, kAdmin };

const char* RoleName(Role role);
Role ParseRole(const std::string& name);  // std::invalid_argument on an unknown name

// Thread-safe: Authorize may run on any number of threads while Reload replaces the tokens.
class TokenAuthenticator {
 public:
  // Reads the token file. Throws std::runtime_error naming the file and line on anything malformed, and on a file
  // with no token.
  explicit TokenAuthenticator(std::string path);

  // Reads the file again (facet-server does on SIGHUP) and, only if all of it is valid, replaces the tokens whole:
  // each call is checked against the old set or the new one, never a mix. A bad file throws as the constructor
  // does and leaves the tokens in use unchanged. Returns the number of tokens now in use.
  size_t Reload();

  // Returns the caller's name. Throws StatusError: UNAUTHENTICATED when the `authorization: Bearer TOKEN` header is
  // missing or names no known token, PERMISSION_DENIED when the token's role does not allow `needed`.
  std::string Authorize(const grpc::ServerContextBase& context, Role needed) const;

  size_t size() const { return Tokens()->size(); }
  const std::string& path() const { return path_; }

 private:
  struct Principal {
    Role role;
    std::string name;
  };
  using Principals = std::unordered_map<std::string, Principal>;  // by SHA-256 hex of the token

  static std::shared_ptr<const Principals> Read(const std::string& path);
  std::shared_ptr<const Principals> Tokens() const;

  const std::string path_;
  mutable std::mutex mutex_;
  std::shared_ptr<const Principals> tokens_;  // guarded by mutex_; replaced whole, never changed in place
};

}  // namespace facet::server
