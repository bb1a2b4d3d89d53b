// A directory under $TMPDIR (or /tmp) that exists for the lifetime of the object and is removed
// with everything in it afterwards. Set KITH_KEEP_TEST_DIRS=1 to keep them for a post-mortem.
#pragma once

#include <filesystem>
#include <string_view>

namespace kith::test {

class TempDir {
 public:
  // mkdtemp("<tmp>/<prefix>-XXXXXX"), mode 0700. Throws std::system_error.
  explicit TempDir(std::string_view prefix = "kith-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const noexcept { return path_; }
  std::filesystem::path operator/(const std::filesystem::path& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

}  // namespace kith::test
