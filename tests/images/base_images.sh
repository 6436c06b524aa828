#!/usr/bin/env bash
# Makes the Dockerfiles' base images available to podman under the names they use
# (docker.io/library/debian:bookworm and :bookworm-slim), so the Dockerfiles stay
# standard:
#   1. already in local storage: nothing to do;
#   2. a registry answers: podman pull;
#   3. otherwise (no registry, as on the CI machines): build the same Debian base
#      with mmdebstrap from Debian's mirror and `podman import` it under that name.
#        bookworm       minbase variant, merged /usr (as the official image)
#        bookworm-slim  the same, plus the official slim image's dpkg path-excludes
#                       (no man pages, docs other than copyright, locales, info)
#      Both get the official images' apt settings (/etc/apt/apt.conf.d/docker-*): no
#      .debs and no pkgcache.bin/srcpkgcache.bin left after apt-get (they would add
#      ~80 MB to a Dockerfile's runtime layer), gzipped indexes, no translations.
#
#   bash tests/images/base_images.sh [WORK_DIR]
# Environment: PODMAN (default "podman --storage-driver vfs"), DEBIAN_MIRROR,
# ASHIATO_BASE_PULL=0 to skip the pull attempt.
set -euo pipefail

WORK="${1:-build/images}"
PODMAN="${PODMAN:-podman --storage-driver vfs}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SECURITY="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd)"

# The official images' slimify step (debuerreotype), as dpkg options.
SLIM_DPKG=(
  --dpkgopt='path-exclude=/usr/share/doc/*'
  --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/man/*'
  --dpkgopt='path-exclude=/usr/share/groff/*'
  --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/lintian/*'
  --dpkgopt='path-exclude=/usr/share/linda/*'
  --dpkgopt='path-exclude=/usr/share/locale/*'
  --dpkgopt='path-include=/usr/share/locale/locale.alias'
)

# The official images' /etc/apt/apt.conf.d/docker-* files.
APTCONF="$WORK/apt.conf.d"
mkdir -p "$APTCONF"
clean='"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"'
cat >"$APTCONF/docker-clean" <<EOF
DPkg::Post-Invoke { $clean; };
APT::Update::Post-Invoke { $clean; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
printf '%s\n' 'Acquire::GzipIndexes "true";' 'Acquire::CompressionTypes::Order:: "gz";' \
  >"$APTCONF/docker-gzip-indexes"
printf '%s\n' 'Acquire::Languages "none";' >"$APTCONF/docker-no-languages"
printf '%s\n' 'Apt::AutoRemove::SuggestsImportant "false";' >"$APTCONF/docker-autoremove-suggests"

base() {
  local tag=$1 ref="docker.io/library/debian:$1"
  shift
  if $PODMAN image exists "$ref"; then
    echo "base_images: $ref is in local storage"
    return
  fi
  if [[ "${ASHIATO_BASE_PULL:-1}" != 0 ]] && timeout 300 $PODMAN pull -q "$ref" >/dev/null 2>&1; then
    echo "base_images: pulled $ref"
    return
  fi
  command -v mmdebstrap >/dev/null || {
    echo "base_images: cannot pull $ref and mmdebstrap is not installed (apt-get install mmdebstrap)" >&2
    exit 1
  }
  echo "base_images: no registry; building $ref with mmdebstrap"
  local tar="$WORK/debian-$tag.tar" start=$SECONDS
  mmdebstrap --quiet --variant=minbase --format=tar \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --customize-hook="cp $APTCONF/docker-* \"\$1/etc/apt/apt.conf.d/\"" \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/log/*.log "$1"/var/log/apt/*' \
    "$@" bookworm "$tar" \
    "deb $MIRROR bookworm main" "deb $MIRROR bookworm-updates main" \
    "deb $SECURITY bookworm-security main"
  $PODMAN import -q --change 'CMD ["bash"]' \
    --message "mmdebstrap --variant=minbase bookworm ($tag), tests/images/base_images.sh" \
    "$tar" "$ref" >/dev/null
  rm -f "$tar"
  echo "base_images: imported $ref ($((SECONDS - start)) s)"
}

base bookworm
base bookworm-slim "${SLIM_DPKG[@]}"
