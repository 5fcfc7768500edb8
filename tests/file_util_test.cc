#include "core/util/file_util.h"
#include "tests/test_util.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <csignal>
#include <filesystem>
#include <fstream>

namespace facet {
namespace {

namespace fs = std::filesystem;
using testing::MessageOf;
using testing::ReadFile;

void Overwrite(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Lowers this process's file-size limit (as a full disk would stop writes) and ignores SIGXFSZ so that write()
// fails with EFBIG instead of killing the process; restores both when it goes out of scope.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    getrlimit(RLIMIT_FSIZE, &saved_);
    previous_handler_ = std::signal(SIGXFSZ, SIG_IGN);
    rlimit limit = saved_;
    limit.rlim_cur = bytes;
    setrlimit(RLIMIT_FSIZE, &limit);
  }
  ~FileSizeLimit() {
    setrlimit(RLIMIT_FSIZE, &saved_);
    std::signal(SIGXFSZ, previous_handler_);
  }

 private:
  rlimit saved_{};
  void (*previous_handler_)(int) = nullptr;
};

TEST(Crc32, MatchesTheStandardCheckValue) {
  EXPECT_EQ(Crc32("123456789"), 0xCBF43926u);  // the CRC-32/ISO-HDLC check value
  EXPECT_EQ(Crc32("6789", Crc32("12345")), 0xCBF43926u);
}

TEST(ChecksummedFile, RoundTripsAndRefusesFlippedOrTruncatedBytes) {
  testing::TempDir dir;
  const std::string path = dir / "data.bin";
  std::string payload(100000, '\0');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 31 % 251);
  WriteChecksummedFile(path, payload);
  EXPECT_EQ(ReadChecksummedFile(path), payload);
  const std::string good = ReadFile(path);

  std::string flipped = good;
  flipped[50000] ^= 0x01;
  Overwrite(path, flipped);
  EXPECT_NE(MessageOf([&] { ReadChecksummedFile(path); }).find("fails its CRC-32 check"), std::string::npos);

  Overwrite(path, good.substr(0, good.size() / 2));
  EXPECT_NE(MessageOf([&] { ReadChecksummedFile(path); }).find("no checksum footer"), std::string::npos);

  Overwrite(path, good.substr(0, 1000) + good.substr(good.size() - 20));  // a footer whose length disagrees
  EXPECT_NE(MessageOf([&] { ReadChecksummedFile(path); }).find("its footer says"), std::string::npos);

  Overwrite(path, "");
  EXPECT_NE(MessageOf([&] { ReadChecksummedFile(path); }).find(path), std::string::npos);
}

TEST(WriteFileAtomically, AFullDiskFailsTheWriteAndLeavesTheOldFileAndNoTemporary) {
  testing::TempDir dir;
  const std::string path = dir / "checkpoint.bin";
  WriteFileAtomically(path, "the previous good version");
  const std::string big(1 << 20, 'x');
  std::string error;
  {
    FileSizeLimit limit(64 * 1024);
    error = MessageOf([&] { WriteChecksummedFile(path, big); });
  }
  EXPECT_NE(error.find("cannot write"), std::string::npos) << error;
  EXPECT_NE(error.find("File too large"), std::string::npos) << error;
  EXPECT_EQ(ReadFile(path), "the previous good version");
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    EXPECT_EQ(entry.path().filename(), "checkpoint.bin") << "left behind: " << entry.path();
  }
}

}  // namespace
}  // namespace facet
