#include "ingest/ingester.h"

#include <grpcpp/grpcpp.h>
#include <librdkafka/rdkafka.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <optional>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/grpc_channel.h"
#include "common/grpc_status.h"
#include "common/log.h"
#include "common/status.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "ingest/committer.h"
#include "ingest/format.h"
#include "ingest/ingest_metrics.h"
#include "ingest/kafka_status.h"
#include "proto/ingest.grpc.pb.h"
#include "proto/pfs.grpc.pb.h"

namespace tusk::ingest {
namespace {

namespace iv1 = ::tusk::ingest::v1;
namespace pv1 = ::tusk::pfs::v1;

}  // namespace

struct Ingester::Impl {
  IngesterOptions opts;
  iv1::SourceSpec spec;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<pv1::API::Stub> api;
  std::unique_ptr<iv1::Sources::Stub> sources;
  ValueFormat value_format = ValueFormat::kRaw;
  std::string host;

  rd_kafka_t *rk = nullptr;
  std::map<TopicPartition, PartState> parts;  // the current assignment
  Batch batch;
  bool paused = false;
  // Per-record lookups, cached per (topic handle, partition): the partition's
  // state, and its entries in the current batch (valid while gen == batch_gen).
  struct Hot {
    rd_kafka_topic_t *rkt = nullptr;
    int32_t partition = 0;
    TopicPartition tp;
    PartState *ps = nullptr;  // nullptr: not ours
    uint64_t gen = 0;
    Batch::Part *bp = nullptr;
    Batch::File *file = nullptr;
    int64_t file_hour = -1;
  };
  std::vector<Hot> hot;                               // cleared whenever `parts` changes
  uint64_t batch_gen = 1;                             // bumped whenever `batch` is replaced
  absl::Time blocked_since = absl::InfiniteFuture();  // a full batch waits since
  bool resync = false;
  const std::atomic<bool> *stop = nullptr;

  // Lands batches in tuskd: at most one in flight.
  std::unique_ptr<Committer> committer;

  // Stats.
  uint64_t records_total = 0;
  uint64_t dead_total = 0;
  // Prometheus metrics (common/metrics), labelled by source.
  IngestMetrics mx;
  uint64_t records_at_report = 0;
  absl::Time last_report = absl::InfinitePast();
  double rate = 0;
  // The consumer group as librdkafka's statistics last said (every 5 s), for
  // the warning when no assignment comes.
  std::string group_state = "no statistics yet";
  absl::Time unassigned_since = absl::Now();  // InfiniteFuture once assigned
  absl::Time warned_unassigned = absl::InfinitePast();

  ~Impl() {
    committer.reset();
    if (rk) rd_kafka_destroy(rk);
  }

  // ---- tuskd ----

  // ---- batches ----

  // Hands the current batch to the committer; the caller checked it is idle.
  void HandOff() {
    for (auto &[tp, p] : batch.parts) {
      auto it = parts.find(tp);
      if (it == parts.end()) continue;  // cannot happen: batches only hold owned partitions
      p.expect = it->second.planned_next;
      it->second.planned_next = p.next;
    }
    committer->Submit(std::move(batch));
    ResetBatch();
  }

  bool BatchFull() const {
    if (batch.empty()) return false;
    return batch.records >= spec.max_records() || batch.bytes >= spec.max_bytes() ||
           absl::Now() - batch.opened >= absl::Milliseconds(spec.max_latency_ms());
  }

  void ResetBatch() {
    batch = Batch();
    ++batch_gen;
  }
  void ClearParts() {
    parts.clear();
    hot.clear();
  }

  Batch::Part &BatchPart(const TopicPartition &tp, const PartState &ps) {
    if (batch.empty()) batch.opened = absl::Now();
    auto [it, fresh] = batch.parts.try_emplace(tp);
    if (fresh) it->second.lost_total = ps.lost_total;
    return it->second;
  }

