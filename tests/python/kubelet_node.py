"""A Node registered by the kubelet, read through the Python `kubernetes` client.

Usage: kubelet_node.py SERVER_URL NODE. Prints the node's conditions, capacity, allocatable,
addresses, nodeInfo and kubelet port, and its Lease's holder, as one JSON object for
tests/tests/kubelet_node.rs.
"""

import json
import sys

from kubernetes import client


def main():
    configuration = client.Configuration()
    configuration.host = sys.argv[1]
    api_client = client.ApiClient(configuration)
    core = client.CoreV1Api(api_client)
    node = core.read_node_status(sys.argv[2])
    status = node.status
    info = status.node_info
    lease = client.CoordinationV1Api(api_client).read_namespaced_lease(
        sys.argv[2], "kube-node-lease"
    )
    print(json.dumps({
        "conditions": {
            c.type: {"status": c.status, "reason": c.reason, "message": c.message}
            for c in status.conditions or []
        },
        "capacity": status.capacity,
        "allocatable": status.allocatable,
        "addresses": [[a.type, a.address] for a in status.addresses or []],
        "kubeletVersion": info.kubelet_version,
        "containerRuntimeVersion": info.container_runtime_version,
        "operatingSystem": info.operating_system,
        "architecture": info.architecture,
        "kubeletPort": status.daemon_endpoints.kubelet_endpoint.port,
        "leaseHolder": lease.spec.holder_identity,
        "leaseDurationSeconds": lease.spec.lease_duration_seconds,
    }))


if __name__ == "__main__":
    main()
