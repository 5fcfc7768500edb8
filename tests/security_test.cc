// Security and fault tests of the real facet-server: tokens and roles on every RPC, TLS and mutual TLS, path
// confinement, model digests, a full disk during training, graceful shutdown under Predict load.
#include "core/data/synthetic.h"
#include "core/data/utkface_dataset.h"
#include "core/loss/multitask_loss.h"
#include "core/model/model_file.h"
#include "server/auth.h"
#include "server/server.h"
#include "server/tls_material.h"
#include "tests/server_process.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <regex>
#include <string>
#include <thread>

namespace facet {
namespace {

namespace fs = std::filesystem;
using client::ConnectionOptions;
using client::FacetClient;
using client::RpcError;
using testing::ServerProcess;
using testing::ServerProcessOptions;
using testing::CodeOf;
using testing::MessageOf;
using testing::ReadFile;

// `facetctl token create`: the token and the token-file line, as a user would make them.
std::pair<std::string, std::string> CreateToken(const std::string& role, const std::string& name) {
  std::string output;
  const int rc = testing::RunCommand(std::string(FACETCTL_BINARY) + " token create --role " + role + " --name " + name,
                                     &output);
  std::smatch m;
  if (rc != 0 || !std::regex_search(output, m, std::regex("token: (\\S+)\\ntoken file line: ([^\\n]+)"))) {
    throw std::runtime_error("facetctl token create failed: " + output);
  }
  return {m[1], m[2]};
}

// Signals are handled on the server's own thread: polls until `done` (or 30 s have passed), and says which.
bool Eventually(const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

// A small exported model in the data root, ready for RegisterModel (no training needed).
void WriteModel(const std::string& path, uint64_t seed) {
  torch::manual_seed(seed);
  MultiTaskNet model(ResNetOptions{Arch::kResNet18, 8});
  auto loss = MakeMultiTaskLoss({});
  ExportModel(path, model, loss->LogVariances(), 32);
}

// One server with authentication on; tokens made by facetctl.
class AuthTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new testing::TempDir();
    std::ofstream tokens(*root_ / "tokens");
    tokens << "# role sha256 name\n";
    for (const char* role : {"admin", "predict", "read"}) {
      auto [token, line] = CreateToken(role, std::string(role) + "-user");
      (*tokens_)[role] = token;
      tokens << line << "\n";
    }
    tokens.close();
    fs::create_directories(*root_ / "data");
    server_ = new ServerProcess(*root_ / "data", *root_ / "state", {"--auth-tokens=" + (*root_ / "tokens")});
  }
  static void TearDownTestSuite() {
    delete server_;
    delete root_;
  }
  void TearDown() override {
    if (HasFailure()) std::fprintf(stderr, "---- server log ----\n%s\n", server_->Log().c_str());
  }
  static FacetClient ClientWithToken(const std::string& token) {
    ConnectionOptions o = server_->connection();
    o.token = token;
    return FacetClient(o);
  }

