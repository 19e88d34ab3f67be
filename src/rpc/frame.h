// The RPC frame: a fixed 32-byte little-endian header, then a protobuf header of header_len
// bytes, then a raw payload of payload_len bytes (page data is never re-encoded).
//   magic u32 | version u16 | type u16 | flags u32 | header_len u32 | request_id u64 |
//   payload_len u32 | reserved u32
// Limits protect both ends: a frame over them is malformed, and a malformed frame closes
// that one connection. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace sluice::rpc {

inline constexpr uint32_t kFrameMagic = 0x49554c53;  // "SLUI"
inline constexpr uint16_t kProtocolVersion = 1;
inline constexpr size_t kFrameHeaderSize = 32;
inline constexpr uint32_t kMaxHeaderBytes = 1 << 20;
inline constexpr uint32_t kMaxPayloadBytes = 64 << 20;

enum class FrameType : uint16_t {
  kHello = 1,
  kStat = 2,
  kList = 3,
  kRead = 4,
  kReadData = 5,
  kSync = 6,
  kFree = 7,
  kCheckCached = 8,
  kLoad = 9,
  kJobStatus = 10,
  kJobCancel = 11,
  kReport = 12,
  kLocate = 13,
  kWriteOpen = 14,
  kWrite = 15,
  kWriteClose = 16,
  kRemove = 17,
  kMkdir = 18,
  kRename = 19,
  kFlush = 20,
  kLoadRange = 21,
};

struct FrameHeader {
  uint16_t version = kProtocolVersion;
  FrameType type = FrameType::kHello;
  uint32_t flags = 0;
  uint32_t header_len = 0;
  uint64_t request_id = 0;
  uint32_t payload_len = 0;
};

void EncodeFrameHeader(const FrameHeader& h, char out[kFrameHeaderSize]);

// Decodes and checks magic, version, type and limits; the error says what was wrong.
Result<FrameHeader> DecodeFrameHeader(const char in[kFrameHeaderSize]);

// A whole frame as bytes (for tests and small messages).
std::string EncodeFrame(const FrameHeader& h, const std::string& header, const std::string& payload);

}  // namespace sluice::rpc
