//! The kubectl flows users hit, end to end through [`apply`] and [`update`].

use serde_json::{json, Value};

use super::*;

const T0: &str = "2024-05-01T10:00:00Z";
const T1: &str = "2024-05-01T11:00:00Z";
const T2: &str = "2024-05-01T12:00:00Z";

fn kubectl() -> Manager<'static> {
    Manager {
        name: "kubectl",
        subresource: "",
    }
}

fn deployment(replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "nginx", "labels": {"app": "nginx"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {"containers": [
                    {"name": "nginx", "image": image, "ports": [{"containerPort": 80}]}
                ]}
            }
        }
    })
}

fn entries(obj: &Value) -> Vec<Value> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn entry<'a>(obj: &'a Value, manager: &str, op: &str) -> Option<&'a Value> {
    obj.pointer("/metadata/managedFields")?
        .as_array()?
        .iter()
        .find(|e| e["manager"] == json!(manager) && e["operation"] == json!(op))
}

fn fields(obj: &Value, manager: &str, op: &str) -> Value {
    entry(obj, manager, op)
        .map(|e| e["fieldsV1"].clone())
        .unwrap_or(Value::Null)
}

/// Simulates the apiserver persisting a write: the server fills in uid etc., which nobody owns.
fn persisted(mut v: Value) -> Value {
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("uid".into(), json!("1234"));
        meta.insert("resourceVersion".into(), json!("7"));
    }
    v
}

#[test]
fn server_side_apply_creates_with_upstreams_fields_v1() {
    let obj = apply(
        None,
        &deployment(2, "nginx:1.25"),
        &kubectl(),
        "apps/v1",
        false,
        T0,
    )
    .expect("apply creates");
    assert_eq!(obj["spec"]["replicas"], json!(2));
    assert_eq!(
        obj["spec"]["template"]["spec"]["containers"][0]["image"],
        json!("nginx:1.25")
    );
    let mf = entries(&obj);
    assert_eq!(mf.len(), 1);
    assert_eq!(
        mf.first(),
        Some(&json!({
            "manager": "kubectl",
            "operation": "Apply",
            "apiVersion": "apps/v1",
            "time": T0,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:replicas": {},
                    "f:selector": {},
                    "f:template": {
                        "f:metadata": {"f:labels": {"f:app": {}}},
                        "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {
                            ".": {},
                            "f:image": {},
                            "f:name": {},
                            "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {
                                ".": {},
                                "f:containerPort": {}
                            }}
                        }}}
                    }
                }
            }
        }))
    );
}

#[test]
fn reapplying_the_same_config_is_a_no_op() {
    let cfg = deployment(2, "nginx:1.25");
    let live = persisted(apply(None, &cfg, &kubectl(), "apps/v1", false, T0).expect("create"));
    let again = apply(Some(&live), &cfg, &kubectl(), "apps/v1", false, T1).expect("re-apply");
    assert_eq!(
        again, live,
        "object and managedFields (including time) unchanged"
    );
}

