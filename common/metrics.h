#pragma once

// Metrics: the process's Prometheus metrics (prometheus-cpp underneath, not
// seen by callers). Components get a metric once by name and labels and keep
// the pointer: counting is then a lock-free add. Names and labels follow
// Prometheus's conventions (tusk_<component>_<what>_total for counters,
// _seconds and _bytes for units). The same name and labels give the same
// metric; one name has one type and one help text (a programmer error
// otherwise: CHECK).
//
// Collectors (OnCollect) run before each exposition to refresh gauges that
// are read from state (queue depths, lag) and counters mirrored from
// elsewhere (CounterMirror).
//
// Thread-safe. Metrics live as long as the process.

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
}  // namespace prometheus

namespace tusk::metrics {

using Labels = std::map<std::string, std::string>;

class Counter {
 public:
  void Inc(double v = 1);
  double Value() const;

 private:
  friend Counter* GetCounter(const std::string&, const std::string&, const Labels&);
  explicit Counter(prometheus::Counter* c) : c_(c) {}
  prometheus::Counter* c_;
};

class Gauge {
 public:
  void Set(double v);
  void Inc(double v = 1);
  void Dec(double v = 1);

 private:
  friend Gauge* GetGauge(const std::string&, const std::string&, const Labels&);
  explicit Gauge(prometheus::Gauge* g) : g_(g) {}
  prometheus::Gauge* g_;
};

class Histogram {
 public:
  void Observe(double v);

 private:
  friend Histogram* GetHistogram(const std::string&, const std::string&, const std::vector<double>&,
                                 const Labels&);
  explicit Histogram(prometheus::Histogram* h) : h_(h) {}
  prometheus::Histogram* h_;
};

Counter* GetCounter(const std::string& name, const std::string& help, const Labels& labels = {});
Gauge* GetGauge(const std::string& name, const std::string& help, const Labels& labels = {});
Histogram* GetHistogram(const std::string& name, const std::string& help,
                        const std::vector<double>& buckets, const Labels& labels = {});

// Buckets for request and datum times: 1 ms to about 100 s.
std::vector<double> SecondsBuckets();

// A counter that follows a cumulative number kept elsewhere (an object
// store's request count): Sync(total) adds what total grew by.
class CounterMirror {
 public:
  explicit CounterMirror(Counter* c) : c_(c) {}
  void Sync(uint64_t total);

 private:
  Counter* c_;
  uint64_t last_ = 0;
};

// Runs `fn` before each exposition; returns an id for RemoveCollector.
int OnCollect(std::function<void()> fn);
void RemoveCollector(int id);

// Every metric in Prometheus's text format (version 0.0.4).
std::string TextExposition();
inline constexpr char kTextContentType[] = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace tusk::metrics
