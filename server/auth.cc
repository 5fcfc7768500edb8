#include "server/auth.h"

#include "core/util/sha256.h"
#include "server/status.h"

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <utility>

namespace facet::server {
namespace {

constexpr std::string_view kBearer = "Bearer ";

bool IsSha256Hex(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

const char* RoleName(Role role) {
  switch (role) {
    case Role::kRead: return "read";
    case Role::kPredict: return "predict";
    case Role::kAdmin: return "admin";
  }
  return "?";
}

Role ParseRole(const std::string& name) {
  for (Role r : {Role::kRead, Role::kPredict, Role::kAdmin}) {
    if (name == RoleName(r)) return r;
  }
  throw std::invalid_argument("unknown role '" + name + "' (admin, predict or read)");
}

TokenAuthenticator::TokenAuthenticator(std::string path) : path_(std::move(path)), tokens_(Read(path_)) {}

size_t TokenAuthenticator::Reload() {
  auto tokens = Read(path_);
  const size_t count = tokens->size();
  std::lock_guard<std::mutex> lock(mutex_);
  tokens_ = std::move(tokens);
  return count;
}

std::shared_ptr<const TokenAuthenticator::Principals> TokenAuthenticator::Tokens() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return tokens_;
}

std::shared_ptr<const TokenAuthenticator::Principals> TokenAuthenticator::Read(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read token file '" + path + "'");
  auto principals = std::make_shared<Principals>();
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (const auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::istringstream fields(line);
    std::string role, digest, name, extra;
    if (!(fields >> role)) continue;  // blank or comment
    const std::string where = "token file '" + path + "' line " + std::to_string(number) + ": ";
    if (!(fields >> digest) || !IsSha256Hex(digest)) {
      throw std::runtime_error(where + "expected `ROLE SHA256_HEX [NAME]` with 64 lowercase hex digits");
    }
    fields >> name;
    if (fields >> extra) throw std::runtime_error(where + "unexpected '" + extra + "' after the name");
    Principal principal;
    try {
      principal.role = ParseRole(role);
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error(where + e.what());
    }
    principal.name = name.empty() ? "token-" + digest.substr(0, 8) : name;
    if (!principals->emplace(digest, principal).second) throw std::runtime_error(where + "duplicate token");
  }
  if (principals->empty()) throw std::runtime_error("token file '" + path + "' holds no token");
  return principals;
}

std::string TokenAuthenticator::Authorize(const grpc::ServerContextBase& context, Role needed) const {
  const auto& metadata = context.client_metadata();
  const auto header = metadata.find("authorization");
  if (header == metadata.end()) {
    throw StatusError(grpc::StatusCode::UNAUTHENTICATED, "missing `authorization: Bearer TOKEN` metadata");
  }
  const std::string_view value(header->second.data(), header->second.size());
  if (value.substr(0, kBearer.size()) != kBearer) {
    throw StatusError(grpc::StatusCode::UNAUTHENTICATED, "the authorization metadata is not a Bearer token");
  }
  const auto tokens = Tokens();
  const auto found = tokens->find(Sha256Hex(value.substr(kBearer.size())));
  if (found == tokens->end()) throw StatusError(grpc::StatusCode::UNAUTHENTICATED, "unknown token");
  const Principal& p = found->second;
  if (p.role != Role::kAdmin && p.role != needed) {
    throw StatusError(grpc::StatusCode::PERMISSION_DENIED, "'" + p.name + "' has role " + RoleName(p.role) +
                                                               "; this call needs " + RoleName(needed));
  }
  return p.name;
}

}  // namespace facet::server
