#include "ingest/kafka.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status.h"
#include "ingest/kafka_status.h"

namespace tusk::ingest {

absl::Status KafkaStatus(rd_kafka_resp_err_t err, absl::string_view context) {
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return absl::OkStatus();
  std::string msg = absl::StrCat(context, ": ", rd_kafka_err2str(err));
  switch (err) {
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
      return absl::UnavailableError(msg);
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
      return absl::NotFoundError(msg);
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR_INVALID_CONFIG:
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
      return absl::InvalidArgumentError(msg);
    case RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE:
    case RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET:
      return absl::OutOfRangeError(msg);
    default:
      return absl::InternalError(msg);
  }
}

absl::Status SetKafkaConfig(rd_kafka_conf_t *conf, const std::string &name,
                            const std::string &value) {
  char err[512];
  if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), err, sizeof(err)) != RD_KAFKA_CONF_OK) {
    return absl::InvalidArgumentError(absl::StrCat("Kafka property ", name, "=", value, ": ", err));
  }
  return absl::OkStatus();
}

// ---- MockCluster ----

struct MockCluster::Impl {
  rd_kafka_t *rk = nullptr;
  rd_kafka_mock_cluster_t *cluster = nullptr;
  ~Impl() {
    if (cluster) rd_kafka_mock_cluster_destroy(cluster);
    if (rk) rd_kafka_destroy(rk);
  }
};

MockCluster::MockCluster(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MockCluster::~MockCluster() = default;

absl::StatusOr<std::unique_ptr<MockCluster>> MockCluster::Start(int brokers) {
  if (brokers < 1 || brokers > 16) {
    return absl::InvalidArgumentError(absl::StrCat("brokers must be 1..16, not ", brokers));
  }
  auto impl = std::make_unique<Impl>();
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  // The handle only hosts the cluster; keep it quiet.
  RETURN_IF_ERROR(SetKafkaConfig(conf, "log_level", "3"));
  char err[512];
  impl->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  if (!impl->rk) {
    rd_kafka_conf_destroy(conf);
    return absl::InternalError(absl::StrCat("cannot create a Kafka handle: ", err));
  }
  impl->cluster = rd_kafka_mock_cluster_new(impl->rk, brokers);
  if (!impl->cluster) return absl::InternalError("cannot start the mock Kafka cluster");
  return std::unique_ptr<MockCluster>(new MockCluster(std::move(impl)));
}

std::string MockCluster::bootstraps() const {
  return rd_kafka_mock_cluster_bootstraps(impl_->cluster);
}

absl::Status MockCluster::CreateTopic(const std::string &topic, int partitions) {
  if (partitions < 1) {
    return absl::InvalidArgumentError(absl::StrCat("topic ", topic, ": partitions must be >= 1"));
  }
  return KafkaStatus(rd_kafka_mock_topic_create(impl_->cluster, topic.c_str(), partitions, 1),
                     absl::StrCat("create topic ", topic));
}

// ---- Producer ----

struct Producer::Impl {
  rd_kafka_t *rk = nullptr;
  DeliveryCallback on_delivery;
  ~Impl() {
    if (rk) rd_kafka_destroy(rk);
  }
};

namespace {

void OnDelivery(rd_kafka_t *, const rd_kafka_message_t *m, void *opaque) {
  auto *cb = static_cast<Producer::DeliveryCallback *>(opaque);
  if (!*cb) return;
  Producer::Delivery d;
  d.topic = rd_kafka_topic_name(m->rkt);
  d.partition = m->partition;
  d.offset = m->offset;
  d.tag = reinterpret_cast<uint64_t>(m->_private);
  d.status = KafkaStatus(m->err, absl::StrCat("deliver to ", d.topic, "/", d.partition));
  (*cb)(d);
}

}  // namespace

Producer::Producer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Producer::~Producer() = default;

absl::StatusOr<std::unique_ptr<Producer>> Producer::Open(
    const std::string &brokers, const std::map<std::string, std::string> &config,
    DeliveryCallback on_delivery) {
  auto impl = std::make_unique<Impl>();
  impl->on_delivery = std::move(on_delivery);
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  absl::Status s = SetKafkaConfig(conf, "bootstrap.servers", brokers);
  for (const auto &[k, v] : config) {
    if (s.ok()) s = SetKafkaConfig(conf, k, v);
  }
  if (!s.ok()) {
    rd_kafka_conf_destroy(conf);
    return s;
  }
  rd_kafka_conf_set_dr_msg_cb(conf, OnDelivery);
  rd_kafka_conf_set_opaque(conf, &impl->on_delivery);
  char err[512];
  impl->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  if (!impl->rk) {
    rd_kafka_conf_destroy(conf);
    return absl::InvalidArgumentError(absl::StrCat("cannot create a Kafka producer: ", err));
  }
  return std::unique_ptr<Producer>(new Producer(std::move(impl)));
}

absl::Status Producer::Produce(const std::string &topic, int32_t partition, absl::string_view key,
                               absl::string_view value,
                               const std::vector<std::pair<std::string, std::string>> &headers,
                               uint64_t tag) {
  for (;;) {
    rd_kafka_headers_t *hdrs = nullptr;
    if (!headers.empty()) {
      hdrs = rd_kafka_headers_new(headers.size());
      for (const auto &[name, v] : headers) {
        rd_kafka_header_add(hdrs, name.data(), name.size(), v.data(), v.size());
      }
    }
    rd_kafka_resp_err_t err =
        rd_kafka_producev(impl_->rk, RD_KAFKA_V_TOPIC(topic.c_str()),
                          RD_KAFKA_V_PARTITION(partition), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                          RD_KAFKA_V_VALUE(const_cast<char *>(value.data()), value.size()),
                          RD_KAFKA_V_KEY(key.data(), key.size()), RD_KAFKA_V_HEADERS(hdrs),
                          RD_KAFKA_V_OPAQUE(reinterpret_cast<void *>(tag)), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return absl::OkStatus();
    // On failure the headers were not taken over.
    if (hdrs) rd_kafka_headers_destroy(hdrs);
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      return KafkaStatus(err, absl::StrCat("produce to ", topic));
    }
    rd_kafka_poll(impl_->rk, 10);
  }
}

void Producer::Poll(absl::Duration timeout) {
  rd_kafka_poll(impl_->rk, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
}

absl::Status Producer::Flush(absl::Duration timeout) {
  return KafkaStatus(
      rd_kafka_flush(impl_->rk, static_cast<int>(absl::ToInt64Milliseconds(timeout))),
      "flush producer");
}

}  // namespace tusk::ingest
