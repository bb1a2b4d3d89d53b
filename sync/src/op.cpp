#include "kith/sync/op.hpp"

#include <sodium.h>

#include <array>

#include "kith/crypto/error.hpp"
#include "kith/crypto/init.hpp"
#include "kith/sync/error.hpp"

namespace kith::sync {

namespace {

[[noreturn]] void malformed(const std::string& what) {
  throw SyncError(SyncErrorCode::kMalformed, what);
}

// crypto::ByteReader's layout and messages, with every read inline. Every received op's header
// and body go through here, and ByteReader's out-of-line call per field (u64 a byte at a time)
// was a third of the cost of parsing them. Throws SyncError(kMalformed).
class Reader {
 public:
  Reader(ByteView in, const char* what) : in_(in), what_(what) {}

  ByteView raw(std::size_t n) {
    if (n > in_.size() - pos_) truncated(n);
    ByteView out = in_.subspan(pos_, n);
    pos_ += n;
    return out;
  }
  std::uint8_t u8() { return raw(1)[0]; }
  std::uint16_t u16() { return static_cast<std::uint16_t>(little_endian(2)); }
  std::uint32_t u32() { return static_cast<std::uint32_t>(little_endian(4)); }
  std::uint64_t u64() { return little_endian(8); }
  // A u32-length-prefixed field of at most `max` bytes.
  ByteView prefixed(std::size_t max) {
    std::uint32_t n = u32();
    if (n > max) {
      malformed(std::string(what_) + " has a field of " + std::to_string(n) + " bytes; at most " +
                std::to_string(max) + " are allowed");
    }
    return raw(n);
  }
  void expect_end() const {
    if (pos_ != in_.size()) {
      malformed(std::string(what_) + " has " + std::to_string(in_.size() - pos_) +
                " unexpected extra bytes");
    }
  }

 private:
  std::uint64_t little_endian(std::size_t n) {
    ByteView b = raw(n);
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v |= std::uint64_t{b[i]} << (8 * i);
    return v;
  }
  [[noreturn]] void truncated(std::size_t n) const {
    malformed(std::string(what_) + " is truncated: needed " + std::to_string(n) +
              " more bytes, have " + std::to_string(in_.size() - pos_));
  }

