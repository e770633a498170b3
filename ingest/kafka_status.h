#pragma once

// Internal to ingest/: librdkafka errors converted to absl::Status, once, at
// the edge. Retryable transport conditions become UNAVAILABLE.

#include <librdkafka/rdkafka.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace tusk::ingest {

absl::Status KafkaStatus(rd_kafka_resp_err_t err, absl::string_view context);

// Sets each property of `config` on `conf`; InvalidArgument names a bad one.
absl::Status SetKafkaConfig(rd_kafka_conf_t *conf, const std::string &name,
                            const std::string &value);

}  // namespace tusk::ingest
