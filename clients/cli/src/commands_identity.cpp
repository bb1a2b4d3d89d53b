// kith init, kith whoami.
#include <memory>

#include "context.hpp"
#include "kith/cli/discovery.hpp"
#include "kith/cli/names.hpp"
#include "kith/cli/passphrase.hpp"
#include "kith/crypto/bytes.hpp"
#include "kith/crypto/error.hpp"
#include "kith/crypto/safety_number.hpp"
#include "kith/crypto/sign.hpp"
#include "tty.hpp"

namespace kith::cli {
namespace {

// 30 digits as 6 groups of 5.
std::string grouped(const std::string& digits) {
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i && i % 5 == 0) out += ' ';
    out += digits[i];
  }
  return out;
}

// The recovery key for `init --recover`: KITH_RECOVERY_KEY (for scripts), else asked on the
// terminal without echo. A mistyped one fails here, naming the group to check, before anything
// is asked or written.
crypto::RecoveryKey read_recovery_key(const Context& ctx) {
  std::optional<crypto::SecretBytes> text;
  if (auto from_env = ctx.env.get("KITH_RECOVERY_KEY")) {
    text = crypto::SecretBytes(crypto::as_bytes(*from_env));
    crypto::secure_wipe(from_env->data(), from_env->size());
  } else {
    Tty tty;
    if (!tty.ok()) {
      throw CliError(Exit::kKeys, "no_recovery_key",
                     "a recovery key is needed: set KITH_RECOVERY_KEY or run kith on a terminal");
    }
    text = tty.ask("Your recovery key (7 groups of 5 letters and digits): ");
    if (!text || text->empty()) {
      throw CliError(Exit::kKeys, "no_recovery_key", "no recovery key was entered");
    }
  }
  return parse_recovery_key(
      std::string_view(reinterpret_cast<const char*>(text->data()), text->size()));
}

void init(Context& ctx, const std::string& name, bool recover) {
  if (name.empty()) throw CliError(Exit::kUsage, "usage", "--name must not be empty");
  check_name(name);  // before any question: the circle sees it
  const Home home = ctx.home();
  if (home.initialised()) {
    throw CliError(Exit::kKeys, "already_initialised",
                   "there is already a Kith identity in " + home.dir().string() +
                       "; use another --home to make a new one");
  }
  // A bad --server is refused before anything is written.
  const auto server = ctx.server();
  std::optional<crypto::RecoveryKey> recovery;
  if (recover) recovery = read_recovery_key(ctx);
  Passphrase pass = read_passphrase(
      ctx.env, "Choose a passphrase to protect this device's keys: ", /*confirm=*/true);
  Created made = create_device(home, name, pass.view(), recovery ? &*recovery : nullptr);
  if (recover) {
    // They have it written down already; it is not shown again.
    crypto::secure_wipe(made.recovery_key.data(), made.recovery_key.size());
    made.recovery_key.clear();
  }

  bool registered = false;
  std::string why_not;
  // A restored identity's plans, as the server lists them (so the person need not know ids).
  std::optional<std::vector<DiscoveredPlan>> found;
  std::string why_no_list;
  if (server) {
    try {
      Device device = Device::open(home, pass.view(), Device::Access::kWrite);
      SyncSession session(device.engine(), *server);
      session.connect();
      registered = true;
      if (recover) {
        try {
          found = discover_plans(device, session);
        } catch (...) {
          why_no_list = to_cli_error(std::current_exception()).what();
        }
      }
      session.close();
    } catch (...) {
      why_not = to_cli_error(std::current_exception()).what();
    }
  }
  if (recover && why_no_list.empty()) {
    why_no_list = !server ? "no server is configured" : why_not;
  }

  if (ctx.opts.json) {
    nlohmann::json j{{"home", home.dir().string()},  {"name", made.info.name},
                     {"account", made.info.account}, {"device", made.info.device},
                     {"recovered", recover},         {"registered", registered}};
    if (!recover) j["recovery_key"] = made.recovery_key;
    if (server) j["server"] = server->url;
    if (!why_not.empty()) j["registration_error"] = why_not;
    if (found) {
      j["server_plans"] = discovered_json(*found);
    } else if (recover) {
      j["server_plans_error"] = why_no_list;
    }
    ctx.emit(j);
  } else if (recover) {
    ctx.out << "Restored your Kith identity in " << home.dir().string() << " as " << made.info.name
            << "\n"
            << "  account: " << made.info.account << " (as on your other devices)\n"
            << "  device:  " << made.info.device << " (new)\n\n";
    if (registered) ctx.out << "Registered with " << server->url << ".\n";
    if (found && found->empty()) {
      ctx.out << "The server lists no plans for your account.\n";
    } else if (found) {
      ctx.out << "Your account is in " << count_of(found->size(), "plan", "plans")
              << " on the server; this device holds none yet:\n";
      for (const DiscoveredPlan& d : *found) {
        ctx.out << "  " << d.server.plan.hex() << "  " << describe_discovered(d) << "\n";
      }
      ctx.out << "Link them here with `kith device link --all`, or one with "
                 "`kith device link PLAN_ID`.\n";
    } else {
      ctx.out << "Could not ask the server which plans your account is in (" << why_no_list
              << ").\nOnce it can be reached, `kith plan list --remote"
              << (server ? "" : " --server wss://HOST:PORT")
              << "` lists them and `kith device link --all` links them here.\n";
    }
  } else {
    ctx.out << "Created a Kith identity for " << made.info.name << " in " << home.dir().string()
            << "\n"
            << "  account: " << made.info.account << "\n"
            << "  device:  " << made.info.device << "\n\n"
            << "Your recovery key. Write it down now, on paper, and keep it somewhere safe.\n"
            << "It is shown only this once, and it is the only way to restore your identity\n"
            << "on a new device if this one is lost:\n\n"
            << "    " << made.recovery_key << "\n\n";
    if (!server) {
      ctx.out << "No server configured: this device works offline. `kith sync --server "
                 "wss://HOST:PORT` registers it later.\n";
    } else if (registered) {
      ctx.out << "Registered with " << server->url << ".\n";
    } else {
      ctx.out << "Could not register with " << server->url << " (" << why_not
              << "); `kith sync` will register this device later.\n";
    }
  }
  crypto::secure_wipe(made.recovery_key.data(), made.recovery_key.size());
}

