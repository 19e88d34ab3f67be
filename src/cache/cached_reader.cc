// The single-flight, coalescing miss path.
#include "cache/cached_reader.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "cache/page_buffers.h"
#include "ufs/http_client.h"

namespace sluice::cache {

// One page being fetched; readers that want it wait here.
struct CachedReader::Flight {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  Status status;
  PageData data;

  void Complete(Status st, PageData page) {
    std::lock_guard<std::mutex> lock(mu);
    if (done) return;
    done = true;
    status = std::move(st);
    data = std::move(page);
    cv.notify_all();
  }
  Result<PageData> Wait() {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [this] { return done; });
    if (!status.ok()) return status;
    return data;
  }
};

// Bounds concurrent under-store reads and their bytes per second (token bucket). A reader's
// demand miss goes before background work (preload): background fetches leave a quarter of
// the slots to readers and never take a slot while a reader waits for one.
class CachedReader::Throttle {
 public:
  Throttle(int max_concurrency, uint64_t rate)
      : slots_(std::max(1, max_concurrency)), reserved_(std::max(1, max_concurrency) / 4), rate_(rate) {}

  void Acquire(bool background) {
    std::unique_lock<std::mutex> lock(mu_);
    if (background) {
      background_cv_.wait(lock, [this] { return slots_ > reserved_ && waiting_readers_ == 0; });
    } else {
      ++waiting_readers_;
      readers_cv_.wait(lock, [this] { return slots_ > 0; });
      --waiting_readers_;
    }
    --slots_;
    // Slots left for background work once no reader waits: pass the turn on.
    if (waiting_readers_ == 0 && slots_ > reserved_) background_cv_.notify_one();
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    ++slots_;
    // One slot: one waiter, a reader first (a herd of 64 preload threads woken per release
    // was a fifth of a preload's CPU).
    if (waiting_readers_ > 0) {
      readers_cv_.notify_one();
    } else {
      background_cv_.notify_one();
    }
  }
  // Waits until `bytes` may pass under the rate limit.
  void Spend(uint64_t bytes) {
    if (rate_ == 0) return;
    std::chrono::steady_clock::time_point ready;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto now = std::chrono::steady_clock::now();
      if (next_free_ < now) next_free_ = now;
      ready = next_free_;
      next_free_ += std::chrono::nanoseconds(static_cast<int64_t>(1e9 * static_cast<double>(bytes) / rate_));
    }
    std::this_thread::sleep_until(ready);
  }

 private:
  std::mutex mu_;
  std::condition_variable readers_cv_, background_cv_;
  int slots_;                 // GUARDED_BY(mu_)
  int waiting_readers_ = 0;   // GUARDED_BY(mu_)
  const int reserved_;
  const uint64_t rate_;
  std::chrono::steady_clock::time_point next_free_;  // GUARDED_BY(mu_)
};

CachedReader::CachedReader(PageStore* store, ufs::UnderStore* ufs, MissPathOptions options)
    : store_(store),
      ufs_(ufs),
      options_(options),
      throttle_(std::make_unique<Throttle>(options.ufs_max_concurrency, options.ufs_rate_limit)) {}

CachedReader::~CachedReader() = default;

