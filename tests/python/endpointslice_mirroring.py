"""The EndpointSlice mirroring controller seen through the Python `kubernetes` client.

Usage: endpointslice_mirroring.py SERVER_URL. Creates a selector-less Service and hand-written
Endpoints with three ready addresses, waits for the mirrored slice (the controller manager runs
with --mirroring-max-endpoints-per-subset=2) and for the warning about the address left out, and
prints what it read as one JSON object for tests/tests/kcm_endpointslicemirroring.rs.
"""

import json
import sys
import time

from kubernetes import client

NS = "default"
NAME = "py-ext"
MANAGED_BY = "endpointslice.kubernetes.io/managed-by=endpointslicemirroring-controller.k8s.io"
DEADLINE_SECONDS = 20


def poll(what, check):
    """Calls check() every 100 ms until it returns something truthy; fails after the deadline."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise TimeoutError("timed out waiting for " + what)
        time.sleep(0.1)


def main():
    config = client.Configuration()
    config.host = sys.argv[1]
    api_client = client.ApiClient(config)
    core = client.CoreV1Api(api_client)
    discovery = client.DiscoveryV1Api(api_client)

    core.create_namespaced_service(
        NS,
        client.V1Service(
            metadata=client.V1ObjectMeta(name=NAME),
            spec=client.V1ServiceSpec(
                ports=[client.V1ServicePort(name="dns", port=53, protocol="UDP")]
            ),
        ),
    )
    core.create_namespaced_endpoints(
        NS,
        client.V1Endpoints(
            metadata=client.V1ObjectMeta(name=NAME),
            subsets=[
                client.V1EndpointSubset(
                    addresses=[
                        client.V1EndpointAddress(ip=ip)
                        for ip in ["10.2.0.3", "10.2.0.1", "10.2.0.2"]
                    ],
                    ports=[client.CoreV1EndpointPort(name="dns", port=53, protocol="UDP")],
                )
            ],
        ),
    )

    selector = MANAGED_BY + ",kubernetes.io/service-name=" + NAME
    items = poll(
        "a mirrored slice",
        lambda: discovery.list_namespaced_endpoint_slice(NS, label_selector=selector).items,
    )
    slices = []
    for item in items:
        owner = item.metadata.owner_references[0]
        slices.append(
            {
                "address_type": item.address_type,
                "addresses": sorted(e.addresses[0] for e in item.endpoints),
                "ready": [e.conditions.ready for e in item.endpoints],
                "ports": [[p.name, p.port, p.protocol] for p in item.ports],
                "service_name": item.metadata.labels.get("kubernetes.io/service-name"),
                "owner": [owner.kind, owner.name, owner.controller],
            }
        )

    def warning():
        for event in core.list_namespaced_event(NS).items:
            if event.involved_object.name == NAME and event.reason == "TooManyAddressesToMirror":
                return {"type": event.type, "message": event.message}
        return None

    event = poll("a TooManyAddressesToMirror event", warning)
    print(json.dumps({"slices": slices, "event": event}))


if __name__ == "__main__":
    main()
