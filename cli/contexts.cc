// Contexts and login: config set-context, use-context, get-contexts,
// delete-context; auth login, auth logout (cli/config.h).

#include <termios.h>
#include <unistd.h>

#include <iostream>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "cli/command.h"
#include "cli/command_base.h"
#include "cli/config.h"
#include "cli/output.h"
#include "common/grpc_channel.h"
#include "common/json.h"
#include "proto/auth.grpc.pb.h"

namespace tusk::cli {
namespace {

namespace av1 = tusk::auth::v1;

// A token typed at a terminal (not echoed) or piped in.
std::string ReadTokenFromStdin() {
  std::string token;
  if (::isatty(0)) {
    std::cerr << "Token: " << std::flush;
    termios old{};
    bool restore = ::tcgetattr(0, &old) == 0;
    if (restore) {
      termios quiet = old;
      quiet.c_lflag &= ~ECHO;
      ::tcsetattr(0, TCSANOW, &quiet);
    }
    std::getline(std::cin, token);
    if (restore) ::tcsetattr(0, TCSANOW, &old);
    std::cerr << "\n";
  } else {
    std::getline(std::cin, token);
  }
  return std::string(absl::StripAsciiWhitespace(token));
}

class ContextCommands : public CommandBase {
 public:
  using CommandBase::CommandBase;

  int SetContext() {
    const std::string path = ConfigPath();
    auto config = LoadConfig(path);
    if (!config.ok()) return Fail(config.status());
    const std::string& name = args_.positional[0];
    Context& ctx = config->contexts[name];
    for (auto [flag, member] :
         {std::pair<const char*, std::string Context::*>{"--address", &Context::address},
          {"--tls-ca", &Context::tls_ca},
          {"--tls-cert", &Context::tls_cert},
          {"--tls-key", &Context::tls_key},
          {"--tls-server-name", &Context::tls_server_name}}) {
      if (args_.Has(flag)) ctx.*member = args_.Get(flag);
    }
    if (args_.Has("--token-file")) {
      auto token = ReadTokenFile(args_.Get("--token-file"));
      if (!token.ok()) return Fail(token.status());
      ctx.token = *token;
    }
    if (config->current.empty() || args_.Has("--use")) config->current = name;
    absl::Status s = SaveConfig(path, *config);
    if (!s.ok()) return Fail(s);
    if (!json_) {
      std::cout << "context " << name << " saved in " << path
                << (config->current == name ? " (current)" : "") << "\n";
    }
    return kExitOk;
  }

  int UseContext() {
    const std::string path = ConfigPath();
    auto config = LoadConfig(path);
    if (!config.ok()) return Fail(config.status());
    const std::string& name = args_.positional[0];
    if (!config->contexts.count(name)) {
      return Fail(absl::NotFoundError("no context " + name + " in " + path +
                                      " (tusk config get-contexts)"));
    }
    config->current = name;
    absl::Status s = SaveConfig(path, *config);
    if (!s.ok()) return Fail(s);
    if (!json_) std::cout << "using context " << name << "\n";
    return kExitOk;
  }

  int DeleteContext() {
    const std::string path = ConfigPath();
    auto config = LoadConfig(path);
    if (!config.ok()) return Fail(config.status());
    const std::string& name = args_.positional[0];
    if (config->contexts.erase(name) == 0) {
      return Fail(absl::NotFoundError("no context " + name + " in " + path));
    }
    if (config->current == name) config->current.clear();
    absl::Status s = SaveConfig(path, *config);
    if (!s.ok()) return Fail(s);
    if (!json_) std::cout << "deleted context " << name << "\n";
    return kExitOk;
  }

  int GetContexts() {
    auto config = LoadConfig(ConfigPath());
    if (!config.ok()) return Fail(config.status());
    Table t({"CURRENT", "NAME", "ADDRESS", "TOKEN", "TLS CA"});
    for (const auto& [name, ctx] : config->contexts) {
      const bool current = name == config->current;
      if (json_) {
        // Never the token itself.
        std::string line = "{\"name\":";
        AppendJsonString(name, &line);
        line += absl::StrCat(",\"current\":", current ? "true" : "false", ",\"address\":");
        AppendJsonString(ctx.address, &line);
        line +=
            absl::StrCat(",\"has_token\":", ctx.token.empty() ? "false" : "true", ",\"tls_ca\":");
        AppendJsonString(ctx.tls_ca, &line);
        std::cout << line << "}\n";
      }
      t.Add({current ? "*" : "", name, ctx.address, ctx.token.empty() ? "-" : "yes",
             ctx.tls_ca.empty() ? "-" : ctx.tls_ca});
    }
    if (!json_) t.Print();
    return kExitOk;
  }

