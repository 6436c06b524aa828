// ImageCensus: which images the cluster's running pods use, counted by pod
// and node, so the unified log says once when an image enters the cluster
// (IMAGE_ADDED) and once when the last pod using it is gone (IMAGE_REMOVED),
// as cluster-image-logger did (docs/images.md).
//
// An image is identified by its reference and digest together: a tag pushed
// again (nginx:latest with a new digest) is a new image. A container counts
// once its status names the image it runs (imageID): before that the image
// may not even be pulled. Pods in a terminal phase (Succeeded, Failed) run
// nothing.
#pragma once

#include <cstddef>
#include <map>
#include <set>
#include <string>
#include <utility>

#include "aggregator/pod_census.h"

namespace ashiato {

class ImageCensus : public PodCensus {
 public:
  using Key = std::pair<std::string, std::string>;  // (image reference, digest).

  // "sha256:..." from a container status imageID
  // ("docker.io/library/nginx@sha256:...", "sha256:..."); "" when none.
  static std::string DigestOf(const std::string& image_id);
  // The images `pod` runs now.
  static std::set<Key> RunningImagesOf(const PodRecord& pod);

  void Clear() override;
  void Restore(const PodRecord& pod) override;
  void Apply(const PodRecord* before, const PodRecord* after, const CensusContext& ctx,
             ChangeBatch* batch) override;

  // Images in use now.
  size_t size() const { return usage_.size(); }
  // Pods using `key` now (0 if none).
  size_t pods(const Key& key) const;

 private:
  void Add(const Key& key);
  // Returns true when it was the last pod using `key`.
  bool Remove(const Key& key);
  void EmitLine(const char* event, const Key& key, const PodRecord& pod, const CensusContext& ctx,
                ChangeBatch* batch) const;

  // Pods using each image. (Pods per node are not kept: a line is written
  // for the first pod, on one node, or after the last, on none; a map of node
  // names per image cost ~150 bytes per pod at 5,000 nodes.)
  std::map<Key, size_t> usage_;
};

}  // namespace ashiato
