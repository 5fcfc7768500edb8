// The one mapping from errors to gRPC statuses (server/status.h), which every service and Predict's per-image
// results go through.
#include "core/data/image_io.h"
#include "server/status.h"

#include <gtest/gtest.h>

#include <new>
#include <stdexcept>

namespace facet::server {
namespace {

TEST(ToStatus, GivesEachKindOfErrorItsCodeAndKeepsItsMessage) {
  EXPECT_EQ(ToStatus(StatusError(grpc::StatusCode::NOT_FOUND, "job x")).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(ToStatus(std::invalid_argument("batch: 0")).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // An image that cannot be decoded is the caller's fault...
  const grpc::Status undecodable = ToStatus(ImageDecodeError("cannot decode image: corrupt"));
  EXPECT_EQ(undecodable.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(undecodable.error_message(), "cannot decode image: corrupt");
  // ...running out of memory is not, and neither is anything else that goes wrong inside.
  const grpc::Status out_of_memory = ToStatus(std::bad_alloc());
  EXPECT_EQ(out_of_memory.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(out_of_memory.error_message().find("out of memory"), std::string::npos);
  const grpc::Status internal = ToStatus(std::runtime_error("disk full writing checkpoint"));
  EXPECT_EQ(internal.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(internal.error_message(), "disk full writing checkpoint");
}

TEST(ToStatus, MapsTheExceptionInFlight) {
  const auto status_of = [](auto thrower) {
    try {
      thrower();
    } catch (...) {
      return CurrentExceptionToStatus();
    }
    return grpc::Status::OK;
  };
  EXPECT_EQ(status_of([] { throw std::bad_alloc(); }).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(status_of([] { throw ImageDecodeError("x"); }).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status_of([] { throw 42; }).error_code(), grpc::StatusCode::INTERNAL);
}

}  // namespace
}  // namespace facet::server
