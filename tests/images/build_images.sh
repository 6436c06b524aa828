#!/usr/bin/env bash
# `make images`: builds Dockerfile.agent and Dockerfile.aggregator with podman
# (chroot isolation, vfs storage: works unprivileged-ish on CI machines without
# overlayfs or a container runtime), then writes next to the images:
#   OUT/ashiato-{agent,aggregator}.packages.txt  runtime package list (dpkg-query in
#                                                 the image): package, version, arch
#   OUT/images.txt                                size and layer count of each image
# The agent's build stage builds the static agent (`make agent-static`), the
# aggregator's `make build`: they share only their first layers.
#
#   bash tests/images/build_images.sh [OUT_DIR]       (default build/images)
# Environment: PODMAN (default "podman --storage-driver vfs"), VERSION (0.1.0).
set -euo pipefail

OUT="${1:-build/images}"
PODMAN="${PODMAN:-podman --storage-driver vfs}"
VERSION="${VERSION:-0.1.0}"
SRC="$(cd "$(dirname "$0")/../.." && pwd)"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

command -v podman >/dev/null || {
  echo "build_images: podman is required (apt-get install podman)" >&2
  exit 1
}

start=$SECONDS
bash "$SRC/tests/images/base_images.sh" "$OUT"
echo "build_images: base images ready after $((SECONDS - start)) s"

: >"$OUT/images.txt"
for name in agent aggregator; do
  ref="ghcr.io/ashiato/ashiato-$name:$VERSION"
  t0=$SECONDS
  echo "build_images: building $ref"
  # --pull=never: the bases are local (base_images.sh); never reach for a registry.
  $PODMAN build --isolation chroot --pull=never --layers \
    --build-arg "VERSION=$VERSION" \
    -f "$SRC/Dockerfile.$name" -t "$ref" "$SRC"
  secs=$((SECONDS - t0))

  # Runtime package list, read from the image's own dpkg database.
  mnt="$($PODMAN image mount "$ref")"
  dpkg-query --admindir="$mnt/var/lib/dpkg" -W \
    -f='${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\n' |
    awk -F'\t' '$1 ~ /^ii/ {print $2 "\t" $3 "\t" $4}' | sort >"$OUT/ashiato-$name.packages.txt"
  $PODMAN image unmount "$ref" >/dev/null

  size=$($PODMAN image inspect --format '{{.Size}}' "$ref")
  layers=$($PODMAN image inspect --format '{{len .RootFS.Layers}}' "$ref")
  pkgs=$(wc -l <"$OUT/ashiato-$name.packages.txt")
  printf '%s\tsize_bytes=%s\tsize_mb=%s\tlayers=%s\tpackages=%s\tbuild_seconds=%s\n' \
    "$ref" "$size" "$(awk -v s="$size" 'BEGIN{printf "%.1f", s/1e6}')" "$layers" "$pkgs" "$secs" \
    | tee -a "$OUT/images.txt"
done
echo "build_images: done in $((SECONDS - start)) s; package lists and sizes in $OUT"
