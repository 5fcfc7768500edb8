// One place that turns errors into gRPC statuses.
// ToStatus and CurrentExceptionToStatus are pure, thread-safe and throw nothing.
#pragma once

#include <grpcpp/support/status.h>

#include <exception>
#include <stdexcept>
#include <string>

namespace facet::server {

// An error that already knows its gRPC code. Thrown by the server's own layers.
class StatusError : public std::runtime_error {
 public:
  StatusError(grpc::StatusCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  grpc::StatusCode code() const { return code_; }

 private:
  grpc::StatusCode code_;
};

// StatusError keeps its code; std::invalid_argument (the core's "bad input", ImageDecodeError among them) is
// INVALID_ARGUMENT; std::bad_alloc (the server ran out of memory: not the caller's fault) is RESOURCE_EXHAUSTED;
// anything else is INTERNAL. The message always travels.
grpc::Status ToStatus(const std::exception& e);
grpc::Status CurrentExceptionToStatus();  // call inside catch (...)

}  // namespace facet::server