  static testing::TempDir* root_;
  static ServerProcess* server_;
  static std::map<std::string, std::string>* tokens_;
};
testing::TempDir* AuthTest::root_ = nullptr;
ServerProcess* AuthTest::server_ = nullptr;
std::map<std::string, std::string>* AuthTest::tokens_ = new std::map<std::string, std::string>();

TEST_F(AuthTest, EveryRpcChecksTheTokenAndItsRole) {
  // Each call is made so that, once authorized, it fails for an ordinary reason (unknown id, invalid config, no
  // model): the matrix never changes the server's state.
  const std::map<std::string, std::pair<std::string, std::function<void(FacetClient&)>>> rpcs = {
      {"StartTraining", {"admin", [](FacetClient& c) { c.StartTraining(v1::TrainingConfig()); }}},
      {"GetJob", {"read", [](FacetClient& c) { c.GetJob("job-none"); }}},
      {"ListJobs", {"read", [](FacetClient& c) { c.ListJobs(v1::JOB_STATE_UNSPECIFIED, 5, ""); }}},
      {"WatchJob", {"read", [](FacetClient& c) { c.WatchJob("job-none", [](const v1::JobEvent&) {}); }}},
      {"CancelJob", {"admin", [](FacetClient& c) { c.CancelJob("job-none"); }}},
      {"ListModels", {"read", [](FacetClient& c) { c.ListModels(); }}},
      {"GetModel", {"read", [](FacetClient& c) { c.GetModel("model-none"); }}},
      {"ActivateModel", {"admin", [](FacetClient& c) { c.ActivateModel("model-none"); }}},
      {"RegisterModel", {"admin", [](FacetClient& c) { c.RegisterModel("missing.pt"); }}},
      {"Predict", {"predict", [](FacetClient& c) {
                     v1::PredictRequest r;
                     r.add_images("x");
                     c.Predict(r);
                   }}},
  };
  for (const auto& [method, rule] : rpcs) {
    const std::string& allowed_role = rule.first;  // not a structured binding: lambdas capture it (C++17)
    const auto& call = rule.second;
    SCOPED_TRACE(method);
    FacetClient anonymous = ClientWithToken("");
    EXPECT_EQ(CodeOf([&] { call(anonymous); }), grpc::StatusCode::UNAUTHENTICATED);
    FacetClient forged = ClientWithToken("fct_" + std::string(64, '0'));
    EXPECT_EQ(CodeOf([&] { call(forged); }), grpc::StatusCode::UNAUTHENTICATED);
    for (const auto& [role, token] : *tokens_) {
      FacetClient c = ClientWithToken(token);
      const grpc::StatusCode code = CodeOf([&] { call(c); });
      if (role == "admin" || role == allowed_role) {
        EXPECT_NE(code, grpc::StatusCode::UNAUTHENTICATED) << role;
        EXPECT_NE(code, grpc::StatusCode::PERMISSION_DENIED) << role;
      } else {
        EXPECT_EQ(code, grpc::StatusCode::PERMISSION_DENIED) << role;
      }
    }
  }
  const std::string denied = MessageOf([&] { ClientWithToken(tokens_->at("read")).CancelJob("job-none"); });
  EXPECT_NE(denied.find("'read-user' has role read; this call needs admin"), std::string::npos) << denied;
}

TEST_F(AuthTest, HealthAndMetricsStayOpen) {
  EXPECT_EQ(ClientWithToken("").Health(""), "SERVING");
  EXPECT_NE(testing::HttpGet(server_->metrics_address(), "/metrics").find("facet_"), std::string::npos);
}

TEST_F(AuthTest, FacetctlSendsTheTokenFromAFlagAFileOrTheEnvironment) {
  const std::string base = std::string(FACETCTL_BINARY) + " --server " + server_->address() + " ";
  std::string out;
  EXPECT_EQ(testing::RunCommand(base + "models", &out), 1) << out;
  EXPECT_NE(out.find("UNAUTHENTICATED"), std::string::npos) << out;
  EXPECT_EQ(testing::RunCommand(base + "--token " + tokens_->at("read") + " models", &out), 0) << out;
  std::ofstream(*root_ / "my-token") << tokens_->at("read") << "\n";
  EXPECT_EQ(testing::RunCommand(base + "models --token-file " + (*root_ / "my-token"), &out), 0) << out;
  EXPECT_EQ(testing::RunCommand("FACET_TOKEN=" + tokens_->at("predict") + " " + base + "models", &out), 1) << out;
  EXPECT_NE(out.find("PERMISSION_DENIED"), std::string::npos) << out;
}

TEST(TokenFile, MalformedLinesAreRefusedWithTheirLineNumber) {
  testing::TempDir dir;
  const std::string path = dir / "tokens";
  auto error_for = [&](const std::string& text) {
    std::ofstream(path, std::ios::trunc) << text;
    return MessageOf([&] { server::TokenAuthenticator{path}; });
  };
  const std::string digest(64, 'a');
  EXPECT_NE(error_for("# only a comment\n").find("holds no token"), std::string::npos);
  EXPECT_NE(error_for("\nadmin " + digest + " ops\nroot " + digest + "\n").find("line 3: unknown role 'root'"),
            std::string::npos);
  EXPECT_NE(error_for("admin not-a-digest\n").find("line 1"), std::string::npos);
  EXPECT_NE(error_for("admin " + digest + "\nread " + digest + "\n").find("line 2: duplicate token"),
            std::string::npos);
  EXPECT_NE(error_for("admin " + digest + " a b\n").find("unexpected 'b'"), std::string::npos);
  EXPECT_EQ(error_for("admin " + digest + "  # trailing comment\n"), "");
  EXPECT_NE(MessageOf([&] { server::TokenAuthenticator{dir / "missing"}; }).find("cannot read"),
            std::string::npos);
}

TEST(TokenFile, SighupReloadsTheTokensAndABadFileKeepsThoseInUse) {
  testing::TempDir root;
  // Not structured bindings: lambdas below capture them (C++17).
  const std::pair<std::string, std::string> old_user = CreateToken("read", "old-user");
  const std::pair<std::string, std::string> new_user = CreateToken("read", "new-user");
  const std::string& old_token = old_user.first;
  const std::string& new_token = new_user.first;
  const std::string tokens = root / "tokens";
  std::ofstream(tokens) << old_user.second << "\n";
  fs::create_directories(root / "data");
  ServerProcess server(root / "data", root / "state", {"--auth-tokens=" + tokens});
  auto list_models = [&](const std::string& token) {
    ConnectionOptions o = server.connection();
    o.token = token;
    FacetClient client(o);
    return CodeOf([&] { client.ListModels(); });
  };
  ASSERT_EQ(list_models(old_token), grpc::StatusCode::OK);
  ASSERT_EQ(list_models(new_token), grpc::StatusCode::UNAUTHENTICATED);

  // Rotation: the new token in, the old one revoked, as operators do it (a new file moved over the old one).
  std::ofstream(root / "tokens.new") << new_user.second << "\n";
  fs::rename(root / "tokens.new", tokens);
  server.Signal(SIGHUP);
  EXPECT_TRUE(Eventually([&] { return list_models(new_token) == grpc::StatusCode::OK; })) << server.Log();
  EXPECT_EQ(list_models(old_token), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_NE(server.Log().find("reloaded: 1 tokens"), std::string::npos) << server.Log();

  // A mistake in the file must not lock everyone out: it is refused, logged with its line, and the tokens stay.
  std::ofstream(tokens, std::ios::trunc) << new_user.second << "\nroot " << std::string(64, 'a') << "\n";
  server.Signal(SIGHUP);
  EXPECT_TRUE(Eventually([&] { return server.Log().find("token file not reloaded") != std::string::npos; }))
      << server.Log();
  EXPECT_NE(server.Log().find("line 2: unknown role 'root'"), std::string::npos) << server.Log();
  EXPECT_EQ(list_models(new_token), grpc::StatusCode::OK);
  EXPECT_EQ(list_models(old_token), grpc::StatusCode::UNAUTHENTICATED);
}

TEST(ListenAddress, WithoutTokensOnlyLoopbackUnlessRemoteCallersAreAllowed) {
  server::ServerOptions o;
  auto effective = [&](const std::string& listen) {
    o.listen_address = listen;
    return server::EffectiveListenAddress(o);
  };
  EXPECT_EQ(effective("0.0.0.0:7070"), "127.0.0.1:7070");
  EXPECT_EQ(effective("[::]:7070"), "[::1]:7070");
  EXPECT_EQ(effective("10.1.2.3:0"), "127.0.0.1:0");
  EXPECT_EQ(effective("localhost:7070"), "localhost:7070");
  EXPECT_EQ(effective("127.0.0.1:7070"), "127.0.0.1:7070");
  EXPECT_EQ(effective("unix:/run/facet.sock"), "unix:/run/facet.sock");
  o.allow_unauthenticated_remote = true;
  EXPECT_EQ(effective("0.0.0.0:7070"), "0.0.0.0:7070");
  o.allow_unauthenticated_remote = false;
  o.auth_token_file = "tokens";
  EXPECT_EQ(effective("0.0.0.0:7070"), "0.0.0.0:7070");
}

// ------------------------------------------------------------------------------------------------------- TLS

// A CA, a server certificate for 127.0.0.1/localhost and a client certificate, made with the openssl CLI.
class Certificates {
 public:
  Certificates() {
    const std::string script = dir_ / "make-certificates.sh";
    std::ofstream(script) << R"SH(set -e
cd "$(dirname "$0")"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=facet-test-ca -keyout ca.key -out ca.pem
for who in server client; do
  openssl req -newkey rsa:2048 -nodes -subj /CN=$who -keyout $who.key -out $who.csr
done
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile server.ext -out server.pem
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -out client.pem
)SH";
    std::string output;
    ok_ = testing::RunCommand("bash " + script, &output) == 0;
    if (!ok_) error_ = output;
  }
  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }
  std::string operator/(const std::string& name) const { return dir_ / name; }

