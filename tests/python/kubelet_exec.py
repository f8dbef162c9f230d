"""`kubectl exec`'s path from the Python `kubernetes` client: its stream() speaks WebSocket
`v4.channel.k8s.io` to the apiserver, which the kubelet translates to the runtime's SPDY.

Usage: kubelet_exec.py SERVER_URL NAMESPACE POD. Prints what the exec printed on stdout and
stderr, and its exit code, as JSON.
"""

import json
import sys

from kubernetes import client
from kubernetes.stream import stream


def main():
    url, namespace, pod = sys.argv[1:4]
    config = client.Configuration()
    config.host = url
    api = client.CoreV1Api(client.ApiClient(config))
    resp = stream(
        api.connect_get_namespaced_pod_exec,
        pod,
        namespace,
        command=["sh", "-c", "echo out; echo err >&2; exit 2"],
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
        _preload_content=False,
    )
    resp.run_forever(timeout=60)
    out = resp.read_stdout() if resp.peek_stdout() else ""
    err = resp.read_stderr() if resp.peek_stderr() else ""
    print(json.dumps({"stdout": out, "stderr": err, "returncode": resp.returncode}))


if __name__ == "__main__":
    main()
