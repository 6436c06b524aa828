// The store's SQL schema, one entry per version (docs/storage.md documents
// it as a public interface). Version N's script migrates a version N-1 file
// (version 0 = empty file) to N. Never edit a released entry: add one.
#pragma once

#include <vector>

namespace ashiato {

// kStoreMigrations[i] takes schema version i to version i + 1.
extern const std::vector<const char*> kStoreMigrations;

}  // namespace ashiato