 private:
  testing::TempDir dir_;
  bool ok_ = false;
  std::string error_;
};

TEST(Tls, TheServerSpeaksOnlyTlsAndMutualTlsRequiresAClientCertificate) {
  std::string ignored;
  if (testing::RunCommand("command -v openssl", &ignored) != 0) {
    GTEST_SKIP() << "the openssl CLI (Debian package openssl) is not installed: TLS test skipped";
  }
  Certificates certs;
  ASSERT_TRUE(certs.ok()) << "openssl could not make the test certificates:\n" << certs.error();
  testing::TempDir root;
  fs::create_directories(root / "data");

  ServerProcessOptions tls;
  tls.extra_flags = {"--tls-cert=" + (certs / "server.pem"), "--tls-key=" + (certs / "server.key")};
  tls.connection.tls_ca_file = certs / "ca.pem";
  {
    ServerProcess server(root / "data", root / "state", tls);
    EXPECT_EQ(server.client().ListModels().models_size(), 0);
    ConnectionOptions plaintext;
    plaintext.address = server.address();
    plaintext.timeout = std::chrono::seconds(5);
    EXPECT_EQ(CodeOf([&] { FacetClient(plaintext).ListModels(); }), grpc::StatusCode::UNAVAILABLE);
    ConnectionOptions untrusted = plaintext;
    untrusted.tls = true;  // the system's roots do not include the test CA
    EXPECT_EQ(CodeOf([&] { FacetClient(untrusted).ListModels(); }), grpc::StatusCode::UNAVAILABLE);
    std::string out;
    EXPECT_EQ(testing::RunCommand(std::string(FACETCTL_BINARY) + " --server " + server.address() + " --tls-ca " +
                                      (certs / "ca.pem") + " health",
                                  &out),
              0)
        << out;
  }

  ServerProcessOptions mutual = tls;
  mutual.extra_flags.push_back("--tls-client-ca=" + (certs / "ca.pem"));
  mutual.connection.tls_cert_file = certs / "client.pem";
  mutual.connection.tls_key_file = certs / "client.key";
  ServerProcess server(root / "data", root / "state2", mutual);
  EXPECT_EQ(server.client().ListModels().models_size(), 0);
  ConnectionOptions no_certificate = mutual.connection;
  no_certificate.tls_cert_file.clear();
  no_certificate.tls_key_file.clear();
  no_certificate.timeout = std::chrono::seconds(5);
  EXPECT_EQ(CodeOf([&] { FacetClient(no_certificate).ListModels(); }), grpc::StatusCode::UNAVAILABLE);
}

