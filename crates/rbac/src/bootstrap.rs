//! Upstream's bootstrap policy (Kubernetes 1.33 with default feature gates): the ClusterRoles,
//! ClusterRoleBindings and the kube-system / kube-public Roles and RoleBindings kube-apiserver
//! ensures at start, each labelled `kubernetes.io/bootstrapping: rbac-defaults` and annotated
//! `rbac.authorization.kubernetes.io/autoupdate: "true"`.
//!
//! The policy is written as a small line-oriented table (see [`POLICY`]) rather than as JSON so
//! that it reads like upstream's rule builders and a reviewer can diff it against upstream's
//! golden files. Every `system:controller:<name>` ClusterRole gets its ClusterRoleBinding to the
//! ServiceAccount `kube-system/<name>`, as upstream's `addControllerRole` does.

use serde_json::{json, Map, Value};

use crate::{AUTO_UPDATE_ANNOTATION, GROUP_NAME};

/// What [`bootstrap_policy`] returns, in v1 JSON, ready to create.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BootstrapPolicy {
    pub cluster_roles: Vec<Value>,
    pub cluster_role_bindings: Vec<Value>,
    pub roles: Vec<Value>,
    pub role_bindings: Vec<Value>,
}

const CONTROLLER_PREFIX: &str = "system:controller:";
const AGGREGATE_TO: &str = "rbac.authorization.k8s.io/aggregate-to-";

