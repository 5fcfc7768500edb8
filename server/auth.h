// Bearer-token authentication and role-based authorization for the gRPC services.
//
// The token file holds one token per line as `ROLE SHA256_HEX [NAME]` (`#` starts a comment): only the SHA-256 of
// each token is stored, so a leaked file does not leak the tokens. Tokens are high-entropy random strings
// (`facetctl token create`), so an unsalted hash is enough; they are not passwords.
#pragma once

#include <grpcpp/server_context.h>

#include <string>
#include <string_view>
#include <unordered_map>

namespace facet::server {

// What a caller may do. Each role includes nothing else, except admin, which may do everything.
enum class Role { kRead, kPredict, kAdmin };

const char* RoleName(Role role);
Role ParseRole(const std::string& name);  // std::invalid_argument on an unknown name

class TokenAuthenticator {
 public:
  // Throws std::runtime_error naming the file and line on anything malformed, and on a file with no token.
  static TokenAuthenticator FromFile(const std::string& path);

  // Returns the caller's name. Throws StatusError: UNAUTHENTICATED when the `authorization: Bearer TOKEN` header is
  // missing or names no known token, PERMISSION_DENIED when the token's role does not allow `needed`.
  std::string Authorize(const grpc::ServerContextBase& context, Role needed) const;

  size_t size() const { return principals_.size(); }

 private:
  struct Principal {
    Role role;
    std::string name;
  };
  std::unordered_map<std::string, Principal> principals_;  // by SHA-256 hex of the token
};

}  // namespace facet::server
