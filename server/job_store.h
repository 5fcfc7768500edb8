// Jobs and models persisted in SQLite (WAL), so that they survive restarts. Thread-safe.
#pragma once

#include "facet/v1/facet.pb.h"

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

struct sqlite3;

namespace facet::server {

class JobStore {
 public:
  // Opens (creating if needed) the database file. Throws std::runtime_error naming the path.
  explicit JobStore(const std::string& path);
  ~JobStore();
  JobStore(const JobStore&) = delete;
  JobStore& operator=(const JobStore&) = delete;

  // Inserts or replaces by id; a new job is ordered after every earlier one.
  void PutJob(const v1::Job& job);
  std::optional<v1::Job> GetJob(const std::string& id);
  // Newest first. `before` is a page token from a previous call ("" for the first page); `next` receives the
  // token of the following page, or "" when there is none. Throws std::invalid_argument on a malformed token.
  std::vector<v1::Job> ListJobs(v1::JobState state, int limit, const std::string& before, std::string* next);
  // Oldest first: the order in which queued jobs run.
  std::vector<v1::Job> JobsInState(v1::JobState state);
  std::vector<std::pair<v1::JobState, int64_t>> CountJobsByState();

  void PutModel(const v1::Model& model);
  std::optional<v1::Model> GetModel(const std::string& id);
  std::vector<v1::Model> ListModels();  // newest first
  // Marks one model active and every other inactive, in one transaction.
  void SetActiveModel(const std::string& id);

 private:
  void Exec(const std::string& sql);
  sqlite3* db_ = nullptr;
  std::mutex mutex_;  // one connection, serialised
  std::string path_;
};

}  // namespace facet::server
