// Frame header encoding.
#include "rpc/frame.h"

#include <cstring>

namespace sluice::rpc {
namespace {

template <typename T>
void Put(char* out, size_t at, T v) {
  for (size_t i = 0; i < sizeof(T); ++i) out[at + i] = static_cast<char>((static_cast<uint64_t>(v) >> (8 * i)) & 0xff);
}

template <typename T>
T Get(const char* in, size_t at) {
  uint64_t v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v |= static_cast<uint64_t>(static_cast<unsigned char>(in[at + i])) << (8 * i);
  return static_cast<T>(v);
}

}  // namespace

void EncodeFrameHeader(const FrameHeader& h, char out[kFrameHeaderSize]) {
  Put<uint32_t>(out, 0, kFrameMagic);
  Put<uint16_t>(out, 4, h.version);
  Put<uint16_t>(out, 6, static_cast<uint16_t>(h.type));
  Put<uint32_t>(out, 8, h.flags);
  Put<uint32_t>(out, 12, h.header_len);
  Put<uint64_t>(out, 16, h.request_id);
  Put<uint32_t>(out, 24, h.payload_len);
  Put<uint32_t>(out, 28, 0);
}

Result<FrameHeader> DecodeFrameHeader(const char in[kFrameHeaderSize]) {
  if (Get<uint32_t>(in, 0) != kFrameMagic) return Corruption("bad frame magic (not a sluice RPC peer?)");
  FrameHeader h;
  h.version = Get<uint16_t>(in, 4);
  if (h.version != kProtocolVersion) {
    return Corruption("unsupported protocol version " + std::to_string(h.version) + " (this build speaks " +
                      std::to_string(kProtocolVersion) + ")");
  }
  uint16_t type = Get<uint16_t>(in, 6);
  if (type < static_cast<uint16_t>(FrameType::kHello) || type > static_cast<uint16_t>(FrameType::kLoadRange)) {
    return Corruption("unknown frame type " + std::to_string(type));
  }
  h.type = static_cast<FrameType>(type);
  h.flags = Get<uint32_t>(in, 8);
  h.header_len = Get<uint32_t>(in, 12);
  h.request_id = Get<uint64_t>(in, 16);
  h.payload_len = Get<uint32_t>(in, 24);
  if (h.header_len > kMaxHeaderBytes) {
    return Corruption("frame header of " + std::to_string(h.header_len) + " bytes is over the limit of " +
                      std::to_string(kMaxHeaderBytes));
  }
  if (h.payload_len > kMaxPayloadBytes) {
    return Corruption("frame payload of " + std::to_string(h.payload_len) + " bytes is over the limit of " +
                      std::to_string(kMaxPayloadBytes));
  }
  return h;
}

std::string EncodeFrame(const FrameHeader& h, const std::string& header, const std::string& payload) {
  FrameHeader copy = h;
  copy.header_len = static_cast<uint32_t>(header.size());
  copy.payload_len = static_cast<uint32_t>(payload.size());
  std::string out(kFrameHeaderSize, '\0');
  EncodeFrameHeader(copy, out.data());
  return out + header + payload;
}

}  // namespace sluice::rpc
