//! Validation of the remaining core/v1 kinds: ConfigMap, Secret (with the `immutable` rules),
//! Namespace, PersistentVolume(Claim), Node, Endpoints, ServiceAccount, Event, ResourceQuota
//! and LimitRange.

use super::common::{
    dns_subdomain, enum_field, immutable, port_num_msgs, quantity, semantic_eq, Errs,
};
use crate::json::{Get, Obj};
use apimachinery::validation::{
    is_valid_ip, max_len_error, regex_error, validate_finalizers, validate_label_selector,
    DNS1123_SUBDOMAIN_MAX_LENGTH,
};
use apimachinery::{FieldError, Path};
use serde_json::Value;

/// Upstream's `MaxSecretSize`, which also bounds ConfigMaps.
const MAX_SECRET_SIZE: usize = 1024 * 1024;
const IMMUTABLE_MSG: &str = "field is immutable when `immutable` is set";

/// `IsConfigMapKey`.
fn config_map_key_msgs(key: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if key.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    if key.is_empty()
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        errs.push(regex_error(
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
            "[-._a-zA-Z0-9]+",
            &["key.name", "KEY_NAME", "key-name"],
        ));
    }
    if key == "." {
        errs.push("must not be '.'".into());
    } else if key == ".." {
        errs.push("must not be '..'".into());
    } else if key.starts_with("..") {
        errs.push("must not start with '..'".into());
    }
    errs
}

fn keys(errs: &mut Errs, map: Option<&Obj>, path: &Path) {
    for key in map.into_iter().flat_map(|m| m.keys()) {
        for m in config_map_key_msgs(key) {
            errs.push(FieldError::invalid(path.key(key), key.as_str(), m));
        }
    }
}

/// The decoded size of a base64 value without decoding it.
fn base64_len(s: &str) -> usize {
    let trimmed = s.trim_end_matches('=');
    trimmed.len() * 3 / 4
}

pub(super) fn config_map(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Errs::new();
    if let Some(old) = old {
        immutable_rules(&mut errs, obj, old, &["data", "binaryData"]);
    }
    let data = obj.obj_of("data");
    let binary = obj.obj_of("binaryData");
    let mut total = 0;
    for (key, v) in data.into_iter().flatten() {
        let p = Path::new("data").key(key);
        for m in config_map_key_msgs(key) {
            errs.push(FieldError::invalid(&p, key.as_str(), m));
        }
        if binary.is_some_and(|b| b.contains_key(key)) {
            errs.push(FieldError::invalid(
                &p,
                key.as_str(),
                "duplicate of key present in binaryData",
            ));
        }
        total += v.as_str().map_or(0, str::len);
    }
    keys(&mut errs, binary, &Path::new("binaryData"));
    total += binary
        .into_iter()
        .flatten()
        .map(|(_, v)| v.as_str().map_or(0, base64_len))
        .sum::<usize>();
    if total > MAX_SECRET_SIZE {
        errs.push(FieldError::too_long("", MAX_SECRET_SIZE as i64));
    }
    errs
}

/// Once `immutable: true`, the flag and the data may not change.
fn immutable_rules(errs: &mut Errs, obj: &Value, old: &Value, data_keys: &[&str]) {
    if !old.bool_of("immutable") {
        return;
    }
    if !obj.bool_of("immutable") {
        errs.push(FieldError::forbidden("immutable", IMMUTABLE_MSG));
    }
    for key in data_keys {
        if !semantic_eq(
            obj.get(*key).unwrap_or(&Value::Null),
            old.get(*key).unwrap_or(&Value::Null),
        ) {
            errs.push(FieldError::forbidden(*key, IMMUTABLE_MSG));
        }
    }
}

