// The kith command table and its entry point. `main` is `return kith::cli::run(...)`; tests call
// run() in-process with their own streams and environment.
//
// Each group of commands registers itself on the CLI11 app (commands_*.cpp): a `register_*`
// function taking the app and the shared Context. Commands run after parsing, with
// output to Context::out and failures thrown as CliError, which run() prints once: one line on
// stderr, and with --json a {"ok":false,"error":{...}} object on stdout.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "kith/cli/environment.hpp"
#include "kith/cli/error.hpp"

namespace kith::cli {

struct Terminal {
  bool stdout_is_tty = false;  // progress bars and colour only then
};

// args[0] is the program name. Returns the exit status.
int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
        const Environment& env, Terminal terminal = {});

}  // namespace kith::cli
