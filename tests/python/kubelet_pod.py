"""A pod run by the kubelet, read through the Python `kubernetes` client.

Usage: kubelet_pod.py SERVER_URL NAMESPACE POD. Prints the pod's phase, IP, conditions and
container states as one JSON object for tests/tests/kubelet_pods.rs.
"""

import json
import sys

from kubernetes import client


def main():
    configuration = client.Configuration()
    configuration.host = sys.argv[1]
    core = client.CoreV1Api(client.ApiClient(configuration))
    pod = core.read_namespaced_pod_status(sys.argv[3], sys.argv[2])
    status = pod.status
    print(json.dumps({
        "phase": status.phase,
        "podIP": status.pod_ip,
        "conditions": {c.type: c.status for c in status.conditions or []},
        "containers": {
            c.name: {"ready": c.ready, "running": c.state.running is not None}
            for c in status.container_statuses or []
        },
    }))


if __name__ == "__main__":
    main()
