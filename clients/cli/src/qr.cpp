#include "kith/cli/qr.hpp"

#include <memory>

#ifdef KITH_HAVE_QRENCODE
#include <qrencode.h>
#endif

namespace kith::cli {

#ifdef KITH_HAVE_QRENCODE

bool qr_available() noexcept { return true; }

std::string qr_text(std::string_view text) {
  const std::string s(text);
  // Medium error correction: survives a smudge on the screen without growing the code much.
  std::unique_ptr<QRcode, decltype(&QRcode_free)> qr(
      QRcode_encodeString(s.c_str(), 0, QR_ECLEVEL_M, QR_MODE_8, 1), &QRcode_free);
  if (!qr) return {};
  const int width = qr->width;
  constexpr int kQuiet = 2;  // the margin scanners need, in modules
  const int size = width + 2 * kQuiet;
  auto dark = [&](int x, int y) {
    x -= kQuiet;
    y -= kQuiet;
    if (x < 0 || y < 0 || x >= width || y >= width) return false;
    return (qr->data[y * width + x] & 1) != 0;
  };
  std::string out;
  for (int y = 0; y < size; y += 2) {
    out += "\x1b[30;47m";  // black on white
    for (int x = 0; x < size; ++x) {
      const bool top = dark(x, y);
      const bool bottom = y + 1 < size && dark(x, y + 1);
      out += top && bottom ? "\u2588" : top ? "\u2580" : bottom ? "\u2584" : " ";
    }
    out += "\x1b[0m\n";
  }
  return out;
}

#else

bool qr_available() noexcept { return false; }
std::string qr_text(std::string_view) { return {}; }

#endif

}  // namespace kith::cli
