#pragma once

// DatumQueue: the datums of one running job that have to run, and their
// leases. A runner takes the next pending datum under a lease that it renews
// with heartbeats; a lease that expires, or whose runner ended, puts its
// datum back at the front of the queue; a failed attempt with tries left
// goes to the back.
//
// Not thread-safe: the dispatcher guards each queue with its own mutex.

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "proto/pps.pb.h"

namespace tusk::dispatcher {

class DatumQueue {
 public:
  // A datum under lease or waiting for one.
  struct Work {
    pps::v1::DatumInfo info;
    std::string lease;  // empty: not leased
    std::string runner;
    absl::Time expiry;
  };
  // A lease given back (expired, or its runner ended).
  struct Returned {
    std::string lease;
    std::string runner;
    std::string datum;  // the datum's id
  };

  // Adds a PENDING datum at the back of the queue.
  void Add(const pps::v1::DatumInfo& info);
  // Datums not yet succeeded or failed for good.
  size_t remaining() const { return remaining_; }
  // Datums waiting for a runner.
  size_t pending() const { return pending_.size(); }

  // Leases the next pending datum to `runner` until `expiry` under the new
  // lease id `lease`; nullptr if none is pending.
  const Work* Take(const std::string& lease, const std::string& runner, absl::Time expiry);
  // Extends `lease` if `runner` holds it; false if not.
  bool Renew(const std::string& lease, const std::string& runner, absl::Time expiry);
  // The work under `lease`; nullptr if it is not held.
  Work* Leased(const std::string& lease);
  // Ends `lease` with the attempt's outcome: `info` is the datum's new
  // record; a PENDING one is queued again (at the back), any other counts
  // as done.
  void Complete(const std::string& lease, const pps::v1::DatumInfo& info);
  // Returns the leases that expired before `now` to the queue (at the front).
  std::vector<Returned> Expire(absl::Time now);
  // Returns the leases `runner` holds to the queue (at the front).
  std::vector<Returned> ReleaseRunner(const std::string& runner);
  // Fails every datum not done with `error` (a job timeout); returns the
  // leases it ended and counts the failed datums in `*failed`.
  std::vector<std::string> FailAll(const std::string& error, uint64_t* failed);
  // Queues the datum at `key` again if it failed for good (restart datum):
  // one more attempt, numbered after its others. False if it did not fail.
  bool Requeue(const std::string& key);
  // The leases held now.
  std::vector<std::string> Leases() const;
  // The current record of the datum at `key`; nullptr if it is not queued.
  const pps::v1::DatumInfo* Find(const std::string& key) const;
  // Every queued datum's current record, by key.
  void CopyTo(std::map<std::string, pps::v1::DatumInfo>* out) const;

 private:
  // Returns the leases whose work `pred` picks to the front of the queue.
  std::vector<Returned> GiveBackIf(const std::function<bool(const Work&)>& pred);

  std::map<std::string, Work> work_;           // by datum key
  std::deque<std::string> pending_;            // datum keys, in lease order
  std::map<std::string, std::string> leases_;  // lease id -> datum key
  size_t remaining_ = 0;
};

}  // namespace tusk::dispatcher
