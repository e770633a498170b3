// An ObjectStore that times and counts what Pfs asks of the store it wraps
// (common/metrics): tusk_object_store_operations_total{op},
// tusk_object_store_operation_duration_seconds{op},
// tusk_object_store_errors_total{op} (NotFound is an answer, not an error).

#include "absl/time/clock.h"
#include "common/metrics.h"
#include "common/status.h"
#include "pfs/object_store.h"

namespace tusk::pfs {
namespace {

struct OpMetrics {
  metrics::Counter* ops;
  metrics::Counter* errors;
  metrics::Histogram* seconds;
};

OpMetrics ForOp(const std::string& op) {
  return {
      metrics::GetCounter("tusk_object_store_operations_total",
                          "Object-store operations tuskd asked for, by operation", {{"op", op}}),
      metrics::GetCounter("tusk_object_store_errors_total",
                          "Object-store operations that failed (not counting NotFound)",
                          {{"op", op}}),
      metrics::GetHistogram("tusk_object_store_operation_duration_seconds",
                            "Time of object-store operations, by operation",
                            metrics::SecondsBuckets(), {{"op", op}})};
}

class InstrumentedObjectStore : public ObjectStore {
 public:
  explicit InstrumentedObjectStore(std::unique_ptr<ObjectStore> base)
      : base_(std::move(base)),
        put_(ForOp("put")),
        get_(ForOp("get")),
        size_(ForOp("size")),
        delete_(ForOp("delete")),
        list_(ForOp("list")) {}

  absl::Status Put(const std::string& key, absl::string_view data) override {
    return Timed(put_, [&] { return base_->Put(key, data); });
  }
  absl::Status PutParts(const std::string& key,
                        const std::vector<absl::string_view>& parts) override {
    return Timed(put_, [&] { return base_->PutParts(key, parts); });
  }
  absl::StatusOr<std::string> Get(const std::string& key) override {
    return Timed(get_, [&] { return base_->Get(key); });
  }
  absl::StatusOr<std::string> GetRange(const std::string& key, uint64_t offset,
                                       uint64_t length) override {
    return Timed(get_, [&] { return base_->GetRange(key, offset, length); });
  }
  void Prefetch(const std::string& key, uint64_t offset, uint64_t length) override {
    base_->Prefetch(key, offset, length);
  }
  absl::StatusOr<uint64_t> Size(const std::string& key) override {
    return Timed(size_, [&] { return base_->Size(key); });
  }
  absl::Status Delete(const std::string& key) override {
    return Timed(delete_, [&] { return base_->Delete(key); });
  }
  absl::Status List(const std::string& prefix,
                    const std::function<void(const std::string&, uint64_t)>& fn) override {
    return Timed(list_, [&] { return base_->List(prefix, fn); });
  }
  std::string Describe() const override { return base_->Describe(); }
  ObjectStoreStats Stats() const override { return base_->Stats(); }

 private:
  template <typename Fn>
  static auto Timed(const OpMetrics& m, Fn fn) -> decltype(fn()) {
    const absl::Time start = absl::Now();
    auto result = fn();
    m.ops->Inc();
    m.seconds->Observe(absl::ToDoubleSeconds(absl::Now() - start));
    const absl::Status& s = StatusOf(result);
    if (!s.ok() && !absl::IsNotFound(s)) m.errors->Inc();
    return result;
  }

  std::unique_ptr<ObjectStore> base_;
  const OpMetrics put_, get_, size_, delete_, list_;
};

}  // namespace

std::unique_ptr<ObjectStore> InstrumentObjectStore(std::unique_ptr<ObjectStore> base) {
  return std::make_unique<InstrumentedObjectStore>(std::move(base));
}

}  // namespace tusk::pfs