/// The table. One object per header line, followed by its rules:
///
/// - `cr NAME [k=v ...]`: ClusterRole with extra labels; `ctl NAME`: controller ClusterRole
///   `system:controller:NAME` plus its binding; `role NAMESPACE NAME`: Role;
/// - `agg SUFFIX`: an aggregation selector `rbac.authorization.k8s.io/aggregate-to-SUFFIX: "true"`;
/// - `r GROUPS RESOURCES VERBS [NAMES]`, `u URLS VERBS`: rules; lists are comma-separated, `""`
///   is the core group; verbs `R`, `W`, `RW` expand to upstream's Read, Write, ReadWrite;
///   `ev` is upstream's `eventsRule()`;
/// - `crb NAME ROLE SUBJECTS...`, `rb NAMESPACE NAME KIND ROLE SUBJECTS...`: bindings; subjects are
///   `G:group`, `U:user` or `SA:namespace:name`.
const POLICY: &str = r#"
cr admin
agg admin
cr cluster-admin
r * * *
u * *
cr edit rbac.authorization.k8s.io/aggregate-to-admin=true
agg edit
cr system:aggregate-to-admin rbac.authorization.k8s.io/aggregate-to-admin=true
r authorization.k8s.io localsubjectaccessreviews create
r rbac.authorization.k8s.io rolebindings,roles RW
cr system:aggregate-to-edit rbac.authorization.k8s.io/aggregate-to-edit=true
r "" pods/attach,pods/exec,pods/portforward,pods/proxy,secrets,services/proxy R
r "" serviceaccounts impersonate
r "" pods,pods/attach,pods/exec,pods/portforward,pods/proxy W
r "" pods/eviction create
r "" configmaps,events,persistentvolumeclaims,replicationcontrollers,replicationcontrollers/scale,secrets,serviceaccounts,services,services/proxy W
r "" serviceaccounts/token create
r apps daemonsets,deployments,deployments/rollback,deployments/scale,replicasets,replicasets/scale,statefulsets,statefulsets/scale W
r autoscaling horizontalpodautoscalers W
r batch cronjobs,jobs W
r extensions daemonsets,deployments,deployments/rollback,deployments/scale,ingresses,networkpolicies,replicasets,replicasets/scale,replicationcontrollers/scale W
r policy poddisruptionbudgets W
r networking.k8s.io ingresses,networkpolicies W
r coordination.k8s.io leases RW
cr system:aggregate-to-view rbac.authorization.k8s.io/aggregate-to-view=true
r "" configmaps,endpoints,persistentvolumeclaims,persistentvolumeclaims/status,pods,replicationcontrollers,replicationcontrollers/scale,serviceaccounts,services,services/status R
r "" bindings,events,limitranges,namespaces/status,pods/log,pods/status,replicationcontrollers/status,resourcequotas,resourcequotas/status R
r "" namespaces R
r discovery.k8s.io endpointslices R
r apps controllerrevisions,daemonsets,daemonsets/status,deployments,deployments/scale,deployments/status,replicasets,replicasets/scale,replicasets/status,statefulsets,statefulsets/scale,statefulsets/status R
r autoscaling horizontalpodautoscalers,horizontalpodautoscalers/status R
r batch cronjobs,cronjobs/status,jobs,jobs/status R
r extensions daemonsets,daemonsets/status,deployments,deployments/scale,deployments/status,ingresses,ingresses/status,networkpolicies,replicasets,replicasets/scale,replicasets/status,replicationcontrollers/scale R
r policy poddisruptionbudgets,poddisruptionbudgets/status R
r networking.k8s.io ingresses,ingresses/status,networkpolicies R
cr system:auth-delegator
r authentication.k8s.io tokenreviews create
r authorization.k8s.io subjectaccessreviews create
cr system:basic-user
r authorization.k8s.io selfsubjectaccessreviews,selfsubjectrulesreviews create
r authentication.k8s.io selfsubjectreviews create
cr system:certificates.k8s.io:certificatesigningrequests:nodeclient
r certificates.k8s.io certificatesigningrequests/nodeclient create
cr system:certificates.k8s.io:certificatesigningrequests:selfnodeclient
r certificates.k8s.io certificatesigningrequests/selfnodeclient create
cr system:certificates.k8s.io:kube-apiserver-client-approver
r certificates.k8s.io signers approve kubernetes.io/kube-apiserver-client
cr system:certificates.k8s.io:kube-apiserver-client-kubelet-approver
r certificates.k8s.io signers approve kubernetes.io/kube-apiserver-client-kubelet
cr system:certificates.k8s.io:kubelet-serving-approver
r certificates.k8s.io signers approve kubernetes.io/kubelet-serving
cr system:certificates.k8s.io:legacy-unknown-approver
r certificates.k8s.io signers approve kubernetes.io/legacy-unknown
cr system:discovery
u /api,/api/*,/apis,/apis/*,/healthz,/livez,/openapi,/openapi/*,/readyz,/version,/version/ get
cr system:heapster
r "" events,namespaces,nodes,pods R
r extensions deployments R
cr system:kube-aggregator
r "" endpoints,services R
cr system:kube-controller-manager
ev
r coordination.k8s.io leases create
r coordination.k8s.io leases get,update kube-controller-manager
r "" secrets,serviceaccounts create
r "" secrets delete
r "" configmaps,namespaces,secrets,serviceaccounts get
r "" secrets,serviceaccounts update
r authentication.k8s.io tokenreviews create
r authorization.k8s.io subjectaccessreviews create
r * * list,watch
r "" serviceaccounts/token create
cr system:kube-dns
r "" endpoints,services list,watch
cr system:kube-scheduler
ev
r coordination.k8s.io leases create
r coordination.k8s.io leases get,update kube-scheduler
r "" nodes R
r "" pods delete,get,list,watch
r "" bindings,pods/binding create
r "" pods/status patch,update
r "" replicationcontrollers,services R
r apps,extensions replicasets R
r apps statefulsets R
r policy poddisruptionbudgets R
r "" persistentvolumeclaims,persistentvolumes R
r authentication.k8s.io tokenreviews create
r authorization.k8s.io subjectaccessreviews create
r storage.k8s.io csinodes R
r "" namespaces R
r storage.k8s.io csidrivers R
r storage.k8s.io csistoragecapacities R
cr system:kubelet-api-admin
r "" nodes R
r "" nodes proxy
r "" nodes/log,nodes/metrics,nodes/proxy,nodes/stats *
cr system:monitoring
u /healthz,/healthz/*,/livez,/livez/*,/metrics,/metrics/slis,/readyz,/readyz/* get
cr system:node
r authentication.k8s.io tokenreviews create
r authorization.k8s.io localsubjectaccessreviews,subjectaccessreviews create
r "" services R
r "" nodes create,get,list,watch
r "" nodes/status patch,update
r "" nodes patch,update
r "" events create,patch,update
r "" pods R
r "" pods create,delete
r "" pods/status patch,update
r "" pods/eviction create
r "" configmaps,secrets R
r "" persistentvolumeclaims,persistentvolumes get
r "" endpoints get
r certificates.k8s.io certificatesigningrequests create,get,list,watch
r coordination.k8s.io leases create,delete,get,patch,update
r storage.k8s.io volumeattachments get
r "" serviceaccounts/token create
r "" persistentvolumeclaims/status get,patch,update
r storage.k8s.io csidrivers R
r storage.k8s.io csinodes create,delete,get,patch,update
r node.k8s.io runtimeclasses R
cr system:node-bootstrapper
r certificates.k8s.io certificatesigningrequests create,get,list,watch
cr system:node-problem-detector
r "" nodes get
r "" nodes/status patch
ev
cr system:node-proxier
r "" endpoints,services list,watch
r "" nodes R
ev
r discovery.k8s.io endpointslices list,watch
cr system:persistent-volume-provisioner
r "" persistentvolumes create,delete,get,list,watch
r "" persistentvolumeclaims get,list,update,watch
r storage.k8s.io storageclasses R
r "" events watch
ev
cr system:public-info-viewer
u /healthz,/livez,/readyz,/version,/version/ get
cr system:service-account-issuer-discovery
u /.well-known/openid-configuration,/openid/v1/jwks get
cr system:volume-scheduler
r "" persistentvolumes get,list,patch,update,watch
r storage.k8s.io storageclasses R
r "" persistentvolumeclaims get,list,patch,update,watch
cr view rbac.authorization.k8s.io/aggregate-to-edit=true
agg view

ctl attachdetach-controller
r "" persistentvolumeclaims,persistentvolumes list,watch
r "" nodes R
r "" nodes/status patch,update
r "" pods list,watch
ev
r storage.k8s.io volumeattachments create,delete,get,list,watch
r storage.k8s.io csidrivers R
r storage.k8s.io csinodes R
ctl certificate-controller
r certificates.k8s.io certificatesigningrequests delete,get,list,watch
r certificates.k8s.io certificatesigningrequests/approval,certificatesigningrequests/status update
r certificates.k8s.io signers approve kubernetes.io/kube-apiserver-client-kubelet
r certificates.k8s.io signers sign kubernetes.io/kube-apiserver-client,kubernetes.io/kube-apiserver-client-kubelet,kubernetes.io/kubelet-serving,kubernetes.io/legacy-unknown
r authorization.k8s.io subjectaccessreviews create
ev
ctl clusterrole-aggregation-controller
r rbac.authorization.k8s.io clusterroles escalate,get,list,patch,update,watch
ctl cronjob-controller
r batch cronjobs get,list,update,watch
r batch jobs create,delete,get,list,patch,update,watch
r batch cronjobs/status update
r batch cronjobs/finalizers update
r "" pods delete,list,watch
ev
ctl daemon-set-controller
r apps,extensions daemonsets R
r apps,extensions daemonsets/status update
r apps,extensions daemonsets/finalizers update
r "" nodes list,watch
r "" pods create,delete,list,patch,watch
r "" pods/binding create
r apps controllerrevisions create,delete,get,list,patch,update,watch
ev
ctl deployment-controller
r apps,extensions deployments get,list,update,watch
r apps,extensions deployments/status update
r apps,extensions deployments/finalizers update
r apps,extensions replicasets create,delete,get,list,patch,update,watch
r "" pods get,list,update,watch
ev
ctl disruption-controller
r apps,extensions deployments R
r apps,extensions replicasets R
r "" replicationcontrollers R
r policy poddisruptionbudgets R
r apps statefulsets R
r policy poddisruptionbudgets/status update
r "" pods/status patch,update
r * */scale get
ev
ctl endpoint-controller
r "" pods,services R
r "" endpoints create,delete,get,list,update,watch
r "" endpoints/restricted create
ev
ctl endpointslice-controller
r "" nodes,pods,services R
r "" services/finalizers update
r discovery.k8s.io endpointslices create,delete,get,list,update,watch
ev
ctl endpointslicemirroring-controller
r "" endpoints,services R
r "" services/finalizers update
r "" endpoints/finalizers update
r discovery.k8s.io endpointslices create,delete,get,list,update,watch
ev
ctl ephemeral-volume-controller
r "" pods R
r "" pods/finalizers update
r "" persistentvolumeclaims create,get,list,watch
ev
ctl expand-controller
r "" persistentvolumes get,list,patch,update,watch
r "" persistentvolumeclaims/status patch,update
r "" persistentvolumeclaims R
ev
ctl generic-garbage-collector
r * * delete,get,list,patch,update,watch
ev
ctl horizontal-pod-autoscaler
r autoscaling horizontalpodautoscalers R
r autoscaling horizontalpodautoscalers/status update
r * */scale get,update
r "" pods list,watch
r metrics.k8s.io pods list,watch
r custom.metrics.k8s.io * R
r external.metrics.k8s.io * R
ev
ctl job-controller
r batch jobs get,list,patch,update,watch
r batch jobs/status update
r batch jobs/finalizers update
r "" pods create,delete,list,patch,watch
ev
ctl legacy-service-account-token-cleaner
r "" configmaps get kube-apiserver-legacy-service-account-token-tracking
r "" secrets delete,patch
ctl namespace-controller
r "" namespaces delete,get,list,watch
r "" namespaces/finalize,namespaces/status update
r * * delete,deletecollection,get,list,watch
ctl node-controller
r "" nodes delete,get,list,patch,update,watch
r "" nodes/status patch,update
r "" pods/status patch,update
r "" pods delete,get,list,watch
ev
ctl persistent-volume-binder
r "" persistentvolumes create,delete,get,list,update,watch
r "" persistentvolumes/status update
r "" persistentvolumeclaims get,list,update,watch
r "" persistentvolumeclaims/status update
r "" pods create,delete,get,list,watch
r storage.k8s.io storageclasses R
r "" nodes list,watch
ev
r "" events watch
ctl pod-garbage-collector
r "" pods delete,list,watch
r "" nodes R
r "" pods/status patch
ctl pv-protection-controller
r "" persistentvolumes get,list,update,watch
ev
ctl pvc-protection-controller
r "" persistentvolumeclaims get,list,update,watch
r "" persistentvolumeclaims/status update
r "" pods R
ev
ctl replicaset-controller
r apps,extensions replicasets get,list,update,watch
r apps,extensions replicasets/status update
r apps,extensions replicasets/finalizers update
r "" pods create,delete,list,patch,watch
ev
ctl replication-controller
r "" replicationcontrollers get,list,update,watch
r "" replicationcontrollers/status update
r "" replicationcontrollers/finalizers update
r "" pods create,delete,list,patch,watch
ev
ctl resourcequota-controller
r * * list,watch
r "" resourcequotas/status update
ev
ctl root-ca-cert-publisher
r "" configmaps create,update
ev
ctl route-controller
r "" nodes list,watch
r "" nodes/status patch
ev
ctl selinux-warning-controller
ev
r "" persistentvolumes R
r "" persistentvolumeclaims R
r "" pods R
r storage.k8s.io csidrivers R
ctl service-account-controller
r "" serviceaccounts create
ev
ctl service-cidrs-controller
r networking.k8s.io servicecidrs get,list,patch,update,watch
r networking.k8s.io servicecidrs/finalizers patch,update
r networking.k8s.io servicecidrs/status patch,update
r networking.k8s.io ipaddresses R
ev
ctl service-controller
r "" services R
r "" services/status patch,update
r "" nodes list,watch
ev
ctl statefulset-controller
r "" pods list,watch
r apps statefulsets R
r apps statefulsets/status update
r apps statefulsets/finalizers update
r "" pods create,delete,get,patch,update
r apps controllerrevisions create,delete,get,list,patch,update,watch
r "" persistentvolumeclaims create,get,list,watch
r "" persistentvolumeclaims delete,update
r "" pods/finalizers update
ev
ctl ttl-after-finished-controller
r batch jobs delete,get,list,watch
ev
ctl ttl-controller
r "" nodes list,patch,update,watch
ev
ctl validatingadmissionpolicy-status-controller
r admissionregistration.k8s.io validatingadmissionpolicies R
r admissionregistration.k8s.io validatingadmissionpolicies/status get,patch,update
ev

