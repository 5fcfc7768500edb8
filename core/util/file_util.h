// Small file helpers shared by checkpoints and exports. No LibTorch.
// Thread-safe on distinct paths. Failures throw std::runtime_error naming the path.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace facet {

// Writes to `<path>.tmp.<pid>`, fsyncs, renames over `path` and fsyncs the folder, so that a crash leaves either
// the old file or the new one, never a torn one. Creates missing parent folders. Throws std::runtime_error.
void WriteFileAtomically(const std::string& path, std::string_view bytes);
// The same for a file made of consecutive pieces (no copy into one buffer).
void WriteFileAtomically(const std::string& path, std::initializer_list<std::string_view> pieces);

// Throws std::runtime_error naming the path when it cannot be read.
std::vector<char> ReadFileBytes(const std::string& path);

// Files that detect their own corruption: the payload, then a 20-byte footer (magic, CRC-32 of the payload and its
// length, little-endian). Written atomically. Reading throws std::runtime_error naming the path and the fault
// (truncated, no footer, checksum mismatch) instead of returning damaged bytes.
void WriteChecksummedFile(const std::string& path, std::string_view payload);
std::string ReadChecksummedFile(const std::string& path);

// CRC-32 (the zlib/PNG polynomial) of `bytes`, continuing from `previous`.
uint32_t Crc32(std::string_view bytes, uint32_t previous = 0);

}  // namespace facet