  int Login() {
    std::string token;
    if (args_.Has("--token-file")) {
      auto t = ReadTokenFile(args_.Get("--token-file"));
      if (!t.ok()) return Fail(t.status());
      token = *t;
    } else {
      token = ReadTokenFromStdin();
    }
    if (token.empty()) return UsageError("no token given (stdin or --token-file)");
    // Checked against tuskd before it is kept.
    ChannelOptions options;
    std::string address;
    absl::Status s = ResolveConnection(address_, &address, &options);
    if (!s.ok()) return Fail(s);
    options.token = token;
    auto channel = NewChannel(address, options);
    if (!channel.ok()) return Fail(channel.status());
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    av1::WhoAmIResponse who;
    grpc::Status st = av1::Auth::NewStub(*channel)->WhoAmI(&ctx, av1::WhoAmIRequest(), &who);
    if (!st.ok()) return Fail(st);
    const std::string path = ConfigPath();
    auto config = LoadConfig(path);
    if (!config.ok()) return Fail(config.status());
    if (config->current.empty()) config->current = "default";
    Context& current = config->contexts[config->current];
    if (current.address.empty()) current.address = address;
    current.token = token;
    if (current.tls_ca.empty()) current.tls_ca = options.tls_ca;
    s = SaveConfig(path, *config);
    if (!s.ok()) return Fail(s);
    if (json_) {
      PrintJson(who);
    } else {
      std::cout << "logged in to " << current.address << " as token " << who.token().id() << " (\""
                << who.token().name() << "\", "
                << absl::AsciiStrToLower(av1::Role_Name(who.token().role()))
                << "); saved in context " << config->current << " (" << path << ", mode 0600)\n";
    }
    return kExitOk;
  }

  int Logout() {
    const std::string path = ConfigPath();
    auto config = LoadConfig(path);
    if (!config.ok()) return Fail(config.status());
    auto it = config->contexts.find(config->current);
    if (it == config->contexts.end() || it->second.token.empty()) {
      if (!json_) std::cout << "no token in the current context\n";
      return kExitOk;
    }
    it->second.token.clear();
    absl::Status s = SaveConfig(path, *config);
    if (!s.ok()) return Fail(s);
    if (!json_) std::cout << "removed the token from context " << config->current << "\n";
    return kExitOk;
  }
};

}  // namespace

void AddContextCommands(CommandTable* table) {
  table->Add({"config set-context",
              "Config",
              "config set-context NAME [--address H:P] [--token-file F] [--tls-ca F] [--tls-cert "
              "F] [--tls-key F] [--tls-server-name N] [--use]",
              "  Creates or changes a context in ~/.config/tusk/config.yaml (mode 0600;\n"
              "  $TUSK_CONFIG elsewhere): the tuskd address, a token, TLS files. The first\n"
              "  context, or one set with --use, becomes current. --address and\n"
              "  TUSK_ADDRESS still win over the current context.\n",
              1,
              1,
              {{"--token-file", true},
               {"--tls-ca", true},
               {"--tls-cert", true},
               {"--tls-key", true},
               {"--tls-server-name", true},
               {"--use", false}},
              Run<ContextCommands, &ContextCommands::SetContext>});
  table->Add({"config use-context",
              "Config",
              "config use-context NAME",
              "  Makes NAME the current context.\n",
              1,
              1,
              {},
              Run<ContextCommands, &ContextCommands::UseContext>});
  table->Add({"config get-contexts",
              "Config",
              "config get-contexts",
              "  The contexts, the current one marked (tokens are never printed).\n",
              0,
              0,
              {},
              Run<ContextCommands, &ContextCommands::GetContexts>});
  table->Add({"config delete-context",
              "Config",
              "config delete-context NAME",
              "  Removes a context and the token it holds.\n",
              1,
              1,
              {},
              Run<ContextCommands, &ContextCommands::DeleteContext>});
  table->Add({"auth login",
              "Auth",
              "auth login [--token-file F]",
              "  Checks a token with tuskd (typed at the prompt, piped in, or from F) and\n"
              "  keeps it in the current context (made as 'default' if there is none).\n",
              0,
              0,
              {{"--token-file", true}},
              Run<ContextCommands, &ContextCommands::Login>});
  table->Add({"auth logout",
              "Auth",
              "auth logout",
              "  Removes the token from the current context.\n",
              0,
              0,
              {},
              Run<ContextCommands, &ContextCommands::Logout>});
}

}  // namespace tusk::cli
