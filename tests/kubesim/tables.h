// meta.k8s.io/v1 Table rendering, what kubectl asks for with
// `Accept: application/json;as=Table;v=v1;g=meta.k8s.io` for human output.
// Columns follow the real server's printers for each kind.
#pragma once

#include <string>
#include <vector>

#include "tests/kubesim/store.h"

namespace kubesim {

// "includeObject" query value -> mode ("" = PartialObjectMetadata, the default).
TableMode ParseIncludeObject(const std::string& value);
// A Table of `items` with list metadata (resourceVersion, continue).
std::string TableListJson(Kind k, const std::vector<ObjectPtr>& items, uint64_t rv,
                          const std::string& continue_token, TableMode mode);
// One watch event whose object is a Table with a single row.
std::string TableEventLine(const char* type, const Object& obj, TableMode mode);
// "5m", "3h2m", "12d" as kubectl prints ages.
std::string HumanDuration(long long seconds);

}  // namespace kubesim
