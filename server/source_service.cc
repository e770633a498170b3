#include "server/source_service.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "common/grpc_status.h"

namespace tusk::server {
namespace {

using namespace tusk::ingest::v1;  // NOLINT: the request/response types

constexpr char kHidden[] = "[hidden]";

// librdkafka properties that hold secrets (sasl.password, ssl.key.password,
// sasl.oauthbearer.client.secret, ssl.key.pem, ...).
bool IsSecretProperty(const std::string& key) {
  std::string k = absl::AsciiStrToLower(key);
  return absl::StrContains(k, "password") || absl::StrContains(k, "secret") ||
         absl::StrContains(k, "ssl.key.pem") || absl::StrContains(k, "oauthbearer.config") ||
         absl::StrContains(k, "token");
}

// What a caller sees of a source: secrets of its Kafka properties hidden.
SourceInfo Redacted(SourceInfo info) {
  for (auto& [k, v] : *info.mutable_spec()->mutable_kafka()->mutable_config()) {
    if (IsSecretProperty(k)) v = kHidden;
  }
  return info;
}

}  // namespace

grpc::Status SourceService::CreateSource(grpc::ServerContext* ctx, const CreateSourceRequest* req,
                                         SourceInfo* out) {
  TUSK_AUTHORIZE_AS(Caller caller, auth_->Require(ctx, Access::kWrite, req->spec().repo()));
  SourceSpec spec = req->spec();
  if (req->update()) {
    auto old = sources_->Inspect(spec.name());
    if (old.ok()) {
      // Moving a source to another repo needs the right to write the old one too.
      auto allowed = auth_->Check(caller, Access::kWrite, old->spec().repo());
      if (!allowed.ok()) return ToGrpcStatus(allowed);
      // A spec edited from `inspect source` output keeps the secrets it showed hidden.
      auto& config = *spec.mutable_kafka()->mutable_config();
      for (auto& [k, v] : config) {
        auto was = old->spec().kafka().config().find(k);
        if (v == kHidden && was != old->spec().kafka().config().end()) v = was->second;
      }
    }
  }
  auto info = sources_->Create(spec, req->update());
  if (!info.ok()) return ToGrpcStatus(info.status());
  *out = Redacted(*std::move(info));
  return grpc::Status::OK;
}

absl::StatusOr<SourceInfo> SourceService::Authorized(const grpc::ServerContext* ctx,
                                                     const std::string& name, Access access) {
  auto caller = auth_->Authenticate(ctx);
  if (!caller.ok()) return caller.status();
  auto info = sources_->Inspect(name);
  if (!info.ok()) return info.status();
  absl::Status allowed = auth_->Check(*caller, access, info->spec().repo());
  if (!allowed.ok()) return allowed;
  return info;
}

grpc::Status SourceService::InspectSource(grpc::ServerContext* ctx, const InspectSourceRequest* req,
                                          SourceInfo* out) {
  auto info = Authorized(ctx, req->name(), Access::kRead);
  if (!info.ok()) return ToGrpcStatus(info.status());
  *out = Redacted(*std::move(info));
  return grpc::Status::OK;
}

grpc::Status SourceService::ListSource(grpc::ServerContext* ctx, const ListSourceRequest*,
                                       ListSourceResponse* out) {
  TUSK_AUTHORIZE_AS(Caller caller, auth_->RequireAuthenticated(ctx));
  auto all = sources_->List();
  if (!all.ok()) return ToGrpcStatus(all.status());
  for (auto& info : *all) {
    if (auth_->Can(caller, Access::kRead, info.spec().repo())) {
      *out->add_sources() = Redacted(std::move(info));
    }
  }
  return grpc::Status::OK;
}

grpc::Status SourceService::DeleteSource(grpc::ServerContext* ctx, const DeleteSourceRequest* req,
                                         DeleteSourceResponse*) {
  auto info = Authorized(ctx, req->name(), Access::kWrite);
  if (!info.ok()) return ToGrpcStatus(info.status());
  return ToGrpcStatus(sources_->Delete(req->name()));
}

grpc::Status SourceService::ReportSource(grpc::ServerContext* ctx, const ReportSourceRequest* req,
                                         ReportSourceResponse* out) {
  // A member writes the source's repo, and gets the spec whole (it needs the
  // Kafka credentials).
  auto info = Authorized(ctx, req->name(), Access::kWrite);
  if (!info.ok()) return ToGrpcStatus(info.status());
  auto spec = sources_->Report(*req);
  if (!spec.ok()) return ToGrpcStatus(spec.status());
  *out->mutable_spec() = *std::move(spec);
  return grpc::Status::OK;
}

}  // namespace tusk::server
