// The fixture of the kithd integration tests: a real kithd on 127.0.0.1 with a temporary data
// directory, and an owner whose plan is already on the server.
#pragma once

#include <gtest/gtest.h>

#include "support/kithd_process.hpp"
#include "support/temp_dir.hpp"
#include "support/test_device.hpp"

namespace kith::test {

inline std::string str(crypto::ByteView b) { return std::string(b.begin(), b.end()); }

class KithdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!KithdProcess::binary()) GTEST_SKIP() << "kithd is not built";
    server = std::make_unique<KithdProcess>(options());
  }
  virtual KithdOptions options() { return {}; }

  // The owner's device, connected, with a plan that holds one record, synced.
  TestDevice& owner_with_plan() {
    owner = std::make_unique<TestDevice>(dir.path(), "owner");
    owner->connect(*server);
    plan = owner->engine->create_plan("Mary's support plan");
    owner->engine->add_record(plan, "profile", {{"about_me", "Retired teacher, loves gardening"}});
    EXPECT_TRUE(owner->sync(plan).empty());
    EXPECT_EQ(owner->engine->outbox_size(plan), 0u);
    return *owner;
  }
  Forge forge(TestDevice& d) {
    return Forge{plan, &d.secrets(), d.engine->membership(plan).size()};
  }
  // The error in `reply`, failing the test if it is something else.
  static kith::v1::ErrorCode code_of(const kith::v1::ServerMessage& reply) {
    EXPECT_TRUE(reply.has_error()) << reply.DebugString();
    return reply.error().code();
  }
  // What the server holds of the plan, seen by a fresh catch-up.
  std::size_t stored_ops() {
    auto c = raw_catch_up(*owner, plan, 0);
    EXPECT_TRUE(c.complete.has_value());
    return c.ops.size();
  }

  TempDir dir{"kithd-it"};
  std::unique_ptr<KithdProcess> server;
  std::unique_ptr<TestDevice> owner;
  sync::PlanId plan;
};

}  // namespace kith::test
