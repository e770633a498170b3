#include "common/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <memory>
#include <mutex>
#include <sstream>

#include "absl/synchronization/mutex.h"
#include "common/log.h"

namespace tusk::metrics {
namespace {

struct State {
  absl::Mutex mu;
  prometheus::Registry registry;
  // One family per name, of one type.
  std::map<std::string, prometheus::Family<prometheus::Counter>*> counters ABSL_GUARDED_BY(mu);
  std::map<std::string, prometheus::Family<prometheus::Gauge>*> gauges ABSL_GUARDED_BY(mu);
  std::map<std::string, prometheus::Family<prometheus::Histogram>*> histograms ABSL_GUARDED_BY(mu);
  // The wrappers handed out, by name and labels.
  std::map<std::pair<std::string, Labels>, std::unique_ptr<Counter>> counter_objs
      ABSL_GUARDED_BY(mu);
  std::map<std::pair<std::string, Labels>, std::unique_ptr<Gauge>> gauge_objs ABSL_GUARDED_BY(mu);
  std::map<std::pair<std::string, Labels>, std::unique_ptr<Histogram>> histogram_objs
      ABSL_GUARDED_BY(mu);
  std::map<int, std::function<void()>> collectors ABSL_GUARDED_BY(mu);
  int next_collector ABSL_GUARDED_BY(mu) = 0;
  absl::Mutex collect_mu;  // one exposition at a time
};

State& S() {
  static State* state = new State();  // never destroyed: metrics outlive static teardown
  return *state;
}

void CheckOneType(State& s, const std::string& name, int type) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu) {
  int found = (s.counters.count(name) ? 1 : 0) + (s.gauges.count(name) ? 2 : 0) +
              (s.histograms.count(name) ? 4 : 0);
  CHECK(found == 0 || found == type) << "metric " << name << " is registered with another type";
}

}  // namespace

void Counter::Inc(double v) { c_->Increment(v); }
double Counter::Value() const { return c_->Value(); }
void Gauge::Set(double v) { g_->Set(v); }
void Gauge::Inc(double v) { g_->Increment(v); }
void Gauge::Dec(double v) { g_->Decrement(v); }
void Histogram::Observe(double v) { h_->Observe(v); }

Counter* GetCounter(const std::string& name, const std::string& help, const Labels& labels) {
  State& s = S();
  absl::MutexLock lock(&s.mu);
  auto& obj = s.counter_objs[{name, labels}];
  if (obj) return obj.get();
  CheckOneType(s, name, 1);
  auto& family = s.counters[name];
  if (family == nullptr) {
    family = &prometheus::BuildCounter().Name(name).Help(help).Register(s.registry);
  }
  obj.reset(new Counter(&family->Add(labels)));
  return obj.get();
}

Gauge* GetGauge(const std::string& name, const std::string& help, const Labels& labels) {
  State& s = S();
  absl::MutexLock lock(&s.mu);
  auto& obj = s.gauge_objs[{name, labels}];
  if (obj) return obj.get();
  CheckOneType(s, name, 2);
  auto& family = s.gauges[name];
  if (family == nullptr) {
    family = &prometheus::BuildGauge().Name(name).Help(help).Register(s.registry);
  }
  obj.reset(new Gauge(&family->Add(labels)));
  return obj.get();
}

Histogram* GetHistogram(const std::string& name, const std::string& help,
                        const std::vector<double>& buckets, const Labels& labels) {
  State& s = S();
  absl::MutexLock lock(&s.mu);
  auto& obj = s.histogram_objs[{name, labels}];
  if (obj) return obj.get();
  CheckOneType(s, name, 4);
  auto& family = s.histograms[name];
  if (family == nullptr) {
    family = &prometheus::BuildHistogram().Name(name).Help(help).Register(s.registry);
  }
  obj.reset(new Histogram(&family->Add(labels, buckets)));
  return obj.get();
}

std::vector<double> SecondsBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100};
}

void CounterMirror::Sync(uint64_t total) {
  if (total > last_) c_->Inc(static_cast<double>(total - last_));
  last_ = total;
}

int OnCollect(std::function<void()> fn) {
  State& s = S();
  absl::MutexLock lock(&s.mu);
  int id = ++s.next_collector;
  s.collectors[id] = std::move(fn);
  return id;
}

void RemoveCollector(int id) {
  State& s = S();
  // Waits for an exposition in progress: the collector may be running.
  absl::MutexLock collecting(&s.collect_mu);
  absl::MutexLock lock(&s.mu);
  s.collectors.erase(id);
}

std::string TextExposition() {
  State& s = S();
  absl::MutexLock collecting(&s.collect_mu);
  std::vector<std::function<void()>> fns;
  {
    absl::MutexLock lock(&s.mu);
    for (const auto& [id, fn] : s.collectors) fns.push_back(fn);
  }
  for (const auto& fn : fns) fn();
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, s.registry.Collect());
  return out.str();
}

}  // namespace tusk::metrics