TEST(Tls, FilesThatCannotServeAreRefusedWithTheReasonAndNothingIsPublished) {
  std::string output;
  if (testing::RunCommand("command -v openssl", &output) != 0) {
    GTEST_SKIP() << "the openssl CLI (Debian package openssl) is not installed: TLS test skipped";
  }
  const Certificates ours, theirs;
  ASSERT_TRUE(ours.ok() && theirs.ok()) << ours.error() << theirs.error();
  testing::TempDir dir;
  const std::string garbage = dir / "garbage.pem", encrypted = dir / "encrypted.key";
  std::ofstream(garbage) << "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n";
  ASSERT_EQ(testing::RunCommand("openssl pkey -in " + (ours / "server.key") + " -aes256 -passout pass:secret -out " +
                                    encrypted,
                                &output),
            0)
      << output;
  const std::string published = dir / "published";
  auto error_of = [&](const std::string& cert, const std::string& key, const std::string& client_ca) {
    return MessageOf([&] { server::TlsMaterial({cert, key, client_ca}, published); });
  };
  const std::string cert = ours / "server.pem", key = ours / "server.key";
  EXPECT_NE(error_of(cert, garbage, "").find("TLS key '" + garbage + "': not an unencrypted PEM private key"),
            std::string::npos);
  // An encrypted key is refused at once: OpenSSL is never left to ask for a passphrase on a terminal.
  EXPECT_NE(error_of(cert, encrypted, "").find("not an unencrypted PEM private key"), std::string::npos);
  EXPECT_NE(error_of(theirs / "server.pem", key, "").find("its first certificate is not that of the key"),
            std::string::npos);
  EXPECT_NE(error_of(garbage, key, "").find("TLS certificate '" + garbage + "': holds no PEM certificate"),
            std::string::npos);
  EXPECT_NE(error_of(cert, key, garbage).find("client CA '" + garbage + "': holds no PEM certificate"),
            std::string::npos);
  EXPECT_NE(error_of(cert, dir / "missing.key", "").find("missing.key"), std::string::npos);
  EXPECT_NE(error_of(cert, "", "").find("needs both a certificate and a key"), std::string::npos);
  EXPECT_FALSE(fs::exists(fs::path(published) / "identity.pem"));
  EXPECT_EQ(error_of(cert, key, ours / "ca.pem"), "");
  EXPECT_TRUE(fs::exists(fs::path(published) / "identity.pem"));
  EXPECT_TRUE(fs::exists(fs::path(published) / "client-ca.pem"));
}

