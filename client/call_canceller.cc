#include "client/call_canceller.h"

#include <grpcpp/client_context.h>

namespace facet::client {

void CallCanceller::Cancel() {
  std::lock_guard<std::mutex> lock(mutex_);
  cancelled_ = true;
  if (context_) context_->TryCancel();
}

bool CallCanceller::cancelled() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return cancelled_;
}

CallCanceller::Attachment::Attachment(CallCanceller* canceller, grpc::ClientContext* context)
    : canceller_(canceller) {
  if (!canceller_) return;
  std::lock_guard<std::mutex> lock(canceller_->mutex_);
  canceller_->context_ = context;
  if (canceller_->cancelled_) context->TryCancel();
}

CallCanceller::Attachment::~Attachment() {
  if (!canceller_) return;
  std::lock_guard<std::mutex> lock(canceller_->mutex_);
  canceller_->context_ = nullptr;
}

}  // namespace facet::client