Status CachedReader::FetchRun(const CachedFile& file, uint64_t first,
                              const std::vector<std::shared_ptr<Flight>>& flights, const OnPage& on_page,
                              uint64_t* fetched, bool memory, bool background) {
  const uint64_t ps = store_->page_size();
  const uint64_t start = first * ps;
  const uint64_t end = std::min(file.size, (first + flights.size()) * ps);
  size_t next = 0;  // flight of the page being assembled
  PageBuffers& buffers = PageBuffers::Global();
  std::unique_ptr<PageBuffer> buffer = buffers.Take(static_cast<size_t>(std::min(ps, end - start)));
  Status consumer_status;  // an error from on_page stops handing pages out, not caching them

  auto finish_page = [&]() {
    PageData page = std::move(buffer);
    uint64_t index = first + next;
    store_->Put(PageKey{file.id, index}, page, memory);
    {
      std::lock_guard<std::mutex> lock(mu_);
      flights_.erase(PageKey{file.id, index});
    }
    flights[next]->Complete(Status::Ok(), page);
    ++next;
    if (consumer_status.ok()) consumer_status = on_page(index, PageSlice{page, 0});
    if (next < flights.size()) buffer = buffers.Take(static_cast<size_t>(std::min(ps, end - (first + next) * ps)));
  };

  // The under-store may receive the bytes straight into the page being filled.
  ufs::ReceiveTarget target([&](uint64_t) -> std::pair<char*, size_t> {
    if (next >= flights.size() || !buffer) return {nullptr, 0};
    const uint64_t page_length = std::min(end, (first + next + 1) * ps) - (first + next) * ps;
    return {buffer->data() + buffer->size(), static_cast<size_t>(page_length - buffer->size())};
  });
  throttle_->Acquire(background);
  auto n = ufs_->ReadVersion(file.path, start, end - start, file.version, [&](std::string_view chunk) -> Status {
    throttle_->Spend(chunk.size());
    while (!chunk.empty() && next < flights.size()) {
      uint64_t page_end = std::min(end, (first + next + 1) * ps);
      uint64_t want = page_end - (first + next) * ps - buffer->size();
      size_t take = static_cast<size_t>(std::min<uint64_t>(want, chunk.size()));
      buffer->Append(chunk.substr(0, take));
      chunk.remove_prefix(take);
      if (buffer->size() == page_end - (first + next) * ps) finish_page();
    }
    return Status::Ok();
  });
  throttle_->Release();
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.ufs_reads;
    stats_.ufs_bytes += n.ok() ? *n : 0;
  }
  if (n.ok()) *fetched += *n;
  Status st = n.status();
  if (st.ok() && next < flights.size()) {
    st = Status(StatusCode::kUnavailable, file.path + " is shorter than its recorded size (" +
                                              std::to_string(file.size) + " bytes); it changed in the under-store",
                true);
  }
  if (!st.ok()) {
    // Whoever waits for the pages not fetched gets the error; the pages are not cached.
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = next; i < flights.size(); ++i) {
      flights_.erase(PageKey{file.id, first + i});
      flights[i]->Complete(st, nullptr);
    }
    return st;
  }
  return consumer_status;
}

Status CachedReader::ForEachPage(const CachedFile& file, uint64_t offset, uint64_t length, const OnPage& on_page,
                                 uint64_t* fetched, const FetchOptions& fetch) {
  const uint64_t ps = store_->page_size();
  if (offset >= file.size || length == 0) return Status::Ok();
  const uint64_t end = std::min(file.size, offset + std::min(length, file.size - offset));
  const uint64_t last = (end - 1) / ps;  // inclusive
  // Fetching ahead stops at a boundary of (ahead_pages + 1)-page groups, so readers asking for
  // neighbouring pages at once claim whole groups rather than overlapping fragments.
  const uint64_t group = fetch.ahead_pages + 1;
  const uint64_t last_claim = std::min((file.size - 1) / ps, (last / group + 1) * group - 1);
  uint64_t max_run = std::max<uint64_t>(1, options_.max_coalesced_bytes / ps);
  if (fetch.max_run_pages) max_run = std::min(max_run, fetch.max_run_pages);
  uint64_t index = offset / ps;
  while (index <= last) {
    PageKey key{file.id, index};
    if (fetch.skip_cached && store_->Contains(key)) {  // cached: nothing to fetch, nothing to read
      ++index;
      continue;
    }
    const uint64_t page_start = index * ps;
    const uint64_t from = std::max(offset, page_start) - page_start;
    if (PageSlice slice = store_->GetRange(key, from, std::min(end, page_start + ps) - page_start - from)) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++stats_.page_hits;
      }
      SLUICE_RETURN_IF_ERROR(on_page(index, slice));
      ++index;
      continue;
    }
    std::shared_ptr<Flight> theirs;
    std::vector<std::shared_ptr<Flight>> mine;
    uint64_t claim_start = index;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = flights_.find(key);
      if (it != flights_.end()) {
        theirs = it->second;
        ++stats_.page_misses;
        ++stats_.shared_waits;
      } else if (!store_->Contains(key)) {
        // Claim this page and the missing, unclaimed pages right after it; fetching ahead, also
        // those before the range in its group (the kernel's requests for one group arrive in any
        // order). Pages of the range already handed out are never claimed again.
        auto free = [&](uint64_t i) { return !flights_.count({file.id, i}) && !store_->Contains({file.id, i}); };
        if (fetch.ahead_pages && index == offset / ps) {
          while (claim_start > index / group * group && free(claim_start - 1)) --claim_start;
        }
        for (uint64_t i = claim_start; i <= last_claim && mine.size() < max_run; ++i) {
          PageKey k{file.id, i};
          if (i > index && !free(i)) break;
          auto flight = std::make_shared<Flight>();
          flights_.emplace(k, flight);
          mine.push_back(std::move(flight));
        }
        stats_.page_misses += mine.size();
      }
    }
    if (theirs && fetch.readahead) {
      ++index;
    } else if (theirs) {
      SLUICE_ASSIGN_OR_RETURN(PageData data, theirs->Wait());
      SLUICE_RETURN_IF_ERROR(on_page(index, PageSlice{std::move(data), 0}));
      ++index;
    } else if (!mine.empty()) {
      SLUICE_RETURN_IF_ERROR(FetchRun(file, claim_start, mine, on_page, fetched, fetch.memory, fetch.background));
      index = claim_start + mine.size();
    }
    // else: the page landed in the store between Get and the claim; loop to read it.
  }
  return Status::Ok();
}