  void AddRecord(Hot &h, const rd_kafka_message_t *m) {
    const TopicPartition &tp = h.tp;
    PartState &ps = *h.ps;
    RecordView r;
    r.partition = m->partition;
    r.offset = m->offset;
    rd_kafka_timestamp_type_t tstype;
    int64_t ts = rd_kafka_message_timestamp(m, &tstype);
    r.timestamp_ms = tstype == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? -1 : ts;
    if (m->key) r.key = absl::string_view(static_cast<const char *>(m->key), m->key_len);
    if (m->payload) r.value = absl::string_view(static_cast<const char *>(m->payload), m->len);
    rd_kafka_headers_t *hdrs = nullptr;
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR && hdrs) {
      const char *name;
      const void *value;
      size_t size;
      for (size_t i = 0;
           rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
           ++i) {
        std::optional<absl::string_view> v;
        if (value) v = absl::string_view(static_cast<const char *>(value), size);
        r.headers.emplace_back(name, v);
      }
    }
    size_t record_bytes = m->len + m->key_len;
    for (const auto &h : r.headers)
      record_bytes += h.first.size() + (h.second ? h.second->size() : 0);

    if (!h.bp) h.bp = &BatchPart(tp, ps);
    Batch::Part &bp = *h.bp;
    if (bp.records == 0) bp.first = m->offset;
    bp.last = m->offset;
    bp.next = m->offset + 1;
    ++bp.records;
    ps.fetch_next = m->offset + 1;

    std::string error;
    if (record_bytes > spec.max_record_bytes()) {
      error = absl::StrCat("record of ", record_bytes, " bytes is over max_record_bytes (",
                           spec.max_record_bytes(), ")");
    }
    int64_t hour = -1;
    if (spec.layout() == iv1::HOUR) {
      int64_t ms = r.timestamp_ms >= 0 ? r.timestamp_ms : absl::ToUnixMillis(absl::Now());
      hour = ms / 3'600'000;
    }
    auto file_for = [&](bool dead) -> Batch::File & {
      auto [it, fresh] = batch.files.try_emplace({tp.first, tp.second, dead, dead ? -1 : hour});
      Batch::File &f = it->second;
      if (fresh) {
        f.topic = tp.first;
        f.partition = tp.second;
        f.dead = dead;
        f.hour = dead ? -1 : hour;
        f.first = m->offset;
      }
      f.last = m->offset;
      return f;
    };
    if (error.empty()) {
      if (!h.file || h.file_hour != hour) {
        h.file = &file_for(false);
        h.file_hour = hour;
      } else {
        h.file->last = m->offset;
      }
      Batch::File &f = *h.file;
      size_t before = f.data.size();
      absl::Status s = AppendRecordLine(r, value_format, "", &f.data);
      if (s.ok()) {
        batch.bytes += f.data.size() - before;
        ++batch.records;
        return;
      }
      error = std::string(s.message());
      if (f.data.empty()) {
        batch.files.erase({tp.first, tp.second, false, hour});
        h.file = nullptr;
      }
    }
    Batch::File &f = file_for(true);
    size_t before = f.data.size();
    AppendRecordLine(r, ValueFormat::kRaw, error, &f.data).IgnoreError();  // kRaw cannot fail
    batch.bytes += f.data.size() - before;
    ++batch.records;
    ++batch.dead_letters;
    ++dead_total;
    mx.dead_letters->Inc();
    LOG(WARNING) << "dead letter " << Name(tp) << "@" << m->offset << ": " << error;
  }

  // The broker no longer has the offset we asked for.
  void HandleOutOfRange(const TopicPartition &tp) {
    auto it = parts.find(tp);
    if (it == parts.end()) return;
    PartState &ps = it->second;
    int64_t lo = 0, hi = 0;
    absl::Status s = KafkaStatus(
        rd_kafka_query_watermark_offsets(rk, tp.first.c_str(), tp.second, &lo, &hi, 10000),
        absl::StrCat("watermarks of ", Name(tp)));
    if (!s.ok()) {
      LOG(WARNING) << "offset " << ps.fetch_next << " of " << Name(tp)
                   << " is out of range and the watermarks are unknown (" << s << "); retrying";
      Reassign();
      return;
    }
    int64_t want = ps.fetch_next;
    if (want >= 0 && want < lo) {
      Batch::Part &bp = BatchPart(tp, ps);
      uint64_t lost = static_cast<uint64_t>(lo - want);
      ps.lost_total += lost;
      mx.lost->Inc(static_cast<double>(lost));
      bp.lost_total = ps.lost_total;
      bp.lost_changed = true;
      std::string gap = absl::StrCat(want, "-", lo - 1);
      bp.gap = bp.gap.empty() ? gap : absl::StrCat(bp.gap, ",", gap);
      bp.next = lo;
      LOG(ERROR) << "RECORDS LOST: " << Name(tp) << " offsets " << gap << " (" << lost
                 << " records) were deleted by the broker before source " << spec.name()
                 << " read them (retention); the gap is recorded in the next commit's "
                    "metadata and continuing at offset "
                 << lo;
    } else {
      LOG(ERROR) << "offset " << want << " of " << Name(tp) << " is beyond the partition's end ("
                 << hi << "): was the topic deleted and recreated? continuing at offset " << lo;
      Batch::Part &bp = BatchPart(tp, ps);
      bp.gap = absl::StrCat("reset ", want, "->", lo);
      bp.next = lo;
    }
    ps.fetch_next = lo;
    Reassign();
  }

