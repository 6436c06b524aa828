// The store's SQL schema, one entry per version (docs/storage.md documents
// it as a public interface). Version N's script migrates a version N-1 file
// (version 0 = empty file) to N. Never edit a released entry: add one.
#pragma once

#include <vector>

namespace ashiato {

// kStoreMigrations[i] takes schema version i to version i + 1.
extern const std::vector<const char*> kStoreMigrations;

// kStoreDowngrades[i] takes schema version i + 1 back to version i without
// losing data, or is nullptr where that is not possible.
extern const std::vector<const char*> kStoreDowngrades;

// Retention's chunked deletes (Store::EnforceRetention), beside the indexes
// that serve them: ?1 the cutoff, ?2 the log cursor (events not yet printed
// stay), ?3 the chunk size. Each is a search of an index, never a scan
// (StoreTest.RetentionDeletesSearchAnIndex).
struct RetentionSql {
  const char* events;
  const char* intervals[3];  // placements, ip_leases, image_usage.
  const char* pods;          // Tombstones.
};
extern const RetentionSql kRetentionSql;

}  // namespace ashiato
