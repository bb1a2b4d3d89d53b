#include "kith/cli/commands.hpp"

#include <algorithm>

#include "context.hpp"
#include "kith/cli/passphrase.hpp"
#include "kith/crypto/init.hpp"
#include "kith/cli/names.hpp"
#include "tty.hpp"

namespace kith::cli {

Device Context::open(Device::Access access) const {
  const Home h = home();
  h.require_initialised();  // before asking for a passphrase that would open nothing
  const Passphrase pass = read_passphrase(env, "Passphrase for " + h.dir().string() + ": ", false);
  return Device::open(h, pass.view(), access);
}

std::optional<ServerOptions> Context::server() const {
  std::string url = opts.server;
  if (url.empty()) url = env.get("KITH_SERVER").value_or("");
  if (url.empty()) return std::nullopt;
  ServerOptions s;
  s.url = url;
  parse_server_url(url);  // refuse a bad URL before anything else happens
  std::string ca = opts.ca;
  if (ca.empty()) ca = env.get("KITH_CA").value_or("");
  if (!ca.empty()) s.ca_file = ca;
  return s;
}

ServerOptions Context::require_server() const {
  if (auto s = server()) return *s;
  throw CliError(Exit::kNetwork, "no_server",
                 "no server configured: give --server wss://HOST:PORT or set KITH_SERVER");
}

NameOf Context::names(const Device& device, const sync::PlanId& plan) const {
  return name_of(device.info(), MemberNames::load(device.store(), device.engine(), plan));
}

void Context::emit(nlohmann::json j) const {
  j["ok"] = true;
  out << j.dump() << "\n";
}

void Context::check_can_confirm(bool yes, std::string_view what) const {
  if (yes || Tty().ok()) return;
  throw CliError(Exit::kUsage, "confirmation_needed",
                 std::string(what) + " needs confirmation: add --yes to do it from a script");
}

void Context::confirm(bool yes, std::string_view question) const {
  if (yes) return;
  Tty tty;
  if (!tty.ok()) check_can_confirm(false, "this");
  const auto answer = tty.ask(std::string(question) + " [y/N] ", /*echo=*/true);
  const std::string a =
      answer ? std::string(reinterpret_cast<const char*>(answer->data()), answer->size()) : "";
  if (a != "y" && a != "Y" && a != "yes" && a != "Yes" && a != "YES") {
    throw CliError(Exit::kFailed, "cancelled", "cancelled; nothing was changed");
  }
}

Context::Attempt Context::try_sync(Device& device, const sync::PlanId& plan) const {
  Attempt a;
  const auto s = server();
  if (!s) {
    a.why_not = "no server is configured";
    return a;
  }
  try {
    SyncSession session(device.engine(), *s);
    session.connect();
    a.result = session.sync_plan(plan);
    // A membership entry made here while someone else's took its place on the server (a join
    // this device had not seen yet) is refused once, and the engine makes it again on top of
    // theirs; the second conversation sends it. A refusal that stays is real.
    if (!a.result.errors.empty()) a.result = session.sync_plan(plan);
    session.close();
  } catch (...) {
    a.why_not = to_cli_error(std::current_exception()).what();
    return a;
  }
  if (!a.result.errors.empty()) {
    a.why_not = "the server refused (" + a.result.errors.front().code +
                "): " + a.result.errors.front().message;
    return a;
  }
  a.sent = true;
  return a;
}

std::string count_of(std::uint64_t n, std::string_view one, std::string_view many) {
  return std::to_string(n) + " " + std::string(n == 1 ? one : many);
}

namespace {

// The first argument that is not an option or an option's value: what the person meant as the
// command.
std::string first_word(const std::vector<std::string>& args) {
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--home" || a == "--server" || a == "--ca") {
      ++i;
      continue;
    }
    if (!a.starts_with("-")) return a;
  }
  return "";
}

