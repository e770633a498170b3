#include "dispatcher/spec.h"

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/flag_values.h"
#include "common/json_patch.h"
#include "common/status.h"
#include "dispatcher/cron.h"
#include "google/protobuf/util/time_util.h"
#include "pfs/refs.h"
#include "pfs/tree.h"

namespace tusk::dispatcher {
namespace {

using google::protobuf::util::TimeUtil;
using pps::v1::ResourceSpec;
using pps::v1::SecretMount;
using pps::v1::Toleration;
using pps::v1::Transform;

absl::Status Bad(const std::string& field, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

enum class Parent { kNone, kCross, kUnion, kJoin, kGroup };

// Checks a "$1" / "$1$2" key against the glob's capture groups.
absl::Status CheckKey(const std::string& field, const std::string& key, int groups) {
  if (key.empty() || key[0] != '$') {
    return Bad(field, absl::StrCat("'", key, "' is not a capture-group reference such as $1"));
  }
  for (size_t i = 0; i < key.size();) {
    if (key[i] != '$') return Bad(field, absl::StrCat("'", key, "': expected '$' at byte ", i));
    size_t j = i + 1;
    while (j < key.size() && absl::ascii_isdigit(key[j])) ++j;
    int n = 0;
    if (j == i + 1 || !absl::SimpleAtoi(key.substr(i + 1, j - i - 1), &n) || n < 1) {
      return Bad(field, absl::StrCat("'", key, "': '$' must be followed by a group number from 1"));
    }
    if (n > groups) {
      return Bad(field, absl::StrCat("'", key, "' refers to group ", n, " but the glob has ",
                                     groups, " capture group", groups == 1 ? "" : "s"));
    }
    i = j;
  }
  return absl::OkStatus();
}

// Pachyderm's projects: only the one namespace, "default".
absl::Status CheckProject(const std::string& field, const pps::v1::Project& p) {
  if (p.name().empty() || p.name() == "default") return absl::OkStatus();
  return Bad(field, absl::StrCat("project '", p.name(),
                                 "': tusk has no projects; every repo and pipeline is in the "
                                 "project 'default' (leave it out, or write default)"));
}

absl::Status CheckTrigger(const std::string& field, const PFSInput& in) {
  const pps::v1::Trigger& t = in.trigger();
  if (t.branch().empty()) return Bad(field + ".branch", "is required (the branch to follow)");
  if (auto st = pfs::ValidateBranchName(t.branch()); !st.ok()) {
    return Bad(field + ".branch", std::string(st.message()));
  }
  const std::string own = in.branch().empty() ? pfs::kDefaultBranch : in.branch();
  if (t.branch() == own) {
    return Bad(field + ".branch", absl::StrCat("is the input's own branch (", own,
                                               "); the input reads another branch, which "
                                               "follows this one"));
  }
  if (t.cron_spec().empty() && t.size().empty() && t.commits() == 0) {
    return Bad(field, "needs a condition: size, commits or cron_spec");
  }
  if (t.commits() < 0) return Bad(field + ".commits", "is negative");
  if (!t.size().empty()) {
    auto bytes = ParseMemoryQuantity(t.size());
    if (!bytes.ok()) return Bad(field + ".size", std::string(bytes.status().message()));
  }
  if (!t.cron_spec().empty()) {
    auto sched = CronSchedule::Parse(t.cron_spec());
    if (!sched.ok()) return Bad(field + ".cron_spec", std::string(sched.status().message()));
  }
  return absl::OkStatus();
}

absl::Status CheckPfs(const std::string& field, PFSInput* in, Parent parent) {
  RETURN_IF_ERROR(CheckProject(field + ".project.name", in->project()));
  in->clear_project();
  if (in->has_s3()) {
    return Bad(field + ".s3",
               "tusk has no S3 sidecar in the runner; inputs are files in /pfs, "
               "and tuskd --s3-listen serves every repo over S3");
  }
  if (!in->repo_type().empty() && in->repo_type() != "user") {
    return Bad(field + ".repo_type",
               absl::StrCat("'", in->repo_type(), "': only user repos can be inputs"));
  }
  in->clear_repo_type();
  if (!in->commit().empty() && !pfs::IsCommitId(in->commit())) {
    return Bad(field + ".commit",
               absl::StrCat("'", in->commit(), "' is not a commit id (32 hex characters)"));
  }
  if (in->repo().empty()) return Bad(field + ".repo", "is required");
  if (in->has_trigger()) RETURN_IF_ERROR(CheckTrigger(field + ".trigger", *in));
  if (auto st = pfs::ValidateRepoName(in->repo()); !st.ok())
    return Bad(field + ".repo", std::string(st.message()));
  if (in->branch().empty()) in->set_branch(pfs::kDefaultBranch);
  if (auto st = pfs::ValidateBranchName(in->branch()); !st.ok()) {
    return Bad(field + ".branch", std::string(st.message()));
  }
  if (in->name().empty()) in->set_name(in->repo());
  if (auto st = pfs::ValidateRepoName(in->name()); !st.ok()) {
    return Bad(field + ".name", absl::StrCat(st.message(), " (it names the directory /pfs/NAME)"));
  }
  if (in->name() == "out") return Bad(field + ".name", "'out' is reserved for /pfs/out");
  if (in->glob().empty())
    return Bad(field + ".glob", "is required (\"/\" for the whole repo as one datum)");
  if (in->glob()[0] != '/') in->set_glob("/" + in->glob());
  // Capture groups: balanced, not nested, and not part of the match itself.
  std::string plain;
  int depth = 0;
  for (char c : in->glob()) {
    if (c == '(') {
      if (++depth > 1)
        return Bad(field + ".glob", absl::StrCat("'", in->glob(), "' nests capture groups"));
      continue;
    }
    if (c == ')') {
      if (--depth < 0)
        return Bad(field + ".glob", absl::StrCat("'", in->glob(), "' has an unmatched ')'"));
      continue;
    }
    plain.push_back(c);
  }
  if (depth != 0)
    return Bad(field + ".glob", absl::StrCat("'", in->glob(), "' has an unmatched '('"));
  if (auto st = pfs::ValidateGlob(plain); !st.ok()) {
    return Bad(field + ".glob", absl::StrCat("'", in->glob(), "': ", st.message()));
  }
  for (absl::string_view part : absl::StrSplit(plain, '/', absl::SkipEmpty())) {
    if (part == "." || part == "..") {
      return Bad(field + ".glob", absl::StrCat("'", in->glob(), "' contains '", part, "'"));
    }
  }
  int groups = GlobCaptureGroups(in->glob());
  if (parent == Parent::kJoin) {
    if (in->join_on().empty()) return Bad(field + ".join_on", "is required in a join");
    RETURN_IF_ERROR(CheckKey(field + ".join_on", in->join_on(), groups));
  } else {
    if (!in->join_on().empty())
      return Bad(field + ".join_on", "only applies to the inputs of a join");
    if (in->outer_join()) return Bad(field + ".outer_join", "only applies to the inputs of a join");
  }
  if (parent == Parent::kGroup) {
    if (in->group_by().empty()) return Bad(field + ".group_by", "is required in a group");
    RETURN_IF_ERROR(CheckKey(field + ".group_by", in->group_by(), groups));
  } else if (!in->group_by().empty()) {
    return Bad(field + ".group_by", "only applies to the inputs of a group");
  }
  return absl::OkStatus();
}

// Input names beneath `in` (a union's children share one name space slot).
void Names(const Input& in, std::vector<std::string>* out) {
  if (in.has_pfs()) {
    out->push_back(in.pfs().name());
    return;
  }
  if (!in.union_().empty()) {
    std::set<std::string> seen;
    for (const auto& c : in.union_()) {
      std::vector<std::string> sub;
      Names(c, &sub);
      for (auto& n : sub) {
        if (seen.insert(n).second) out->push_back(n);
      }
    }
    return;
  }
  for (const auto* list : {&in.cross(), &in.join(), &in.group()}) {
    for (const auto& c : *list) Names(c, out);
  }
}

// A cron input: its schedule, and the pfs input it is read through (its
// repo, default PIPELINE_NAME, at master, glob /).
absl::Status CheckCron(const std::string& field, Input* in, const std::string& pipeline) {
  pps::v1::CronInput* c = in->mutable_cron();
  if (c->name().empty()) return Bad(field + ".name", "is required (it names /pfs/NAME)");
  if (c->repo().empty()) c->set_repo(absl::StrCat(pipeline, "_", c->name()));
  if (auto st = CronSchedule::Parse(c->spec()); !st.ok()) {
    return Bad(field + ".spec", std::string(st.status().message()));
  }
  if (auto st = pfs::ValidateRepoName(c->repo()); !st.ok()) {
    return Bad(field + ".repo", std::string(st.message()));
  }
  PFSInput* p = in->mutable_pfs();
  p->Clear();
  p->set_name(c->name());
  p->set_repo(c->repo());
  p->set_branch(pfs::kDefaultBranch);
  p->set_glob("/");
  return absl::OkStatus();
}

// Fills in every cron input beneath `in` (before CheckInput, which reads
// them as pfs inputs).
absl::Status CheckCrons(const std::string& field, Input* in, const std::string& pipeline) {
  if (in->has_cron()) {
    if (!in->cross().empty() || !in->union_().empty() || !in->join().empty() ||
        !in->group().empty()) {
      return Bad(field, "sets more than one of pfs, cross, union, join, group, cron");
    }
    return CheckCron(field + ".cron", in, pipeline);
  }
  for (auto [name, list] :
       {std::pair{"cross", in->mutable_cross()}, std::pair{"union", in->mutable_union_()},
        std::pair{"join", in->mutable_join()}, std::pair{"group", in->mutable_group()}}) {
    for (int i = 0; i < list->size(); i++) {
      RETURN_IF_ERROR(
          CheckCrons(absl::StrCat(field, ".", name, "[", i, "]"), list->Mutable(i), pipeline));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckInput(const std::string& field, Input* in, Parent parent) {
  int set = (in->has_pfs() ? 1 : 0) + (in->cross().empty() ? 0 : 1) +
            (in->union_().empty() ? 0 : 1) + (in->join().empty() ? 0 : 1) +
            (in->group().empty() ? 0 : 1);
  if (set == 0) return Bad(field, "needs one of pfs, cross, union, join, group");
  if (set > 1) return Bad(field, "sets more than one of pfs, cross, union, join, group");
  if (in->has_pfs()) return CheckPfs(field + ".pfs", in->mutable_pfs(), parent);
  struct Kind {
    const char* name;
    google::protobuf::RepeatedPtrField<Input>* children;
    Parent parent;
  };
  for (Kind k : {Kind{"cross", in->mutable_cross(), Parent::kCross},
                 Kind{"union", in->mutable_union_(), Parent::kUnion},
                 Kind{"join", in->mutable_join(), Parent::kJoin},
                 Kind{"group", in->mutable_group(), Parent::kGroup}}) {
    if (k.children->empty()) continue;
    for (int i = 0; i < k.children->size(); ++i) {
      std::string child = absl::StrCat(field, ".", k.name, "[", i, "]");
      Input* c = k.children->Mutable(i);
      if ((k.parent == Parent::kJoin || k.parent == Parent::kGroup) && !c->has_pfs()) {
        return Bad(child, absl::StrCat("the inputs of a ", k.name, " must be pfs inputs"));
      }
      RETURN_IF_ERROR(CheckInput(child, c, k.parent));
    }
    if (k.parent != Parent::kUnion) {
      // The inputs of one datum are mounted side by side: names must differ.
      std::vector<std::string> names;
      Names(*in, &names);
      std::set<std::string> seen;
      for (const auto& n : names) {
        if (!seen.insert(n).second) {
          return Bad(field,
                     absl::StrCat("two inputs are named '", n, "'; set 'name' on one of them"));
        }
      }
    }
  }
  return absl::OkStatus();
}

absl::Status CheckDuration(const std::string& field, const google::protobuf::Duration& d) {
  if (d.seconds() < 0 || d.nanos() < 0) return Bad(field, "is negative");
  return absl::OkStatus();
}

absl::Status CheckQuantity(const std::string& field, const std::string& q) {
  if (q.empty()) return absl::OkStatus();
  auto bytes = ParseMemoryQuantity(q);
  if (!bytes.ok()) return Bad(field, std::string(bytes.status().message()));
  return absl::OkStatus();
}

absl::Status CheckResources(const std::string& field, const ResourceSpec& r) {
  RETURN_IF_ERROR(CheckQuantity(field + ".memory", r.memory()));
  RETURN_IF_ERROR(CheckQuantity(field + ".disk", r.disk()));
  if (r.cpu() < 0) return Bad(field + ".cpu", "is negative");
  if (r.gpu().number() < 0) return Bad(field + ".gpu.number", "is negative");
  if (r.gpu().number() > 0 && r.gpu().type().empty()) {
    return Bad(field + ".gpu.type", "is required with gpu.number (e.g. nvidia.com/gpu)");
  }
  return absl::OkStatus();
}

// A Kubernetes object name (RFC 1123 subdomain), as Secrets are named.
bool IsKubeName(const std::string& s) {
  if (s.empty() || s.size() > 253) return false;
  for (char c : s) {
    if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c) && c != '-' && c != '.') return false;
  }
  return absl::ascii_isalnum(s.front()) && absl::ascii_isalnum(s.back());
}

// Accepts Pachyderm's spelling (NO_SCHEDULE) and Kubernetes' (NoSchedule).
absl::Status CheckChoice(const std::string& field, const std::string& v,
                         std::initializer_list<std::pair<const char*, const char*>> choices) {
  if (v.empty()) return absl::OkStatus();
  std::vector<std::string> names;
  for (const auto& [pachyderm, kube] : choices) {
    if (v == pachyderm || v == kube) return absl::OkStatus();
    names.push_back(pachyderm);
  }
  return Bad(field, absl::StrCat("'", v, "' is not one of ", absl::StrJoin(names, ", ")));
}

absl::Status CheckPodFields(PipelineSpec* spec) {
  const Transform& t = spec->transform();
  if (!t.image().empty()) {
    for (char c : t.image()) {
      if (absl::ascii_isspace(c) || absl::ascii_iscntrl(c)) {
        return Bad("transform.image", absl::StrCat("'", t.image(), "' contains a space"));
      }
    }
  }
  if (!t.user().empty()) {
    std::vector<std::string> ids = absl::StrSplit(t.user(), ':');
    uint32_t uid = 0, gid = 0;
    if (ids.size() > 2 || !absl::SimpleAtoi(ids[0], &uid) ||
        (ids.size() == 2 && !absl::SimpleAtoi(ids[1], &gid))) {
      return Bad("transform.user", absl::StrCat("'", t.user(),
                                                "' is not UID or UID:GID (numbers: a pod's user is "
                                                "numeric; the image's /etc/passwd is not read)"));
    }
    if (uid == 0)
      return Bad("transform.user", "0 (root): pipelines run as a user that is not root");
  }
  for (const auto& s : t.image_pull_secrets()) {
    if (!IsKubeName(s)) {
      return Bad("transform.image_pull_secrets",
                 absl::StrCat("'", s, "' is not a Kubernetes Secret name"));
    }
  }
  for (int i = 0; i < t.secrets_size(); ++i) {
    const SecretMount& m = t.secrets(i);
    const std::string f = absl::StrCat("transform.secrets[", i, "]");
    if (!IsKubeName(m.name())) {
      return Bad(f + ".name", absl::StrCat("'", m.name(), "' is not a Kubernetes Secret name"));
    }
    if (m.mount_path().empty() && m.env_var().empty()) {
      return Bad(f, "needs mount_path or env_var (or both)");
    }
    if (!m.env_var().empty() && m.key().empty()) return Bad(f + ".key", "is required with env_var");
    if (m.env_var().find('=') != std::string::npos) {
      return Bad(f + ".env_var", absl::StrCat("'", m.env_var(), "' is not a variable name"));
    }
    if (!m.key().empty() &&
        (m.key().find('/') != std::string::npos || m.key() == "." || m.key() == "..")) {
      return Bad(f + ".key", absl::StrCat("'", m.key(), "' is not a Secret key"));
    }
    if (!m.mount_path().empty()) {
      const std::string& p = m.mount_path();
      if (p[0] != '/' || absl::StrContains(p, "/../") || absl::EndsWith(p, "/..")) {
        return Bad(f + ".mount_path", absl::StrCat("'", p, "' is not an absolute path"));
      }
      for (const char* taken : {"/pfs", "/tusk", "/tmp"}) {
        if (p == taken || absl::StartsWith(p, absl::StrCat(taken, "/"))) {
          return Bad(f + ".mount_path", absl::StrCat("'", p, "' is under ", taken,
                                                     ", which the runner's volumes use"));
        }
      }
    }
  }
  RETURN_IF_ERROR(CheckResources("resource_requests", spec->resource_requests()));
  RETURN_IF_ERROR(CheckResources("sidecar_resource_limits", spec->sidecar_resource_limits()));
  RETURN_IF_ERROR(CheckResources("sidecar_resource_requests", spec->sidecar_resource_requests()));
  {
    const ResourceSpec& r = spec->resource_limits();
    RETURN_IF_ERROR(CheckQuantity("resource_limits.disk", r.disk()));
    if (r.gpu().number() < 0) return Bad("resource_limits.gpu.number", "is negative");
    if (r.gpu().number() > 0 && r.gpu().type().empty()) {
      return Bad("resource_limits.gpu.type", "is required with gpu.number (e.g. nvidia.com/gpu)");
    }
  }
  for (int i = 0; i < spec->tolerations_size(); ++i) {
    const Toleration& t = spec->tolerations(i);
    const std::string f = absl::StrCat("tolerations[", i, "]");
    RETURN_IF_ERROR(
        CheckChoice(f + ".operator", t.operator_(), {{"EXISTS", "Exists"}, {"EQUAL", "Equal"}}));
    RETURN_IF_ERROR(CheckChoice(f + ".effect", t.effect(),
                                {{"NO_SCHEDULE", "NoSchedule"},
                                 {"PREFER_NO_SCHEDULE", "PreferNoSchedule"},
                                 {"NO_EXECUTE", "NoExecute"}}));
    if ((t.operator_() == "EXISTS" || t.operator_() == "Exists") && !t.value().empty()) {
      return Bad(f + ".value", "must be empty with operator EXISTS");
    }
    if (t.toleration_seconds() < 0) return Bad(f + ".toleration_seconds", "is negative");
  }
  for (const auto* selector : {&spec->node_selector(), &spec->scheduling_spec().node_selector()}) {
    for (const auto& [k, v] : *selector) {
      if (k.empty()) return Bad("node_selector", "has an empty label name");
    }
  }
  if (!spec->pod_patch().empty()) RETURN_IF_ERROR(CheckJsonPatch(spec->pod_patch()));
  if (!spec->pod_spec().empty()) RETURN_IF_ERROR(CheckMergePatch(spec->pod_spec()));
  for (const auto* m : {&spec->metadata().labels(), &spec->metadata().annotations()}) {
    for (const auto& [k, v] : *m) {
      if (k.empty() || k.size() > 253) return Bad("metadata", absl::StrCat("bad key '", k, "'"));
    }
  }
  return absl::OkStatus();
}

// egress: one s3://BUCKET[/PREFIX] URL. The endpoint and credentials are
// tuskd's: a spec that could name an endpoint could send tuskd's
// credentials, and the output, anywhere.
absl::Status CheckEgress(const pps::v1::Egress& e) {
  if (e.has_sql_database()) {
    return Bad("egress.sql_database",
               "tusk egresses files to S3; load them into the database from there");
  }
  const bool url = !e.url().empty(), storage = !e.object_storage().url().empty();
  if (url && storage) return Bad("egress", "give URL or object_storage.url, not both");
  if (!url && !storage) return Bad("egress", "needs URL (s3://BUCKET/PREFIX)");
  const std::string field = url ? "egress.URL" : "egress.object_storage.url";
  const std::string& u = url ? e.url() : e.object_storage().url();
  if (u.find_first_of("?#") != std::string::npos) {
    return Bad(field, absl::StrCat("'", u,
                                   "': options in the URL are not taken from a spec; the "
                                   "S3 endpoint, region and credentials are tuskd's "
                                   "(--egress-endpoint, --egress-region)"));
  }
  if (!absl::StartsWith(u, "s3://")) {
    return Bad(field, absl::StrCat("'", u,
                                   "': tusk egresses to S3 (s3://BUCKET/PREFIX); reach GCS "
                                   "or another store through its S3-compatible endpoint "
                                   "(tuskd --egress-endpoint)"));
  }
  absl::string_view rest = absl::string_view(u).substr(5);
  absl::string_view bucket = rest.substr(0, rest.find('/'));
  if (bucket.size() < 3 || bucket.size() > 63 ||
      bucket.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789.-") !=
          absl::string_view::npos) {
    return Bad(field, absl::StrCat("'", u, "': '", bucket,
                                   "' is not an S3 bucket name (3 to 63 of a-z 0-9 . -)"));
  }
  for (absl::string_view part : absl::StrSplit(rest.substr(bucket.size()), '/')) {
    if (part == "." || part == "..") return Bad(field, absl::StrCat("'", u, "' has '", part, "'"));
  }
  return absl::OkStatus();
}

// Pachyderm's fields beyond the basics: those tusk has, and those it has
// not (with what to use instead).
absl::Status CheckPachydermFields(PipelineSpec* spec) {
  RETURN_IF_ERROR(CheckProject("pipeline.project.name", spec->pipeline().project()));
  spec->mutable_pipeline()->clear_project();
  // pachctl's own flags, honoured by the CLI.
  spec->clear_update();
  spec->clear_reprocess();
  const std::string& rs = spec->reprocess_spec();
  if (!rs.empty() && rs != "until_success" && rs != "every_job") {
    return Bad("reprocess_spec", absl::StrCat("'", rs, "' is not until_success or every_job"));
  }
  const Transform& t = spec->transform();
  if (!t.err_stdin().empty() && t.err_cmd().empty()) {
    return Bad("transform.err_stdin", "needs transform.err_cmd");
  }
  if (!t.err_cmd().empty() && t.err_cmd(0).empty()) return Bad("transform.err_cmd[0]", "is empty");
  for (int64_t code : t.accept_return_code()) {
    if (code <= 0 || code > 255) {
      return Bad("transform.accept_return_code",
                 absl::StrCat(code, " is not an exit code (1-255)"));
    }
  }
  if (t.has_dockerfile()) {
    return Bad("transform.dockerfile",
               "tusk does not build images; build it and name it in "
               "transform.image");
  }
  if (spec->has_spout()) {
    return Bad("spout",
               "tusk has no spouts; a Kafka source (tusk create source) turns a stream "
               "into commits, exactly once, and tusk put file takes any other feed");
  }
  if (spec->has_service()) {
    return Bad("service",
               "tusk does not run long-lived services; serve the output repo with "
               "tuskd --s3-listen, or run the service next to tusk");
  }
  if (spec->has_s3_out()) {
    return Bad("s3_out",
               "runners write /pfs/out as files; tuskd --s3-listen serves the output "
               "repo over S3 afterwards");
  }
  const auto& ds = spec->datum_set_spec();
  if (ds.number() < 0) return Bad("datum_set_spec.number", "is negative");
  if (ds.per_worker() < 0) return Bad("datum_set_spec.per_worker", "is negative");
  if (ds.size_bytes() != 0) {
    return Bad("datum_set_spec.size_bytes",
               "tusk makes datum sets by count: use number or per_worker");
  }
  if (ds.number() > 0 && ds.per_worker() > 0) {
    return Bad("datum_set_spec", "give number or per_worker, not both");
  }
  if (spec->has_egress()) RETURN_IF_ERROR(CheckEgress(spec->egress()));
  if (spec->has_tf_job()) return Bad("tf_job", "TFJob pipelines are not supported");
  if (spec->has_determined()) return Bad("determined", "Determined pipelines are not supported");
  return absl::OkStatus();
}

}  // namespace

std::string EgressUrl(const PipelineSpec& spec) {
  return spec.egress().url().empty() ? spec.egress().object_storage().url() : spec.egress().url();
}

int GlobCaptureGroups(const std::string& glob) {
  int n = 0;
  for (char c : glob) n += c == '(' ? 1 : 0;
  return n;
}

namespace {
// Every `leaf` of the inputs beneath `input` (its pfs or cron part), in order.
template <typename T>
void CollectInputs(const Input& input, bool (Input::*has)() const, const T& (Input::*leaf)() const,
                   std::vector<const T*>* out) {
  if ((input.*has)()) out->push_back(&(input.*leaf)());
  for (const auto* list : {&input.cross(), &input.union_(), &input.join(), &input.group()}) {
    for (const auto& c : *list) CollectInputs(c, has, leaf, out);
  }
}
}  // namespace

std::vector<const PFSInput*> PfsInputs(const Input& input) {
  std::vector<const PFSInput*> out;
  CollectInputs(input, &Input::has_pfs, &Input::pfs, &out);
  return out;
}

std::vector<const pps::v1::CronInput*> CronInputs(const Input& input) {
  std::vector<const pps::v1::CronInput*> out;
  CollectInputs(input, &Input::has_cron, &Input::cron, &out);
  return out;
}

absl::Status NormalizePipelineSpec(PipelineSpec* spec) {
  // A spec travels in every lease and is kept in the index and the metadata
  // log: code and data belong in the image or an input repo.
  const size_t bytes = spec->ByteSizeLong();
  if (bytes > kMaxPipelineSpecBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "pipeline spec", spec->pipeline().name().empty() ? "" : " " + spec->pipeline().name(),
        " is ", bytes, " bytes; the limit is ", kMaxPipelineSpecBytes,
        " (put large scripts or data in an input repo or the image, not in transform.cmd, stdin or "
        "env)"));
  }
  const std::string& name = spec->pipeline().name();
  if (name.empty()) return Bad("pipeline.name", "is required");
  if (auto st = pfs::ValidateRepoName(name); !st.ok()) {
    return Bad("pipeline.name", absl::StrCat(st.message(), " (it is also the output repo's name)"));
  }
  if (!spec->has_transform() || spec->transform().cmd().empty()) {
    return Bad("transform.cmd", "is required (the command and its arguments)");
  }
  if (spec->transform().cmd(0).empty()) return Bad("transform.cmd[0]", "is empty");
  RETURN_IF_ERROR(CheckPachydermFields(spec));
  for (const auto& [k, v] : spec->transform().env()) {
    if (k.empty() || k.find('=') != std::string::npos) {
      return Bad("transform.env", absl::StrCat("'", k, "' is not a variable name"));
    }
  }
  if (!spec->has_input()) return Bad("input", "is required");
  RETURN_IF_ERROR(CheckCrons("input", spec->mutable_input(), name));
  RETURN_IF_ERROR(CheckInput("input", spec->mutable_input(), Parent::kNone));
  for (const PFSInput* in : PfsInputs(spec->input())) {
    if (in->repo() == name) {
      return Bad("input", absl::StrCat("pipeline ", name, " reads its own output repo (a cycle)"));
    }
  }
  if (!spec->has_parallelism_spec() || spec->parallelism_spec().constant() == 0) {
    spec->mutable_parallelism_spec()->set_constant(1);
  }
  if (spec->parallelism_spec().constant() > 1024) {
    return Bad("parallelism_spec.constant", "is more than 1024");
  }
  if (spec->datum_tries() < 0) return Bad("datum_tries", "is negative");
  if (spec->datum_tries() == 0) spec->set_datum_tries(3);
  RETURN_IF_ERROR(CheckDuration("datum_timeout", spec->datum_timeout()));
  RETURN_IF_ERROR(CheckDuration("job_timeout", spec->job_timeout()));
  if (!spec->resource_limits().memory().empty()) {
    auto bytes = ParseMemoryQuantity(spec->resource_limits().memory());
    if (!bytes.ok()) return Bad("resource_limits.memory", std::string(bytes.status().message()));
    if (*bytes < (4u << 20)) return Bad("resource_limits.memory", "is less than 4Mi");
  }
  if (spec->resource_limits().cpu() < 0) return Bad("resource_limits.cpu", "is negative");
  if (spec->resource_limits().processes() == 0) {
    spec->mutable_resource_limits()->set_processes(kDefaultProcessLimit);
  }
  RETURN_IF_ERROR(CheckPodFields(spec));
  if (spec->output_branch().empty()) spec->set_output_branch(pfs::kDefaultBranch);
  if (auto st = pfs::ValidateBranchName(spec->output_branch()); !st.ok()) {
    return Bad("output_branch", std::string(st.message()));
  }
  return absl::OkStatus();
}

}  // namespace tusk::dispatcher
