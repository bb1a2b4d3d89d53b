// Small helpers shared by the sync tests.
#pragma once

#include <gtest/gtest.h>

#include "kith/crypto/identity.hpp"
#include "kith/sync/error.hpp"
#include "kith/sync/ids.hpp"

namespace kith::sync::test {

// One person with one device: an identity key, device keys and the certificate joining them.
struct Person {
  crypto::SigningKey identity = crypto::SigningKey::generate();
  crypto::DeviceKeys device = crypto::DeviceKeys::generate();
  crypto::DeviceCertificate cert = crypto::DeviceCertificate::issue(
      identity, device.signing.public_key(), device.encryption.public_key(), 1);
  AccountId account() const { return AccountId::from_bytes(identity.public_key().bytes()); }
  DeviceId device_id() const { return DeviceId::from_bytes(device.signing.public_key().bytes()); }
};

// The code of the SyncError `f` throws; fails the test (and returns kStore) if it throws none.
SyncErrorCode error_of(auto f) {
  try {
    f();
  } catch (const SyncError& e) {
    return e.code();
  }
  ADD_FAILURE() << "no error";
  return SyncErrorCode::kStore;
}

}  // namespace kith::sync::test
