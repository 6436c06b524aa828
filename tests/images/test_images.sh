#!/usr/bin/env bash
# `make test-images`: checks the images `make images` built (tests/images/build_images.sh).
# Containers cannot be started on the CI machines, so each image is run the way a
# runtime would, without one: its root filesystem (`podman image mount`) is bind-mounted
# read-only in a private mount namespace, with /dev, /proc and the volumes the
# manifests give it, every shell in it masked with /dev/null (nothing may need one),
# and the entrypoint runs there under `chroot --userspec 65532:65532`. Checks:
#   - OCI labels, USER 65532:65532, an exec-form ENTRYPOINT;
#   - the image's loader finds every shared library of the binary (no "not found");
#   - the root filesystem is read-only for the process;
#   - agent: `--oneshot` against kubesim (on the host, https://127.0.0.1, its own CA:
#     the image's TLS client verifies the IP) prints every pod of the node, as
#     kubectl lists them;
#   - aggregator: serves /healthz and /readyz, its store on a tmpfs volume owned by 65532;
#   - prints each image's size and layer count.
#
#   bash tests/images/test_images.sh BIN_DIR      (BIN_DIR holds a host-built kubesim)
# Needs root (mount namespaces, chroot). Environment: PODMAN, VERSION as build_images.sh;
# IMAGES (default "agent aggregator") to check only some.
set -euo pipefail

