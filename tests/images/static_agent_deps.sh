#!/usr/bin/env bash
# `make agent-static` (first half): static libraries for a self-contained
# ashiato-agent (docs/benchmarks.md, "Agent memory"), built from Debian's own
# sources (`apt-get source`, with Debian's patches and security fixes):
#   libcurl        HTTP and HTTPS only, mbedTLS and zlib; no OpenSSL, gnutls, krb5/gssapi,
#                  ldap, rtmp, ssh2, idn2, psl, nghttp2, brotli or zstd: the agent
#                  speaks HTTP/1.1 to the API server and to the aggregator.
#   libmicrohttpd  without HTTPS: the agent's health endpoint is plain HTTP, so
#                  no second TLS stack (gnutls, nettle, gmp, p11-kit, ...).
#   prometheus-cpp core only (Debian ships it as a shared library only).
#   simdjson       not linked into the agent, but the build tree configures the
#                  aggregator's report decoder too (Debian ships simdjson as a
#                  shared library only).
# mbedTLS (TLS 1.2: its 2.28 in bookworm has no TLS 1.3; docs/benchmarks.md),
# zlib and yaml-cpp come from the -dev packages' own .a files, spdlog
# and fmt are used header-only (see ASHIATO_STATIC_AGENT in CMakeLists.txt).
#
#   bash tests/images/static_agent_deps.sh PREFIX [JOBS]
# Installs into PREFIX/{include,lib}; sources are unpacked in PREFIX/src. Skips
# a library whose PREFIX/lib/*.a exists. Needs deb-src entries for apt: when
# `apt-cache showsrc` finds none and we are root (a build container), adds them
# for bookworm and bookworm-security from DEBIAN_MIRROR and DEBIAN_SECURITY_MIRROR
# (default http://deb.debian.org/debian and .../debian-security).
set -euo pipefail

PREFIX="${1:?usage: static_agent_deps.sh PREFIX [JOBS]}"
JOBS="${2:-$(nproc)}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SECURITY="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
mkdir -p "$PREFIX/src" "$PREFIX/lib" "$PREFIX/include"
PREFIX="$(cd "$PREFIX" && pwd)"
SRC="$PREFIX/src"
# Sections per function and object, so the agent's --gc-sections link keeps
# only what it calls.
export CFLAGS="-O2 -g0 -ffunction-sections -fdata-sections -fPIE"
export CXXFLAGS="$CFLAGS"

log() { echo "static_agent_deps: $*" >&2; }

ensure_deb_src() {
  if [ -n "$(apt-cache showsrc curl 2>/dev/null | head -1)" ]; then return; fi
  if [ "$(id -u)" != 0 ]; then
    log "no deb-src entries for apt; add one for bookworm (see docs/benchmarks.md) and rerun"
    exit 1
  fi
  log "adding deb-src entries for bookworm ($MIRROR)"
  cat >/etc/apt/sources.list.d/ashiato-deb-src.sources <<EOF
Types: deb-src
URIs: $MIRROR
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: $SECURITY
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  apt-get update -qq >&2
}

# fetch PACKAGE: unpacks Debian's source of PACKAGE (patches applied) in $SRC and
# prints its directory.
fetch() {
  local pkg="$1" dir
  dir="$(find "$SRC" -maxdepth 1 -type d -name "$pkg-[0-9]*" | head -1)"
  if [ -z "$dir" ]; then
    ensure_deb_src
    (cd "$SRC" && apt-get source -qq "$pkg" >&2)
    dir="$(find "$SRC" -maxdepth 1 -type d -name "$pkg-[0-9]*" | head -1)"
  fi
  echo "$dir"
}

# (Rebuilt when an earlier libcurl.a is on another TLS library.)
if ! grep -qa Curl_ssl_mbedtls "$PREFIX/lib/libcurl.a" 2>/dev/null; then
  dir="$(fetch curl)"
  log "libcurl from $dir"
  cmake -S "$dir" -B "$dir/build-static" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$PREFIX" -DCMAKE_INSTALL_LIBDIR=lib \
    -DBUILD_SHARED_LIBS=OFF -DBUILD_CURL_EXE=OFF -DBUILD_TESTING=OFF -DENABLE_MANUAL=OFF \
    -DHTTP_ONLY=ON -DCURL_USE_OPENSSL=OFF -DCURL_USE_MBEDTLS=ON -DCURL_ZLIB=ON -DCURL_BROTLI=OFF -DCURL_ZSTD=OFF \
    -DUSE_NGHTTP2=OFF -DUSE_LIBIDN2=OFF -DCURL_USE_LIBPSL=OFF -DCURL_USE_LIBSSH2=OFF \
    -DCURL_USE_LIBSSH=OFF -DCURL_USE_GSSAPI=OFF -DCURL_DISABLE_LDAP=ON -DCURL_DISABLE_LDAPS=ON \
    -DENABLE_THREADED_RESOLVER=ON \
    -DCURL_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt -DCURL_CA_PATH=/etc/ssl/certs >&2
  cmake --build "$dir/build-static" -j "$JOBS" >&2
  cmake --install "$dir/build-static" >&2
fi

if [ ! -f "$PREFIX/lib/libmicrohttpd.a" ]; then
  dir="$(fetch libmicrohttpd)"
  log "libmicrohttpd from $dir"
  (cd "$dir" && ./configure --prefix="$PREFIX" --libdir="$PREFIX/lib" --enable-static \
    --disable-shared --disable-https --without-gnutls --disable-doc --disable-examples \
    --disable-curl --enable-epoll=yes -q >&2 &&
    make -j "$JOBS" -C src/microhttpd >&2 && make -C src/microhttpd install >&2 &&
    make -C src/include install >&2)
fi

if [ ! -f "$PREFIX/lib/libprometheus-cpp-core.a" ]; then
  dir="$(fetch prometheus-cpp)"
  log "prometheus-cpp core from $dir"
  cmake -S "$dir" -B "$dir/build-static" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$PREFIX" -DCMAKE_INSTALL_LIBDIR=lib -DBUILD_SHARED_LIBS=OFF \
    -DENABLE_PULL=OFF -DENABLE_PUSH=OFF -DENABLE_COMPRESSION=OFF -DENABLE_TESTING=OFF \
    -DUSE_THIRDPARTY_LIBRARIES=OFF -DGENERATE_PKGCONFIG=OFF >&2
  cmake --build "$dir/build-static" -j "$JOBS" >&2
  cmake --install "$dir/build-static" >&2
fi

if [ ! -f "$PREFIX/lib/libsimdjson.a" ]; then
  dir="$(fetch simdjson)"
  log "simdjson from $dir"
  cmake -S "$dir" -B "$dir/build-static" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$PREFIX" -DCMAKE_INSTALL_LIBDIR=lib -DBUILD_SHARED_LIBS=OFF \
    -DSIMDJSON_DEVELOPER_MODE=OFF -DSIMDJSON_ENABLE_THREADS=OFF >&2
  cmake --build "$dir/build-static" -j "$JOBS" >&2
  cmake --install "$dir/build-static" >&2
fi

log "done: $(cd "$PREFIX/lib" && ls ./*.a | tr '\n' ' ')"
