// PodApi: the two API server calls the pod reflector makes (GET a list, open
// a watch): common/list_watch.h's WatchApi, under the name the agent and its
// tests use.
#pragma once

#include "common/list_watch.h"

namespace ashiato {

using PodApi = WatchApi;
using KubePodApi = KubeWatchApi;

}  // namespace ashiato
