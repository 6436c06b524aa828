#!/usr/bin/env bash
# `make agent-static` (last step): the static agent's TLS (libcurl on mbedTLS
# 2.28, docs/benchmarks.md "Agent memory") against `openssl s_server`, which
# demands a client certificate, as a kube-apiserver with --client-ca-file does:
#   - a server addressed by IP is verified by its iPAddress SAN (mbedTLS 2.28
#     alone matches DNS names only; common/mbedtls_ip_san.h), IPv4 and IPv6;
#   - one addressed by name by its DNS SAN;
#   - RSA and EC (P-256, as k3s uses) server keys;
#   - a certificate for another IP, or from another CA, is refused;
#   - kubeconfig client-certificate-data/client-key-data with RSA and EC keys
#     reach the server, which verifies them.
# A handshake that succeeded shows as the agent's "response is not JSON"
# (s_server -www answers HTML); a refused one as a certificate error.
#
#   bash tests/images/static_agent_tls_check.sh AGENT_BINARY
set -uo pipefail
agent="$(readlink -f "${1:?usage: static_agent_tls_check.sh AGENT_BINARY}")"
command -v openssl >/dev/null || { echo "static_agent_tls_check: skipped: no openssl"; exit 0; }
dir="$(mktemp -d)"
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
cd "$dir" || exit 1

quiet() { "$@" >/dev/null 2>&1 || { echo "static_agent_tls_check: failed: $*" >&2; exit 1; }; }
ca() { quiet openssl req -x509 -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.crt" -days 2 -subj "/CN=$1"; }
# leaf NAME CA KEYTYPE SUBJECT [SAN]
leaf() {
  if [ "$3" = ec ]; then quiet openssl ecparam -name prime256v1 -genkey -noout -out "$1.key"
  else quiet openssl genrsa -out "$1.key" 2048; fi
  quiet openssl req -new -key "$1.key" -out "$1.csr" -subj "$4"
  if [ -n "${5:-}" ]; then echo "subjectAltName=$5" >"$1.ext"; else : >"$1.ext"; fi
  quiet openssl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" -CAcreateserial -out "$1.crt" \
    -days 2 -extfile "$1.ext"
}
ca ca
ca other-ca
leaf server ca rsa "/CN=kube-apiserver" "DNS:localhost,IP:127.0.0.1,IP:::1"
leaf server-ec ca ec "/CN=kube-apiserver" "DNS:localhost,IP:127.0.0.1"
leaf server-other-ip ca rsa "/CN=127.0.0.1" "DNS:kubernetes.default.svc,IP:127.0.0.2"
leaf server-other-ca other-ca rsa "/CN=kube-apiserver" "DNS:localhost,IP:127.0.0.1"
leaf client-rsa ca rsa "/O=system:nodes/CN=system:node:node-1"
leaf client-ec ca ec "/O=system:nodes/CN=system:node:node-1"

failed=0
# check NAME SERVER_CERT HOST CLIENT WANT(ok|refused)
check() {
  local name="$1" cert="$2" host="$3" client="$4" want="$5" port out
  for _ in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 40000))
    openssl s_server -quiet -accept "$port" -cert "$cert.crt" -key "$cert.key" -CAfile ca.crt \
      -Verify 1 -verify_return_error -www >"s_server-$name.log" 2>&1 &
    server_pid=$!
    sleep 0.5
    kill -0 "$server_pid" 2>/dev/null && break
    server_pid=""
  done
  cat >"kubeconfig-$name" <<KC
apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: https://$host:$port
    certificate-authority-data: $(base64 -w0 ca.crt)
users:
- name: u
  user:
    client-certificate-data: $(base64 -w0 "$client.crt")
    client-key-data: $(base64 -w0 "$client.key")
contexts:
- name: c
  context: {cluster: c, user: u}
current-context: c
KC
  out="$(timeout 20 "$agent" --kubeconfig "kubeconfig-$name" --node node-1 --oneshot 2>&1)"
  kill "$server_pid" 2>/dev/null
  wait "$server_pid" 2>/dev/null
  server_pid=""
  local got=other
  if grep -q "response is not JSON" <<<"$out"; then got=ok
  elif grep -qi "certificate\|SSL" <<<"$out"; then got=refused; fi
  if [ "$got" = "$want" ]; then
    echo "ok      $name ($want)"
  else
    echo "FAILED  $name: want $want, got $got:"
    tail -3 <<<"$out"
    tail -3 "s_server-$name.log"
    failed=1
  fi
}

check ipv4-san-rsa-client server 127.0.0.1 client-rsa ok
check ipv4-san-ec-client server 127.0.0.1 client-ec ok
check dns-san server localhost client-rsa ok
check ec-server-key server-ec 127.0.0.1 client-rsa ok
if ip -6 addr show lo 2>/dev/null | grep -q "::1"; then
  check ipv6-san server "[::1]" client-ec ok
fi
check other-ip-refused server-other-ip 127.0.0.1 client-rsa refused
check other-ca-refused server-other-ca 127.0.0.1 client-rsa refused
exit "$failed"