pub(super) fn secret(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Errs::new();
    if let Some(old) = old {
        immutable(
            &mut errs,
            &Path::new("type"),
            obj.get("type"),
            old.get("type"),
        );
        immutable_rules(&mut errs, obj, old, &["data"]);
    }
    let data = obj.obj_of("data");
    let dp = Path::new("data");
    keys(&mut errs, data, &dp);
    let total: usize = data
        .into_iter()
        .flatten()
        .map(|(_, v)| v.as_str().map_or(0, base64_len))
        .sum();
    if total > MAX_SECRET_SIZE {
        errs.push(FieldError::too_long(&dp, MAX_SECRET_SIZE as i64));
    }
    let has = |k: &str| data.is_some_and(|d| d.contains_key(k));
    let required = |errs: &mut Errs, k: &str| errs.push(FieldError::required(dp.key(k), ""));
    match obj.str_of("type") {
        "kubernetes.io/service-account-token" => {
            let name = obj
                .obj_of("metadata")
                .and_then(|m| m.obj_of("annotations"))
                .map(|a| a.str_of("kubernetes.io/service-account.name"))
                .unwrap_or("");
            if name.is_empty() {
                errs.push(FieldError::required(
                    Path::new("metadata")
                        .child("annotations")
                        .key("kubernetes.io/service-account.name"),
                    "",
                ));
            }
        }
        "kubernetes.io/dockercfg" if !has(".dockercfg") => required(&mut errs, ".dockercfg"),
        "kubernetes.io/dockerconfigjson" if !has(".dockerconfigjson") => {
            required(&mut errs, ".dockerconfigjson")
        }
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            required(&mut errs, "username");
            required(&mut errs, "password");
        }
        "kubernetes.io/ssh-auth" if data.map_or("", |d| d.str_of("ssh-privatekey")).is_empty() => {
            required(&mut errs, "ssh-privatekey")
        }
        "kubernetes.io/tls" => {
            if !has("tls.crt") {
                required(&mut errs, "tls.crt");
            }
            if !has("tls.key") {
                required(&mut errs, "tls.key");
            }
        }
        _ => {}
    }
    errs
}

pub(super) fn namespace(obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    let finalizers: Vec<String> = obj
        .field("spec")
        .arr_of("finalizers")
        .iter()
        .filter_map(|f| f.as_str().map(str::to_string))
        .collect();
    let mut errs = Errs::new();
    let path = Path::new("spec").child("finalizers");
    for f in &finalizers {
        if !f.contains('/') && f != "kubernetes" {
            errs.push(FieldError::invalid(
                &path,
                f.as_str(),
                "name is neither a standard finalizer name nor is it fully qualified",
            ));
        }
    }
    errs.extend(validate_finalizers(&finalizers, path.as_str()));
    errs
}

pub(super) fn node(obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Errs::new();
    let spec = obj.obj_of("spec");
    let p = Path::new("spec");
    for (i, t) in spec.arr_of("taints").iter().enumerate() {
        let tp = p.child("taints").index(i);
        let key = t.str_of("key");
        errs.extend(apimachinery::validation::validate_label_name(
            key,
            tp.child("key").as_str(),
        ));
        let effect = t.str_of("effect");
        if effect.is_empty() {
            errs.push(FieldError::required(tp.child("effect"), ""));
        } else if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
            errs.push(FieldError::not_supported(
                tp.child("effect"),
                effect,
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            ));
        }
    }
    errs
}

pub(super) fn endpoints(obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Errs::new();
    for (i, ss) in obj.arr_of("subsets").iter().enumerate() {
        let sp = Path::new("subsets").index(i);
        let addrs = ss.arr_of("addresses");
        let not_ready = ss.arr_of("notReadyAddresses");
        if addrs.is_empty() && not_ready.is_empty() {
            errs.push(FieldError::required(
                sp.child("addresses"),
                "must specify `addresses` or `notReadyAddresses`",
            ));
        }
        for (key, list) in [("addresses", addrs), ("notReadyAddresses", not_ready)] {
            for (j, a) in list.iter().enumerate() {
                let ip = a.str_of("ip");
                for m in is_valid_ip(ip) {
                    errs.push(FieldError::invalid(
                        sp.child(key).index(j).child("ip"),
                        ip,
                        m,
                    ));
                }
            }
        }
        let ports = ss.arr_of("ports");
        for (j, port) in ports.iter().enumerate() {
            let pp = sp.child("ports").index(j);
            let name = port.str_of("name");
            if ports.len() > 1 && name.is_empty() {
                errs.push(FieldError::required(pp.child("name"), ""));
            } else if !name.is_empty() {
                super::common::dns_label(&mut errs, &pp.child("name"), name);
            }
            let num = port.int_of("port").unwrap_or(0);
            for m in port_num_msgs(num) {
                errs.push(FieldError::invalid(pp.child("port"), num, m));
            }
            enum_field(
                &mut errs,
                &pp.child("protocol"),
                port.str_of("protocol"),
                &["SCTP", "TCP", "UDP"],
            );
        }
    }
    errs
}