crb cluster-admin cluster-admin G:system:masters
crb system:monitoring system:monitoring G:system:monitoring
crb system:discovery system:discovery G:system:authenticated
crb system:basic-user system:basic-user G:system:authenticated
crb system:public-info-viewer system:public-info-viewer G:system:authenticated G:system:unauthenticated
crb system:node-proxier system:node-proxier U:system:kube-proxy
crb system:kube-controller-manager system:kube-controller-manager U:system:kube-controller-manager
crb system:kube-dns system:kube-dns SA:kube-system:kube-dns
crb system:kube-scheduler system:kube-scheduler U:system:kube-scheduler
crb system:volume-scheduler system:volume-scheduler U:system:kube-scheduler
crb system:node system:node
crb system:service-account-issuer-discovery system:service-account-issuer-discovery G:system:serviceaccounts

role kube-public system:controller:bootstrap-signer
r "" configmaps R
r "" configmaps update cluster-info
ev
role kube-system extension-apiserver-authentication-reader
r "" configmaps R extension-apiserver-authentication
role kube-system system::leader-locking-kube-controller-manager
r coordination.k8s.io leases create,get,list,update,watch
r coordination.k8s.io leasecandidates create,get,list,update,watch
role kube-system system::leader-locking-kube-scheduler
r coordination.k8s.io leases create,get,list,update,watch
r coordination.k8s.io leasecandidates create,get,list,update,watch
role kube-system system:controller:bootstrap-signer
r "" secrets R
role kube-system system:controller:cloud-provider
r "" configmaps create,get,list,watch
role kube-system system:controller:token-cleaner
r "" secrets delete,get,list,watch
ev

