// An invite code as a QR code in the terminal, so a phone can read it off the screen.
//
// Drawn with libqrencode (kept out of this header) as Unicode half blocks, two rows of modules
// per line, dark on an explicitly light background (ANSI colours), so that it scans whatever the
// terminal's own colours are. When Kith was built without libqrencode, available() is false.
#pragma once

#include <string>
#include <string_view>

namespace kith::cli {

// True when this build can draw QR codes.
bool qr_available() noexcept;

// The lines to print, each ending in "\n"; empty when !qr_available() or the text is too long
// for a QR code.
std::string qr_text(std::string_view text);

}  // namespace kith::cli