pub(super) fn service_account(obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Errs::new();
    for (i, s) in obj.arr_of("secrets").iter().enumerate() {
        let name = s.str_of("name");
        if !name.is_empty() {
            dns_subdomain(
                &mut errs,
                &Path::new("secrets").index(i).child("name"),
                name,
            );
        }
    }
    errs
}

/// The core/v1 Event: it must name the object it is about.
pub(super) fn event(obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Errs::new();
    let involved = obj.field("involvedObject");
    let ns = obj
        .obj_of("metadata")
        .map(|m| m.str_of("namespace"))
        .unwrap_or("");
    let ins = involved.str_of("namespace");
    if !ins.is_empty() && !ns.is_empty() && ins != ns {
        errs.push(FieldError::invalid(
            Path::new("involvedObject").child("namespace"),
            ins,
            "does not match event.namespace",
        ));
    }
    if obj.str_of("reportingController").is_empty() && obj.has("series") {
        errs.push(FieldError::required("reportingController", ""));
    }
    let ty = obj.str_of("type");
    if !ty.is_empty() && !matches!(ty, "Normal" | "Warning") {
        errs.push(FieldError::not_supported(
            "type",
            ty,
            &["Normal", "Warning"],
        ));
    }
    errs
}

pub(super) fn persistent_volume_claim(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Errs::new();
    let spec = obj.obj_of("spec");
    let p = Path::new("spec");
    pvc_spec(&mut errs, spec, &p);
    if let Some(old) = old {
        pvc_update(&mut errs, obj, old);
    }
    errs
}

