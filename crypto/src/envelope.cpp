#include "kith/crypto/envelope.hpp"

#include "kith/crypto/error.hpp"

namespace kith::crypto {

namespace {
// version || u32le len(context) || context || recipient X25519 key (32) || sealed key (80)
Bytes envelope_body(ByteView context, const BoxPublicKey& recipient, ByteView sealed) {
  ByteWriter w(1 + 4 + context.size() + kBoxKeySize + sealed.size() + kSignatureSize);
  w.u8(kEnvelopeVersion).prefixed(context).raw(recipient.bytes()).raw(sealed);
  return std::move(w).take();
}
}  // namespace

Envelope Envelope::create(const SectionKey& key, ByteView context, const BoxPublicKey& recipient,
                          const SigningKey& sender) {
  if (context.size() > kMaxEnvelopeContext) {
    throw KeyFormatError(ErrorCode::kInvalidLength,
                         "an envelope context may be at most 1024 bytes");
  }
  Bytes sealed = seal_to(recipient, key.secret().view());
  Signature sig = sender.sign(labels::kEnvelope, envelope_body(context, recipient, sealed));
  return Envelope(Bytes(context.begin(), context.end()), recipient, std::move(sealed), sig);
}

Envelope Envelope::parse(ByteView bytes) {
  ByteReader r(bytes, "envelope");
  std::uint8_t version = r.u8();
  if (version != kEnvelopeVersion) {
    throw KeyFormatError(
        ErrorCode::kUnsupportedFormat,
        "envelope version " + std::to_string(version) + " is not supported; update the app");
  }
  ByteView context = r.prefixed(kMaxEnvelopeContext);
  BoxPublicKey recipient = BoxPublicKey::parse(r.raw(kBoxKeySize));
  ByteView sealed = r.raw(kEnvelopeSealedSize);
  Signature sig;
  ByteView sig_bytes = r.raw(kSignatureSize);
  std::copy(sig_bytes.begin(), sig_bytes.end(), sig.begin());
  r.expect_end();
  return Envelope(Bytes(context.begin(), context.end()), recipient,
                  Bytes(sealed.begin(), sealed.end()), sig);
}

Bytes Envelope::signed_bytes() const { return envelope_body(context_, recipient_, sealed_); }

Bytes Envelope::serialize() const {
  Bytes out = signed_bytes();
  out.insert(out.end(), signature_.begin(), signature_.end());
  return out;
}

bool Envelope::verify(const VerifyKey& sender) const {
  return sender.verify(labels::kEnvelope, signed_bytes(), signature_);
}

std::optional<SectionKey> Envelope::open(const BoxSecretKey& recipient, const VerifyKey& sender,
                                         ByteView expected_context) const {
  if (!verify(sender)) return std::nullopt;
  if (!(recipient_ == recipient.public_key())) return std::nullopt;
  if (!constant_time_equal(context_, expected_context)) return std::nullopt;
  auto key_bytes = open_sealed(recipient, sealed_);
  if (!key_bytes || key_bytes->size() != kSectionKeySize) return std::nullopt;
  return SectionKey::parse(key_bytes->view());
}

}  // namespace kith::crypto