#[test]
fn scale_then_apply_conflicts_on_replicas_and_force_takes_ownership() {
    let cfg = deployment(2, "nginx:1.25");
    let live = persisted(apply(None, &cfg, &kubectl(), "apps/v1", false, T0).expect("create"));

    // `kubectl scale --replicas=5`: an Update by "kubectl".
    let mut scaled = live.clone();
    scaled["spec"]["replicas"] = json!(5);
    let scaled = update(Some(&live), &scaled, &kubectl(), "apps/v1", T1);
    assert_eq!(
        fields(&scaled, "kubectl", "Update"),
        json!({"f:spec": {"f:replicas": {}}})
    );
    assert!(
        fields(&scaled, "kubectl", "Apply")
            .pointer("/f:spec/f:replicas")
            .is_none(),
        "the updater took replicas from the applier"
    );

    // Re-applying replicas: 3 conflicts with the scaler.
    let err = apply(
        Some(&scaled),
        &deployment(3, "nginx:1.25"),
        &kubectl(),
        "apps/v1",
        false,
        T2,
    )
    .expect_err("conflict");
    let ApplyError::Conflicts(conflicts) = &err else {
        panic!("want conflicts, got {err}")
    };
    assert_eq!(conflicts.len(), 1);
    let c = &conflicts[0];
    assert_eq!(
        (c.manager.as_str(), c.field.as_str()),
        ("kubectl", ".spec.replicas")
    );
    assert_eq!(c.message(), "conflict with \"kubectl\" using apps/v1");
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"kubectl\" using apps/v1: .spec.replicas"
    );

    // Re-applying the value the scaler set is no conflict: shared ownership.
    let shared = apply(
        Some(&scaled),
        &deployment(5, "nginx:1.25"),
        &kubectl(),
        "apps/v1",
        false,
        T2,
    )
    .expect("same value does not conflict");
    assert!(fields(&shared, "kubectl", "Apply")
        .pointer("/f:spec/f:replicas")
        .is_some());
    assert!(fields(&shared, "kubectl", "Update")
        .pointer("/f:spec/f:replicas")
        .is_some());

    // --force-conflicts: the applier takes replicas and the scaler's entry disappears.
    let forced = apply(
        Some(&scaled),
        &deployment(3, "nginx:1.25"),
        &kubectl(),
        "apps/v1",
        true,
        T2,
    )
    .expect("forced");
    assert_eq!(forced["spec"]["replicas"], json!(3));
    assert!(entry(&forced, "kubectl", "Update").is_none());
    assert!(fields(&forced, "kubectl", "Apply")
        .pointer("/f:spec/f:replicas")
        .is_some());
    assert_eq!(
        entry(&forced, "kubectl", "Apply").map(|e| &e["time"]),
        Some(&json!(T2))
    );
}

#[test]
fn multiple_conflicts_are_grouped_by_manager() {
    let live = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "managedFields": [
            {"manager": "b", "operation": "Update", "apiVersion": "v1", "time": T0,
             "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:x": {}, "f:y": {}}}},
            {"manager": "a", "operation": "Apply", "apiVersion": "v1", "time": T0,
             "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:z": {}}}}
        ]},
        "data": {"x": "1", "y": "2", "z": "3"}
    });
    let cfg = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                     "data": {"x": "9", "y": "9", "z": "9"}});
    let err = apply(
        Some(&live),
        &cfg,
        &Manager {
            name: "me",
            subresource: "",
        },
        "v1",
        false,
        T1,
    )
    .expect_err("conflicts");
    assert_eq!(
        err.to_string(),
        "Apply failed with 3 conflicts: conflicts with \"a\":\n- .data.z\nconflicts with \"b\" using v1:\n- .data.x\n- .data.y"
    );
}

#[test]
fn dropping_a_field_removes_it_unless_another_manager_owns_it() {
    let mut cfg = deployment(2, "nginx:1.25");
    cfg["metadata"]["labels"]["tier"] = json!("web");
    cfg["metadata"]["annotations"] = json!({"note": "x"});
    let live = persisted(apply(None, &cfg, &kubectl(), "apps/v1", false, T0).expect("create"));

    // Another manager updates the annotation, so it now co-owns... no: it takes it over.
    let mut edited = live.clone();
    edited["metadata"]["annotations"]["note"] = json!("y");
    let edited = update(
        Some(&live),
        &edited,
        &Manager {
            name: "editor",
            subresource: "",
        },
        "apps/v1",
        T1,
    );
    assert_eq!(
        fields(&edited, "editor", "Update"),
        json!({"f:metadata": {"f:annotations": {"f:note": {}}}})
    );

    // The applier stops applying the tier label and the annotation.
    let out = apply(
        Some(&edited),
        &deployment(2, "nginx:1.25"),
        &kubectl(),
        "apps/v1",
        false,
        T2,
    )
    .expect("apply");
    assert_eq!(
        out["metadata"]["labels"],
        json!({"app": "nginx"}),
        "unowned label removed"
    );
    assert_eq!(
        out["metadata"]["annotations"],
        json!({"note": "y"}),
        "owned annotation kept"
    );
    assert_eq!(
        out["metadata"]["uid"],
        json!("1234"),
        "server fields untouched"
    );
    assert_eq!(
        fields(&out, "kubectl", "Apply").pointer("/f:metadata"),
        Some(&json!({"f:labels": {"f:app": {}}}))
    );
}

