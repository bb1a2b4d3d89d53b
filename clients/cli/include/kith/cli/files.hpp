// Files a command writes or reads on the person's behalf: the home's own (device.json) and those
// they name (`kith export --fhir FILE`, `kith import FILE`).
//
//   write_private_file(path, text, /*replace=*/false, "file_io");   // never clobbers
//   std::string text = read_file(path, 16 << 20);
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

namespace kith::cli {

// Writes `text` to `path` atomically, readable by its owner alone (mode 0600): a temporary file
// beside it, fsync, then rename over `path` (replace) or link to it (no replace: an existing
// `path`, even one another process made meanwhile, is left alone). On failure nothing is left
// behind. Throws CliError: file_exists (status 1; only without replace), or `io_code`
// (status 1) naming the path and the reason.
void write_private_file(const std::filesystem::path& path, std::string_view text, bool replace,
                        const std::string& io_code);

// The whole of a regular file of at most `limit` bytes. Throws CliError: no_such_file (3),
// file_too_large (2), file_io (1).
std::string read_file(const std::filesystem::path& path, std::size_t limit);

}  // namespace kith::cli