TEST(Tls, SighupServesARenewedCertificateAndRefusesACertificateThatIsNotTheKeys) {
  std::string ignored;
  if (testing::RunCommand("command -v openssl", &ignored) != 0) {
    GTEST_SKIP() << "the openssl CLI (Debian package openssl) is not installed: TLS test skipped";
  }
  const Certificates old_ca, new_ca;  // two CAs: a client trusting one of them tells which certificate is served
  ASSERT_TRUE(old_ca.ok() && new_ca.ok()) << "openssl could not make the test certificates:\n"
                                          << old_ca.error() << new_ca.error();
  testing::TempDir root;
  fs::create_directories(root / "data");
  const std::string cert = root / "server.pem", key = root / "server.key";
  fs::copy_file(old_ca / "server.pem", cert);
  fs::copy_file(old_ca / "server.key", key);
  ServerProcessOptions tls;
  tls.extra_flags = {"--tls-cert=" + cert, "--tls-key=" + key};
  tls.connection.tls_ca_file = old_ca / "ca.pem";
  ServerProcess server(root / "data", root / "state", tls);
  // Each call opens a connection of its own, so each sees the certificate served at that moment.
  auto code_trusting = [&](const Certificates& ca) {
    ConnectionOptions o;
    o.address = server.address();
    o.tls_ca_file = ca / "ca.pem";
    o.timeout = std::chrono::seconds(5);
    return CodeOf([&] { FacetClient(o).ListModels(); });
  };
  ASSERT_EQ(code_trusting(old_ca), grpc::StatusCode::OK);
  ASSERT_EQ(code_trusting(new_ca), grpc::StatusCode::UNAVAILABLE);

  // A renewal half done, the new certificate beside the old key: refused, and the old pair is still served once
  // gRPC's provider has looked at its files again (every second).
  fs::copy_file(new_ca / "server.pem", cert, fs::copy_options::overwrite_existing);
  server.Signal(SIGHUP);
  EXPECT_TRUE(Eventually([&] { return server.Log().find("TLS files not reloaded") != std::string::npos; }))
      << server.Log();
  EXPECT_NE(server.Log().find("is not that of the key"), std::string::npos) << server.Log();
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  EXPECT_EQ(code_trusting(old_ca), grpc::StatusCode::OK);
  EXPECT_EQ(code_trusting(new_ca), grpc::StatusCode::UNAVAILABLE);

  // The renewal completed: new connections get the new certificate, without a restart.
  fs::copy_file(new_ca / "server.key", key, fs::copy_options::overwrite_existing);
  server.Signal(SIGHUP);
  EXPECT_TRUE(Eventually([&] { return code_trusting(new_ca) == grpc::StatusCode::OK; })) << server.Log();
  EXPECT_EQ(code_trusting(old_ca), grpc::StatusCode::UNAVAILABLE);
  EXPECT_NE(server.Log().find("reloaded: new connections use them"), std::string::npos) << server.Log();
  // The server's published copy of the key is its own alone.
  const fs::perms published = fs::status(fs::path(root / "state") / "tls" / "identity.pem").permissions();
  EXPECT_EQ(published & (fs::perms::group_all | fs::perms::others_all), fs::perms::none);
}