#[test]
fn removing_a_container_removes_it_whole() {
    let mut two = deployment(1, "nginx:1.25");
    two["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .expect("containers")
        .push(json!({"name": "sidecar", "image": "busybox"}));
    let live = persisted(apply(None, &two, &kubectl(), "apps/v1", false, T0).expect("create"));
    // Defaulting adds a field nobody applied.
    let mut defaulted = live.clone();
    defaulted["spec"]["template"]["spec"]["containers"][1]["imagePullPolicy"] = json!("Always");
    let out = apply(
        Some(&defaulted),
        &deployment(1, "nginx:1.25"),
        &kubectl(),
        "apps/v1",
        false,
        T1,
    )
    .expect("apply");
    let containers = &out["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers.as_array().map(Vec::len), Some(1));
    assert_eq!(containers[0]["name"], json!("nginx"));
}

#[test]
fn containers_merge_by_name_across_two_appliers() {
    let a = deployment(1, "nginx:1.25");
    let live = persisted(apply(None, &a, &kubectl(), "apps/v1", false, T0).expect("create"));
    let sidecar = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "nginx"},
        "spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "envoy"}]}}}
    });
    let mesh = Manager {
        name: "mesh",
        subresource: "",
    };
    let both = apply(Some(&live), &sidecar, &mesh, "apps/v1", false, T1).expect("second applier");
    let names: Vec<&Value> = both["spec"]["template"]["spec"]["containers"]
        .as_array()
        .map(|c| c.iter().map(|c| &c["name"]).collect())
        .unwrap_or_default();
    assert_eq!(names, vec![&json!("nginx"), &json!("sidecar")]);
    assert_eq!(
        fields(&both, "mesh", "Apply"),
        json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"sidecar\"}": {
            ".": {}, "f:image": {}, "f:name": {}
        }}}}}})
    );
    // The first applier re-applies without knowing the sidecar: it stays.
    let again = apply(Some(&both), &a, &kubectl(), "apps/v1", false, T2).expect("re-apply");
    assert_eq!(
        again["spec"]["template"]["spec"]["containers"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    // The second applier changing the first's image conflicts.
    let mut steal = sidecar.clone();
    steal["spec"]["template"]["spec"]["containers"] = json!([{"name": "nginx", "image": "other"}]);
    let err = apply(Some(&both), &steal, &mesh, "apps/v1", false, T2).expect_err("conflict");
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"kubectl\": .spec.template.spec.containers[name=\"nginx\"].image"
    );
}

#[test]
fn status_subresource_is_tracked_separately() {
    let live = persisted(
        apply(
            None,
            &deployment(1, "nginx:1.25"),
            &kubectl(),
            "apps/v1",
            false,
            T0,
        )
        .expect("create"),
    );
    let mut with_status = live.clone();
    with_status["status"] = json!({"replicas": 1, "conditions": [
        {"type": "Available", "status": "True"}
    ]});
    let controller = Manager {
        name: "kube-controller-manager",
        subresource: "status",
    };
    let out = update(Some(&live), &with_status, &controller, "apps/v1", T1);
    let e = entry(&out, "kube-controller-manager", "Update").expect("status entry");
    assert_eq!(e["subresource"], json!("status"));
    assert_eq!(
        e["fieldsV1"],
        json!({"f:status": {
            "f:conditions": {".": {}, "k:{\"type\":\"Available\"}": {".": {}, "f:status": {}, "f:type": {}}},
            "f:replicas": {}
        }})
    );
    // A main-resource apply neither owns nor conflicts on status.
    let mut cfg = deployment(1, "nginx:1.25");
    cfg["status"] = json!({"replicas": 7});
    let applied = apply(Some(&out), &cfg, &kubectl(), "apps/v1", false, T2).expect("no conflict");
    assert!(fields(&applied, "kubectl", "Apply")
        .get("f:status")
        .is_none());
    assert!(entry(&applied, "kube-controller-manager", "Update").is_some());
    // A status apply owns only status.
    let status_cfg = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "nginx"}, "spec": {"replicas": 9}, "status": {"replicas": 1}});
    let st = apply(
        Some(&out),
        &status_cfg,
        &Manager {
            name: "ctl",
            subresource: "status",
        },
        "apps/v1",
        false,
        T2,
    )
    .expect("status apply");
    let e = entry(&st, "ctl", "Apply").expect("entry");
    assert_eq!(e["fieldsV1"], json!({"f:status": {"f:replicas": {}}}));
    assert_eq!(e["subresource"], json!("status"));
}

