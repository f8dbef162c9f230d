#!/usr/bin/env bash
# Installs what building and testing the project needs on a fresh Debian machine (run as root):
# etcd (server + etcdctl) for the etcd backend's tests and benchmarks, protoc for crates that
# compile .proto files (etcd-client, the CRI API), util-linux's setpriv (test processes die with
# their parent), and the kubelet's runtime for the CRI tests: containerd + runc, Debian's CNI
# plugins (/usr/lib/cni), busybox-static (test images are built from /bin/busybox), iproute2
# (network namespaces), iptables (CNI's nat rules) and nsenter. Skips apt entirely when everything is already there.
set -euo pipefail

need=()
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || need+=(etcd-client)
command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
# protoc's well-known types (google/protobuf/descriptor.proto, ...) that etcd-client's protos
# import: protobuf-compiler only recommends them, and apt here installs no recommends.
[[ -f /usr/include/google/protobuf/descriptor.proto ]] || need+=(libprotobuf-dev)
command -v setpriv >/dev/null 2>&1 || need+=(util-linux)
command -v gcc >/dev/null 2>&1 || need+=(build-essential)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v containerd >/dev/null 2>&1 || need+=(containerd)
command -v runc >/dev/null 2>&1 || need+=(runc)
[[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local && -x /usr/lib/cni/loopback ]] ||
    need+=(containernetworking-plugins)
# The static build: the test images carry /bin/busybox alone, without a libc beside it.
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' ||
    need+=(busybox-static)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
# CNI's bridge (ipMasq) and portmap plugins program iptables in the node's namespace.
command -v iptables >/dev/null 2>&1 || need+=(iptables)
command -v nsenter >/dev/null 2>&1 || need+=(util-linux)

if ((${#need[@]})); then
    echo "install-deps: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${need[@]}"
else
    echo "install-deps: etcd, etcdctl, protoc (+ its includes), setpriv, gcc, curl, containerd, runc,"
    echo "install-deps: CNI plugins, busybox-static, ip, iptables, nsenter already present"
fi

# The end-to-end tests (crate e2e, tests/) drive the apiserver with the Python `kubernetes`
# client too; it lives in its own venv at a fixed path so the tests find it without guessing.
E2E_VENV=/opt/kube-rs-e2e-venv
if ! "$E2E_VENV/bin/python" -c 'import kubernetes' >/dev/null 2>&1; then
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        echo "install-deps: installing python3-venv"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q
        apt-get install -y -q --no-install-recommends python3 python3-venv
    fi
    echo "install-deps: installing the Python kubernetes client into $E2E_VENV"
    python3 -m venv "$E2E_VENV"
    "$E2E_VENV/bin/pip" install -q --disable-pip-version-check 'kubernetes>=31,<36'
else
    echo "install-deps: Python kubernetes client already in $E2E_VENV"
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "install-deps: cargo not found; install the Rust toolchain (rustup) first" >&2
    exit 1
fi
# sed reads all of its input: `head` would close the pipe early and, under pipefail, fail the
# script with SIGPIPE whenever etcd writes its second line late.
etcd --version | sed -n 1p
protoc --version
containerd --version