// ------------------------------------------------------------------------------- paths, models, faults

class FaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = root_ / "data";
    WriteSyntheticDataset(data_ + "/faces", {/*count=*/96, /*image_size=*/48});
  }
  void TearDown() override {
    if (HasFailure() && server_) std::fprintf(stderr, "---- server log ----\n%s\n", server_->Log().c_str());
  }
  void Start(ServerProcessOptions options = {}) {
    server_ = std::make_unique<ServerProcess>(data_, root_ / "state", std::move(options));
  }
  FacetClient& client() { return server_->client(); }
  v1::PredictRequest OneFace() const {
    v1::PredictRequest request;
    request.add_images(ReadFile(ScanUtkFaceFolder(data_ + "/faces").samples.at(0).path));
    return request;
  }

  testing::TempDir root_;
  std::string data_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(FaultTest, PathsThatLeaveTheDataRootAreNeverRead) {
  testing::TempDir outside;
  WriteModel(outside / "model.pt", 1);
  WriteSyntheticDataset(outside / "faces", {/*count=*/40, /*image_size=*/48});
  fs::create_symlink(outside / "model.pt", data_ + "/link.pt");
  fs::create_symlink(outside / "faces", data_ + "/linked-faces");
  fs::create_symlink("..", data_ + "/up");
  Start();
  for (const std::string& path : {std::string("link.pt"), std::string("../model.pt"), outside / "model.pt",
                                  std::string("up/data/link.pt"), std::string("faces/\0/x.pt", 12)}) {
    SCOPED_TRACE(path);
    const std::string message = MessageOf([&] { client().RegisterModel(path); });
    EXPECT_NE(message.find("INVALID_ARGUMENT"), std::string::npos) << message;
  }
  v1::TrainingConfig c;
  c.set_batch_size(16);
  for (const std::string& dir : {std::string("linked-faces"), std::string("up"), std::string("faces\0..", 8)}) {
    SCOPED_TRACE(dir);
    c.set_data_dir(dir);
    EXPECT_EQ(CodeOf([&] { client().StartTraining(c); }), grpc::StatusCode::INVALID_ARGUMENT);
  }
  EXPECT_EQ(client().ListModels().models_size(), 0);
  EXPECT_EQ(client().ListJobs(v1::JOB_STATE_UNSPECIFIED, 10, "").jobs_size(), 0);
}