  ByteView in_;
  std::size_t pos_ = 0;
  const char* what_;
};

std::string text_field(Reader& r, std::size_t max) {
  ByteView v = r.prefixed(max);
  return std::string(reinterpret_cast<const char*>(v.data()), v.size());
}

}  // namespace

Bytes OpHeader::serialize() const {
  crypto::ByteWriter w(160);
  w.u8(kOpVersion)
      .raw(plan.bytes())
      .raw(op_id.bytes())
      .u8(static_cast<std::uint8_t>(section.name().size()))
      .raw(section.name())
      .u64(epoch)
      .raw(author.bytes())
      .u64(author_seq)
      .raw(prev)
      .u64(clock.wall_ms)
      .u32(clock.counter)
      .u64(membership_index);
  return std::move(w).take();
}

OpHeader OpHeader::parse(ByteView bytes) {
  Reader r(bytes, "op header");
  if (std::uint8_t v = r.u8(); v != kOpVersion) {
    malformed("op header version " + std::to_string(v) + " is not supported; update the app");
  }
  // Built from its fields at once: a default OpHeader would parse a section name of its own.
  PlanId plan = PlanId::from_bytes(r.raw(PlanId::kSize));
  OpId op_id = OpId::from_bytes(r.raw(OpId::kSize));
  ByteView name = r.raw(r.u8());
  Section section =
      Section::parse(std::string_view(reinterpret_cast<const char*>(name.data()), name.size()));
  std::uint64_t epoch = r.u64();
  DeviceId author = DeviceId::from_bytes(r.raw(DeviceId::kSize));
  std::uint64_t author_seq = r.u64();
  OpHash prev;
  ByteView prev_bytes = r.raw(prev.size());
  std::copy(prev_bytes.begin(), prev_bytes.end(), prev.begin());
  Hlc clock;
  clock.wall_ms = r.u64();
  clock.counter = r.u32();
  std::uint64_t membership_index = r.u64();
  r.expect_end();
  if (author_seq == 0) malformed("op header has sequence number 0; numbering starts at 1");
  return OpHeader{plan, op_id, std::move(section), epoch, author, author_seq,
                  prev, clock, membership_index};
}

std::string VersionId::text() const { return op.hex() + ":" + std::to_string(index); }

crypto::SecretBytes OpBody::serialize() const {
  if (mutations.size() > kMaxMutationsPerOp) {
    throw SyncError(SyncErrorCode::kTooLarge,
                    "an op may change at most 256 things at once; split the change");
  }
  crypto::ByteWriter w(64 + mutations.size() * 64);
  w.u8(kOpVersion).u32(static_cast<std::uint32_t>(mutations.size()));
  for (const Mutation& m : mutations) {
    w.u8(static_cast<std::uint8_t>(m.kind)).raw(m.record.bytes());
    if (m.kind == Mutation::Kind::kCreate) {
      w.prefixed(m.type);
    } else {
      if (m.value.size() > kMaxFieldValue) {
        throw SyncError(SyncErrorCode::kTooLarge,
                        "the value of '" + m.field + "' is over 16 KiB; shorten it");
      }
      if (m.seen.size() > kMaxSeenVersions) {
        throw SyncError(SyncErrorCode::kTooLarge, "a field update names too many versions");
      }
      w.prefixed(m.field).prefixed(m.value).u32(static_cast<std::uint32_t>(m.seen.size()));
      for (const VersionId& v : m.seen) w.raw(v.op.bytes()).u16(v.index);
    }
  }
  Bytes out = std::move(w).take();
  crypto::SecretBytes secret(out);
  crypto::secure_wipe(out.data(), out.size());
  if (secret.size() > kMaxOpBody - crypto::kSealedOverhead) {
    throw SyncError(SyncErrorCode::kTooLarge, "an op is limited to 64 KiB; split the change");
  }
  return secret;
}

OpBody OpBody::parse(ByteView bytes) {
  Reader r(bytes, "op body");
  OpBody body;
  if (std::uint8_t v = r.u8(); v != kOpVersion) {
    malformed("op body version " + std::to_string(v) + " is not supported; update the app");
  }
  std::uint32_t count = r.u32();
  if (count > kMaxMutationsPerOp) {
    throw SyncError(SyncErrorCode::kTooLarge,
                    "op body has " + std::to_string(count) + " mutations; at most 256 are allowed");
  }
  body.mutations.reserve(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    Mutation& m = body.mutations.emplace_back();  // filled in place
    std::uint8_t kind = r.u8();
    if (kind != 1 && kind != 2) malformed("op body has an unknown mutation kind");
    m.kind = static_cast<Mutation::Kind>(kind);
    m.record = RecordId::from_bytes(r.raw(RecordId::kSize));
    if (m.kind == Mutation::Kind::kCreate) {
      m.type = text_field(r, kMaxTypeName);
    } else {
      m.field = text_field(r, 64);
      m.value = text_field(r, kMaxFieldValue);
      std::uint32_t seen = r.u32();
      if (seen > kMaxSeenVersions) malformed("a field update names too many versions");
      m.seen.reserve(seen);
      for (std::uint32_t s = 0; s < seen; ++s) {
        VersionId v;
        v.op = OpId::from_bytes(r.raw(OpId::kSize));
        v.index = r.u16();
        m.seen.push_back(v);
      }
    }
  }
  r.expect_end();
  return body;
}

OpHash op_hash(ByteView header, ByteView body) {
  // libsodium directly rather than crypto::Blake2b: every received op is hashed, and the
  // wrapper's heap result and state wipe (meant for secret input) cost a tenth of the hash.
  // An op's bytes are public: they travel and are stored as they are.
  crypto::ensure_initialized();  // selects libsodium's fastest BLAKE2b for this CPU
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, crypto::kHashSize);
  std::uint8_t len[4];
  for (int i = 0; i < 4; ++i) len[i] = static_cast<std::uint8_t>(header.size() >> (8 * i));
  crypto_generichash_update(&st, len, sizeof len);
  crypto_generichash_update(&st, header.data(), header.size());
  crypto_generichash_update(&st, body.data(), body.size());
  OpHash out;
  crypto_generichash_final(&st, out.data(), out.size());
  return out;
}

OpHash Op::hash() const { return op_hash(header, body); }

Op seal_op(const OpHeader& header, const OpBody& body, const crypto::SectionKey& key) {
  Op op;
  op.header = header.serialize();
  crypto::SecretBytes plain = body.serialize();
  op.body = crypto::seal(key, plain.view(), op.header);
  return op;
}

std::optional<OpBody> open_op(const Op& op, const crypto::SectionKey& key) {
  // Nearly every body is a few hundred bytes: those open into a buffer on the stack, wiped once
  // parsed as a SecretBytes would be on release, instead of a SecretBytes allocated per op.
  constexpr std::size_t kStackPlaintext = 2048;
  if (op.body.size() > crypto::kSealedOverhead + kStackPlaintext) {
    auto plain = crypto::open(key, op.body, op.header);
    if (!plain) return std::nullopt;
    return OpBody::parse(plain->view());
  }
  std::array<std::uint8_t, kStackPlaintext> plain;
  std::size_t size = 0;
  struct Wipe {
    std::uint8_t* data;
    const std::size_t& size;
    ~Wipe() { crypto::secure_wipe(data, size); }
  } wipe{plain.data(), size};  // also when parsing throws
  auto opened = crypto::open_into(key, op.body, op.header, plain);
  if (!opened) return std::nullopt;
  size = *opened;
  return OpBody::parse(ByteView(plain.data(), size));
}

}  // namespace kith::sync
