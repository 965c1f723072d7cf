// Local backend: the bounded interaction store (count and byte caps with LRU eviction + TTL
// expiry).
#include <vector>

#include "server_internal.h"

namespace roilens::backend::internal {

std::size_t ApproximateBytes(const Json& value) {
  // Per node: the json value itself plus allocator and container bookkeeping, about what
  // libstdc++ spends on a map node or vector slot holding one.
  constexpr std::size_t kNodeOverhead = 48;
  std::size_t total = 0;
  std::vector<const Json*> pending = {&value};
  while (!pending.empty()) {
    const Json* node = pending.back();
    pending.pop_back();
    total += kNodeOverhead;
    if (node->is_string()) {
      total += node->get_ref<const std::string&>().size();
    } else if (node->is_object()) {
      for (auto it = node->begin(); it != node->end(); ++it) {
        total += it.key().size();
        pending.push_back(&it.value());
      }
    } else if (node->is_array()) {
      for (const auto& element : *node) pending.push_back(&element);
    } else if (node->is_binary()) {
      total += node->get_binary().size();
    }
  }
  return total;
}

InteractionStore::InteractionStore(std::size_t max_entries, std::size_t max_bytes,
                                   std::chrono::seconds ttl)
    : max_entries_(max_entries), max_bytes_(max_bytes), ttl_(ttl) {}

void InteractionStore::RemoveLocked(Entries::iterator it) {
  bytes_ -= it->second.bytes;
  lru_.erase(it->second.lru);
  entries_.erase(it);
}

InteractionStore::Clock::time_point InteractionStore::Now() const { return Clock::now() + skew_; }

void InteractionStore::EvictExpiredLocked(Clock::time_point now) {
  // Writes happen in time order and every entry lives `ttl_` from its last write, so the write
  // queue is ordered by expiry; a queue item whose entry was rewritten since is stale: skip it.
  while (!expiry_.empty() && expiry_.front().first <= now) {
    auto found = entries_.find(expiry_.front().second);
    if (found != entries_.end() && found->second.expires == expiry_.front().first) {
      RemoveLocked(found);
    }
    expiry_.pop_front();
  }
}

bool InteractionStore::Put(const std::string& id, StoredInteraction value) {
  // Sized outside the lock: the walk is linear in the interaction's nodes.
  const std::size_t size = ApproximateBytes(value.interaction) + id.size() +
                           value.previous_interaction_id.size() + sizeof(Entry);
  std::lock_guard lock(mu_);
  const auto now = Now();
  if (auto it = entries_.find(id); it != entries_.end()) RemoveLocked(it);
  if (max_entries_ == 0 || size > max_bytes_) return false;
  EvictExpiredLocked(now);
  while ((entries_.size() >= max_entries_ || bytes_ + size > max_bytes_) && !lru_.empty()) {
    RemoveLocked(entries_.find(lru_.back()));
  }
  lru_.push_front(id);
  entries_.emplace(id, Entry{std::move(value), now + ttl_, lru_.begin(), size});
  bytes_ += size;
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
  return true;
}

std::optional<StoredInteraction> InteractionStore::Get(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return std::nullopt;
  if (it->second.expires <= Now()) {
    RemoveLocked(it);
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
  RemoveLocked(it);
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

std::size_t InteractionStore::bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

void InteractionStore::AdvanceClockForTesting(std::chrono::seconds delta) {
  std::lock_guard lock(mu_);
  skew_ += delta;
}

}  // namespace roilens::backend::internal
