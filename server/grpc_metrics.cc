#include "server/grpc_metrics.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/grpc_status.h"
#include "common/metrics.h"

namespace tusk::server {
namespace {

// "/tusk.pfs.v1.API/PutFile" -> "tusk.pfs.v1.API/PutFile"
std::string MethodLabel(const char* method) {
  std::string m = method ? method : "";
  if (!m.empty() && m[0] == '/') m.erase(0, 1);
  return m;
}

class MetricsInterceptor : public grpc::experimental::Interceptor {
 public:
  explicit MetricsInterceptor(grpc::experimental::ServerRpcInfo* info)
      : method_(MethodLabel(info->method())), start_(absl::Now()) {
    InFlight()->Inc();
  }
  ~MetricsInterceptor() override { InFlight()->Dec(); }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      grpc::Status s = methods->GetSendStatus();
      metrics::GetCounter("tusk_grpc_requests_total",
                          "gRPC calls served, by method and status code",
                          {{"method", method_}, {"code", CodeName(s.error_code())}})
          ->Inc();
      metrics::GetHistogram("tusk_grpc_request_duration_seconds",
                            "Time from a call's start to its status, by method",
                            metrics::SecondsBuckets(), {{"method", method_}})
          ->Observe(absl::ToDoubleSeconds(absl::Now() - start_));
    }
    methods->Proceed();
  }

 private:
  static metrics::Gauge* InFlight() {
    static metrics::Gauge* g =
        metrics::GetGauge("tusk_grpc_requests_in_flight", "gRPC calls being served now");
    return g;
  }
  static std::string CodeName(grpc::StatusCode code) {
    return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
  }

  const std::string method_;
  const absl::Time start_;
};

class Factory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new MetricsInterceptor(info);
  }
};

}  // namespace

std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
MetricsInterceptors() {
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> v;
  v.push_back(std::make_unique<Factory>());
  return v;
}

}  // namespace tusk::server