CliError from_parse_error(const CLI::ParseError& e, const CLI::App& app,
                          const std::vector<std::string>& args) {
  const std::string what = e.what();
  if (dynamic_cast<const CLI::ExtrasError*>(&e) || dynamic_cast<const CLI::RequiredError*>(&e)) {
    if (app.get_subcommands().empty()) {
      const std::string word = first_word(args);
      if (word.empty()) {
        return CliError(Exit::kUsage, "usage", "no command given; `kith --help` lists them");
      }
      const auto known =
          app.get_subcommands([&](const CLI::App* c) { return c->check_name(word); });
      if (known.empty()) {
        return CliError(Exit::kUsage, "unknown_command",
                        "unknown command '" + word + "'; `kith --help` lists the commands");
      }
    }
  }
  if (auto* extras = dynamic_cast<const CLI::ExtrasError*>(&e)) {
    (void)extras;
    for (std::size_t i = 1; i < args.size(); ++i) {
      if (args[i].starts_with("-") && what.find(args[i]) != std::string::npos) {
        return CliError(
            Exit::kUsage, "bad_flag",
            "unknown option '" + args[i] + "'; add --help to the command to see its options");
      }
    }
    return CliError(Exit::kUsage, "usage", what + "; add --help to the command to see its usage");
  }
  if (dynamic_cast<const CLI::ArgumentMismatch*>(&e) ||
      dynamic_cast<const CLI::ConversionError*>(&e) ||
      dynamic_cast<const CLI::ValidationError*>(&e)) {
    return CliError(Exit::kUsage, "bad_flag", what);
  }
  return CliError(Exit::kUsage, "usage", what + "; add --help to the command to see its usage");
}

void report(const CliError& e, bool json, std::ostream& out, std::ostream& err) {
  std::string line = e.what();
  std::replace(line.begin(), line.end(), '\n', ' ');
  err << "kith: " << line << "\n";
  if (json) {
    out << nlohmann::json{{"ok", false}, {"error", {{"code", e.code()}, {"message", line}}}}.dump()
        << "\n";
  }
}

}  // namespace

int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
        const Environment& env, Terminal terminal) {
  Context ctx{out, err, env, terminal, {}, {}};
  // Decided before parsing, so that a parse error is reported in the form the caller asked for.
  const bool json_requested = std::find(args.begin(), args.end(), "--json") != args.end();

  CLI::App app{
      "kith: your care plan, end-to-end encrypted, on this device and the people you choose.",
      "kith"};
  app.set_version_flag("--version", "kith 0.1.0");
  app.require_subcommand(1);
  // Global options may come after the command too (`kith list PLAN --json`).
  app.fallthrough();
  app.add_option("--home", ctx.opts.home,
                 "This device's Kith directory (KITH_HOME; default ~/.kith)");
  app.add_option("--server", ctx.opts.server, "The server, wss://HOST:PORT (KITH_SERVER)");
  app.add_option("--ca", ctx.opts.ca, "PEM file of the CA to trust for the server (KITH_CA)");
  app.add_flag("--json", ctx.opts.json, "Machine-readable output");
  app.footer(
      "The passphrase comes from KITH_PASSPHRASE, or is asked for on a terminal.\n"
      "Exit status: 0 ok, 1 failed, 2 usage, 3 no such plan or record, 4 keys or passphrase, "
      "5 server.");

  register_identity_commands(app, ctx);
  register_plan_commands(app, ctx);
  register_record_commands(app, ctx);
  register_sync_commands(app, ctx);
  register_invite_commands(app, ctx);
  register_member_commands(app, ctx);
  register_log_commands(app, ctx);
  register_device_commands(app, ctx);
  register_fhir_commands(app, ctx);

  std::vector<std::string> reversed(args.rbegin(), args.rend() - (args.empty() ? 0 : 1));
  try {
    app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    const CLI::App* target = &app;
    while (!target->get_subcommands().empty()) target = target->get_subcommands().front();
    out << target->help();
    return 0;
  } catch (const CLI::CallForAllHelp&) {
    out << app.help("", CLI::AppFormatMode::All);
    return 0;
  } catch (const CLI::CallForVersion& e) {
    out << e.what() << "\n";
    return 0;
  } catch (const CLI::ParseError& e) {
    report(from_parse_error(e, app, args), json_requested, out, err);
    return static_cast<int>(Exit::kUsage);
  }
  if (!ctx.action) {
    // A command group without its command (`kith plan`).
    const CLI::App* target = &app;
    while (!target->get_subcommands().empty()) target = target->get_subcommands().front();
    report(CliError(Exit::kUsage, "usage",
                    "`" + target->get_name() + "` needs a command; add --help to see them"),
           json_requested, out, err);
    return static_cast<int>(Exit::kUsage);
  }
  try {
    crypto::ensure_initialized();
    ctx.action();
    out.flush();
    return 0;
  } catch (...) {
    const CliError e = to_cli_error(std::current_exception());
    report(e, ctx.opts.json || json_requested, out, err);
    return static_cast<int>(e.exit());
  }
}

}  // namespace kith::cli
