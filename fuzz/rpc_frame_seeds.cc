// Writes the seed corpus of rpc_frame_fuzzer: one real request frame per request type, as a
// client sends it (rpc/client.cc encodes the same way), plus frames with a payload, unknown
// fields and a truncated header. Usage: rpc_frame_seeds DIR (files are named by content).
#include <cstdio>
#include <fstream>
#include <string>

#include "rpc/frame.h"
#include "rpc/sluice_rpc.pb.h"

namespace rpc = sluice::rpc;

namespace {

int written = 0;

void Write(const std::string& dir, const std::string& name, rpc::FrameType type, const std::string& header,
           const std::string& payload = "") {
  rpc::FrameHeader h;
  h.type = type;
  h.request_id = 7 + static_cast<uint64_t>(written);
  std::ofstream(dir + "/" + name, std::ios::binary) << rpc::EncodeFrame(h, header, payload);
  ++written;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];

  rpc::HelloRequest hello;
  hello.set_secret("s3cr3t-shared-by-the-cluster");
  Write(dir, "hello", rpc::FrameType::kHello, hello.SerializeAsString());

  rpc::PathRequest path;
  path.set_path("/datasets/imagenet/train/n01440764");
  Write(dir, "stat", rpc::FrameType::kStat, path.SerializeAsString());
  path.set_recursive(true);
  Write(dir, "list_recursive", rpc::FrameType::kList, path.SerializeAsString());
  path.set_path("/datasets/../etc");
  Write(dir, "sync_dotdot", rpc::FrameType::kSync, path.SerializeAsString());
  path.set_path("/datasets/caf\xC3\xA9 shard");
  path.set_recursive(false);
  Write(dir, "free", rpc::FrameType::kFree, path.SerializeAsString());
  Write(dir, "check_cached", rpc::FrameType::kCheckCached, path.SerializeAsString());

  rpc::ReadRequest read;
  read.set_path("/datasets/shard-00001.tar");
  read.set_offset(1ull << 20);
  read.set_length(4ull << 20);
  read.set_disk_only(true);
  Write(dir, "read", rpc::FrameType::kRead, read.SerializeAsString());
  read.set_disk_only(false);
  read.set_prefetch(true);
  read.set_prefetch_from(0);
  Write(dir, "locate", rpc::FrameType::kLocate, read.SerializeAsString());

  rpc::LoadRequest load;
  load.set_path("/datasets/imagenet");
  load.set_replicas(2);
  Write(dir, "load", rpc::FrameType::kLoad, load.SerializeAsString());

  rpc::JobRequest job;
  job.set_job_id("load-1732609968-3");
  Write(dir, "job_status", rpc::FrameType::kJobStatus, job.SerializeAsString());
  Write(dir, "job_cancel", rpc::FrameType::kJobCancel, job.SerializeAsString());

  rpc::ReportRequest report;
  report.set_fallback_reads(12);
  Write(dir, "report", rpc::FrameType::kReport, report.SerializeAsString());
  Write(dir, "report_empty", rpc::FrameType::kReport, "");

  // A frame with a payload after its header, and a header with a field this build does not know.
  Write(dir, "read_data", rpc::FrameType::kReadData, rpc::ReadResponse().SerializeAsString(), "page bytes");
  Write(dir, "stat_unknown_field", rpc::FrameType::kStat, path.SerializeAsString() + std::string("\xA0\x06\x01", 3));
  // header_len says more than arrived.
  std::string frame = rpc::EncodeFrame(rpc::FrameHeader{.type = rpc::FrameType::kStat}, path.SerializeAsString(), "");
  std::ofstream(dir + "/stat_truncated", std::ios::binary) << frame.substr(0, frame.size() - 5);
  std::printf("wrote %d frames to %s\n", written + 1, dir.c_str());
  return 0;
}
