// The server's TLS key, certificate chain and client CA, replaceable while it serves.
//
// gRPC 1.51 swaps TLS material in a running server only through its file-watching certificate provider, which
// rereads files on a timer and serves whatever it finds there: a half-copied file, or a new certificate beside the
// old key. So the operator's files are never watched directly. They are checked first (each parses, the key is the
// certificate's, the certificate has not expired), and only then published, whole and by rename, into a folder of
// the server's own that the provider watches. A bad new file is refused and the material in use stays, as with the
// token file.
#pragma once

#include <memory>
#include <mutex>
#include <string>

namespace grpc {
class ServerCredentials;
}

namespace facet::server {

struct TlsFiles {
  std::string cert;       // PEM certificate chain, the server's own certificate first
  std::string key;        // PEM private key of that certificate
  std::string client_ca;  // PEM; when set, clients must present a certificate it signed (mutual TLS)
};

// Thread contract: Reload is called from one thread (the signal handler's) while gRPC reads the published files.
class TlsMaterial {
 public:
  // Checks the files and publishes them into `published_dir` (created with mode 0700; the copy of the key is 0600).
  // Throws std::runtime_error naming the file and what is wrong with it.
  TlsMaterial(TlsFiles files, std::string published_dir);

  // Credentials that serve the published material and pick up each Reload within about a second, for new
  // connections; connections already open keep the material they were opened with.
  std::shared_ptr<grpc::ServerCredentials> Credentials() const;

  // Reads the operator's files again (facet-server does on SIGHUP) and publishes them only if all of them pass the
  // checks; otherwise throws as the constructor does, and the material in use stays.
  void Reload();

  const TlsFiles& files() const { return files_; }

 private:
  void CheckAndPublish();

  const TlsFiles files_;
  const std::string published_dir_;
  std::mutex mutex_;  // one Reload at a time
};

}  // namespace facet::server