BIN="${1:-build/bin}"
PODMAN="${PODMAN:-podman --storage-driver vfs}"
VERSION="${VERSION:-0.1.0}"
[[ -x "$BIN/kubesim" ]] || { echo "test_images: $BIN/kubesim not built" >&2; exit 1; }
[[ "$(id -u)" == 0 ]] || { echo "test_images: needs root (unshare --mount, chroot)" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/ashiato-images.XXXXXX")"
PIDS=()
MOUNTED=()
cleanup() {
  local pid ref
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  for ref in "${MOUNTED[@]}"; do $PODMAN image unmount "$ref" >/dev/null 2>&1 || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
FAILED=0
ok() { echo "  ok   $*"; }
bad() {
  echo "  FAIL $*" >&2
  FAILED=1
}

# kubesim on the host; its kubeconfig goes into the images at /mnt (read-only).
mkdir -p "$WORK/cfg"
"$BIN/kubesim" --listen 127.0.0.1:0 --tls --nodes 2 --pods-per-node 3 \
  --kubeconfig-out "$WORK/cfg/kubeconfig" >/dev/null 2>"$WORK/kubesim.err" &
PIDS+=($!)
for _ in $(seq 150); do [[ -s "$WORK/cfg/kubeconfig" ]] && break; sleep 0.2; done
[[ -s "$WORK/cfg/kubeconfig" ]] || { echo "kubesim did not start" >&2; exit 1; }
chmod 0755 "$WORK" "$WORK/cfg" && chmod 0644 "$WORK/cfg/kubeconfig"  # readable by 65532

# Runs "$@" in a private mount namespace in which ROOT (the image) is read-only at
# $WORK/root, with /dev, /proc, the kubeconfig at /mnt, a tmpfs owned by 65532 at
# DATA_DIR (if set) and every shell masked.
in_image() {
  local root=$1
  shift
  unshare --mount --propagation private bash -euo pipefail -c '
    root=$1 view=$2 data=$3 cfg=$4
    shift 4
    mkdir -p "$view"
    mount --bind "$root" "$view"
    mount -o remount,bind,ro "$view"
    mount --bind /dev "$view/dev"
    mount --bind /proc "$view/proc"
    mount --bind -o ro "$cfg" "$view/mnt"
    if [[ -n "$data" ]]; then
      mount -t tmpfs -o size=64m,uid=65532,gid=65532,mode=0750 tmpfs "$view$data"
    fi
    for sh in bin/sh bin/bash bin/dash usr/bin/sh usr/bin/bash usr/bin/dash; do
      if [[ -f "$view/$sh" && ! -L "$view/$sh" ]]; then mount --bind /dev/null "$view/$sh"; fi
    done
    exec "$@"
  ' in_image "$root" "$WORK/root" "${DATA_DIR:-}" "$WORK/cfg" "$@"
}

for name in ${IMAGES:-agent aggregator}; do
  ref="ghcr.io/ashiato/ashiato-$name:$VERSION"
  bin="/usr/local/bin/ashiato-$name"
  echo "== $ref"
  if ! $PODMAN image exists "$ref"; then
    bad "$ref not built (make images)"
    continue
  fi
  size=$($PODMAN image inspect --format '{{.Size}}' "$ref")
  layers=$($PODMAN image inspect --format '{{len .RootFS.Layers}}' "$ref")
  printf '  size %.1f MB (%s bytes), %s layers\n' "$(awk -v s="$size" 'BEGIN{print s/1e6}')" \
    "$size" "$layers"

  # Metadata.
  user=$($PODMAN image inspect --format '{{.Config.User}}' "$ref")
  [[ "$user" == 65532:65532 ]] && ok "USER $user" || bad "USER is '$user', want 65532:65532"
  ep=$($PODMAN image inspect --format '{{json .Config.Entrypoint}}' "$ref")
  [[ "$ep" == "[\"$bin\"]" ]] && ok "ENTRYPOINT $ep (exec form)" || bad "ENTRYPOINT $ep"
  for label in title description version ref.name source; do
    v=$($PODMAN image inspect --format "{{index .Config.Labels \"org.opencontainers.image.$label\"}}" "$ref")
    [[ -n "$v" ]] || bad "label org.opencontainers.image.$label missing"
  done
  [[ $($PODMAN image inspect --format '{{index .Config.Labels "org.opencontainers.image.version"}}' "$ref") == "$VERSION" ]] &&
    ok "OCI labels (version $VERSION)" || bad "org.opencontainers.image.version is not $VERSION"

  root=$($PODMAN image mount "$ref")
  MOUNTED+=("$ref")

  # Shared libraries, resolved by the image's own loader (ldd without its bash script).
  # The agent is static (make agent-static): it has no dynamic section at all.
  if [[ "$name" == agent ]]; then
    if readelf -d "$root$bin" 2>&1 | grep -q "no dynamic section"; then
      ok "static executable: loads no shared library"
    else
      bad "$bin is not a static executable"
    fi
  elif libs=$(chroot "$root" /lib64/ld-linux-x86-64.so.2 --list "$bin" 2>&1); then
    if grep -q "not found" <<<"$libs"; then
      bad "missing libraries: $(grep 'not found' <<<"$libs" | tr '\n' ' ')"
    else
      ok "ldd: $(wc -l <<<"$libs") libraries, none not found"
    fi
  else
    bad "the loader failed: $libs"
  fi

  # Read-only: even root cannot write into the view.
  if in_image "$root" chroot "$WORK/root" /usr/bin/touch /usr/local/bin/.probe 2>/dev/null; then
    bad "the root filesystem view is writable"
  else
    ok "root filesystem read-only; shells masked"
  fi

  if [[ "$name" == agent ]]; then
    want=""
    if command -v kubectl >/dev/null; then
      want=$(KUBECONFIG="$WORK/cfg/kubeconfig" kubectl get pods -A --field-selector spec.nodeName=node-1 \
        -o jsonpath='{range .items[*]}{.metadata.namespace}/{.metadata.name}{"\n"}{end}' | sort)
    fi
    if in_image "$root" chroot --userspec 65532:65532 "$WORK/root" "$bin" --oneshot --node node-1 \
      --kubeconfig /mnt/kubeconfig >"$WORK/oneshot.out" 2>"$WORK/oneshot.err"; then
      got=$(sed -n 's/.*"namespace":"\([^"]*\)".*"pod_name":"\([^"]*\)".*/\1\/\2/p' "$WORK/oneshot.out" | sort)
      n=$(grep -c . <<<"$got" || true)
      if [[ -n "$want" && "$got" != "$want" ]]; then
        bad "--oneshot printed other pods than kubectl lists: got [$got] want [$want]"
      elif ((n == 0)); then
        bad "--oneshot printed no pod: $(head -c 500 "$WORK/oneshot.out")"
      else
        ok "as 65532: --oneshot --node node-1 printed the node's $n pods${want:+ (same as kubectl)}"
        head -n 1 "$WORK/oneshot.out" | cut -c 1-160 | sed 's/^/       /'
      fi
    else
      bad "--oneshot failed: $(tail -n 5 "$WORK/oneshot.err")"
    fi
  else
    # The aggregator in the background of its own namespace; /healthz from the host.
    flags=(--listen 127.0.0.1:0 --auth none --read-auth none --kubeconfig /mnt/kubeconfig
      --data-dir /var/lib/ashiato)
    DATA_DIR=/var/lib/ashiato in_image "$root" chroot --userspec 65532:65532 "$WORK/root" "$bin" \
      "${flags[@]}" >"$WORK/aggregator.out" 2>"$WORK/aggregator.err" &
    agg=$!
    port=""
    for _ in $(seq 150); do
      port=$(sed -n 's/.*"serving on port \([0-9]*\).*/\1/p' "$WORK/aggregator.err" | head -n 1)
      [[ -n "$port" ]] && break
      kill -0 "$agg" 2>/dev/null || break
      sleep 0.2
    done
    if [[ -z "$port" ]]; then
      bad "the aggregator did not start: $(tail -n 5 "$WORK/aggregator.err")"
    else
      health=$(curl -fsS "http://127.0.0.1:$port/healthz" 2>&1) && ready=$(curl -fsS "http://127.0.0.1:$port/readyz" 2>&1) &&
        ok "as 65532: serves /healthz ($health) and /readyz ($ready) on 127.0.0.1:$port" ||
        bad "/healthz or /readyz failed: $health ${ready:-}"
      grep -q 'store /var/lib/ashiato/ashiato.db open' "$WORK/aggregator.err" &&
        ok "history store on the volume at /var/lib/ashiato" || bad "store not opened on the volume"
    fi
    # Stop it: unshare, its shell and chroot exec one another, so the aggregator is the
    # only child of the background subshell.
    for child in $(pgrep -P "$agg" || true); do kill -TERM "$child" 2>/dev/null || true; done
    wait "$agg" 2>/dev/null || true
  fi
  $PODMAN image unmount "$ref" >/dev/null
  MOUNTED=()
done

((FAILED == 0)) && echo "PASS: images" || { echo "FAIL: images" >&2; exit 1; }
