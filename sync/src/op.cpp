#include "kith/sync/op.hpp"

#include "kith/crypto/error.hpp"
#include "kith/sync/error.hpp"

namespace kith::sync {

namespace {

[[noreturn]] void malformed(const std::string& what) {
  throw SyncError(SyncErrorCode::kMalformed, what);
}

// Runs `f` on a reader and turns the crypto layer's truncation errors into sync errors.
template <class F>
auto reading(ByteView bytes, const char* what, F f) {
  crypto::ByteReader r(bytes, what);
  try {
    return f(r);
  } catch (const crypto::KeyFormatError& e) {
    malformed(e.what());
  }
}

std::string text_field(crypto::ByteReader& r, std::size_t max) {
  ByteView v = r.prefixed(max);
  return std::string(v.begin(), v.end());
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
  return reading(bytes, "op header", [](crypto::ByteReader& r) {
    OpHeader h;
    if (std::uint8_t v = r.u8(); v != kOpVersion) {
      malformed("op header version " + std::to_string(v) + " is not supported; update the app");
    }
    h.plan = PlanId::from_bytes(r.raw(PlanId::kSize));
    h.op_id = OpId::from_bytes(r.raw(OpId::kSize));
    ByteView name = r.raw(r.u8());
    h.section =
        Section::parse(std::string_view(reinterpret_cast<const char*>(name.data()), name.size()));
    h.epoch = r.u64();
    h.author = DeviceId::from_bytes(r.raw(DeviceId::kSize));
    h.author_seq = r.u64();
    ByteView prev = r.raw(h.prev.size());
    std::copy(prev.begin(), prev.end(), h.prev.begin());
    h.clock.wall_ms = r.u64();
    h.clock.counter = r.u32();
    h.membership_index = r.u64();
    r.expect_end();
    if (h.author_seq == 0) malformed("op header has sequence number 0; numbering starts at 1");
    return h;
  });
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
  return reading(bytes, "op body", [](crypto::ByteReader& r) {
    OpBody body;
    if (std::uint8_t v = r.u8(); v != kOpVersion) {
      malformed("op body version " + std::to_string(v) + " is not supported; update the app");
    }
    std::uint32_t count = r.u32();
    if (count > kMaxMutationsPerOp) {
      throw SyncError(SyncErrorCode::kTooLarge, "op body has " + std::to_string(count) +
                                                    " mutations; at most 256 are allowed");
    }
    body.mutations.reserve(count);
    for (std::uint32_t i = 0; i < count; ++i) {
      Mutation m;
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
        for (std::uint32_t s = 0; s < seen; ++s) {
          VersionId v;
          v.op = OpId::from_bytes(r.raw(OpId::kSize));
          v.index = r.u16();
          m.seen.push_back(v);
        }
      }
      body.mutations.push_back(std::move(m));
    }
    r.expect_end();
    return body;
  });
}

OpHash op_hash(ByteView header, ByteView body) {
  crypto::Blake2b h;
  std::uint8_t len[4];
  for (int i = 0; i < 4; ++i) len[i] = static_cast<std::uint8_t>(header.size() >> (8 * i));
  h.update(ByteView(len, 4)).update(header).update(body);
  Bytes d = h.finish();
  OpHash out;
  std::copy(d.begin(), d.end(), out.begin());
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
  auto plain = crypto::open(key, op.body, op.header);
  if (!plain) return std::nullopt;
  return OpBody::parse(plain->view());
}

}  // namespace kith::sync
