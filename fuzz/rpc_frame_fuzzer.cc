// Fuzzes what a worker does with the bytes of one RPC frame before any handler runs: the fixed
// header (rpc/frame.h DecodeFrameHeader, first 32 bytes), then ParseFromString of the protobuf
// header (the next header_len bytes, or as many as there are) as the request message of the
// frame's type, as RpcServer (HELLO) and Worker::HandleRpc do. Beyond not crashing: a decoded
// header is within the limits and encodes back to the same bytes; a parsed message serializes
// and parses back to the same bytes; its path, as the handlers use it, normalizes or is refused.
#include <google/protobuf/stubs/logging.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "check.h"
#include "common/path.h"
#include "rpc/frame.h"
#include "rpc/sluice_rpc.pb.h"

namespace {

namespace rpc = sluice::rpc;

template <typename Message>
Message ParseAndCheck(const std::string& header, bool* parsed) {
  Message m;
  *parsed = m.ParseFromString(header);
  if (!*parsed) return m;
  std::string once = m.SerializeAsString();
  Message again;
  FUZZ_CHECK(again.ParseFromString(once), "a serialized %s does not parse", m.GetTypeName().c_str());
  FUZZ_CHECK(again.SerializeAsString() == once, "%s does not round-trip", m.GetTypeName().c_str());
  return m;
}

void CheckPath(const std::string& path) {
  auto p = sluice::NormalizePath(path);
  FUZZ_CHECK(!p.ok() || (!p->empty() && p->front() == '/'), "a request path normalizes to '%s'", p->c_str());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Proto3 strings must be UTF-8; the parser logs each that is not. Rejected is enough here.
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < rpc::kFrameHeaderSize) return 0;  // the server waits for 32 bytes
  const char* bytes = reinterpret_cast<const char*>(data);
  auto h = rpc::DecodeFrameHeader(bytes);
  if (!h.ok()) {
    FUZZ_CHECK(h.status().code() == sluice::StatusCode::kCorruption && !h.status().message().empty(),
               "unexpected error for a bad frame header");
    return 0;
  }
  FUZZ_CHECK(h->header_len <= rpc::kMaxHeaderBytes && h->payload_len <= rpc::kMaxPayloadBytes, "limits");
  FUZZ_CHECK(h->version == rpc::kProtocolVersion, "version");
  char encoded[rpc::kFrameHeaderSize];
  rpc::EncodeFrameHeader(*h, encoded);
  FUZZ_CHECK(std::memcmp(encoded, bytes, 28) == 0, "the decoded header encodes to other bytes");

  std::string_view rest(bytes + rpc::kFrameHeaderSize, size - rpc::kFrameHeaderSize);
  const std::string header(rest.substr(0, h->header_len));
  bool parsed = false;
  switch (h->type) {
    case rpc::FrameType::kHello:
      (void)ParseAndCheck<rpc::HelloRequest>(header, &parsed);
      break;
    case rpc::FrameType::kStat:
    case rpc::FrameType::kList:
    case rpc::FrameType::kSync:
    case rpc::FrameType::kFree:
    case rpc::FrameType::kCheckCached: {
      auto m = ParseAndCheck<rpc::PathRequest>(header, &parsed);
      CheckPath(m.path());  // SYNC, FREE and CHECK_CACHED use the path even when parsing failed
      break;
    }
    case rpc::FrameType::kRemove:
    case rpc::FrameType::kMkdir:
    case rpc::FrameType::kFlush: {
      auto m = ParseAndCheck<rpc::PathRequest>(header, &parsed);
      if (parsed) CheckPath(m.path());
      break;
    }
    case rpc::FrameType::kWriteOpen: {
      auto m = ParseAndCheck<rpc::WriteOpenRequest>(header, &parsed);
      if (parsed) CheckPath(m.path());
      break;
    }
    case rpc::FrameType::kWrite:
      (void)ParseAndCheck<rpc::WriteRequest>(header, &parsed);
      break;
    case rpc::FrameType::kWriteClose:
      (void)ParseAndCheck<rpc::WriteCloseRequest>(header, &parsed);
      break;
    case rpc::FrameType::kRename: {
      auto m = ParseAndCheck<rpc::RenameRequest>(header, &parsed);
      if (parsed) {
        CheckPath(m.path());
        CheckPath(m.to());
      }
      break;
    }
    case rpc::FrameType::kRead:
    case rpc::FrameType::kLocate: {
      auto m = ParseAndCheck<rpc::ReadRequest>(header, &parsed);
      if (parsed) CheckPath(m.path());
      break;
    }
    case rpc::FrameType::kLoad: {
      auto m = ParseAndCheck<rpc::LoadRequest>(header, &parsed);
      CheckPath(m.path());
      break;
    }
    case rpc::FrameType::kLoadRange: {
      auto m = ParseAndCheck<rpc::LoadRangeRequest>(header, &parsed);
      if (parsed) CheckPath(m.path());
      break;
    }
    case rpc::FrameType::kJobStatus:
    case rpc::FrameType::kJobCancel:
      (void)ParseAndCheck<rpc::JobRequest>(header, &parsed);
      break;
    case rpc::FrameType::kReport:
      (void)ParseAndCheck<rpc::ReportRequest>(header, &parsed);
      break;
    case rpc::FrameType::kReadData:  // a reply only; the worker refuses it as a request
      break;
  }
  return 0;
}
