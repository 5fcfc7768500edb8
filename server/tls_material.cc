#include "server/tls_material.h"

#include "core/util/file_util.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <vector>

namespace facet::server {
namespace fs = std::filesystem;
namespace {

// What the provider watches inside the published folder. The key and its chain share one file, so that the
// provider's read of "key" and "certificate" cannot straddle a replacement and pair a new certificate with the old key.
constexpr char kIdentityFile[] = "identity.pem";
constexpr char kClientCaFile[] = "client-ca.pem";
// How often gRPC's provider looks at the published files. It rereads them only when they changed.
constexpr unsigned kRefreshIntervalS = 1;

using Bio = std::unique_ptr<BIO, decltype(&BIO_free)>;
using Key = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using Certificate = std::unique_ptr<X509, decltype(&X509_free)>;

// OpenSSL's reason for the last failure on this thread, and the thread's error queue emptied.
std::string OpenSslReason() {
  const unsigned long code = ERR_peek_last_error();
  char text[256] = "no detail from OpenSSL";
  if (code != 0) ERR_error_string_n(code, text, sizeof text);
  ERR_clear_error();
  return text;
}

std::runtime_error BadFile(const char* what, const std::string& path, const std::string& why) {
  return std::runtime_error(std::string(what) + " '" + path + "': " + why);
}

std::string ReadPemFile(const char* what, const std::string& path) {
  const auto bytes = ReadFileBytes(path);  // throws naming the path
  if (bytes.empty()) throw BadFile(what, path, "the file is empty");
  return std::string(bytes.begin(), bytes.end());
}

Bio MemoryBio(const std::string& pem) {
  return Bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
}

// Refuses a passphrase prompt: OpenSSL's default would read one from the terminal.
int NoPassphrase(char*, int, int, void*) { return 0; }

Key ParseKey(const std::string& pem, const std::string& path) {
  Key key(PEM_read_bio_PrivateKey(MemoryBio(pem).get(), nullptr, &NoPassphrase, nullptr), &EVP_PKEY_free);
  if (!key) {
    throw BadFile("TLS key", path, "not an unencrypted PEM private key (" + OpenSslReason() + ")");
  }
  return key;
}

std::vector<Certificate> ParseCertificates(const char* what, const std::string& pem, const std::string& path) {
  const Bio bio = MemoryBio(pem);
  std::vector<Certificate> certificates;
  while (X509* certificate = PEM_read_bio_X509(bio.get(), nullptr, &NoPassphrase, nullptr)) {
    certificates.emplace_back(certificate, &X509_free);
  }
  ERR_clear_error();  // the read past the last certificate fails by design
  if (certificates.empty()) throw BadFile(what, path, "holds no PEM certificate");
  return certificates;
}

// Writes `text` beside `path` and renames it over `path`, so that a reader sees the old file or the new one. The
// new file's modification time is at least a second past the old one's: gRPC's provider compares modification
// times, in whole seconds, before and after reading to tell whether a file changed under it.
void Publish(const fs::path& path, const std::string& text) {
  const fs::path temporary = path.string() + ".new";
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error("cannot write '" + temporary.string() + "': " + std::strerror(errno));
  const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  const int write_errno = errno;
  ::close(fd);
  if (!written) {
    fs::remove(temporary);
    throw std::runtime_error("cannot write '" + temporary.string() + "': " + std::strerror(write_errno));
  }
  std::error_code error;
  const auto old_time = fs::last_write_time(path, error);
  if (!error) {  // a file to replace
    fs::last_write_time(temporary, std::max(fs::last_write_time(temporary), old_time + std::chrono::seconds(1)));
  }
  fs::rename(temporary, path);
}

}  // namespace

TlsMaterial::TlsMaterial(TlsFiles files, std::string published_dir)
    : files_(std::move(files)), published_dir_(std::move(published_dir)) {
  if (files_.cert.empty() || files_.key.empty()) {
    throw std::runtime_error("TLS needs both a certificate and a key (--tls-cert, --tls-key)");
  }
  fs::create_directories(published_dir_);
  fs::permissions(published_dir_, fs::perms::owner_all, fs::perm_options::replace);
  CheckAndPublish();
}

void TlsMaterial::CheckAndPublish() {
  const std::string key_pem = ReadPemFile("TLS key", files_.key);
  const std::string cert_pem = ReadPemFile("TLS certificate", files_.cert);
  const Key key = ParseKey(key_pem, files_.key);
  const std::vector<Certificate> chain = ParseCertificates("TLS certificate", cert_pem, files_.cert);
  if (X509_check_private_key(chain.front().get(), key.get()) != 1) {
    ERR_clear_error();
    throw BadFile("TLS certificate", files_.cert, "its first certificate is not that of the key '" + files_.key + "'");
  }
  if (X509_cmp_current_time(X509_get0_notAfter(chain.front().get())) < 0) {
    throw BadFile("TLS certificate", files_.cert, "the certificate has expired");
  }
  std::string client_ca_pem;
  if (!files_.client_ca.empty()) {
    client_ca_pem = ReadPemFile("client CA", files_.client_ca);
    ParseCertificates("client CA", client_ca_pem, files_.client_ca);
  }
  // The identity first: a reload that replaces both may serve the new identity with the old client CA for up to a
  // refresh interval, each of them valid.
  Publish(fs::path(published_dir_) / kIdentityFile, key_pem + "\n" + cert_pem);
  if (!client_ca_pem.empty()) Publish(fs::path(published_dir_) / kClientCaFile, client_ca_pem);
}

void TlsMaterial::Reload() {
  std::lock_guard<std::mutex> lock(mutex_);
  CheckAndPublish();
}

std::shared_ptr<grpc::ServerCredentials> TlsMaterial::Credentials() const {
  const std::string identity = (fs::path(published_dir_) / kIdentityFile).string();
  const std::string client_ca = files_.client_ca.empty() ? "" : (fs::path(published_dir_) / kClientCaFile).string();
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(identity, identity, client_ca,
                                                                                        kRefreshIntervalS);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (!client_ca.empty()) {
    options.watch_root_certs();
    options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  }
  return grpc::experimental::TlsServerCredentials(options);
}

}  // namespace facet::server
