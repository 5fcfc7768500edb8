// gRPC status codes by their own names, for messages, logs and metric labels. Thread-safe, throws nothing but
// std::bad_alloc.
#pragma once

#include <grpcpp/support/status_code_enum.h>

#include <string>

namespace facet::client {

// "OK", "INVALID_ARGUMENT", ... as gRPC spells them; "CODE_<n>" for a number gRPC does not define.
std::string StatusCodeName(grpc::StatusCode code);

}  // namespace facet::client