TEST_F(FaultTest, InputLimitsAnswerWithTheRightStatusAndTheServerCarriesOn) {
  WriteModel(data_ + "/a.pt", 1);
  ServerProcessOptions options;
  options.extra_flags = {"--max-message-bytes=1000000", "--max-images-per-request=2", "--max-image-bytes=100000",
                         "--max-image-pixels=1000000"};
  Start(options);
  client().ActivateModel(client().RegisterModel("a.pt").id());

  v1::PredictRequest huge;
  huge.add_images(std::string(2'000'000, 'x'));
  EXPECT_EQ(CodeOf([&] { client().Predict(huge); }), grpc::StatusCode::RESOURCE_EXHAUSTED);

  v1::PredictRequest too_many = OneFace();
  too_many.add_images(too_many.images(0));
  too_many.add_images(too_many.images(0));
  const std::string message = MessageOf([&] { client().Predict(too_many); });
  EXPECT_NE(message.find("INVALID_ARGUMENT: images: at most 2 per request, got 3"), std::string::npos) << message;

  v1::PredictRequest bad_images = OneFace();
  bad_images.add_images(std::string(200'000, '\xff'));  // over --max-image-bytes
  bad_images.add_images(ReadFile(std::string(FACET_SOURCE_DIR) + "/tests/fuzz/corpus/image/bomb.png"));
  bad_images.mutable_images()->SwapElements(0, 2);
  bad_images.mutable_images()->RemoveLast();  // [bomb, oversized]
  const auto response = client().Predict(bad_images);
  ASSERT_EQ(response.results_size(), 2);
  for (const auto& result : response.results()) EXPECT_EQ(result.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(response.results(0).error_message().find("100000x100000"), std::string::npos)
      << response.results(0).error_message();
  EXPECT_NE(response.results(1).error_message().find("the limit is 100000"), std::string::npos)
      << response.results(1).error_message();
  EXPECT_EQ(client().Predict(OneFace()).results(0).error_code(), 0) << "the server carries on";
}

TEST_F(FaultTest, AModelFileThatNoLongerMatchesItsDigestIsRefusedAndTheServingModelStays) {
  WriteModel(data_ + "/a.pt", 1);
  WriteModel(data_ + "/b.pt", 2);
  Start();
  const v1::Model a = client().RegisterModel("a.pt");
  const v1::Model b = client().RegisterModel("b.pt");
  EXPECT_EQ(a.sha256().size(), 64u);
  EXPECT_EQ(client().GetModel(b.id()).sha256(), b.sha256());
  client().ActivateModel(a.id());

  // Corrupt B inside the server's state (a bad disk, or someone replacing the file).
  const std::string b_path = fs::path(root_.path()) / "state" / "models" / (b.id() + ".pt");
  std::string bytes = ReadFile(b_path);
  ASSERT_FALSE(bytes.empty());
  bytes[bytes.size() / 2] ^= 0x01;
  std::ofstream(b_path, std::ios::binary | std::ios::trunc) << bytes;
  const std::string message = MessageOf([&] { client().ActivateModel(b.id()); });
  EXPECT_NE(message.find("FAILED_PRECONDITION"), std::string::npos) << message;
  EXPECT_NE(message.find("SHA-256"), std::string::npos) << message;
  EXPECT_EQ(client().Predict(OneFace()).model_id(), a.id());
}

TEST_F(FaultTest, AFullDiskWhileCheckpointingFailsTheJobCleanlyAndTheServerKeepsServing) {
  WriteModel(data_ + "/a.pt", 1);
  ServerProcessOptions options;
  options.file_size_limit_bytes = 2 << 20;  // above the tiny model export, below its checkpoint (+ Adam state)
  Start(options);
  client().ActivateModel(client().RegisterModel("a.pt").id());
  const v1::Job submitted = client().StartTraining(testing::TinyJob());
  client().WatchJob(submitted.id(), [](const v1::JobEvent&) {});
  const v1::Job job = client().GetJob(submitted.id());
  EXPECT_EQ(job.state(), v1::JOB_STATE_FAILED);
  EXPECT_NE(job.error().find("File too large"), std::string::npos) << job.error();
  EXPECT_TRUE(job.model_id().empty());
  const fs::path checkpoints = fs::path(root_.path()) / "state" / "jobs" / job.id() / "checkpoints";
  if (fs::exists(checkpoints)) {
    for (const auto& entry : fs::directory_iterator(checkpoints)) ADD_FAILURE() << "left behind: " << entry.path();
  }
  EXPECT_EQ(client().Health(""), "SERVING");
  EXPECT_EQ(client().Predict(OneFace()).results(0).error_code(), 0);
}

TEST_F(FaultTest, SigtermLetsAcceptedPredictsFinishAndExitsZero) {
  WriteModel(data_ + "/a.pt", 1);
  ServerProcessOptions options;
  // Long batching delay: requests sit in the batcher, so SIGTERM arrives while many are in flight.
  options.extra_flags = {"--max-queue-delay-us=200000", "--max-batch-size=64", "--shutdown-grace-ms=10000"};
  Start(options);
  client().ActivateModel(client().RegisterModel("a.pt").id());
  const v1::PredictRequest request = OneFace();

  using Clock = std::chrono::steady_clock;
  std::atomic<bool> stop{false};
  std::atomic<Clock::rep> sigterm_at{Clock::time_point::max().time_since_epoch().count()};
  std::atomic<int> ok{0}, refused{0}, in_flight_failures{0}, ok_started_before_sigterm{0};
  std::mutex failures_mutex;
  std::string failures;  // the status of each accepted request that failed
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&] {
      ConnectionOptions o = server_->connection();
      o.timeout = std::chrono::seconds(20);
      FacetClient c(o);
      while (!stop) {
        const auto started = Clock::now();
        const grpc::StatusCode code = CodeOf([&] { c.Predict(request); });
        // A call that began well before SIGTERM reached the server and was accepted: it must succeed. "Well
        // before" is 250 ms: while the other tests load both cores, a call can take over 50 ms to reach the server.
        const bool accepted = started.time_since_epoch().count() + std::chrono::nanoseconds(250'000'000).count() <
                              sigterm_at.load();
        auto record_failure = [&] {
          ++in_flight_failures;
          std::lock_guard<std::mutex> lock(failures_mutex);
          const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
          failures += " " + std::to_string(static_cast<int>(code)) + " after " + std::to_string(took.count()) + " ms;";
        };
        if (code == grpc::StatusCode::OK) {
          ++ok;
          if (accepted) ++ok_started_before_sigterm;
        } else if (accepted) {
          record_failure();
        } else {
          // Refused: UNAVAILABLE, or CANCELLED for a call that reached the server's transport but no handler before
          // shutdown (gRPC core answers those CANCELLED: grpc/grpc#41785). Neither was processed, so either is safe
          // to retry; any other code would be a lost request.
          ++refused;
          if (code != grpc::StatusCode::UNAVAILABLE && code != grpc::StatusCode::CANCELLED) record_failure();
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  sigterm_at = Clock::now().time_since_epoch().count();
  const int exit_code = server_->Terminate();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  stop = true;
  for (auto& t : clients) t.join();
  EXPECT_EQ(exit_code, 0);
  EXPECT_EQ(in_flight_failures.load(), 0) << "accepted requests that failed (gRPC code, time from start):" << failures;
  EXPECT_GT(ok_started_before_sigterm.load(), 8);
  EXPECT_GT(refused.load(), 0) << "no request arrived after shutdown began";
  EXPECT_NE(server_->Log().find("stopped"), std::string::npos);
}

}  // namespace
}  // namespace facet