  // ---- assignment ----

  rd_kafka_topic_partition_list_t *AssignmentList() {
    auto *list = rd_kafka_topic_partition_list_new(static_cast<int>(parts.size()));
    for (const auto &[tp, ps] : parts) {
      rd_kafka_topic_partition_list_add(list, tp.first.c_str(), tp.second)->offset = ps.fetch_next;
    }
    return list;
  }

  // Re-assigns every owned partition at its fetch_next (drops what was
  // prefetched; fetching resumes).
  void Reassign() {
    auto *list = AssignmentList();
    absl::Status s = KafkaStatus(rd_kafka_assign(rk, list), "assign");
    if (!s.ok()) LOG(ERROR) << s;
    // A re-assignment keeps librdkafka's pause of a partition: resume them,
    // or a member that paused (a full batch waiting for tuskd) and then
    // resynced would wait forever with an empty batch.
    if (paused) rd_kafka_resume_partitions(rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    paused = false;
  }

  // Positions every owned partition at the branch head's offsets.
  absl::Status PositionFromHead() {
    ASSIGN_OR_RETURN(auto meta, committer->ReadHead(*stop));
    for (auto &[tp, ps] : parts) {
      ps = PartState();
      auto next = meta.find(KafkaOffsetKey(tp.first, tp.second));
      int64_t n = 0;
      if (next != meta.end() && absl::SimpleAtoi(next->second, &n) && n >= 0) {
        ps.planned_next = n;
        ps.fetch_next = n;
      } else {
        ps.fetch_next =
            spec.kafka().start() == iv1::LATEST ? RD_KAFKA_OFFSET_END : RD_KAFKA_OFFSET_BEGINNING;
      }
      auto lost = meta.find(KafkaLostKey(tp.first, tp.second));
      uint64_t l = 0;
      if (lost != meta.end() && absl::SimpleAtoi(lost->second, &l)) ps.lost_total = l;
    }
    return absl::OkStatus();
  }

  void OnAssign(rd_kafka_topic_partition_list_t *list) {
    unassigned_since = absl::InfiniteFuture();
    ClearParts();
    ResetBatch();
    for (int i = 0; i < list->cnt; ++i) {
      parts[{list->elems[i].topic, list->elems[i].partition}] = PartState();
    }
    absl::Status s = PositionFromHead();
    if (!s.ok()) {
      // Only when stopping; take nothing.
      ClearParts();
      rd_kafka_assign(rk, nullptr);
      return;
    }
    std::vector<std::string> where;
    for (const auto &[tp, ps] : parts) {
      where.push_back(absl::StrCat(Name(tp), "@",
                                   ps.planned_next ? absl::StrCat(*ps.planned_next)
                                   : ps.fetch_next == RD_KAFKA_OFFSET_END ? "latest"
                                                                          : "earliest"));
    }
    LOG(INFO) << "assigned " << parts.size()
              << " partitions, from the branch head: " << absl::StrJoin(where, " ");
    Reassign();
  }

  void OnRevoke() {
    // Land what we have for these partitions, so the next owner continues from
    // there; anything not landed is read again by the next owner.
    if (!committer->WaitIdle(opts.revoke_wait)) ResetBatch();
    DrainResults();
    if (!batch.empty() && !resync) {
      HandOff();
      committer->WaitIdle(opts.revoke_wait);
      DrainResults();
    }
    ResetBatch();
    unassigned_since = absl::Now();
    if (!parts.empty()) LOG(INFO) << "revoked " << parts.size() << " partitions";
    ClearParts();
    resync = false;
    rd_kafka_assign(rk, nullptr);
    paused = false;
  }

  static void RebalanceCb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                          rd_kafka_topic_partition_list_t *list, void *opaque) {
    auto *self = static_cast<Impl *>(opaque);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      self->OnAssign(list);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
      self->OnRevoke();
    } else {
      LOG(ERROR) << "rebalance failed: " << rd_kafka_err2str(err);
      self->ClearParts();
      self->ResetBatch();
      rd_kafka_assign(rk, nullptr);
    }
  }

  // librdkafka's statistics (JSON): keeps the consumer group's state.
  static int StatsCb(rd_kafka_t *, char *json, size_t len, void *opaque) {
    auto *self = static_cast<Impl *>(opaque);
    google::protobuf::Struct stats;
    if (!google::protobuf::util::JsonStringToMessage(std::string(json, len), &stats).ok()) return 0;
    auto cgrp = stats.fields().find("cgrp");
    if (cgrp == stats.fields().end()) return 0;
    std::vector<std::string> fields;
    for (const char *f : {"state", "join_state", "rebalance_cnt", "rebalance_reason",
                          "assignment_size", "stateage"}) {
      auto v = cgrp->second.struct_value().fields().find(f);
      if (v == cgrp->second.struct_value().fields().end()) continue;
      fields.push_back(v->second.has_string_value()
                           ? absl::StrCat(f, "=", v->second.string_value())
                           : absl::StrCat(f, "=", v->second.number_value()));
    }
    self->group_state = absl::StrJoin(fields, " ");
    return 0;  // librdkafka frees `json`
  }

  // A member that waits long for partitions says so, with the group's state.
  void WarnIfUnassigned() {
    absl::Time now = absl::Now();
    if (now - unassigned_since < absl::Seconds(20) || now - warned_unassigned < absl::Seconds(20)) {
      return;
    }
    warned_unassigned = now;
    LOG(WARNING) << "still waiting for partitions from the consumer group after "
                 << absl::FormatDuration(absl::Trunc(now - unassigned_since, absl::Seconds(1)))
                 << " (group " << spec.name() << ": " << group_state << ")";
  }

  static void LogCb(const rd_kafka_t *, int level, const char *fac, const char *buf) {
    if (level <= 3) {
      LOG(ERROR) << "kafka " << fac << ": " << buf;
    } else if (level <= 4) {
      LOG(WARNING) << "kafka " << fac << ": " << buf;
    } else {
      VLOG(1) << "kafka " << fac << ": " << buf;
    }
  }

  static void ErrorCb(rd_kafka_t *, int err, const char *reason, void *) {
    LOG(WARNING) << "kafka: " << rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)) << ": "
                 << reason;
  }

  // ---- results, reports ----

  void DrainResults() {
    std::deque<CommitResult> done = committer->TakeResults();
    for (auto &r : done) {
      if (r.outcome == Outcome::kCommitted) {
        records_total += r.records;
        mx.records->Inc(static_cast<double>(r.records));
        mx.bytes->Inc(static_cast<double>(r.bytes));
        mx.commits->Inc();
        if (r.opened != absl::Time()) {
          mx.latency->Observe(absl::ToDoubleSeconds(r.committed - r.opened));
        }
        VLOG(1) << "commit " << r.commit << ": " << r.records << " records";
        // For lag monitors only: the branch head is what counts.
        auto *list = rd_kafka_topic_partition_list_new(static_cast<int>(r.next.size()));
        for (const auto &[tp, next] : r.next) {
          if (parts.count(tp))
            rd_kafka_topic_partition_list_add(list, tp.first.c_str(), tp.second)->offset = next;
        }
        if (list->cnt > 0) rd_kafka_commit(rk, list, 1);
        rd_kafka_topic_partition_list_destroy(list);
      } else {
        LOG(WARNING) << "a micro-commit of " << r.records << " records did not land ("
                     << (r.outcome == Outcome::kAborted ? "" : "given up: ") << r.status
                     << "); re-reading offsets from the branch head";
        resync = true;
      }
    }
  }

  // After a commit did not land: every batch built on it is void.
  void Resync() {
    if (!committer->Idle()) return;  // wait for the in-flight one to end too
    DrainResults();
    ResetBatch();
    resync = false;
    if (PositionFromHead().ok()) {
      Reassign();
    }
  }

  // Returns NotFound when the source is gone, Aborted when its spec changed.
  absl::Status Report() {
    absl::Time now = absl::Now();
    if (now - last_report < opts.report_interval) return absl::OkStatus();
    double secs = absl::ToDoubleSeconds(now - last_report);
    if (last_report != absl::InfinitePast() && secs > 0) {
      rate = static_cast<double>(records_total - records_at_report) / secs;
    }
    records_at_report = records_total;
    last_report = now;

    iv1::ReportSourceRequest req;
    req.set_name(spec.name());
    auto *m = req.mutable_member();
    m->set_id(opts.member_id);
    m->set_host(host);
    m->mutable_last_seen()->set_seconds(absl::ToUnixSeconds(now));
    std::string waiting = committer->WaitReason();
    m->set_state(!waiting.empty() ? waiting
                 : parts.empty()  ? "waiting for partitions"
                                  : "consuming");
    m->set_records_per_s(rate);
    m->set_records(records_total);
    m->set_dead_letters(dead_total);
    for (const auto &[tp, ps] : parts) {
      auto *p = req.add_partitions();
      p->set_topic(tp.first);
      p->set_partition(tp.second);
      int64_t lo = -1, hi = -1;
      if (rd_kafka_get_watermark_offsets(rk, tp.first.c_str(), tp.second, &lo, &hi) ==
          RD_KAFKA_RESP_ERR_NO_ERROR) {
        p->set_high_watermark(hi);
        if (ps.fetch_next >= 0) {
          IngestMetrics::Lag(spec.name(), tp.first, tp.second)
              ->Set(static_cast<double>(std::max<int64_t>(0, hi - ps.fetch_next)));
        }
      } else {
        p->set_high_watermark(-1);
      }
      p->set_position(ps.fetch_next);
    }
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    iv1::ReportSourceResponse resp;
    absl::Status s = FromGrpcStatus(sources->ReportSource(&ctx, req, &resp));
    if (s.code() == absl::StatusCode::kNotFound) return s;
    if (!s.ok()) return absl::OkStatus();  // tuskd unreachable: commits say so
    if (!google::protobuf::util::MessageDifferencer::Equals(resp.spec(), spec)) {
      return absl::AbortedError(absl::StrCat("the spec of source ", spec.name(), " changed"));
    }
    return absl::OkStatus();
  }

  void SetPaused(bool pause) {
    if (pause == paused || parts.empty()) return;
    auto *list = AssignmentList();
    if (pause) {
      rd_kafka_pause_partitions(rk, list);
      VLOG(1) << "paused fetching: a full batch waits for the commit in flight";
    } else {
      rd_kafka_resume_partitions(rk, list);
    }
    rd_kafka_topic_partition_list_destroy(list);
    paused = pause;
  }

  void HandleMessage(rd_kafka_message_t *m) {
    if (m->err) {
      TopicPartition tp;
      if (m->rkt) tp = {rd_kafka_topic_name(m->rkt), m->partition};
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) return;
      if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET ||
          m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE) {
        if (m->rkt) HandleOutOfRange(tp);
        return;
      }
      LOG(WARNING) << "kafka" << (m->rkt ? absl::StrCat(" ", Name(tp)) : "") << ": "
                   << rd_kafka_message_errstr(m);
      return;
    }
    Hot *h = nullptr;
    for (auto &e : hot) {
      if (e.rkt == m->rkt && e.partition == m->partition) h = &e;
    }
    if (!h) {
      Hot e;
      e.rkt = m->rkt;
      e.partition = m->partition;
      e.tp = {rd_kafka_topic_name(m->rkt), m->partition};
      auto it = parts.find(e.tp);
      if (it != parts.end()) e.ps = &it->second;
      hot.push_back(std::move(e));
      h = &hot.back();
    }
    if (!h->ps) return;                                                   // no longer ours
    if (h->ps->fetch_next >= 0 && m->offset < h->ps->fetch_next) return;  // stale
    if (h->gen != batch_gen) {
      h->gen = batch_gen;
      h->bp = nullptr;
      h->file = nullptr;
    }
    AddRecord(*h, m);
  }

  absl::Status Loop() {
    for (;;) {
      DrainResults();
      if (resync) Resync();
      if (stop->load()) return absl::OkStatus();
      absl::Status rs = Report();
      if (rs.code() == absl::StatusCode::kNotFound) {
        LOG(INFO) << "source " << spec.name() << " was deleted; stopping";
        return absl::OkStatus();
      }
      if (!rs.ok()) return rs;
      WarnIfUnassigned();
      if (!resync && BatchFull()) {
        // A full batch waits for the commit in flight. Briefly, just wait:
        // librdkafka keeps prefetching up to its bound. When tuskd is stuck,
        // pause fetching and keep polling, so that group rebalances are served.
        if (!committer->WaitIdle(absl::Milliseconds(100), /*give_up=*/false)) {
          if (blocked_since == absl::InfiniteFuture()) blocked_since = absl::Now();
          if (absl::Now() - blocked_since > absl::Seconds(2)) SetPaused(true);
        } else {
          blocked_since = absl::InfiniteFuture();
          DrainResults();  // the previous commit's outcome decides this batch's fate
          if (resync) continue;
          HandOff();
          SetPaused(false);
        }
        if (!paused) continue;
      }
      int timeout_ms = 100;
      if (!batch.empty() && !paused) {
        absl::Duration left =
            batch.opened + absl::Milliseconds(spec.max_latency_ms()) - absl::Now();
        timeout_ms = static_cast<int>(std::clamp<int64_t>(absl::ToInt64Milliseconds(left), 0, 100));
      } else if (paused) {
        timeout_ms = 5;
      }
      // Drain what is already fetched; when that runs dry, wait once.
      rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 0);
      if (!m) m = rd_kafka_consumer_poll(rk, timeout_ms);
      for (int n = 0; m; m = rd_kafka_consumer_poll(rk, 0)) {
        HandleMessage(m);
        rd_kafka_message_destroy(m);
        if (++n >= 10000 || BatchFull() || resync) break;
      }
    }
  }
};

