#!/usr/bin/env bash
# Brings up a local cluster on this machine and keeps it in the foreground (Ctrl-C stops it):
# installs what is needed, builds the binaries (release), starts kube-apiserver on the embedded
# store, kube-controller-manager, kube-scheduler and a kubelet (node `local-node`), and writes a
# kubeconfig for kubectl.
#
#   deploy/local-up.sh                      # embedded store in $LOCAL_UP_DIR (default _output/local-up)
#   ETCD_SERVERS=http://127.0.0.1:2379 deploy/local-up.sh   # use a running etcd instead
#   CONTAINER_RUNTIME_ENDPOINT=unix:///run/containerd/containerd.sock deploy/local-up.sh
#                                           # run pods in a containerd you started (default:
#                                           # the kubelet's simulated runtime, sim://, where pods
#                                           # become Running without processes)
#
# Then, in another shell:  export KUBECONFIG=$LOCAL_UP_DIR/kubeconfig; kubectl get ns
#
# The cluster grows with the project: daemons that exist are started here (today the apiserver,
# the controller manager, the scheduler and a kubelet; kube-proxy joins as its issue lands).
set -euo pipefail
cd "$(dirname "$0")/.."

LOCAL_UP_DIR=${LOCAL_UP_DIR:-$PWD/_output/local-up}
INSECURE_PORT=${INSECURE_PORT:-8080}
SECURE_PORT=${SECURE_PORT:-6443}
ETCD_SERVERS=${ETCD_SERVERS:-}
CONTAINER_RUNTIME_ENDPOINT=${CONTAINER_RUNTIME_ENDPOINT:-sim://}
KUBELET_PORT=${KUBELET_PORT:-10250}
NODE_NAME=${NODE_NAME:-local-node}

deploy/install-deps.sh
echo "local-up: building release binaries (first build takes a few minutes)"
cargo build --release --locked -p apiserver -p controller-manager -p scheduler -p kubelet

mkdir -p "$LOCAL_UP_DIR" "$LOCAL_UP_DIR/manifests"
# The service-account key pair: pods' service-account tokens (TokenRequest) are signed with it.
if [[ ! -f "$LOCAL_UP_DIR/sa.key" ]]; then
    openssl genrsa -out "$LOCAL_UP_DIR/sa.key" 2048 2>/dev/null
    openssl rsa -in "$LOCAL_UP_DIR/sa.key" -pubout -out "$LOCAL_UP_DIR/sa.pub" 2>/dev/null
fi
args=(--data-dir "$LOCAL_UP_DIR/data" --cert-dir "$LOCAL_UP_DIR/certs"
      --secure-port "$SECURE_PORT" --insecure-port "$INSECURE_PORT"
      --service-account-signing-key-file "$LOCAL_UP_DIR/sa.key"
      --service-account-key-file "$LOCAL_UP_DIR/sa.pub"
      --service-account-issuer https://kubernetes.default.svc.cluster.local)
if [[ -n "$ETCD_SERVERS" ]]; then
    args+=(--etcd-servers "$ETCD_SERVERS")
fi

cat >"$LOCAL_UP_DIR/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: http://127.0.0.1:$INSECURE_PORT
contexts:
- name: local
  context:
    cluster: local
    user: local
current-context: local
users:
- name: local
  user: {}
EOF

pids=()
cleanup() {
    echo "local-up: stopping"
    # Newest first: clients stop before the apiserver they talk to.
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[$i]}" 2>/dev/null || true; done
    wait || true
}
trap cleanup EXIT INT TERM

echo "local-up: starting kube-apiserver (log: $LOCAL_UP_DIR/kube-apiserver.log)"
target/release/kube-apiserver "${args[@]}" >"$LOCAL_UP_DIR/kube-apiserver.log" 2>&1 &
pids+=($!)

printf 'local-up: waiting for the apiserver to be ready'
for _ in $(seq 1 120); do
    if curl -fsS "http://127.0.0.1:$INSECURE_PORT/readyz" >/dev/null 2>&1; then
        echo
        echo "local-up: starting kube-controller-manager (log: $LOCAL_UP_DIR/kube-controller-manager.log)"
        # --root-ca-file: what every namespace's kube-root-ca.crt carries (pods' API trust).
        target/release/kube-controller-manager \
            --kubeconfig "$LOCAL_UP_DIR/kubeconfig" --secure-port 0 \
            --cert-dir "$LOCAL_UP_DIR/certs" \
            --root-ca-file "$LOCAL_UP_DIR/certs/apiserver.crt" \
            >"$LOCAL_UP_DIR/kube-controller-manager.log" 2>&1 &
        pids+=($!)
        echo "local-up: starting kube-scheduler (log: $LOCAL_UP_DIR/kube-scheduler.log)"
        target/release/kube-scheduler \
            --kubeconfig "$LOCAL_UP_DIR/kubeconfig" --secure-port 0 \
            --cert-dir "$LOCAL_UP_DIR/certs" \
            >"$LOCAL_UP_DIR/kube-scheduler.log" 2>&1 &
        pids+=($!)
        echo "local-up: starting kubelet $NODE_NAME on $CONTAINER_RUNTIME_ENDPOINT (log: $LOCAL_UP_DIR/kubelet.log)"
        target/release/kubelet \
            --kubeconfig "$LOCAL_UP_DIR/kubeconfig" \
            --container-runtime-endpoint "$CONTAINER_RUNTIME_ENDPOINT" \
            --hostname-override "$NODE_NAME" \
            --root-dir "$LOCAL_UP_DIR/kubelet" \
            --cert-dir "$LOCAL_UP_DIR/kubelet/pki" \
            --pod-manifest-path "$LOCAL_UP_DIR/manifests" \
            --port "$KUBELET_PORT" --healthz-port 0 --fail-swap-on=false \
            >"$LOCAL_UP_DIR/kubelet.log" 2>&1 &
        pids+=($!)
        cat <<EOF
local-up: the cluster is up.

    export KUBECONFIG=$LOCAL_UP_DIR/kubeconfig
    kubectl get ns
    kubectl get nodes            # $NODE_NAME, Ready after a few seconds
    kubectl run web --image=busybox --restart=Never -- sleep 3600

Static pods: manifests in $LOCAL_UP_DIR/manifests.
Not yet here: kubectl logs/exec/port-forward (the apiserver has no kubelet client certificate
until the bootstrap issue; the kubelet refuses anonymous callers) and Services' cluster IPs
(kube-proxy).

HTTPS (self-signed, certificate in $LOCAL_UP_DIR/certs): https://127.0.0.1:$SECURE_PORT
Press Ctrl-C to stop.
EOF
        wait "${pids[0]}"
        exit $?
    fi
    if ! kill -0 "${pids[0]}" 2>/dev/null; then
        echo
        echo "local-up: kube-apiserver exited; its log:" >&2
        tail -20 "$LOCAL_UP_DIR/kube-apiserver.log" >&2
        exit 1
    fi
    printf '.'
    sleep 0.5
done
echo
echo "local-up: the apiserver did not become ready in 60s; see $LOCAL_UP_DIR/kube-apiserver.log" >&2
exit 1
