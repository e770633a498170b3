#include "cli/config.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/fs.h"
#include "common/status.h"
#include "yaml-cpp/yaml.h"

namespace tusk::cli {
namespace {

constexpr char kDefaultAddress[] = "127.0.0.1:1650";

// Context fields by their name in the file.
std::map<std::string, std::string Context::*> Fields() {
  return {{"address", &Context::address}, {"token", &Context::token},
          {"tls-ca", &Context::tls_ca},   {"tls-cert", &Context::tls_cert},
          {"tls-key", &Context::tls_key}, {"tls-server-name", &Context::tls_server_name}};
}

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

}  // namespace

const Context* Config::Current() const {
  auto it = contexts.find(current);
  return it == contexts.end() ? nullptr : &it->second;
}

std::string ConfigPath() {
  if (!Env("TUSK_CONFIG").empty()) return Env("TUSK_CONFIG");
  if (!Env("XDG_CONFIG_HOME").empty()) return Env("XDG_CONFIG_HOME") + "/tusk/config.yaml";
  return Env("HOME") + "/.config/tusk/config.yaml";
}

absl::StatusOr<Config> LoadConfig(const std::string& path) {
  Config c;
  std::ifstream in(path);
  if (!in) return c;
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    YAML::Node root = YAML::Load(ss.str());
    if (!root || root.IsNull()) return c;
    if (!root.IsMap()) return absl::InvalidArgumentError(absl::StrCat(path, " is not a YAML map"));
    if (root["current-context"]) c.current = root["current-context"].as<std::string>();
    if (YAML::Node contexts = root["contexts"]) {
      if (!contexts.IsMap()) {
        return absl::InvalidArgumentError(absl::StrCat(path, ": contexts is not a map"));
      }
      const auto fields = Fields();
      for (const auto& kv : contexts) {
        Context ctx;
        const std::string name = kv.first.as<std::string>();
        if (!kv.second.IsMap()) {
          return absl::InvalidArgumentError(
              absl::StrCat(path, ": context ", name, " is not a map"));
        }
        for (const auto& f : kv.second) {
          const std::string key = f.first.as<std::string>();
          auto field = fields.find(key);
          if (field == fields.end()) {
            return absl::InvalidArgumentError(
                absl::StrCat(path, ": context ", name, " has an unknown field '", key, "'"));
          }
          ctx.*(field->second) = f.second.as<std::string>();
        }
        c.contexts[name] = ctx;
      }
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", e.what()));
  }
  return c;
}

absl::Status SaveConfig(const std::string& path, const Config& config) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "current-context" << YAML::Value << config.current;
  out << YAML::Key << "contexts" << YAML::Value << YAML::BeginMap;
  const auto fields = Fields();
  for (const auto& [name, ctx] : config.contexts) {
    out << YAML::Key << name << YAML::Value << YAML::BeginMap;
    for (const auto& [key, member] : fields) {
      if (!(ctx.*member).empty()) out << YAML::Key << key << YAML::Value << ctx.*member;
    }
    out << YAML::EndMap;
  }
  out << YAML::EndMap << YAML::EndMap;
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (!dir.empty()) RETURN_IF_ERROR(MkdirAll(dir));
  return WriteSecretFile(path, std::string(out.c_str()) + "\n");
}

absl::Status ResolveConnection(const std::string& address_flag, std::string* address,
                               ChannelOptions* channel) {
  auto config = LoadConfig(ConfigPath());
  if (!config.ok()) return config.status();
  const Context* ctx = config->Current();
  *address = address_flag;
  if (address->empty()) *address = Env("TUSK_ADDRESS");
  if (address->empty() && ctx != nullptr) *address = ctx->address;
  if (address->empty()) *address = kDefaultAddress;
  ApplyChannelEnv(channel);
  // A context's token and TLS files go only to that context's tuskd.
  if (ctx != nullptr && *address == ctx->address) {
    if (channel->token.empty()) channel->token = ctx->token;
    if (channel->tls_ca.empty()) channel->tls_ca = ctx->tls_ca;
    if (channel->tls_cert.empty()) channel->tls_cert = ctx->tls_cert;
    if (channel->tls_key.empty()) channel->tls_key = ctx->tls_key;
    if (channel->tls_server_name.empty()) channel->tls_server_name = ctx->tls_server_name;
  }
  return absl::OkStatus();
}

}  // namespace tusk::cli
