// kith init, kith whoami.
#include <memory>

#include "context.hpp"
#include "kith/cli/passphrase.hpp"
#include "kith/crypto/bytes.hpp"
#include "kith/crypto/safety_number.hpp"
#include "kith/crypto/sign.hpp"

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

void init(Context& ctx, const std::string& name) {
  if (name.empty()) throw CliError(Exit::kUsage, "usage", "--name must not be empty");
  const Home home = ctx.home();
  if (home.initialised()) {
    throw CliError(Exit::kKeys, "already_initialised",
                   "there is already a Kith identity in " + home.dir().string() +
                       "; use another --home to make a new one");
  }
  // A bad --server is refused before anything is written.
  const auto server = ctx.server();
  Passphrase pass = read_passphrase(
      ctx.env, "Choose a passphrase to protect this device's keys: ", /*confirm=*/true);
  Created made = create_device(home, name, pass.view());

  bool registered = false;
  std::string why_not;
  if (server) {
    try {
      Device device = Device::open(home, pass.view(), Device::Access::kWrite);
      SyncSession session(device.engine(), *server);
      session.connect();
      session.close();
      registered = true;
    } catch (...) {
      why_not = to_cli_error(std::current_exception()).what();
    }
  }

  if (ctx.opts.json) {
    nlohmann::json j{{"home", home.dir().string()},       {"name", made.info.name},
                     {"account", made.info.account},      {"device", made.info.device},
                     {"recovery_key", made.recovery_key}, {"registered", registered}};
    if (server) j["server"] = server->url;
    if (!why_not.empty()) j["registration_error"] = why_not;
    ctx.emit(j);
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
  init_cmd->add_option("--name", *name, "Your name, as you want to see it")->required();
  init_cmd->callback([&ctx, name] { ctx.action = [&ctx, name] { init(ctx, *name); }; });

  auto* who = app.add_subcommand("whoami", "Account id, device id and safety number");
  who->callback([&ctx] { ctx.action = [&ctx] { whoami(ctx); }; });
}

}  // namespace kith::cli
