// Linking this device to a plan its account is in: for a device made from the recovery key (the
// CLI's `kith device link`, libkith's kith_plan_link). It follows the plan, syncs (the log, and
// the keys the account's recovery envelopes hold), adds this device to the log (its certificate,
// signed by the restored identity key, is the proof) and sends that.
#pragma once

#include <string>

#include "kith/cli/device.hpp"
#include "kith/cli/sync_session.hpp"

namespace kith::cli {

// Throws CliError(bad_plan_id) for text that is not a plan id.
sync::PlanId parse_plan_id(const std::string& text);

// Throws CliError: already_linked (this device is in the plan's log), not_member (the account
// is not in the plan, or there is no such plan), server_refused, and the transport's errors.
// On any failure nothing of the plan is kept, unless the device held it before.
void link_this_device(Device& device, const ServerOptions& server, const sync::PlanId& plan,
                      const std::string& title);

}  // namespace kith::cli
