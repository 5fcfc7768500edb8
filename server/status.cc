#include "server/status.h"

#include <new>

namespace facet::server {

grpc::Status ToStatus(const std::exception& e) {
  if (const auto* s = dynamic_cast<const StatusError*>(&e)) return grpc::Status(s->code(), s->what());
  if (dynamic_cast<const std::invalid_argument*>(&e)) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, e.what());
  if (dynamic_cast<const std::bad_alloc*>(&e)) {
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, std::string("out of memory: ") + e.what());
  }
  return grpc::Status(grpc::StatusCode::INTERNAL, e.what());
}

grpc::Status CurrentExceptionToStatus() {
  try {
    throw;
  } catch (const std::exception& e) {
    return ToStatus(e);
  } catch (...) {
    return grpc::Status(grpc::StatusCode::INTERNAL, "unknown error");
  }
}

}  // namespace facet::server