rb kube-public system:controller:bootstrap-signer Role system:controller:bootstrap-signer SA:kube-system:bootstrap-signer
rb kube-system system::extension-apiserver-authentication-reader Role extension-apiserver-authentication-reader U:system:kube-controller-manager U:system:kube-scheduler
rb kube-system system::leader-locking-kube-controller-manager Role system::leader-locking-kube-controller-manager U:system:kube-controller-manager SA:kube-system:kube-controller-manager SA:kube-system:leader-election-controller
rb kube-system system::leader-locking-kube-scheduler Role system::leader-locking-kube-scheduler U:system:kube-scheduler SA:kube-system:kube-scheduler
rb kube-system system:controller:bootstrap-signer Role system:controller:bootstrap-signer SA:kube-system:bootstrap-signer
rb kube-system system:controller:cloud-provider Role system:controller:cloud-provider SA:kube-system:cloud-provider
rb kube-system system:controller:token-cleaner Role system:controller:token-cleaner SA:kube-system:token-cleaner
"#;

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "delete", "deletecollection", "patch", "update"];
const READ_WRITE: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// A line of [`POLICY`] that does not parse; only a broken table can produce one, which the
/// tests rule out.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("bootstrap policy line {line}: {text:?}")]
pub struct TableError {
    pub line: usize,
    pub text: String,
}

