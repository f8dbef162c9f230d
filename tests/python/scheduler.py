"""A pod placed by kube-scheduler, read through the Python `kubernetes` client.

Usage: scheduler.py SERVER_URL POD. Prints the pod's node, scheduler name and PodScheduled
condition as one JSON object for tests/tests/scheduler.rs.
"""

import json
import sys

from kubernetes import client


def main():
    configuration = client.Configuration()
    configuration.host = sys.argv[1]
    api = client.CoreV1Api(client.ApiClient(configuration))
    pod = api.read_namespaced_pod(sys.argv[2], "default")
    scheduled = [c for c in pod.status.conditions or [] if c.type == "PodScheduled"]
    print(json.dumps({
        "node": pod.spec.node_name,
        "scheduler": pod.spec.scheduler_name,
        "scheduled": scheduled[0].status if scheduled else None,
    }))


if __name__ == "__main__":
    main()