Result<uint64_t> CachedReader::Read(const CachedFile& file, uint64_t offset, uint64_t length, const ufs::ByteSink& sink,
                                    bool memory) {
  return ReadPages(
      file, offset, length,
      [&](const PageData& page, size_t from, size_t n) { return sink(std::string_view(*page).substr(from, n)); },
      memory);
}

Result<uint64_t> CachedReader::ReadPages(const CachedFile& file, uint64_t offset, uint64_t length,
                                         const PageSink& sink, bool memory, uint64_t ahead_pages) {
  const uint64_t ps = store_->page_size();
  if (offset >= file.size || length == 0) return uint64_t{0};
  const uint64_t end = std::min(file.size, offset + std::min(length, file.size - offset));
  uint64_t delivered = 0, fetched = 0;
  Status st = ForEachPage(file, offset, end - offset, [&](uint64_t index, const PageSlice& slice) -> Status {
    uint64_t page_start = index * ps;
    if (page_start >= end) return Status::Ok();  // fetched ahead of the range: cached, not handed out
    uint64_t from = std::max(offset, page_start) - page_start;  // within the page
    uint64_t to = std::min<uint64_t>(end - page_start, slice.offset + slice.data->size());
    if (from >= to) return Status::Ok();
    if (from < slice.offset) return Internal("a page slice starts after the bytes asked of it");
    SLUICE_RETURN_IF_ERROR(
        sink(slice.data, static_cast<size_t>(from - slice.offset), static_cast<size_t>(to - from)));
    delivered += to - from;
    return Status::Ok();
  }, &fetched, FetchOptions{false, false, memory, ahead_pages});
  if (!st.ok()) return st;
  return delivered;
}

Result<uint64_t> CachedReader::Load(const CachedFile& file, uint64_t offset, uint64_t length) {
  uint64_t fetched = 0;
  // Cached pages are left where they are (not read from disk, not promoted), and runs are kept
  // to 8 pages: a reader beside the preload that needs a page of a run waits for the pages
  // streamed before it.
  FetchOptions fetch;
  fetch.skip_cached = true;
  fetch.max_run_pages = 8;
  fetch.background = true;
  SLUICE_RETURN_IF_ERROR(
      ForEachPage(file, offset, length, [](uint64_t, const PageSlice&) { return Status::Ok(); }, &fetched, fetch));
  return fetched;
}

Result<uint64_t> CachedReader::Prefetch(const CachedFile& file, uint64_t offset, uint64_t length, bool memory) {
  uint64_t fetched = 0;
  SLUICE_RETURN_IF_ERROR(ForEachPage(
      file, offset, length, [](uint64_t, const PageSlice&) { return Status::Ok(); }, &fetched,
      FetchOptions{true, true, memory, 0}));
  return fetched;
}

uint64_t CachedReader::CachedBytes(const CachedFile& file, uint64_t offset, uint64_t length) {
  const uint64_t ps = store_->page_size();
  const uint64_t end = length >= file.size ? file.size : std::min(file.size, offset + length);
  uint64_t pages = (end + ps - 1) / ps, cached = 0;
  for (uint64_t i = offset / ps; i < pages; ++i) {
    if (store_->Contains(PageKey{file.id, i})) cached += std::min(ps, file.size - i * ps);
  }
  return cached;
}

MissPathStats CachedReader::Stats() {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace sluice::cache
