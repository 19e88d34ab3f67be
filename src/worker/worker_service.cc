// The worker's edges: RPC frames and HTTP pages translated to Worker calls.
#include <google/protobuf/util/json_util.h>

#include <set>

#include "common/path.h"
#include "rpc/client.h"
#include "worker/worker.h"

namespace sluice::worker {
namespace {

void ToInfo(const Entry& e, rpc::FileInfo* out) {
  out->set_path(e.path);
  out->set_is_dir(e.is_dir);
  out->set_size(e.size);
  out->set_mtime_ns(e.mtime_ns);
  out->set_version(e.version);
}

template <typename Message>
void Answer(rpc::Responder& out, const rpc::Request& req, Message& resp, const Status& st) {
  if (!st.ok()) rpc::ToProto(st, resp.mutable_status());
  (void)out.Send(req.frame.type, req.frame.request_id, resp);
}

// Prometheus text: one HELP/TYPE pair per family.
void Family(std::string* out, const char* name, const char* type, const char* help) {
  *out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

std::string Label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

bool Worker::AnswerInline(const rpc::Request& req, rpc::Responder& out) {
  if (req.frame.type != rpc::FrameType::kStat) return false;
  rpc::PathRequest in;
  if (!in.ParseFromString(req.header)) return false;
  auto e = TryStat(in.path());
  if (!e) return false;
  rpc::StatResponse resp;
  if (e->ok()) ToInfo(**e, resp.mutable_info());
  Answer(out, req, resp, e->status());
  return true;
}

void Worker::HandleRpc(const rpc::Request& req, rpc::Responder& out) {
  switch (req.frame.type) {
    case rpc::FrameType::kStat: {
      rpc::PathRequest in;
      rpc::StatResponse resp;
      if (!in.ParseFromString(req.header)) return Answer(out, req, resp, InvalidArgument("malformed STAT request"));
      auto e = Stat(in.path());
      if (e.ok()) ToInfo(*e, resp.mutable_info());
      return Answer(out, req, resp, e.status());
    }
    case rpc::FrameType::kList: {
      rpc::PathRequest in;
      rpc::ListResponse resp;
      if (!in.ParseFromString(req.header)) return Answer(out, req, resp, InvalidArgument("malformed LIST request"));
      bool more = false;
      auto entries = List(in.path(), in.start_after(), in.limit(), &more);
      if (entries.ok()) {
        for (const auto& e : *entries) ToInfo(e, resp.add_entries());
        resp.set_more(more);
      }
      return Answer(out, req, resp, entries.status());
    }
    case rpc::FrameType::kRead: {
      rpc::ReadRequest in;
      rpc::ReadResponse resp;
      if (!in.ParseFromString(req.header)) return Answer(out, req, resp, InvalidArgument("malformed READ request"));
      if (in.length() > rpc::kMaxReadRequestBytes) {
        return Answer(out, req, resp,
                      InvalidArgument("READ of " + std::to_string(in.length()) + " bytes is over the limit of " +
                                      std::to_string(rpc::kMaxReadRequestBytes) + " per request (split it)"));
      }
      // Each page goes out as its own frame, straight from the cache's buffer.
      rpc::ReadResponse empty;
      auto n = Read(
          in.path(), in.offset(), in.length(),
          [&](std::string_view chunk) { return out.Send(rpc::FrameType::kReadData, req.frame.request_id, empty, chunk); },
          in.disk_only());
      if (n.ok()) resp.set_bytes(*n);
      return Answer(out, req, resp, n.status());
    }
    case rpc::FrameType::kLocate: {
      rpc::ReadRequest in;
      rpc::LocateResponse resp;
      if (!in.ParseFromString(req.header)) return Answer(out, req, resp, InvalidArgument("malformed LOCATE request"));
      auto located = Locate(in.path(), in.offset(), in.length(), in.prefetch(), in.prefetch_from());
      if (located.ok()) resp = *located;
      return Answer(out, req, resp, located.status());
    }
    case rpc::FrameType::kSync: {
      rpc::PathRequest in;
      rpc::PathResponse resp;
      if (!in.ParseFromString(req.header)) return Answer(out, req, resp, InvalidArgument("malformed SYNC request"));
      auto changed = Sync(in.path());
      if (changed.ok()) resp.set_files(*changed);
      if (changed.ok()) {  // Sync succeeded, so the path normalizes
        const std::string path = *NormalizePath(in.path());
        std::function<void(const std::string&)> listener;
        {
          std::lock_guard<std::mutex> lock(mu_);
          listener = sync_listener_;
          rpc::SyncEvent event;
          event.set_seq(next_sync_seq_++);
          event.set_path(path);
          syncs_.push_back(std::move(event));
          if (syncs_.size() > 64) syncs_.pop_front();
        }
        if (listener) listener(path);
      }
      return Answer(out, req, resp, changed.status());
    }
    case rpc::FrameType::kWriteOpen: {
      rpc::WriteOpenRequest in;
      rpc::WriteResponse resp;
      if (!in.ParseFromString(req.header)) return Answer(out, req, resp, InvalidArgument("malformed WRITE_OPEN request"));
      uint64_t size = 0;
      auto handle = OpenWrite(in.path(), in.truncate(), &size);
      if (handle.ok()) {
        resp.set_handle(*handle);
        resp.set_size(size);
      }
      return Answer(out, req, resp, handle.status());
    }
    case rpc::FrameType::kWrite: {
      rpc::WriteRequest in;
      rpc::WriteResponse resp;
      if (!in.ParseFromString(req.header)) return Answer(out, req, resp, InvalidArgument("malformed WRITE request"));
      auto size = in.truncate() ? TruncateWrite(in.handle(), in.offset()) : WriteAt(in.handle(), in.offset(), req.Payload());
      if (size.ok()) resp.set_size(*size);
      return Answer(out, req, resp, size.status());
    }
    case rpc::FrameType::kWriteClose: {
      rpc::WriteCloseRequest in;
      rpc::WriteResponse resp;
      if (!in.ParseFromString(req.header)) return Answer(out, req, resp, InvalidArgument("malformed WRITE_CLOSE request"));
      auto e = CloseWrite(in.handle(), in.commit(), in.release(), in.durable());
      if (e.ok()) {
        ToInfo(*e, resp.mutable_info());
        resp.set_size(e->size);
      }
      return Answer(out, req, resp, e.status());
    }
    case rpc::FrameType::kLoadRange: {
      rpc::LoadRangeRequest in;
      rpc::PathResponse resp;
      if (!in.ParseFromString(req.header)) return Answer(out, req, resp, InvalidArgument("malformed LOAD_RANGE request"));
      auto done = LoadRange(in);
      if (done.ok()) resp = *done;
      return Answer(out, req, resp, done.status());
    }
    case rpc::FrameType::kFlush: {
      rpc::PathRequest in;
      rpc::PathResponse resp;
      if (!in.ParseFromString(req.header)) return Answer(out, req, resp, InvalidArgument("malformed FLUSH request"));
      return Answer(out, req, resp, Flush(in.path()));
    }
    case rpc::FrameType::kRemove:
    case rpc::FrameType::kMkdir: {
      rpc::PathRequest in;
      rpc::PathResponse resp;
      if (!in.ParseFromString(req.header)) return Answer(out, req, resp, InvalidArgument("malformed REMOVE/MKDIR request"));
      Status st = req.frame.type == rpc::FrameType::kRemove ? Remove(in.path(), in.directory()) : MakeDirectory(in.path());
      return Answer(out, req, resp, st);
    }
    case rpc::FrameType::kRename: {
      rpc::RenameRequest in;
      rpc::PathResponse resp;
      if (!in.ParseFromString(req.header)) return Answer(out, req, resp, InvalidArgument("malformed RENAME request"));
      return Answer(out, req, resp, Rename(in.path(), in.to()));
    }
    case rpc::FrameType::kFree:
    case rpc::FrameType::kCheckCached: {
      rpc::PathRequest in;
      rpc::PathResponse resp;
      if (!in.ParseFromString(req.header)) return Answer(out, req, resp, InvalidArgument("malformed FREE/CHECK request"));
      auto usage = req.frame.type == rpc::FrameType::kFree ? Free(in.path()) : CheckCached(in.path());
      if (usage.ok()) {
        resp.set_files(usage->files);
        resp.set_bytes(usage->bytes);
        resp.set_cached_bytes(usage->cached_bytes);
      }
      return Answer(out, req, resp, usage.status());
    }
    case rpc::FrameType::kLoad: {
      rpc::LoadRequest in;
      rpc::JobStatus resp;
      if (!in.ParseFromString(req.header)) return Answer(out, req, resp, InvalidArgument("malformed LOAD request"));
      auto id = StartLoad(in.path(), in.replicas());
      if (id.ok()) resp.set_job_id(*id);
      return Answer(out, req, resp, id.status());
    }
    case rpc::FrameType::kJobStatus:
    case rpc::FrameType::kJobCancel: {
      rpc::JobRequest in;
      if (!in.ParseFromString(req.header)) {
        rpc::JobStatus resp;
        return Answer(out, req, resp, InvalidArgument("malformed JOB request"));
      }
      if (req.frame.type == rpc::FrameType::kJobCancel) {
        Status st = CancelJob(in.job_id());
        if (!st.ok()) {
          rpc::JobStatus resp;
          return Answer(out, req, resp, st);
        }
      }
      auto status = JobStatus(in.job_id());
      rpc::JobStatus resp = status.ok() ? *status : rpc::JobStatus();
      return Answer(out, req, resp, status.status());
    }
    case rpc::FrameType::kReport: {
      rpc::ReportRequest in;
      if (in.ParseFromString(req.header)) client_fallback_reads_ += in.fallback_reads();
      rpc::ReportResponse resp = Report();
      return Answer(out, req, resp, Status::Ok());
    }
    case rpc::FrameType::kHello:
    case rpc::FrameType::kReadData: {
      rpc::ReadResponse resp;
      return Answer(out, req, resp, InvalidArgument("unexpected frame type for a request"));
    }
  }
}

std::string Worker::Metrics() {
  rpc::ReportResponse r = Report();
  auto stats = pages_->Stats();
  std::string out;
  Family(&out, "sluice_cache_bytes", "gauge", "Bytes held by each cache tier.");
  for (const auto& t : r.tiers()) out += "sluice_cache_bytes{tier=\"" + Label(t.name()) + "\"} " + std::to_string(t.bytes()) + "\n";
  Family(&out, "sluice_cache_capacity_bytes", "gauge", "Byte quota of each cache tier.");
  for (const auto& t : r.tiers()) out += "sluice_cache_capacity_bytes{tier=\"" + Label(t.name()) + "\"} " + std::to_string(t.quota()) + "\n";
  Family(&out, "sluice_cache_pages", "gauge", "Pages held by each cache tier.");
  for (const auto& t : r.tiers()) out += "sluice_cache_pages{tier=\"" + Label(t.name()) + "\"} " + std::to_string(t.pages()) + "\n";
  Family(&out, "sluice_cache_unwritten_bytes", "gauge", "Bytes of memory-tier pages not written to a disk tier yet.");
  uint64_t unwritten = 0;
  for (const auto& t : r.tiers()) unwritten += t.unwritten_bytes();
  out += "sluice_cache_unwritten_bytes " + std::to_string(unwritten) + "\n";
  Family(&out, "sluice_page_hits_total", "counter", "Page reads served from the cache, by tier.");
  out += "sluice_page_hits_total{tier=\"memory\"} " + std::to_string(stats.hits_memory) + "\n";
  out += "sluice_page_hits_total{tier=\"disk\"} " + std::to_string(stats.hits_disk) + "\n";
  Family(&out, "sluice_page_misses_total", "counter", "Pages readers asked for that were not cached.");
  out += "sluice_page_misses_total " + std::to_string(r.page_misses()) + "\n";
  Family(&out, "sluice_corrupt_pages_total", "counter", "Cached pages dropped for a bad checksum or truncation.");
  out += "sluice_corrupt_pages_total " + std::to_string(stats.corrupt_pages) + "\n";
  Family(&out, "sluice_cache_write_errors_total", "counter", "Pages that could not be written to a disk tier.");
  out += "sluice_cache_write_errors_total " + std::to_string(stats.disk_write_errors) + "\n";
  Family(&out, "sluice_bytes_served_total", "counter", "Bytes returned to readers.");
  out += "sluice_bytes_served_total " + std::to_string(r.bytes_served()) + "\n";
  Family(&out, "sluice_writeback_pending_files", "gauge", "Files closed on write-back mounts, not uploaded yet.");
  out += "sluice_writeback_pending_files " + std::to_string(r.writeback_files()) + "\n";
  Family(&out, "sluice_writeback_pending_bytes", "gauge", "Bytes of those files.");
  out += "sluice_writeback_pending_bytes " + std::to_string(r.writeback_bytes()) + "\n";
  Family(&out, "sluice_writeback_failures_total", "counter", "Write-back upload attempts that failed (each is retried).");
  out += "sluice_writeback_failures_total " + std::to_string(r.writeback_failures()) + "\n";
  Family(&out, "sluice_writeback_uploaded_total", "counter", "Write-back files uploaded.");
  out += "sluice_writeback_uploaded_total " + std::to_string(r.writeback_uploaded()) + "\n";
  Family(&out, "sluice_ufs_requests_total", "counter", "Requests sent to each mount's under-store.");
  for (const auto& m : r.mounts()) out += "sluice_ufs_requests_total{mount=\"" + Label(m.path()) + "\"} " + std::to_string(m.ufs_requests()) + "\n";
  Family(&out, "sluice_ufs_bytes_read_total", "counter", "Bytes read from each mount's under-store.");
  for (const auto& m : r.mounts()) out += "sluice_ufs_bytes_read_total{mount=\"" + Label(m.path()) + "\"} " + std::to_string(m.ufs_bytes_read()) + "\n";
  Family(&out, "sluice_ufs_errors_total", "counter", "Failed under-store requests per mount.");
  for (const auto& m : r.mounts()) out += "sluice_ufs_errors_total{mount=\"" + Label(m.path()) + "\"} " + std::to_string(m.ufs_errors()) + "\n";
  const std::vector<std::tuple<const char*, const char*, const char*, uint64_t (rpc::MountUsage::*)() const>> meta = {
      {"sluice_metadata_bytes", "gauge", "Memory held by each mount's metadata cache.", &rpc::MountUsage::metadata_bytes},
      {"sluice_metadata_entries", "gauge", "Stat and listing entries in memory.", &rpc::MountUsage::metadata_entries},
      {"sluice_metadata_listed_entries", "gauge", "Entries of the directory listings in memory.",
       &rpc::MountUsage::metadata_listed_entries},
      {"sluice_metadata_index_directories", "gauge", "Directory listings in the metadata index on disk (estimate).",
       &rpc::MountUsage::metadata_index_directories},
      {"sluice_metadata_index_bytes", "gauge", "Size of the metadata index on disk.", &rpc::MountUsage::metadata_index_bytes},
      {"sluice_metadata_hits_total", "counter", "Stats and listings answered by the metadata cache.",
       &rpc::MountUsage::metadata_hits},
      {"sluice_metadata_misses_total", "counter", "Stats and listings that went to the under-store.",
       &rpc::MountUsage::metadata_misses},
  };
  for (const auto& [name, type, help, field] : meta) {
    Family(&out, name, type, help);
    for (const auto& m : r.mounts()) {
      out += std::string(name) + "{mount=\"" + Label(m.path()) + "\"} " + std::to_string((m.*field)()) + "\n";
    }
  }
  auto rpc_stats = rpc_->Stats();
  Family(&out, "sluice_rpc_connections_total", "counter", "RPC connections accepted.");
  out += "sluice_rpc_connections_total " + std::to_string(rpc_stats.connections) + "\n";
  Family(&out, "sluice_rpc_auth_failures_total", "counter", "RPC connections refused for a wrong cluster secret.");
  out += "sluice_rpc_auth_failures_total " + std::to_string(rpc_stats.auth_failures) + "\n";
  Family(&out, "sluice_rpc_malformed_frames_total", "counter", "RPC connections closed for a malformed frame.");
  out += "sluice_rpc_malformed_frames_total " + std::to_string(rpc_stats.malformed_frames) + "\n";
  std::function<std::string()> source;
  {
    std::lock_guard<std::mutex> lock(mu_);
    source = metrics_source_;
  }
  if (source) out += source();
  return router_ ? WithWorkerLabel(out) : out;
}

// In a cluster every sample names its worker, so one Prometheus job can scrape them all.
std::string Worker::WithWorkerLabel(const std::string& text) const {
  const std::string label = "worker=\"" + Label(id_) + "\"";
  std::string out;
  out.reserve(text.size() + text.size() / 4);
  size_t at = 0;
  while (at < text.size()) {
    size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + at, end - at);
    if (!line.empty() && line[0] != '#') {
      const size_t brace = line.find('{'), space = line.find(' ');
      if (brace != std::string_view::npos && brace < space) {
        out.append(line.substr(0, brace + 1)).append(label).append(",").append(line.substr(brace + 1));
      } else {
        out.append(line.substr(0, space)).append("{").append(label).append("}").append(line.substr(space));
      }
    } else {
      out.append(line);
    }
    out += '\n';
    at = end + 1;
  }
  return out;
}

namespace {

// The JSON names of the 64-bit integer fields of `type` and of the messages it holds.
void Int64FieldNames(const google::protobuf::Descriptor* type, std::set<std::string>* names,
                     std::set<const google::protobuf::Descriptor*>* seen) {
  if (!seen->insert(type).second) return;
  for (int i = 0; i < type->field_count(); ++i) {
    const auto* f = type->field(i);
    using FD = google::protobuf::FieldDescriptor;
    if (f->cpp_type() == FD::CPPTYPE_INT64 || f->cpp_type() == FD::CPPTYPE_UINT64) names->insert(f->json_name());
    if (f->cpp_type() == FD::CPPTYPE_MESSAGE) Int64FieldNames(f->message_type(), names, seen);
  }
}

// A message as JSON for the REST pages. Protobuf's JSON mapping writes 64-bit integers as
// strings ("bytesServed": "123"); clients of a report expect numbers, so they are unquoted.
std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  options.add_whitespace = true;
  std::string body;
  (void)google::protobuf::util::MessageToJsonString(message, &body, options);
  std::set<std::string> names;
  std::set<const google::protobuf::Descriptor*> seen;
  Int64FieldNames(message.GetDescriptor(), &names, &seen);
  for (const auto& name : names) {
    const std::string key = "\"" + name + "\": \"";
    for (size_t at = body.find(key); at != std::string::npos; at = body.find(key, at + 1)) {
      size_t open = at + key.size() - 1, close = body.find('"', open + 1);
      if (close == std::string::npos || close == open + 1) continue;
      bool digits = body.find_first_not_of("-0123456789", open + 1) >= close;
      if (!digits) continue;
      body.erase(close, 1);
      body.erase(open, 1);
    }
  }
  return body;
}

}  // namespace

Result<std::string> Worker::HttpGet(const std::string& target, std::string* content_type) {
  if (target == "/metrics") {
    *content_type = "text/plain; version=0.0.4";
    return Metrics();
  }
  *content_type = "application/json";
  if (target == "/api/v1/report") return ToJson(Report());
  const std::string jobs = "/api/v1/jobs/";
  if (target.rfind(jobs, 0) == 0) {
    SLUICE_ASSIGN_OR_RETURN(rpc::JobStatus s, JobStatus(target.substr(jobs.size())));
    return ToJson(s);
  }
  return NotFound("no page " + target + " (try /metrics, /api/v1/report, /api/v1/jobs/ID)");
}

}  // namespace sluice::worker
