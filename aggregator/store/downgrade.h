// Takes the aggregator's store back to an older schema version, for
// rolling back to a release that refuses the newer file (docs/storage.md).
// Only steps that lose nothing are offered (kStoreDowngrades).
//
//   Status st = DowngradeStore("/var/lib/ashiato", 4);   // then start the old release
#pragma once

#include <string>

#include "common/status.h"

namespace ashiato {

// Rewrites <dir>/ashiato.db to `to_version` in one transaction. Ok (and no
// change) when the file is already at it; NotFound when there is no file;
// FailedPrecondition when the file is older than `to_version` or a step on
// the way would lose data.
Status DowngradeStore(const std::string& dir, int to_version);

}  // namespace ashiato
