// Local backend: the bounded interaction store (count cap with LRU eviction + TTL expiry).
#include "server_internal.h"

namespace roilens::backend::internal {

InteractionStore::InteractionStore(std::size_t max_entries, std::chrono::seconds ttl)
    : max_entries_(max_entries), ttl_(ttl) {}

InteractionStore::Clock::time_point InteractionStore::Now() const { return Clock::now() + skew_; }

void InteractionStore::EvictExpiredLocked(Clock::time_point now) {
  // Writes happen in time order and every entry lives `ttl_` from its last write, so the write
  // queue is ordered by expiry; a queue item whose entry was rewritten since is stale: skip it.
  while (!expiry_.empty() && expiry_.front().first <= now) {
    auto found = entries_.find(expiry_.front().second);
    if (found != entries_.end() && found->second.expires == expiry_.front().first) {
      lru_.erase(found->second.lru);
      entries_.erase(found);
    }
    expiry_.pop_front();
  }
}

void InteractionStore::Put(const std::string& id, StoredInteraction value) {
  if (max_entries_ == 0) return;
  std::lock_guard lock(mu_);
  const auto now = Now();
  if (auto it = entries_.find(id); it != entries_.end()) {
    lru_.erase(it->second.lru);
    entries_.erase(it);
  }
  EvictExpiredLocked(now);
  while (entries_.size() >= max_entries_ && !lru_.empty()) {
    entries_.erase(lru_.back());
    lru_.pop_back();
  }
  lru_.push_front(id);
  entries_.emplace(id, Entry{std::move(value), now + ttl_, lru_.begin()});
  expiry_.emplace_back(now + ttl_, id);
  if (expiry_.size() > 2 * max_entries_ + 16) {
    // Entries evicted by the count cap leave stale queue items behind; drop them so the queue
    // stays proportional to the live entries (amortised O(1) per Put).
    std::deque<std::pair<Clock::time_point, std::string>> live;
    for (auto& item : expiry_) {
      auto found = entries_.find(item.second);
      if (found != entries_.end() && found->second.expires == item.first) {
        live.push_back(std::move(item));
      }
    }
    expiry_.swap(live);
  }
}

std::optional<StoredInteraction> InteractionStore::Get(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return std::nullopt;
  if (it->second.expires <= Now()) {
    lru_.erase(it->second.lru);
    entries_.erase(it);
    return std::nullopt;
  }
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return it->second.value;
}

bool InteractionStore::Erase(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return false;
  const bool live = it->second.expires > Now();
  lru_.erase(it->second.lru);
  entries_.erase(it);
  return live;
}

bool InteractionStore::UpdateStatus(const std::string& id, const std::string& status,
                                    const std::string& updated) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end() || it->second.expires <= Now()) return false;
  it->second.value.interaction["status"] = status;
  it->second.value.interaction["updated"] = updated;
  return true;
}

std::size_t InteractionStore::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

void InteractionStore::AdvanceClockForTesting(std::chrono::seconds delta) {
  std::lock_guard lock(mu_);
  skew_ += delta;
}

}  // namespace roilens::backend::internal
