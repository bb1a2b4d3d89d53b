#include "kith/crypto/aead.hpp"

#include <gtest/gtest.h>

#include "kith/crypto/error.hpp"
#include "support/vectors.hpp"

namespace kith::crypto {
namespace {

Bytes text(std::string_view s) { return Bytes(s.begin(), s.end()); }

class SealedContent : public ::testing::Test {
 protected:
  SectionKey key = SectionKey::generate();
  Bytes plaintext = text("Medication: 5 mg at 08:00. Prefers to be called Nia.");
  Bytes ad = text("plan=p1|section=health|epoch=2|op=o7|author=d3");
  Bytes sealed = seal(key, plaintext, ad);
};

TEST_F(SealedContent, OpensToThePlaintext) {
  auto opened = open(key, sealed, ad);
  ASSERT_TRUE(opened.has_value());
  EXPECT_TRUE(constant_time_equal(opened->view(), plaintext));
  EXPECT_EQ(sealed.size(), plaintext.size() + kSealedOverhead);
}

TEST_F(SealedContent, UsesAFreshNonceEachTime) {
  Bytes again = seal(key, plaintext, ad);
  EXPECT_NE(Bytes(sealed.begin(), sealed.begin() + kNonceSize),
            Bytes(again.begin(), again.begin() + kNonceSize));
}

TEST_F(SealedContent, DoesNotOpenWhenAnyByteIsChanged) {
  // Every region: nonce, commitment, ciphertext, Poly1305 tag.
  for (std::size_t i = 0; i < sealed.size(); ++i) {
    Bytes bad = sealed;
    bad[i] ^= 0x01;
    EXPECT_FALSE(open(key, bad, ad).has_value()) << "byte " << i << " of " << sealed.size();
  }
}

TEST_F(SealedContent, DoesNotOpenWithOtherAssociatedData) {
  // The AD binds plan, section, epoch, op and author: moving ciphertext between them fails.
  Bytes other = text("plan=p1|section=notes|epoch=2|op=o7|author=d3");
  EXPECT_FALSE(open(key, sealed, other).has_value());
  EXPECT_FALSE(open(key, sealed, Bytes{}).has_value());
  Bytes longer = ad;
  longer.push_back('x');
  EXPECT_FALSE(open(key, sealed, longer).has_value());
}

TEST_F(SealedContent, DoesNotOpenUnderAnotherKey) {
  EXPECT_FALSE(open(SectionKey::generate(), sealed, ad).has_value());
}

TEST_F(SealedContent, DoesNotOpenTruncatedOrExtended) {
  for (std::size_t n :
       {std::size_t{0}, std::size_t{1}, kNonceSize, kSealedOverhead - 1, sealed.size() - 1}) {
    EXPECT_FALSE(open(key, ByteView(sealed).first(n), ad).has_value()) << n << " bytes";
  }
  Bytes extended = sealed;
  extended.push_back(0);
  EXPECT_FALSE(open(key, extended, ad).has_value());
}

TEST_F(SealedContent, CommitmentIsCheckedBeforeDecryption) {
  // A ciphertext that is intact except for its commitment tag is refused: the tag, not
  // Poly1305, is what ties the ciphertext to one key.
  Bytes bad = sealed;
  bad[kNonceSize + 5] ^= 0x80;
  EXPECT_FALSE(open(key, bad, ad).has_value());
  // And the tag depends on the key: the same nonce/AD/ciphertext under another key differs.
  ByteView nonce = ByteView(sealed).first(kNonceSize);
  ByteView ct = ByteView(sealed).subspan(kNonceSize + kCommitmentSize);
  EXPECT_NE(commitment_tag(key, nonce, ad, ct),
            commitment_tag(SectionKey::generate(), nonce, ad, ct));
}

TEST_F(SealedContent, OpensIntoACallersBuffer) {
  Bytes out(plaintext.size() + 3, 0xee);
  auto size = open_into(key, sealed, ad, out);
  ASSERT_TRUE(size.has_value());
  EXPECT_EQ(Bytes(out.begin(), out.begin() + static_cast<long>(*size)), plaintext);
  EXPECT_EQ(out.back(), 0xee);  // nothing written past the plaintext

  Bytes bad = sealed;
  bad.back() ^= 0x01;  // the Poly1305 tag: the commitment still matches
  Bytes refused(plaintext.size(), 0);
  EXPECT_FALSE(open_into(key, bad, ad, refused).has_value());
  EXPECT_EQ(refused, Bytes(plaintext.size(), 0));  // no plaintext left behind
  EXPECT_FALSE(open_into(key, ByteView(sealed).first(kSealedOverhead - 1), ad, out).has_value());

  Bytes too_short(plaintext.size() - 1);
  EXPECT_THROW((void)open_into(key, sealed, ad, too_short), KeyFormatError);
}

TEST(SealedContentEmpty, SealsAndOpensEmptyPlaintextAndAd) {
  SectionKey key = SectionKey::generate();
  Bytes sealed = seal(key, Bytes{}, Bytes{});
  auto opened = open(key, sealed, Bytes{});
  ASSERT_TRUE(opened.has_value());
  EXPECT_TRUE(opened->empty());
}

TEST(SectionKey, ParseRejectsWrongSize) {
  EXPECT_THROW(SectionKey::parse(Bytes(16)), KeyFormatError);
  EXPECT_THROW(SectionKey::parse(Bytes(33)), KeyFormatError);
}

TEST(SectionKey, DeriveIsDeterministicPerIdAndContext) {
  auto master = random_secret<32>();
  constexpr KdfContext kA{"kithtest"};
  constexpr KdfContext kB{"kithtst2"};
  EXPECT_TRUE(SectionKey::derive(master, 1, kA) == SectionKey::derive(master, 1, kA));
  EXPECT_FALSE(SectionKey::derive(master, 1, kA) == SectionKey::derive(master, 2, kA));
  EXPECT_FALSE(SectionKey::derive(master, 1, kA) == SectionKey::derive(master, 1, kB));
}

TEST(SealedContentVectors, MatchTheDocumentedLayout) {
  auto doc = test::load_json(test::own_vector_path("sealed_content.json"));
  ASSERT_GE(doc.at("cases").size(), 4u);
  for (const auto& c : doc.at("cases")) {
    SectionKey key = SectionKey::parse(test::hex_field(c, "key"));
    // The subkeys, from crypto_kdf as an independent BLAKE2b implementation computed them.
    constexpr KdfContext kAead{"kithaead"};
    EXPECT_EQ(to_hex(derive_subkey32(key.secret(), 1, kAead).view()), c.at("encryption_subkey"));
    EXPECT_EQ(to_hex(derive_subkey32(key.secret(), 2, kAead).view()), c.at("commitment_subkey"));
    Bytes nonce_bytes = test::hex_field(c, "nonce");
    Nonce nonce;
    ASSERT_EQ(nonce_bytes.size(), nonce.size());
    std::copy(nonce_bytes.begin(), nonce_bytes.end(), nonce.begin());
    Bytes ad = test::hex_field(c, "ad");
    Bytes plaintext = test::hex_field(c, "plaintext");
    Bytes expected = test::hex_field(c, "sealed");

    Bytes sealed = seal_with_nonce(key, nonce, plaintext, ad);
    EXPECT_EQ(to_hex(sealed), to_hex(expected));
    EXPECT_EQ(to_hex(commitment_tag(key, nonce, ad,
                                    ByteView(expected).subspan(kNonceSize + kCommitmentSize))),
              c.at("commitment"));
    auto opened = open(key, expected, ad);
    ASSERT_TRUE(opened.has_value());
    EXPECT_EQ(to_hex(opened->view()), c.at("plaintext"));
  }
}

}  // namespace
}  // namespace kith::crypto