fn list(field: &str) -> Vec<String> {
    field
        .split(',')
        .map(|s| {
            if s == "\"\"" {
                String::new()
            } else {
                s.to_owned()
            }
        })
        .collect()
}

fn verbs(field: &str) -> Vec<String> {
    let expand = |set: &[&str]| set.iter().map(|s| (*s).to_owned()).collect();
    match field {
        "R" => expand(READ),
        "W" => expand(WRITE),
        "RW" => expand(READ_WRITE),
        other => list(other),
    }
}

fn metadata(name: &str, namespace: Option<&str>, extra_labels: &[(&str, &str)]) -> Value {
    let mut labels = Map::new();
    labels.insert("kubernetes.io/bootstrapping".into(), json!("rbac-defaults"));
    for (k, v) in extra_labels {
        labels.insert((*k).to_owned(), json!(v));
    }
    let mut m = json!({
        "name": name,
        "labels": labels,
        "annotations": { AUTO_UPDATE_ANNOTATION: "true" },
    });
    if let (Some(ns), Some(obj)) = (namespace, m.as_object_mut()) {
        obj.insert("namespace".into(), json!(ns));
    }
    m
}

fn subject(token: &str) -> Option<Value> {
    let (kind, rest) = token.split_once(':')?;
    Some(match kind {
        "G" => json!({"kind": "Group", "apiGroup": GROUP_NAME, "name": rest}),
        "U" => json!({"kind": "User", "apiGroup": GROUP_NAME, "name": rest}),
        "SA" => {
            let (ns, name) = rest.split_once(':')?;
            json!({"kind": "ServiceAccount", "name": name, "namespace": ns})
        }
        _ => return None,
    })
}

fn binding(
    kind: &str,
    meta: Value,
    role_kind: &str,
    role: &str,
    subjects: &[&str],
) -> Option<Value> {
    let subjects: Option<Vec<Value>> = subjects.iter().map(|s| subject(s)).collect();
    let mut b = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": meta,
        "roleRef": {"apiGroup": GROUP_NAME, "kind": role_kind, "name": role},
    });
    let subjects = subjects?;
    // Upstream's system:node binding has no subjects and serializes without the field.
    if !subjects.is_empty() {
        if let Some(obj) = b.as_object_mut() {
            obj.insert("subjects".into(), Value::Array(subjects));
        }
    }
    Some(b)
}