#[test]
fn create_records_everything_with_upstreams_dots() {
    let mut obj = deployment(1, "nginx:1.25");
    obj["spec"]["template"]["spec"]["containers"][0]["resources"] = json!({});
    let out = update(
        None,
        &obj,
        &Manager {
            name: "kubectl-create",
            subresource: "",
        },
        "apps/v1",
        T0,
    );
    let e = entry(&out, "kubectl-create", "Update").expect("entry");
    assert_eq!(e["time"], json!(T0));
    assert_eq!(
        e["fieldsV1"],
        json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {
                "f:replicas": {},
                "f:selector": {},
                "f:template": {
                    "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                    "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {
                        ".": {},
                        "f:image": {},
                        "f:name": {},
                        "f:ports": {
                            ".": {},
                            "k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}
                        },
                        "f:resources": {}
                    }}}
                }
            }
        })
    );
}

#[test]
fn update_moves_changed_fields_between_managers() {
    let cm = |data: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": data});
    let alice = Manager {
        name: "alice",
        subresource: "",
    };
    let bob = Manager {
        name: "bob",
        subresource: "",
    };
    let v1 = persisted(update(
        None,
        &cm(json!({"a": "1", "b": "2"})),
        &alice,
        "v1",
        T0,
    ));
    assert_eq!(
        fields(&v1, "alice", "Update"),
        json!({"f:data": {".": {}, "f:a": {}, "f:b": {}}})
    );

    let v2 = update(
        Some(&v1),
        &cm(json!({"a": "1", "b": "3", "c": "4"})),
        &bob,
        "v1",
        T1,
    );
    assert_eq!(
        fields(&v2, "alice", "Update"),
        json!({"f:data": {".": {}, "f:a": {}}})
    );
    assert_eq!(
        fields(&v2, "bob", "Update"),
        json!({"f:data": {"f:b": {}, "f:c": {}}})
    );

    // Removing a field removes it from its owner; an owner left with nothing is dropped.
    let v3 = update(Some(&v2), &cm(json!({"a": "1"})), &alice, "v1", T2);
    assert!(entry(&v3, "bob", "Update").is_none());
    assert_eq!(
        entry(&v3, "alice", "Update").map(|e| &e["time"]),
        Some(&json!(T0)),
        "no gain, no new time"
    );

    // A write that changes nothing keeps every entry and time.
    let same = update(Some(&v2), &v2, &bob, "v1", T2);
    assert_eq!(entries(&same), entries(&v2));

    // Updates of an object nobody tracks yet stay untracked.
    let untracked = update(Some(&cm(json!({}))), &cm(json!({"a": "1"})), &bob, "v1", T1);
    assert!(untracked.pointer("/metadata/managedFields").is_none());
}

