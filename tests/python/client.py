"""Scenarios for the Python `kubernetes` client against the apiserver under test.

Usage: client.py SERVER_URL SCENARIO. Each scenario prints one JSON object on stdout with what it
observed; the Rust test (tests/tests/python_client.rs) asserts on it. An unexpected exception
exits non-zero with its traceback on stderr.
"""

import json
import sys

from kubernetes import client, watch
from kubernetes.client.rest import ApiException


def core_api(url):
    config = client.Configuration()
    config.host = url
    return client.CoreV1Api(client.ApiClient(config))


def configmap(name, data):
    return client.V1ConfigMap(
        api_version="v1", kind="ConfigMap", metadata=client.V1ObjectMeta(name=name), data=data
    )


def api_error(err):
    """What an ApiException carried: the HTTP status and the Status body, if any."""
    try:
        body = json.loads(err.body) if err.body else None
    except ValueError:
        body = err.body
    return {"status": err.status, "reason": err.reason, "body": body}


def watch_events(api, namespace, resource_version, count):
    """The first `count` events after `resource_version`, as [type, name] pairs."""
    seen = []
    w = watch.Watch()
    for event in w.stream(
        api.list_namespaced_config_map,
        namespace,
        resource_version=resource_version,
        timeout_seconds=10,
    ):
        seen.append([event["type"], event["object"].metadata.name])
        if len(seen) >= count:
            w.stop()
    return seen


def list_watch_resume(api):
    ns = "default"
    api.create_namespaced_config_map(ns, configmap("a", {"v": "1"}))
    api.create_namespaced_config_map(ns, configmap("b", {"v": "1"}))
    listed = api.list_namespaced_config_map(ns)
    rv = listed.metadata.resource_version
    names = sorted(i.metadata.name for i in listed.items)
    # Changes after the list: the watch must start right after `rv` and see only these.
    api.create_namespaced_config_map(ns, configmap("c", {"v": "1"}))
    api.patch_namespaced_config_map("a", ns, {"data": {"v": "2"}})
    api.delete_namespaced_config_map("b", ns)
    events = watch_events(api, ns, rv, 3)
    return {"listed": names, "events": events}


def watch_expired(api, updates):
    ns = "default"
    first = api.create_namespaced_config_map(ns, configmap("hot", {"n": "0"}))
    first_rv = first.metadata.resource_version
    for n in range(1, updates + 1):
        api.patch_namespaced_config_map("hot", ns, {"data": {"n": str(n)}})
    expired = None
    try:
        watch_events(api, ns, first_rv, 1)
    except ApiException as err:
        expired = api_error(err)
    # The informer's answer to 410: relist, then watch from the new list's version.
    listed = api.list_namespaced_config_map(ns)
    rv = listed.metadata.resource_version
    api.create_namespaced_config_map(ns, configmap("after", {"n": "0"}))
    events = watch_events(api, ns, rv, 1)
    hot = [i.data["n"] for i in listed.items if i.metadata.name == "hot"]
    return {"expired": expired, "relisted_hot": hot, "events_after_relist": events}


def stale_replace(api):
    ns = "default"
    api.create_namespaced_config_map(ns, configmap("s", {"v": "1"}))
    stale = api.read_namespaced_config_map("s", ns)
    fresh = api.read_namespaced_config_map("s", ns)
    fresh.data = {"v": "2"}
    api.replace_namespaced_config_map("s", ns, fresh)
    stale.data = {"v": "stale"}
    conflict = None
    try:
        api.replace_namespaced_config_map("s", ns, stale)
    except ApiException as err:
        conflict = api_error(err)
    final = api.read_namespaced_config_map("s", ns).data
    return {"conflict": conflict, "final": final}


def paginate(api, total, limit):
    api.create_namespace(
        client.V1Namespace(api_version="v1", kind="Namespace", metadata=client.V1ObjectMeta(name="page"))
    )
    for n in range(total):
        api.create_namespaced_config_map("page", configmap("cm-%03d" % n, {"n": str(n)}))
    names = []
    pages = []
    token = None
    while True:
        kwargs = {"limit": limit}
        if token:
            kwargs["_continue"] = token
        page = api.list_namespaced_config_map("page", **kwargs)
        names.extend(i.metadata.name for i in page.items)
        pages.append(
            {
                "items": len(page.items),
                "remaining": page.metadata.remaining_item_count,
                "rv": page.metadata.resource_version,
            }
        )
        token = page.metadata._continue
        if not token:
            break
    return {"names": names, "pages": pages}


def bad_name(api):
    try:
        api.create_namespaced_config_map("default", configmap("Bad_Name", {"a": "b"}))
    except ApiException as err:
        return {"error": api_error(err)}
    return {"error": None}


def without_kind(api):
    """Generated models leave apiVersion and kind unset unless asked; the server takes them
    from the URL, so plain `V1ConfigMap(metadata=..., data=...)` works."""
    created = api.create_namespaced_config_map(
        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="bare"), data={"a": "b"})
    )
    replaced = api.replace_namespaced_config_map(
        "bare",
        "default",
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(
                name="bare", resource_version=created.metadata.resource_version
            ),
            data={"a": "c"},
        ),
    )
    return {"created": created.data, "replaced": replaced.data, "kind": replaced.kind}


def main():
    url, scenario = sys.argv[1], sys.argv[2]
    api = core_api(url)
    if scenario == "list_watch_resume":
        result = list_watch_resume(api)
    elif scenario == "watch_expired":
        result = watch_expired(api, int(sys.argv[3]))
    elif scenario == "stale_replace":
        result = stale_replace(api)
    elif scenario == "paginate":
        result = paginate(api, int(sys.argv[3]), int(sys.argv[4]))
    elif scenario == "without_kind":
        result = without_kind(api)
    elif scenario == "bad_name":
        result = bad_name(api)
    else:
        sys.exit("unknown scenario %r" % scenario)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