fn parse(table: &str) -> Result<BootstrapPolicy, TableError> {
    let mut out = BootstrapPolicy::default();
    // The object rule lines are added to: (is cluster role, index).
    let mut current: Option<(bool, usize)> = None;
    for (i, raw) in table.lines().enumerate() {
        let tokens: Vec<&str> = raw.split_whitespace().collect();
        let err = || TableError {
            line: i + 1,
            text: raw.to_owned(),
        };
        let Some((&head, args)) = tokens.split_first() else {
            continue;
        };
        match (head, args) {
            ("cr", [name, labels @ ..]) => {
                let labels: Option<Vec<(&str, &str)>> =
                    labels.iter().map(|l| l.split_once('=')).collect();
                out.cluster_roles.push(json!({
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "ClusterRole",
                    "metadata": metadata(name, None, &labels.ok_or_else(err)?),
                    "rules": [],
                }));
                current = Some((true, out.cluster_roles.len() - 1));
            }
            ("ctl", [short]) => {
                let name = format!("{CONTROLLER_PREFIX}{short}");
                out.cluster_roles.push(json!({
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "ClusterRole",
                    "metadata": metadata(&name, None, &[]),
                    "rules": [],
                }));
                current = Some((true, out.cluster_roles.len() - 1));
                let sa = format!("SA:kube-system:{short}");
                let b = binding(
                    "ClusterRoleBinding",
                    metadata(&name, None, &[]),
                    "ClusterRole",
                    &name,
                    &[sa.as_str()],
                )
                .ok_or_else(err)?;
                out.cluster_role_bindings.push(b);
            }
            ("role", [ns, name]) => {
                out.roles.push(json!({
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "Role",
                    "metadata": metadata(name, Some(ns), &[]),
                    "rules": [],
                }));
                current = Some((false, out.roles.len() - 1));
            }
            ("agg", [suffix]) => {
                let role = current
                    .filter(|(cluster, _)| *cluster)
                    .and_then(|(_, idx)| out.cluster_roles.get_mut(idx))
                    .and_then(Value::as_object_mut)
                    .ok_or_else(err)?;
                let selector = json!({"matchLabels": {format!("{AGGREGATE_TO}{suffix}"): "true"}});
                role.insert(
                    "aggregationRule".into(),
                    json!({"clusterRoleSelectors": [selector]}),
                );
                // Aggregated roles start with no rules; the controller fills them in.
                role.insert("rules".into(), Value::Null);
            }
            ("r" | "u" | "ev", _) => {
                let rule = match (head, args) {
                    ("ev", []) => json!({
                        "verbs": ["create", "patch", "update"],
                        "apiGroups": ["", "events.k8s.io"],
                        "resources": ["events"],
                    }),
                    ("u", [urls, v]) => json!({"verbs": verbs(v), "nonResourceURLs": list(urls)}),
                    ("r", [groups, resources, v]) => json!({
                        "verbs": verbs(v), "apiGroups": list(groups), "resources": list(resources),
                    }),
                    ("r", [groups, resources, v, names]) => json!({
                        "verbs": verbs(v), "apiGroups": list(groups), "resources": list(resources),
                        "resourceNames": list(names),
                    }),
                    _ => return Err(err()),
                };
                let target = match current {
                    Some((true, idx)) => out.cluster_roles.get_mut(idx),
                    Some((false, idx)) => out.roles.get_mut(idx),
                    None => None,
                };
                target
                    .and_then(|r| r.get_mut("rules"))
                    .and_then(Value::as_array_mut)
                    .ok_or_else(err)?
                    .push(rule);
            }
            ("crb", [name, role, subjects @ ..]) => {
                current = None;
                let b = binding(
                    "ClusterRoleBinding",
                    metadata(name, None, &[]),
                    "ClusterRole",
                    role,
                    subjects,
                )
                .ok_or_else(err)?;
                out.cluster_role_bindings.push(b);
            }
            ("rb", [ns, name, kind, role, subjects @ ..]) => {
                current = None;
                let b = binding(
                    "RoleBinding",
                    metadata(name, Some(ns), &[]),
                    kind,
                    role,
                    subjects,
                )
                .ok_or_else(err)?;
                out.role_bindings.push(b);
            }
            _ => return Err(err()),
        }
    }
    Ok(out)
}

