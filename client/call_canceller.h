// Cancels a long-running client call (a watch) from another thread. The call attaches its grpc::ClientContext for
// exactly as long as the context lives, so Cancel() never reaches a context that has been freed: it cancels the
// attached call, if any, and every call attached after it. Thread-safe; nothing here throws.
#pragma once

#include <mutex>

namespace grpc {
class ClientContext;
}

namespace facet::client {

class CallCanceller {
 public:
  CallCanceller() = default;
  CallCanceller(const CallCanceller&) = delete;
  CallCanceller& operator=(const CallCanceller&) = delete;

  void Cancel();
  bool cancelled() const;

  // Held by the call for its context's lifetime: attaches on construction (cancelling at once when Cancel() came
  // first) and detaches on destruction, which must come before the context's.
  class Attachment {
   public:
    Attachment(CallCanceller* canceller, grpc::ClientContext* context);  // canceller may be null: no-op
    ~Attachment();
    Attachment(const Attachment&) = delete;
    Attachment& operator=(const Attachment&) = delete;

   private:
    CallCanceller* const canceller_;
  };

 private:
  mutable std::mutex mutex_;
  grpc::ClientContext* context_ = nullptr;  // the attached call's; guarded by mutex_
  bool cancelled_ = false;
};

}  // namespace facet::client