#[test]
fn invalid_configurations_are_rejected() {
    let m = kubectl();
    let cases = [
        (json!([1]), "must be an object"),
        (json!({"kind": "Deployment", "metadata": {"name": "x"}}), "apiVersion and kind"),
        (json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {}}), "metadata.name"),
        (json!({"apiVersion": "apps/v2", "kind": "Deployment", "metadata": {"name": "x"}}),
         "Specified patch version: apps/v2, expected: apps/v1"),
        (json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "x", "managedFields": [{}]}}), "managedFields must be nil"),
        (json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
                "spec": {"template": {"spec": {"containers": [{"image": "a"}]}}}}),
         ".spec.template.spec.containers: element 0: associative list with keys has an element that omits key field \"name\" (and doesn't have default value)"),
        (json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
                "spec": {"template": {"spec": {"containers": [{"name": "a"}, {"name": "a"}]}}}}),
         "duplicate entries for key [name=\"a\"]"),
    ];
    for (cfg, want) in cases {
        match apply(None, &cfg, &m, "apps/v1", false, T0) {
            Err(ApplyError::Invalid(msg)) => {
                assert!(msg.contains(want), "{msg} should contain {want}")
            }
            other => panic!("{cfg}: want Invalid, got {other:?}"),
        }
    }
    let bad_live = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                          "metadata": {"name": "nginx", "managedFields": "oops"}});
    assert!(matches!(
        apply(
            Some(&bad_live),
            &deployment(1, "x"),
            &m,
            "apps/v1",
            false,
            T0
        ),
        Err(ApplyError::ManagedFields(_))
    ));
}

#[test]
fn unknown_kinds_use_the_deduced_schema() {
    let cfg = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
                     "spec": {"size": 3, "tags": ["a", "b"], "nested": {"x": 1}}});
    let out = apply(None, &cfg, &kubectl(), "example.com/v1", false, T0).expect("apply");
    assert_eq!(
        fields(&out, "kubectl", "Apply"),
        json!({"f:spec": {".": {}, "f:nested": {".": {}, "f:x": {}}, "f:size": {}, "f:tags": {}}})
    );
    // Lists are atomic: applying a shorter list replaces it.
    let mut shorter = cfg.clone();
    shorter["spec"]["tags"] = json!(["c"]);
    let out = apply(
        Some(&out),
        &shorter,
        &kubectl(),
        "example.com/v1",
        false,
        T1,
    )
    .expect("apply");
    assert_eq!(out["spec"]["tags"], json!(["c"]));
}

#[test]
fn sets_and_keyed_lists_with_defaulted_keys() {
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "finalizers": ["a"]},
                     "spec": {"ports": [{"port": 80, "targetPort": 8080}]}});
    let out = apply(None, &svc, &kubectl(), "v1", false, T0).expect("apply");
    assert_eq!(
        fields(&out, "kubectl", "Apply"),
        json!({
            "f:metadata": {"f:finalizers": {"v:\"a\"": {}}},
            "f:spec": {"f:ports": {"k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:port": {}, "f:targetPort": {}}}}
        })
    );
    // Another applier adds a finalizer: the set is merged, not replaced.
    let cfg = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "finalizers": ["b"]}});
    let out = apply(
        Some(&out),
        &cfg,
        &Manager {
            name: "other",
            subresource: "",
        },
        "v1",
        false,
        T1,
    )
    .expect("apply");
    assert_eq!(out["metadata"]["finalizers"], json!(["a", "b"]));
}

#[test]
fn deep_input_does_not_overflow() {
    let mut deep = json!("leaf");
    // Deeper than MAX_DEPTH and than serde_json's parse limit, but within what Value's own
    // recursive clone/drop/eq handle.
    for _ in 0..400 {
        deep = json!({ "x": deep });
    }
    let cfg = json!({"apiVersion": "example.com/v1", "kind": "W", "metadata": {"name": "w"}, "spec": deep});
    assert!(matches!(
        apply(None, &cfg, &kubectl(), "example.com/v1", false, T0),
        Err(ApplyError::Invalid(_))
    ));
    let out = update(None, &cfg, &kubectl(), "example.com/v1", T0);
    assert!(out.pointer("/metadata/managedFields").is_none());
}