/// Upstream's bootstrap policy. Cluster-scoped bindings come first as upstream's
/// `ClusterRoleBindings()` lists them, followed by the controller bindings.
pub fn bootstrap_policy() -> BootstrapPolicy {
    // The table is a constant checked by the tests, so a parse error cannot reach here at
    // runtime; falling back to an empty policy keeps this free of panics all the same.
    let mut p = parse(POLICY).unwrap_or_default();
    let (controllers, mut system): (Vec<Value>, Vec<Value>) =
        p.cluster_role_bindings.into_iter().partition(|b| {
            b.pointer("/metadata/name")
                .and_then(Value::as_str)
                .is_some_and(|n| n.starts_with(CONTROLLER_PREFIX))
        });
    system.extend(controllers);
    p.cluster_role_bindings = system;
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{aggregated_rules, Policy, Request, User};

    fn names(objects: &[Value]) -> Vec<&str> {
        objects
            .iter()
            .filter_map(|o| o.pointer("/metadata/name").and_then(Value::as_str))
            .collect()
    }

    #[test]
    fn table_parses() {
        let p = parse(POLICY);
        assert!(p.is_ok(), "{p:?}");
    }

    #[test]
    fn bad_lines_are_reported() {
        assert_eq!(parse("r a b").err().map(|e| e.line), Some(1));
        assert!(parse("cr x\nbogus").is_err());
        assert!(parse("r \"\" pods get").is_err(), "a rule needs a role");
        assert!(parse("crb a b X:y").is_err());
    }

    #[test]
    fn contains_the_upstream_objects() {
        let p = bootstrap_policy();
        let roles = names(&p.cluster_roles);
        for want in [
            "cluster-admin",
            "admin",
            "edit",
            "view",
            "system:aggregate-to-admin",
            "system:basic-user",
            "system:discovery",
            "system:public-info-viewer",
            "system:node",
            "system:node-proxier",
            "system:kube-scheduler",
            "system:kube-controller-manager",
            "system:kube-dns",
            "system:node-bootstrapper",
            "system:auth-delegator",
            "system:heapster",
            "system:kube-aggregator",
            "system:persistent-volume-provisioner",
            "system:certificates.k8s.io:kubelet-serving-approver",
            "system:monitoring",
            "system:service-account-issuer-discovery",
            "system:controller:deployment-controller",
            "system:controller:replicaset-controller",
            "system:controller:namespace-controller",
        ] {
            assert!(roles.contains(&want), "missing cluster role {want}");
        }
        let bindings = names(&p.cluster_role_bindings);
        assert_eq!(bindings.first(), Some(&"cluster-admin"));
        assert!(bindings.contains(&"system:controller:deployment-controller"));
        // Every controller role has its binding.
        let controllers = roles
            .iter()
            .filter(|n| n.starts_with(CONTROLLER_PREFIX))
            .count();
        let controller_bindings = bindings
            .iter()
            .filter(|n| n.starts_with(CONTROLLER_PREFIX))
            .count();
        assert_eq!(controllers, controller_bindings);
        assert_eq!(names(&p.roles).len(), 7);
        assert_eq!(names(&p.role_bindings).len(), 7);
        for o in p
            .cluster_roles
            .iter()
            .chain(&p.cluster_role_bindings)
            .chain(&p.roles)
            .chain(&p.role_bindings)
        {
            assert_eq!(
                o.pointer("/metadata/labels/kubernetes.io~1bootstrapping"),
                Some(&json!("rbac-defaults"))
            );
            assert_eq!(
                o.pointer("/metadata/annotations/rbac.authorization.kubernetes.io~1autoupdate"),
                Some(&json!("true"))
            );
        }
    }

    #[test]
    fn shapes_match_upstream_json() {
        let p = bootstrap_policy();
        let find = |list: &[Value], name: &str| {
            list.iter()
                .find(|o| o.pointer("/metadata/name") == Some(&json!(name)))
                .cloned()
        };
        let crb = find(&p.cluster_role_bindings, "system:kube-dns");
        assert_eq!(
            crb.and_then(|b| b.get("subjects").cloned()),
            Some(
                json!([{"kind": "ServiceAccount", "name": "kube-dns", "namespace": "kube-system"}])
            )
        );
        let node = find(&p.cluster_role_bindings, "system:node");
        assert_eq!(node.map(|b| b.get("subjects").is_none()), Some(true));
        let admin = find(&p.cluster_roles, "admin");
        assert_eq!(
            admin
                .as_ref()
                .and_then(|a| a.pointer("/aggregationRule/clusterRoleSelectors/0"))
                .cloned(),
            Some(json!({"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-admin": "true"}}))
        );
        assert_eq!(
            admin.and_then(|a| a.get("rules").cloned()),
            Some(Value::Null)
        );
        let ca = find(&p.cluster_roles, "cluster-admin");
        assert_eq!(
            ca.and_then(|a| a.get("rules").cloned()),
            Some(json!([
                {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},
                {"verbs": ["*"], "nonResourceURLs": ["*"]},
            ]))
        );
    }

    /// The bootstrap policy as a whole authorizes what upstream's does.
    #[test]
    fn bootstrap_policy_authorizes_like_upstream() {
        let p = bootstrap_policy();
        let mut cluster_roles = p.cluster_roles.clone();
        for (name, rules) in aggregated_rules(&p.cluster_roles) {
            for r in cluster_roles.iter_mut() {
                if r.pointer("/metadata/name") == Some(&json!(name)) {
                    if let Some(m) = r.as_object_mut() {
                        m.insert("rules".into(), Value::Array(rules.clone()));
                    }
                }
            }
        }
        let mut role_bindings = p.role_bindings.clone();
        role_bindings.push(json!({
            "metadata": {"name": "dev-admin", "namespace": "dev"},
            "roleRef": {"apiGroup": GROUP_NAME, "kind": "ClusterRole", "name": "admin"},
            "subjects": [{"kind": "User", "name": "dana"}],
        }));
        let policy = Policy::new(
            p.roles,
            cluster_roles,
            role_bindings,
            p.cluster_role_bindings,
        );
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        let masters = s(&["system:masters", "system:authenticated"]);
        let authed = s(&["system:authenticated"]);
        let anon = s(&["system:unauthenticated"]);
        let sa_groups = s(&[
            "system:serviceaccounts",
            "system:serviceaccounts:kube-system",
            "system:authenticated",
        ]);
        let res = |verb, group, resource, sub, ns| Request {
            verb,
            api_group: group,
            resource,
            subresource: sub,
            namespace: ns,
            ..Request::default()
        };
        let url = |path| Request {
            verb: "get",
            non_resource_path: Some(path),
            ..Request::default()
        };
        let cases: Vec<(&str, &[String], Request, bool)> = vec![
            (
                "admin",
                &masters,
                res("delete", "apps", "deployments", "", "x"),
                true,
            ),
            ("admin", &masters, url("/anything/at/all"), true),
            ("anyone", &authed, url("/healthz"), true),
            ("anyone", &authed, url("/apis/apps/v1"), true),
            ("anyone", &authed, url("/metrics"), false),
            (
                "anyone",
                &authed,
                res(
                    "create",
                    "authorization.k8s.io",
                    "selfsubjectaccessreviews",
                    "",
                    "",
                ),
                true,
            ),
            (
                "anyone",
                &authed,
                res("list", "", "pods", "", "default"),
                false,
            ),
            ("system:anonymous", &anon, url("/version"), true),
            ("system:anonymous", &anon, url("/apis"), false),
            (
                "system:kube-scheduler",
                &authed,
                res("create", "", "pods", "binding", "default"),
                true,
            ),
            // Unnamed lease updates only through the kube-system leader-locking Role.
            (
                "system:kube-scheduler",
                &authed,
                res("update", "coordination.k8s.io", "leases", "", "kube-system"),
                true,
            ),
            (
                "system:kube-scheduler",
                &authed,
                res("update", "coordination.k8s.io", "leases", "", "default"),
                false,
            ),
            (
                "system:kube-proxy",
                &authed,
                res("watch", "discovery.k8s.io", "endpointslices", "", ""),
                true,
            ),
            (
                "system:kube-controller-manager",
                &authed,
                res("list", "apps", "deployments", "", ""),
                true,
            ),
            (
                "system:serviceaccount:kube-system:deployment-controller",
                &sa_groups,
                res("create", "apps", "replicasets", "", "default"),
                true,
            ),
            (
                "system:serviceaccount:kube-system:deployment-controller",
                &sa_groups,
                res("delete", "", "pods", "", "default"),
                false,
            ),
            (
                "system:serviceaccount:kube-system:horizontal-pod-autoscaler",
                &sa_groups,
                res("update", "apps", "deployments", "scale", "default"),
                true,
            ),
            (
                "system:serviceaccount:kube-system:kube-dns",
                &sa_groups,
                res("list", "", "services", "", ""),
                true,
            ),
            (
                "system:serviceaccount:default:x",
                &sa_groups,
                url("/openid/v1/jwks"),
                true,
            ),
            (
                "system:serviceaccount:kube-system:kube-scheduler",
                &sa_groups,
                res("update", "coordination.k8s.io", "leases", "", "kube-system"),
                true,
            ),
            (
                "system:serviceaccount:kube-system:kube-scheduler",
                &sa_groups,
                res("update", "coordination.k8s.io", "leases", "", "default"),
                false,
            ),
            // dana is admin (aggregated from edit and view) in dev only.
            (
                "dana",
                &authed,
                res(
                    "create",
                    "rbac.authorization.k8s.io",
                    "rolebindings",
                    "",
                    "dev",
                ),
                true,
            ),
            ("dana", &authed, res("get", "", "pods", "log", "dev"), true),
            (
                "dana",
                &authed,
                res("delete", "apps", "deployments", "", "dev"),
                true,
            ),
            (
                "dana",
                &authed,
                res("update", "", "resourcequotas", "", "dev"),
                false,
            ),
            ("dana", &authed, res("get", "", "pods", "", "prod"), false),
        ];
        for (name, groups, request, want) in cases {
            let (allowed, _) = policy.authorize(&User { name, groups }, &request);
            assert_eq!(allowed, want, "{name} {request:?}");
        }
    }
}