void whoami(Context& ctx) {
  const Home home = ctx.home();
  home.require_initialised();
  // Nothing here is secret, so no passphrase: device.json has the ids, and the account id is the
  // identity public key the safety number is made from.
  const DeviceInfo info = home.read_info();
  const auto account = sync::AccountId::parse(info.account);
  const std::string safety =
      grouped(crypto::safety_number_half(crypto::VerifyKey::parse(account.bytes())));
  if (ctx.opts.json) {
    ctx.emit({{"name", info.name},
              {"account", info.account},
              {"device", info.device},
              {"safety_number", safety},
              {"home", home.dir().string()}});
    return;
  }
  ctx.out << "name:          " << info.name << "\n"
          << "account:       " << info.account << "\n"
          << "device:        " << info.device << "\n"
          << "safety number: " << safety << "\n"
          << "(your half; compare the full number with someone in person or by phone)\n";
}

}  // namespace

void register_identity_commands(CLI::App& app, Context& ctx) {
  auto* init_cmd = app.add_subcommand(
      "init", "Create this person's identity and this device's keys; register with the server");
  auto name = std::make_shared<std::string>();
  auto recover = std::make_shared<bool>(false);
  init_cmd->add_option("--name", *name,
                       "Your name, as you want to see it (with --recover: this device's)");
  init_cmd->add_flag("--recover", *recover,
                     "Restore your identity on a new device from your recovery key "
                     "(KITH_RECOVERY_KEY, else asked); only this device's keys are new");
  init_cmd->callback([&ctx, name, recover] {
    ctx.action = [&ctx, name, recover] {
      if (name->empty() && !*recover) {
        throw CliError(Exit::kUsage, "usage", "--name is required (your name)");
      }
      init(ctx, name->empty() ? std::string(kUnnamedDevice) : *name, *recover);
    };
  });

  auto* who = app.add_subcommand("whoami", "Account id, device id and safety number");
  who->callback([&ctx] { ctx.action = [&ctx] { whoami(ctx); }; });
}

}  // namespace kith::cli
