// kith: the command-line client. Everything is in kith_cli_core (commands.hpp); this only hands
// it the process's arguments, streams and environment.
#include <unistd.h>

#include <iostream>
#include <string>
#include <vector>

#include "kith/cli/commands.hpp"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  const kith::cli::Terminal terminal{::isatty(STDOUT_FILENO) == 1};
  return kith::cli::run(args, std::cout, std::cerr, kith::cli::Environment::process(), terminal);
}
