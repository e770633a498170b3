#include "dispatcher/datum_queue.h"

#include "common/proto_util.h"

namespace tusk::dispatcher {

using pps::v1::DatumInfo;

void DatumQueue::Add(const DatumInfo& info) {
  Work w;
  w.info = info;
  work_[info.key()] = std::move(w);
  pending_.push_back(info.key());
  remaining_++;
}

const DatumQueue::Work* DatumQueue::Take(const std::string& lease, const std::string& runner,
                                         absl::Time expiry) {
  while (!pending_.empty()) {
    std::string key = pending_.front();
    pending_.pop_front();
    auto w = work_.find(key);
    if (w == work_.end() || w->second.info.state() != pps::v1::DATUM_PENDING) continue;
    Work& work = w->second;
    work.lease = lease;
    work.runner = runner;
    work.expiry = expiry;
    work.info.set_state(pps::v1::DATUM_RUNNING);
    *work.info.mutable_started() = NowTimestamp();
    leases_[lease] = key;
    return &work;
  }
  return nullptr;
}

bool DatumQueue::Renew(const std::string& lease, const std::string& runner, absl::Time expiry) {
  Work* w = Leased(lease);
  if (w == nullptr || w->runner != runner) return false;
  w->expiry = expiry;
  return true;
}

DatumQueue::Work* DatumQueue::Leased(const std::string& lease) {
  auto it = leases_.find(lease);
  if (it == leases_.end()) return nullptr;
  auto w = work_.find(it->second);
  if (w == work_.end() || w->second.lease != lease) return nullptr;
  return &w->second;
}

void DatumQueue::Complete(const std::string& lease, const DatumInfo& info) {
  auto it = leases_.find(lease);
  if (it == leases_.end()) return;
  Work& w = work_[it->second];
  w.lease.clear();
  w.info = info;
  if (info.state() == pps::v1::DATUM_PENDING) {
    pending_.push_back(it->second);
  } else {
    remaining_--;
  }
  leases_.erase(it);
}

bool DatumQueue::Requeue(const std::string& key) {
  auto it = work_.find(key);
  if (it == work_.end() || it->second.info.state() != pps::v1::DATUM_FAILED) return false;
  it->second.info.set_state(pps::v1::DATUM_PENDING);
  it->second.info.clear_error();
  pending_.push_back(key);
  remaining_++;
  return true;
}

std::vector<DatumQueue::Returned> DatumQueue::GiveBackIf(
    const std::function<bool(const Work&)>& pred) {
  // Walks the leases (a few per runner), not the datums: the driver checks
  // on every finished datum, and a job may have millions of them.
  std::vector<Returned> out;
  for (auto it = leases_.begin(); it != leases_.end();) {
    Work& w = work_[it->second];
    if (!pred(w)) {
      ++it;
      continue;
    }
    out.push_back({it->first, w.runner, w.info.id()});
    w.lease.clear();
    w.info.set_state(pps::v1::DATUM_PENDING);
    pending_.push_front(it->second);
    it = leases_.erase(it);
  }
  return out;
}

std::vector<DatumQueue::Returned> DatumQueue::Expire(absl::Time now) {
  return GiveBackIf([now](const Work& w) { return w.expiry <= now; });
}

std::vector<DatumQueue::Returned> DatumQueue::ReleaseRunner(const std::string& runner) {
  return GiveBackIf([&runner](const Work& w) { return w.runner == runner; });
}

std::vector<std::string> DatumQueue::FailAll(const std::string& error, uint64_t* failed) {
  std::vector<std::string> ended;
  for (auto& [key, w] : work_) {
    if (w.info.state() == pps::v1::DATUM_SUCCESS || w.info.state() == pps::v1::DATUM_FAILED ||
        w.info.state() == pps::v1::DATUM_RECOVERED)
      continue;
    if (!w.lease.empty()) ended.push_back(w.lease);
    w.lease.clear();
    w.info.set_state(pps::v1::DATUM_FAILED);
    w.info.set_error(error);
    (*failed)++;
  }
  leases_.clear();
  pending_.clear();
  remaining_ = 0;
  return ended;
}

std::vector<std::string> DatumQueue::Leases() const {
  std::vector<std::string> out;
  for (const auto& [lease, key] : leases_) out.push_back(lease);
  return out;
}

const DatumInfo* DatumQueue::Find(const std::string& key) const {
  auto it = work_.find(key);
  return it == work_.end() ? nullptr : &it->second.info;
}

void DatumQueue::CopyTo(std::map<std::string, DatumInfo>* out) const {
  for (const auto& [key, w] : work_) (*out)[key] = w.info;
}

}  // namespace tusk::dispatcher
