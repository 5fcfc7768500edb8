#include "server/job_store.h"

#include <sqlite3.h>

#include <stdexcept>

namespace facet::server {
namespace {

// A prepared statement that finalizes itself.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) {
      throw std::runtime_error(std::string("sqlite prepare failed: ") + sqlite3_errmsg(db) + " in: " + sql);
    }
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  void Bind(int i, const std::string& text) { Check(sqlite3_bind_text(stmt_, i, text.data(), int(text.size()), SQLITE_TRANSIENT)); }
  void BindBlob(int i, const std::string& blob) { Check(sqlite3_bind_blob(stmt_, i, blob.data(), int(blob.size()), SQLITE_TRANSIENT)); }
  void Bind(int i, int64_t v) { Check(sqlite3_bind_int64(stmt_, i, v)); }
  bool Step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw std::runtime_error(std::string("sqlite step failed: ") + sqlite3_errmsg(db_));
  }
  std::string Blob(int col) {
    const void* p = sqlite3_column_blob(stmt_, col);
    return std::string(static_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
  }
  int64_t Int(int col) { return sqlite3_column_int64(stmt_, col); }

 private:
  void Check(int rc) {
    if (rc != SQLITE_OK) throw std::runtime_error(std::string("sqlite bind failed: ") + sqlite3_errmsg(db_));
  }
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

template <typename Message>
Message Parse(const std::string& blob, const std::string& what) {
  Message m;
  if (!m.ParseFromString(blob)) throw std::runtime_error("corrupt " + what + " record in the job store");
  return m;
}

}  // namespace

JobStore::JobStore(const std::string& path) : path_(path) {
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    const std::string error = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    throw std::runtime_error("cannot open job store '" + path + "': " + error);
  }
  sqlite3_busy_timeout(db_, 5000);
  Exec("PRAGMA journal_mode=WAL");
  Exec("PRAGMA synchronous=FULL");  // a finished job must survive a power cut
  Exec("CREATE TABLE IF NOT EXISTS jobs (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, "
       "state INTEGER NOT NULL, data BLOB NOT NULL)");
  Exec("CREATE TABLE IF NOT EXISTS models (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, "
       "active INTEGER NOT NULL DEFAULT 0, data BLOB NOT NULL)");
}

JobStore::~JobStore() { sqlite3_close(db_); }

void JobStore::Exec(const std::string& sql) {
  char* error = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
    const std::string message = error ? error : "unknown error";
    sqlite3_free(error);
    throw std::runtime_error("job store '" + path_ + "': " + message + " in: " + sql);
  }
}

void JobStore::PutJob(const v1::Job& job) {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement s(db_, "INSERT INTO jobs (id, state, data) VALUES (?1, ?2, ?3) "
                   "ON CONFLICT(id) DO UPDATE SET state = excluded.state, data = excluded.data");
  s.Bind(1, job.id());
  s.Bind(2, static_cast<int64_t>(job.state()));
  s.BindBlob(3, job.SerializeAsString());
  s.Step();
}

std::optional<v1::Job> JobStore::GetJob(const std::string& id) {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement s(db_, "SELECT data FROM jobs WHERE id = ?1");
  s.Bind(1, id);
  if (!s.Step()) return std::nullopt;
  return Parse<v1::Job>(s.Blob(0), "job");
}

std::vector<v1::Job> JobStore::ListJobs(v1::JobState state, int limit, const std::string& before, std::string* next) {
  int64_t before_seq = INT64_MAX;
  if (!before.empty()) {
    size_t used = 0;
    try {
      before_seq = std::stoll(before, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != before.size() || before_seq < 0) throw std::invalid_argument("page_token: malformed");
  }
  std::lock_guard<std::mutex> lock(mutex_);
  Statement s(db_, "SELECT seq, data FROM jobs WHERE seq < ?1 AND (?2 = 0 OR state = ?2) ORDER BY seq DESC LIMIT ?3");
  s.Bind(1, before_seq);
  s.Bind(2, static_cast<int64_t>(state));
  s.Bind(3, static_cast<int64_t>(limit) + 1);  // one extra row tells whether another page exists
  std::vector<v1::Job> jobs;
  int64_t last_seq = 0;
  next->clear();
  while (s.Step()) {
    if (static_cast<int>(jobs.size()) == limit) {
      *next = std::to_string(last_seq);
      break;
    }
    last_seq = s.Int(0);
    jobs.push_back(Parse<v1::Job>(s.Blob(1), "job"));
  }
  return jobs;
}

std::vector<v1::Job> JobStore::JobsInState(v1::JobState state) {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement s(db_, "SELECT data FROM jobs WHERE state = ?1 ORDER BY seq ASC");
  s.Bind(1, static_cast<int64_t>(state));
  std::vector<v1::Job> jobs;
  while (s.Step()) jobs.push_back(Parse<v1::Job>(s.Blob(0), "job"));
  return jobs;
}

std::vector<std::pair<v1::JobState, int64_t>> JobStore::CountJobsByState() {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement s(db_, "SELECT state, COUNT(*) FROM jobs GROUP BY state");
  std::vector<std::pair<v1::JobState, int64_t>> counts;
  while (s.Step()) counts.emplace_back(static_cast<v1::JobState>(s.Int(0)), s.Int(1));
  return counts;
}

void JobStore::PutModel(const v1::Model& model) {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement s(db_, "INSERT INTO models (id, active, data) VALUES (?1, ?2, ?3) "
                   "ON CONFLICT(id) DO UPDATE SET active = excluded.active, data = excluded.data");
  s.Bind(1, model.id());
  s.Bind(2, static_cast<int64_t>(model.active()));
  s.BindBlob(3, model.SerializeAsString());
  s.Step();
}

std::optional<v1::Model> JobStore::GetModel(const std::string& id) {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement s(db_, "SELECT data, active FROM models WHERE id = ?1");
  s.Bind(1, id);
  if (!s.Step()) return std::nullopt;
  auto model = Parse<v1::Model>(s.Blob(0), "model");
  model.set_active(s.Int(1) != 0);
  return model;
}

std::vector<v1::Model> JobStore::ListModels() {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement s(db_, "SELECT data, active FROM models ORDER BY seq DESC");
  std::vector<v1::Model> models;
  while (s.Step()) {
    models.push_back(Parse<v1::Model>(s.Blob(0), "model"));
    models.back().set_active(s.Int(1) != 0);
  }
  return models;
}

void JobStore::SetActiveModel(const std::string& id) {
  std::lock_guard<std::mutex> lock(mutex_);
  Exec("BEGIN IMMEDIATE");
  try {
    Statement s(db_, "UPDATE models SET active = (id = ?1)");
    s.Bind(1, id);
    s.Step();
    Exec("COMMIT");
  } catch (...) {
    Exec("ROLLBACK");
    throw;
  }
}

}  // namespace facet::server
