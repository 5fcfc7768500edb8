#include "core/util/file_util.h"

// LibTorch ships a fast slicing-by-16 CRC-32 as a header-only implementation; included in this one file only.
#include <caffe2/serialize/crc_alt.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace facet {
namespace {

std::runtime_error IoError(const std::string& what, const std::string& path) {
  return std::runtime_error(what + " '" + path + "': " + std::strerror(errno));
}

void FsyncPath(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags);
  if (fd < 0) return;  // best effort for folders on file systems that refuse O_RDONLY on them
  ::fsync(fd);
  ::close(fd);
}

constexpr char kFooterMagic[8] = {'F', 'A', 'C', 'E', 'T', 'C', 'R', 'C'};
constexpr size_t kFooterSize = sizeof(kFooterMagic) + 4 + 8;

void PutLittleEndian(std::string& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
}

uint64_t GetLittleEndian(const char* in, int bytes) {
  uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) value |= static_cast<uint64_t>(static_cast<unsigned char>(in[i])) << (8 * i);
  return value;
}

}  // namespace

uint32_t Crc32(std::string_view bytes, uint32_t previous) { return crc32_fast(bytes.data(), bytes.size(), previous); }

void WriteChecksummedFile(const std::string& path, std::string_view payload) {
  std::string footer(kFooterMagic, sizeof(kFooterMagic));
  PutLittleEndian(footer, Crc32(payload), 4);
  PutLittleEndian(footer, payload.size(), 8);
  WriteFileAtomically(path, {payload, footer});
}

std::string ReadChecksummedFile(const std::string& path) {
  const std::vector<char> bytes = ReadFileBytes(path);
  if (bytes.size() < kFooterSize ||
      std::string_view(bytes.data() + bytes.size() - kFooterSize, sizeof(kFooterMagic)) !=
          std::string_view(kFooterMagic, sizeof(kFooterMagic))) {
    throw std::runtime_error("'" + path + "' has no checksum footer (truncated, or not written by facet)");
  }
  const char* footer = bytes.data() + bytes.size() - kFooterSize + sizeof(kFooterMagic);
  const auto crc = static_cast<uint32_t>(GetLittleEndian(footer, 4));
  const uint64_t length = GetLittleEndian(footer + 4, 8);
  if (length != bytes.size() - kFooterSize) {
    throw std::runtime_error("'" + path + "' is " + std::to_string(bytes.size()) + " bytes; its footer says " +
                             std::to_string(length + kFooterSize));
  }
  const std::string_view payload(bytes.data(), length);
  if (Crc32(payload) != crc) throw std::runtime_error("'" + path + "' fails its CRC-32 check (corrupt)");
  return std::string(payload);
}

void WriteFileAtomically(const std::string& path, std::string_view bytes) { WriteFileAtomically(path, {bytes}); }

void WriteFileAtomically(const std::string& path, std::initializer_list<std::string_view> pieces) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  if (target.has_parent_path()) fs::create_directories(target.parent_path());
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw IoError("cannot create", tmp);
  for (const std::string_view bytes : pieces) {
    size_t written = 0;
    while (written < bytes.size()) {
      const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
      if (n < 0) {
        if (errno == EINTR) continue;
        const auto error = IoError("cannot write", tmp);
        ::close(fd);
        ::unlink(tmp.c_str());
        throw error;
      }
      written += static_cast<size_t>(n);
    }
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const auto error = IoError("cannot flush", tmp);
    ::unlink(tmp.c_str());
    throw error;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const auto error = IoError("cannot rename into", path);
    ::unlink(tmp.c_str());
    throw error;
  }
  FsyncPath(target.has_parent_path() ? target.parent_path().string() : ".", O_RDONLY | O_DIRECTORY);
}

std::vector<char> ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("cannot open", path);
  return std::vector<char>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace facet