Ingester::Ingester(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Ingester::~Ingester() = default;

absl::StatusOr<std::unique_ptr<Ingester>> Ingester::Open(const IngesterOptions &options) {
  auto impl = std::make_unique<Impl>();
  impl->opts = options;
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  impl->host = host;
  if (impl->opts.member_id.empty()) impl->opts.member_id = absl::StrCat(host, "-", getpid());
  auto channel = NewChannel(options.tuskd, options.channel);
  if (!channel.ok()) return channel.status();
  impl->channel = *channel;
  impl->api = pv1::API::NewStub(impl->channel);
  impl->sources = iv1::Sources::NewStub(impl->channel);

  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    // A report (not InspectSource) returns the spec with its Kafka
    // credentials, which inspection hides.
    iv1::ReportSourceRequest req;
    req.set_name(options.source);
    req.mutable_member()->set_id(impl->opts.member_id);
    req.mutable_member()->set_host(impl->host);
    req.mutable_member()->set_state("starting");
    req.mutable_member()->mutable_last_seen()->set_seconds(absl::ToUnixSeconds(absl::Now()));
    iv1::ReportSourceResponse resp;
    absl::Status s = FromGrpcStatus(impl->sources->ReportSource(&ctx, req, &resp));
    if (!s.ok()) return s;
    impl->spec = resp.spec();
  }
  impl->mx = IngestMetrics::For(impl->spec.name());
  const iv1::SourceSpec &spec = impl->spec;
  impl->value_format = spec.value_format() == iv1::JSON ? ValueFormat::kJson : ValueFormat::kRaw;

  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  uint64_t buffer_kb = std::max<uint64_t>(options.fetch_buffer_bytes >> 10, 1024);
  uint64_t fetch_max = std::clamp<uint64_t>(options.fetch_buffer_bytes / 4, 1 << 20, 50 << 20);
  // Short fetch waits so that an idle partition does not hold back latency.
  uint64_t fetch_wait = std::clamp<uint64_t>(spec.max_latency_ms() / 4, 5, 500);
  std::vector<std::pair<std::string, std::string>> props = {
      {"bootstrap.servers", spec.kafka().brokers()},
      {"group.id", spec.name()},
      {"client.id", absl::StrCat("tusk-ingest-", impl->opts.member_id)},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      // Records deleted before we read them must be noticed, not skipped.
      {"auto.offset.reset", "error"},
      {"enable.partition.eof", "false"},
      {"queued.max.messages.kbytes", absl::StrCat(buffer_kb)},
      // The buffer is bounded in bytes, not in records: the count limit
      // (100k records over all partitions) would stop small records early.
      {"queued.min.messages", "10000000"},
      {"fetch.max.bytes", absl::StrCat(fetch_max)},
      {"receive.message.max.bytes", absl::StrCat(fetch_max + (1 << 20))},
      {"fetch.wait.max.ms", absl::StrCat(fetch_wait)},
      // librdkafka 2.0 also backs a partition off by this much when its fetch
      // buffer is full; the 500 ms default starves a fast consumer.
      {"fetch.error.backoff.ms", "50"},
      // Kafka Connect's default: a member that died is replaced within ~10 s.
      {"session.timeout.ms", "10000"},
      // For the group's state when no assignment comes (StatsCb).
      {"statistics.interval.ms", "5000"},
  };
  for (const auto &[k, v] : spec.kafka().config()) props.emplace_back(k, v);
  for (const auto &[k, v] : options.kafka_config) props.emplace_back(k, v);
  for (const auto &[k, v] : props) {
    absl::Status s = SetKafkaConfig(conf, k, v);
    if (!s.ok()) {
      rd_kafka_conf_destroy(conf);
      return s;
    }
  }
  rd_kafka_conf_set_rebalance_cb(conf, &Impl::RebalanceCb);
  rd_kafka_conf_set_log_cb(conf, &Impl::LogCb);
  rd_kafka_conf_set_error_cb(conf, &Impl::ErrorCb);
  rd_kafka_conf_set_stats_cb(conf, &Impl::StatsCb);
  rd_kafka_conf_set_opaque(conf, impl.get());
  char err[512];
  impl->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
  if (!impl->rk) {
    rd_kafka_conf_destroy(conf);
    return absl::InvalidArgumentError(absl::StrCat("cannot create the Kafka consumer: ", err));
  }
  rd_kafka_poll_set_consumer(impl->rk);
  auto *topics = rd_kafka_topic_partition_list_new(spec.kafka().topics_size());
  for (const auto &t : spec.kafka().topics()) {
    rd_kafka_topic_partition_list_add(topics, t.c_str(), RD_KAFKA_PARTITION_UA);
  }
  absl::Status s = KafkaStatus(rd_kafka_subscribe(impl->rk, topics), "subscribe");
  rd_kafka_topic_partition_list_destroy(topics);
  if (!s.ok()) return s;
  impl->committer = std::make_unique<Committer>(impl->opts, spec, impl->api.get());
  impl->committer->Start();
  LOG(INFO) << "member " << impl->opts.member_id << " of source " << spec.name() << ": "
            << absl::StrJoin(spec.kafka().topics(), ",") << " at " << spec.kafka().brokers()
            << " -> " << spec.repo() << "@" << spec.branch() << " (max " << spec.max_records()
            << " records, " << spec.max_bytes() << " bytes, " << spec.max_latency_ms()
            << " ms per commit)";
  return std::unique_ptr<Ingester>(new Ingester(std::move(impl)));
}

absl::Status Ingester::Run(const std::atomic<bool> &stop) {
  impl_->stop = &stop;
  absl::Status s = impl_->Loop();
  // Leave the group cleanly: the revoke callback lands the current batch.
  absl::Status c = KafkaStatus(rd_kafka_consumer_close(impl_->rk), "close consumer");
  if (!c.ok()) LOG(WARNING) << c;
  impl_->DrainResults();
  return s;
}

}  // namespace tusk::ingest
