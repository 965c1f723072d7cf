// FramePool: recycles frame-sized cv::Mat buffers across frames (see the header for why).
#include "roilens/stages/frame_pool.h"

#include <iterator>

namespace roilens {

FramePool::FramePool(std::size_t min_bytes, std::size_t max_idle)
    : min_bytes_(min_bytes), max_idle_(max_idle) {}

FramePool::~FramePool() { Trim(); }

FramePool& FramePool::Shared() {
  // Leaked on purpose: Mats allocated through it may be released during static destruction or
  // after a plugin's pipeline is gone, and their deallocate() must still find the pool.
  static FramePool* const pool = new FramePool();
  return *pool;
}

cv::Mat FramePool::NewMat(FramePool* pool) {
  cv::Mat mat;
  mat.allocator = pool != nullptr ? pool : &Shared();
  return mat;
}

void FramePool::Trim() {
  std::vector<Buffer> idle;
  {
    std::lock_guard lock(mu_);
    idle.swap(idle_);
    stats_.idle = 0;
    stats_.idle_bytes = 0;
  }
  for (const Buffer& buffer : idle) cv::fastFree(buffer.data);
}

FramePool::Stats FramePool::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void* FramePool::Take(std::size_t bytes) const {
  void* stale = nullptr;  // an idle buffer of another size, freed to make room
  {
    std::lock_guard lock(mu_);
    ++stats_.allocations;
    // Newest first: the most recently released buffer is the one most likely still in cache.
    for (auto it = idle_.rbegin(); it != idle_.rend(); ++it) {
      if (it->bytes != bytes) continue;
      void* data = it->data;
      idle_.erase(std::next(it).base());
      ++stats_.reused;
      --stats_.idle;
      stats_.idle_bytes -= static_cast<std::int64_t>(bytes);
      return data;
    }
    if (!idle_.empty()) {
      stale = idle_.front().data;
      --stats_.idle;
      stats_.idle_bytes -= static_cast<std::int64_t>(idle_.front().bytes);
      idle_.erase(idle_.begin());
    }
  }
  if (stale != nullptr) cv::fastFree(stale);
  return cv::fastMalloc(bytes);
}

void FramePool::Give(void* data, std::size_t bytes) const {
  {
    std::lock_guard lock(mu_);
    if (idle_.size() < max_idle_) {
      idle_.push_back({data, bytes});
      ++stats_.idle;
      stats_.idle_bytes += static_cast<std::int64_t>(bytes);
      return;
    }
  }
  cv::fastFree(data);
}

cv::UMatData* FramePool::allocate(int dims, const int* sizes, int type, void* data, size_t* step,
                                  cv::AccessFlag, cv::UMatUsageFlags) const {
  // Row-major layout: the innermost step is the element size; a caller's explicit steps (for
  // user data) are kept.
  std::size_t total = CV_ELEM_SIZE(type);
  for (int i = dims - 1; i >= 0; --i) {
    if (step != nullptr) {
      if (data != nullptr && step[i] != cv::Mat::AUTO_STEP) {
        CV_Assert(total <= step[i]);
        total = step[i];
      } else {
        step[i] = total;
      }
    }
    total *= static_cast<std::size_t>(sizes[i]);
  }
  auto* u = new cv::UMatData(this);
  if (data != nullptr) {
    u->data = u->origdata = static_cast<uchar*>(data);
    u->flags |= cv::UMatData::USER_ALLOCATED;
  } else {
    void* buffer = total >= min_bytes_ ? Take(total) : cv::fastMalloc(total);
    u->data = u->origdata = static_cast<uchar*>(buffer);
  }
  u->size = total;
  return u;
}

bool FramePool::allocate(cv::UMatData* data, cv::AccessFlag, cv::UMatUsageFlags) const {
  return data != nullptr;  // host memory is always there: nothing to map
}

void FramePool::deallocate(cv::UMatData* u) const {
  if (u == nullptr) return;
  CV_Assert(u->urefcount == 0 && u->refcount == 0);
  if (!(u->flags & cv::UMatData::USER_ALLOCATED) && u->origdata != nullptr) {
    if (u->size >= min_bytes_) {
      Give(u->origdata, u->size);
    } else {
      cv::fastFree(u->origdata);
    }
    u->origdata = nullptr;
  }
  delete u;
}

}  // namespace roilens