/// `ValidatePersistentVolumeClaimSpec`.
pub(crate) fn pvc_spec(errs: &mut Errs, spec: Option<&Obj>, p: &Path) {
    let modes = spec.arr_of("accessModes");
    if modes.is_empty() {
        errs.push(FieldError::required(
            p.child("accessModes"),
            "at least 1 access mode is required",
        ));
    }
    if let Some(sel) = spec.field("selector").filter(|s| !s.is_null()) {
        errs.extend(validate_label_selector(sel, p.child("selector").as_str()));
    }
    const MODES: &[&str] = &[
        "ReadOnlyMany",
        "ReadWriteMany",
        "ReadWriteOnce",
        "ReadWriteOncePod",
    ];
    let (mut rwop, mut other) = (false, false);
    for m in modes {
        let m = m.as_str().unwrap_or("");
        if !MODES.contains(&m) {
            errs.push(FieldError::not_supported(p.child("accessModes"), m, MODES));
        } else if m == "ReadWriteOncePod" {
            rwop = true;
        } else {
            other = true;
        }
    }
    if rwop && other {
        errs.push(FieldError::forbidden(
            p.child("accessModes"),
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
    let storage_path = p.child("resources").key("storage");
    let storage = spec
        .obj_of("resources")
        .and_then(|r| r.obj_of("requests"))
        .and_then(|r| r.get("storage"));
    match storage {
        None => errs.push(FieldError::required(storage_path, "")),
        Some(q) => {
            if quantity(Some(q)).is_some_and(|v| v <= 0.0) {
                errs.push(FieldError::invalid(
                    storage_path,
                    q.clone(),
                    "must be greater than zero",
                ));
            }
        }
    }
    if let Some(class) = spec.opt_str("storageClassName").filter(|c| !c.is_empty()) {
        dns_subdomain(errs, &p.child("storageClassName"), class);
    }
    if let Some(mode) = spec.opt_str("volumeMode") {
        if !matches!(mode, "Block" | "Filesystem") {
            errs.push(FieldError::not_supported(
                p.child("volumeMode"),
                mode,
                &["Block", "Filesystem"],
            ));
        }
    }
}

/// `ValidatePersistentVolumeClaimUpdate`: the spec is immutable except the requested storage
/// of a bound claim (which may only grow), a first `volumeName`, and a first storage class.
fn pvc_update(errs: &mut Errs, obj: &Value, old: &Value) {
    let mut new_spec = obj.obj_of("spec").cloned().unwrap_or_default();
    let mut old_spec = old.obj_of("spec").cloned().unwrap_or_default();
    if old_spec.str_of("volumeName").is_empty() {
        match new_spec.get("volumeName") {
            Some(v) => old_spec.insert("volumeName".into(), v.clone()),
            None => old_spec.remove("volumeName"),
        };
    }
    if !old_spec.has("storageClassName") && new_spec.has("storageClassName") {
        new_spec.remove("storageClassName");
    }
    let old_storage = old_spec
        .obj_of("resources")
        .and_then(|r| r.obj_of("requests"))
        .and_then(|r| r.get("storage"))
        .cloned();
    let new_storage = new_spec
        .obj_of("resources")
        .and_then(|r| r.obj_of("requests"))
        .and_then(|r| r.get("storage"))
        .cloned();
    if obj.field("status").str_of("phase") == "Bound" {
        if let Some(req) = crate::json::existing_obj(&mut new_spec, "resources")
            .and_then(|r| crate::json::existing_obj(r, "requests"))
        {
            match &old_storage {
                Some(s) => req.insert("storage".into(), s.clone()),
                None => req.remove("storage"),
            };
        }
    }
    new_spec.remove("volumeAttributesClassName");
    old_spec.remove("volumeAttributesClassName");
    if !semantic_eq(&Value::Object(new_spec), &Value::Object(old_spec)) {
        errs.push(FieldError::forbidden(
            "spec",
            "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
        ));
    }
    if let (Some(n), Some(o)) = (
        quantity(new_storage.as_ref()),
        quantity(old_storage.as_ref()),
    ) {
        if n < o {
            errs.push(FieldError::forbidden(
                Path::new("spec")
                    .child("resources")
                    .child("requests")
                    .child("storage"),
                "field can not be less than previous value",
            ));
        }
    }
}

const PV_SOURCES: &[&str] = &[
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "hostPath",
    "glusterfs",
    "nfs",
    "rbd",
    "iscsi",
    "cinder",
    "cephfs",
    "fc",
    "flocker",
    "flexVolume",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "local",
    "storageos",
    "csi",
];

pub(super) fn persistent_volume(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Errs::new();
    let spec = obj.obj_of("spec");
    let p = Path::new("spec");
    if spec.arr_of("accessModes").is_empty() {
        errs.push(FieldError::required(p.child("accessModes"), ""));
    }
    for m in spec.arr_of("accessModes") {
        let m = m.as_str().unwrap_or("");
        const MODES: &[&str] = &[
            "ReadOnlyMany",
            "ReadWriteMany",
            "ReadWriteOnce",
            "ReadWriteOncePod",
        ];
        if !MODES.contains(&m) {
            errs.push(FieldError::not_supported(p.child("accessModes"), m, MODES));
        }
    }
    let capacity = spec.obj_of("capacity");
    match capacity.and_then(|c| c.get("storage")) {
        None => errs.push(FieldError::required(p.child("capacity"), "")),
        Some(q) => {
            if quantity(Some(q)).is_some_and(|v| v <= 0.0) {
                errs.push(FieldError::invalid(
                    p.child("capacity").key("storage"),
                    q.clone(),
                    "must be greater than zero",
                ));
            }
        }
    }
    if let Some(c) = capacity {
        for k in c.keys().filter(|k| k.as_str() != "storage") {
            errs.push(FieldError::not_supported(
                p.child("capacity").key(k),
                k.as_str(),
                &["storage"],
            ));
        }
    }
    let policy = spec.str_of("persistentVolumeReclaimPolicy");
    if !policy.is_empty() && !matches!(policy, "Delete" | "Recycle" | "Retain") {
        errs.push(FieldError::not_supported(
            p.child("persistentVolumeReclaimPolicy"),
            policy,
            &["Delete", "Recycle", "Retain"],
        ));
    }
    let sources: Vec<&&str> = PV_SOURCES.iter().filter(|k| spec.has(k)).collect();
    match sources.len() {
        0 => errs.push(FieldError::required(&p, "must specify a volume type")),
        1 => {}
        _ => {
            if let Some(k) = sources.get(1) {
                errs.push(FieldError::forbidden(
                    p.child(k),
                    "may not specify more than 1 volume type",
                ));
            }
        }
    }
    if let Some(class) = spec.opt_str("storageClassName").filter(|c| !c.is_empty()) {
        dns_subdomain(&mut errs, &p.child("storageClassName"), class);
    }
    if let Some(mode) = spec.opt_str("volumeMode") {
        if !matches!(mode, "Block" | "Filesystem") {
            errs.push(FieldError::not_supported(
                p.child("volumeMode"),
                mode,
                &["Block", "Filesystem"],
            ));
        }
    }
    if let Some(old) = old {
        let old_spec = old.obj_of("spec");
        let pick = |s: Option<&Obj>| {
            Value::Object(
                PV_SOURCES
                    .iter()
                    .filter_map(|k| {
                        s.and_then(|s| s.get(*k))
                            .map(|v| (k.to_string(), v.clone()))
                    })
                    .collect(),
            )
        };
        if !semantic_eq(&pick(spec), &pick(old_spec)) {
            errs.push(FieldError::forbidden(
                p.child("persistentvolumesource"),
                "spec.persistentvolumesource is immutable after creation",
            ));
        }
        immutable(
            &mut errs,
            &p.child("volumeMode"),
            spec.field("volumeMode"),
            old_spec.field("volumeMode"),
        );
        if old_spec.has("nodeAffinity") {
            immutable(
                &mut errs,
                &p.child("nodeAffinity"),
                spec.field("nodeAffinity"),
                old_spec.field("nodeAffinity"),
            );
        }
    }
    errs
}

pub(super) fn resource_quota(obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Errs::new();
    let hard = obj.field("spec").obj_of("hard");
    for (k, v) in hard.into_iter().flatten() {
        if quantity(Some(v)).is_some_and(|q| q < 0.0) {
            errs.push(FieldError::invalid(
                Path::new("spec").child("hard").key(k),
                v.clone(),
                apimachinery::validation::IS_NEGATIVE_ERROR_MSG,
            ));
        }
    }
    for (i, s) in obj.field("spec").arr_of("scopes").iter().enumerate() {
        let s = s.as_str().unwrap_or("");
        const SCOPES: &[&str] = &[
            "BestEffort",
            "CrossNamespacePodAffinity",
            "NotBestEffort",
            "NotTerminating",
            "PriorityClass",
            "Terminating",
            "VolumeAttributesClass",
        ];
        if !SCOPES.contains(&s) {
            errs.push(FieldError::not_supported(
                Path::new("spec").child("scopes").index(i),
                s,
                SCOPES,
            ));
        }
    }
    errs
}

pub(super) fn limit_range(obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Errs::new();
    for (i, item) in obj.field("spec").arr_of("limits").iter().enumerate() {
        let p = Path::new("spec").child("limits").index(i);
        let ty = item.str_of("type");
        if ty.is_empty() {
            errs.push(FieldError::required(p.child("type"), ""));
        }
        for key in [
            "max",
            "min",
            "default",
            "defaultRequest",
            "maxLimitRequestRatio",
        ] {
            for (k, v) in item.obj_of(key).into_iter().flatten() {
                if quantity(Some(v)).is_some_and(|q| q < 0.0) {
                    errs.push(FieldError::invalid(
                        p.child(key).key(k),
                        v.clone(),
                        apimachinery::validation::IS_NEGATIVE_ERROR_MSG,
                    ));
                }
            }
        }
    }
    errs
}
