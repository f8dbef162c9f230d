#!/usr/bin/env bash
# Installs what building and testing the project needs on a fresh Debian machine (run as root):
# etcd (server + etcdctl) for the etcd backend's tests and benchmarks, protoc for crates that
# compile .proto files (etcd-client), and util-linux's setpriv (test processes die with their
# parent). Skips apt entirely when everything is already there.
set -euo pipefail

need=()
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || need+=(etcd-client)
command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
command -v setpriv >/dev/null 2>&1 || need+=(util-linux)
command -v gcc >/dev/null 2>&1 || need+=(build-essential)
command -v curl >/dev/null 2>&1 || need+=(curl)

if ((${#need[@]})); then
    echo "install-deps: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${need[@]}"
else
    echo "install-deps: etcd, etcdctl, protoc, setpriv, gcc, curl already present"
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "install-deps: cargo not found; install the Rust toolchain (rustup) first" >&2
    exit 1
fi
etcd --version | head -1
protoc --version
