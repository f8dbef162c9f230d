//! The schema-aware walks over `serde_json::Value` that server-side apply is built from, each
//! following its structured-merge-diff counterpart: the field set an object sets (`ToFieldSet`),
//! the difference between two objects (`Compare`), the apply merge (`Merge`), and the pruning of
//! fields an applier stopped applying.
//!
//! Every walk is bounded by [`crate::MAX_DEPTH`]: input is untrusted and may be deeper than the
//! JSON parser's own limit when it was built some other way.

use serde_json::{Map, Value};

use crate::fieldpath::{PathElement, Set};
use crate::schema::{FieldKind, ListType, Schema, EMPTY};

/// The type of one value as the walks see it: how an object is walked (granular with a schema,
/// or atomic), and how a list is walked.
#[derive(Clone, Copy)]
pub(crate) struct Ty {
    /// `None`: an object here is atomic.
    object: Option<&'static Schema>,
    /// `None`: a list here is atomic.
    list: Option<(ListType, &'static Schema)>,
}

impl Ty {
    pub(crate) fn root(schema: &'static Schema) -> Ty {
        Ty {
            object: Some(schema),
            list: None,
        }
    }

    fn of_struct(schema: &'static Schema) -> Ty {
        Ty {
            object: (!schema.is_atomic()).then_some(schema),
            list: None,
        }
    }

    /// The type of the field `name` of an object of type `schema`.
    fn field(schema: &'static Schema, name: &str) -> Ty {
        if schema.is_deduced() {
            return Ty {
                object: Some(schema),
                list: None,
            };
        }
        match schema.field(name).map(|f| &f.kind) {
            Some(FieldKind::Struct(s)) => Ty::of_struct(s),
            Some(FieldKind::List(ListType::Atomic, _)) => Ty {
                object: Some(&EMPTY),
                list: None,
            },
            Some(FieldKind::List(lt, elem)) => Ty {
                object: Some(&EMPTY),
                list: Some((*lt, elem)),
            },
            None => Ty {
                object: Some(&EMPTY),
                list: None,
            },
        }
    }
}

/// What a value is, given its type: a granular object, a granular list, or a leaf.
enum Shape<'v> {
    Object(&'v Map<String, Value>, &'static Schema),
    List(&'v [Value], ListType, &'static Schema),
    Leaf,
}

fn shape(v: &Value, ty: Ty) -> Shape<'_> {
    match (v, ty.object, ty.list) {
        (Value::Object(m), Some(s), _) => Shape::Object(m, s),
        (Value::Array(items), _, Some((lt, elem))) => Shape::List(items, lt, elem),
        _ => Shape::Leaf,
    }
}

fn too_deep(path: &[PathElement]) -> String {
    format!(
        "{}: object is nested too deeply",
        crate::fieldpath::Path(path.to_vec())
    )
}

/// The path element identifying list item `index`, or upstream's error text.
pub(crate) fn item_element(
    lt: ListType,
    index: usize,
    item: &Value,
) -> Result<PathElement, String> {
    match lt {
        ListType::Atomic => Ok(PathElement::Index(index)),
        ListType::Map(keys) => {
            let obj = match item {
                Value::Object(obj) => obj,
                Value::Null => {
                    return Err("associative list with keys may not have a null element".into())
                }
                _ => return Err("associative list with keys may not have non-map elements".into()),
            };
            let mut fields = Vec::with_capacity(keys.len());
            for k in keys {
                let value = match (obj.get(k.name), k.default) {
                    (Some(v), _) => v.clone(),
                    (None, Some(d)) => Value::String(d.to_string()),
                    (None, None) => {
                        return Err(format!(
                            "associative list with keys has an element that omits key field {:?} (and doesn't have default value)",
                            k.name
                        ))
                    }
                };
                fields.push((k.name.to_string(), value));
            }
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(PathElement::Key(fields))
        }
        ListType::Set => match item {
            Value::Object(_) => {
                Err("associative list without keys has an element that's a map type".into())
            }
            Value::Array(_) => Err("not supported: associative list with lists as elements".into()),
            Value::Null => {
                Err("associative list without keys has an element that's an explicit null".into())
            }
            _ => Ok(PathElement::Value(item.clone())),
        },
    }
}

fn elem_ty(lt: ListType, elem: &'static Schema) -> Ty {
    match lt {
        ListType::Set | ListType::Atomic => Ty {
            object: None,
            list: None,
        },
        ListType::Map(_) => Ty::of_struct(elem),
    }
}

/// Indexes list items by path element. With `strict`, duplicates and bad items are errors (an
/// applied configuration); otherwise the first of duplicates wins (live objects, which upstream
/// parses allowing duplicates).
fn index_items<'v>(
    items: &'v [Value],
    lt: ListType,
    path: &[PathElement],
    strict: bool,
) -> Result<Vec<(PathElement, &'v Value)>, String> {
    let mut out: Vec<(PathElement, &'v Value)> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let pe = item_element(lt, i, item).map_err(|e| {
            format!(
                "{}: element {i}: {e}",
                crate::fieldpath::Path(path.to_vec())
            )
        })?;
        if out.iter().any(|(seen, _)| *seen == pe) {
            if strict {
                return Err(format!(
                    "{}: duplicate entries for key {pe}",
                    crate::fieldpath::Path(path.to_vec())
                ));
            }
            continue;
        }
        out.push((pe, item));
    }
    Ok(out)
}

/// The fields `v` sets (upstream's `ToFieldSet`). With `strict`, bad list items are errors.
pub(crate) fn to_set(v: &Value, ty: Ty, strict: bool) -> Result<Set, String> {
    let mut set = Set::new();
    let mut path = Vec::new();
    walk_set(v, ty, strict, &mut path, &mut set)?;
    Ok(set)
}

fn walk_set(
    v: &Value,
    ty: Ty,
    strict: bool,
    path: &mut Vec<PathElement>,
    set: &mut Set,
) -> Result<(), String> {
    if path.len() > crate::MAX_DEPTH {
        return Err(too_deep(path));
    }
    match shape(v, ty) {
        Shape::Object(m, schema) => {
            for (k, val) in m {
                path.push(PathElement::Field(k.clone()));
                walk_set(val, Ty::field(schema, k), strict, path, set)?;
                let empty = val.is_null() || val.as_object().is_some_and(|o| o.is_empty());
                if empty || schema.is_deduced() {
                    set.insert(path);
                }
                path.pop();
            }
        }
        Shape::List(items, lt, elem) => {
            let indexed = match index_items(items, lt, path, strict) {
                Ok(indexed) => indexed,
                // A live list upstream cannot key is owned as a whole rather than failing the write.
                Err(_) if !strict => {
                    set.insert(path);
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
            for (pe, item) in indexed {
                path.push(pe);
                walk_set(item, elem_ty(lt, elem), strict, path, set)?;
                set.insert(path);
                path.pop();
            }
        }
        Shape::Leaf => set.insert(path),
    }
    Ok(())
}

/// What changed between two objects (upstream's `Comparison`).
#[derive(Debug, Default)]
pub(crate) struct Comparison {
    pub added: Set,
    pub modified: Set,
    pub removed: Set,
}

/// Compares `lhs` (old) with `rhs` (new). Both are live objects: lists that cannot be keyed are
/// compared as leaves.
pub(crate) fn compare(lhs: &Value, rhs: &Value, ty: Ty) -> Result<Comparison, String> {
    let mut c = Comparison::default();
    let mut path = Vec::new();
    walk_compare(Some(lhs), Some(rhs), ty, &mut path, &mut c)?;
    Ok(c)
}

fn is_emptyish(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(_) => false,
    }
}

fn walk_compare(
    lhs: Option<&Value>,
    rhs: Option<&Value>,
    ty: Ty,
    path: &mut Vec<PathElement>,
    c: &mut Comparison,
) -> Result<(), String> {
    if path.len() > crate::MAX_DEPTH {
        return Err(too_deep(path));
    }
    let l = lhs.map(|v| shape(v, ty));
    let r = rhs.map(|v| shape(v, ty));
    let nullish = |v: Option<&Value>| matches!(v, None | Some(Value::Null));
    let walked = match (&l, &r) {
        // Both sides empty or null: a leaf, which keeps the empty/null distinction.
        _ if is_emptyish(lhs) && is_emptyish(rhs) => false,
        (Some(Shape::Object(lm, schema)), Some(Shape::Object(rm, _))) => {
            compare_maps(Some(lm), Some(rm), schema, path, c)?;
            true
        }
        (Some(Shape::Object(lm, schema)), _) if nullish(rhs) => {
            compare_maps(Some(lm), None, schema, path, c)?;
            true
        }
        (_, Some(Shape::Object(rm, schema))) if nullish(lhs) => {
            compare_maps(None, Some(rm), schema, path, c)?;
            true
        }
        (Some(Shape::List(li, lt, elem)), Some(Shape::List(ri, _, _))) => {
            compare_lists(li, ri, *lt, elem, path, c)
        }
        (Some(Shape::List(li, lt, elem)), _) if nullish(rhs) => {
            compare_lists(li, &[], *lt, elem, path, c)
        }
        (_, Some(Shape::List(ri, lt, elem))) if nullish(lhs) => {
            compare_lists(&[], ri, *lt, elem, path, c)
        }
        _ => false,
    };
    if walked {
        // Upstream's post-item hook: a whole non-leaf node appearing or disappearing.
        if lhs.is_none() {
            c.added.insert(path);
        } else if rhs.is_none() {
            c.removed.insert(path);
        }
    } else {
        match (lhs, rhs) {
            (None, _) => c.added.insert(path),
            (_, None) => c.removed.insert(path),
            (Some(a), Some(b)) if a != b => c.modified.insert(path),
            _ => {}
        }
    }
    Ok(())
}

fn compare_maps(
    lhs: Option<&Map<String, Value>>,
    rhs: Option<&Map<String, Value>>,
    schema: &'static Schema,
    path: &mut Vec<PathElement>,
    c: &mut Comparison,
) -> Result<(), String> {
    let keys: std::collections::BTreeSet<&String> =
        lhs.into_iter().chain(rhs).flat_map(|m| m.keys()).collect();
    for k in keys {
        path.push(PathElement::Field(k.clone()));
        let (l, r) = (lhs.and_then(|m| m.get(k)), rhs.and_then(|m| m.get(k)));
        walk_compare(l, r, Ty::field(schema, k), path, c)?;
        path.pop();
    }
    Ok(())
}

/// Returns false (compare as a leaf) when a side cannot be keyed.
fn compare_lists(
    lhs: &[Value],
    rhs: &[Value],
    lt: ListType,
    elem: &'static Schema,
    path: &mut Vec<PathElement>,
    c: &mut Comparison,
) -> bool {
    let (Ok(li), Ok(ri)) = (
        index_items(lhs, lt, path, false),
        index_items(rhs, lt, path, false),
    ) else {
        return false;
    };
    let ety = elem_ty(lt, elem);
    let mut ok = true;
    for (pe, r) in &ri {
        let l = li.iter().find(|(p, _)| p == pe).map(|(_, v)| *v);
        path.push(pe.clone());
        ok &= walk_compare(l, Some(r), ety, path, c).is_ok();
        path.pop();
    }
    for (pe, l) in &li {
        if !ri.iter().any(|(p, _)| p == pe) {
            path.push(pe.clone());
            ok &= walk_compare(Some(l), None, ety, path, c).is_ok();
            path.pop();
        }
    }
    ok
}

/// Merges the applied configuration `rhs` onto `lhs` (upstream's `Merge`: the configuration wins
/// on leaves; granular maps and lists are merged member by member). `rhs` must already have
/// passed [`to_set`] strictly.
pub(crate) fn merge(lhs: &Value, rhs: &Value, ty: Ty) -> Value {
    let mut path = Vec::new();
    merge_values(Some(lhs), Some(rhs), ty, &mut path).unwrap_or(Value::Null)
}

fn merge_values(
    lhs: Option<&Value>,
    rhs: Option<&Value>,
    ty: Ty,
    path: &mut Vec<PathElement>,
) -> Option<Value> {
    let (l, r) = match (lhs, rhs) {
        (None, r) => return r.cloned(),
        (l, None) => return l.cloned(),
        (Some(l), Some(r)) => (l, r),
    };
    if path.len() > crate::MAX_DEPTH {
        return Some(r.clone());
    }
    match (shape(l, ty), shape(r, ty)) {
        (Shape::Object(lm, schema), Shape::Object(rm, _)) => {
            let mut out = lm.clone();
            for (k, rv) in rm {
                path.push(PathElement::Field(k.clone()));
                if let Some(v) = merge_values(lm.get(k), Some(rv), Ty::field(schema, k), path) {
                    out.insert(k.clone(), v);
                }
                path.pop();
            }
            Some(Value::Object(out))
        }
        // Upstream walks a null configuration map as an absent one: the live content stays.
        (Shape::Object(lm, _), _) if r.is_null() && !lm.is_empty() => Some(l.clone()),
        (Shape::List(li, lt, elem), Shape::List(ri, _, _)) => {
            match (
                index_items(li, lt, path, false),
                index_items(ri, lt, path, false),
            ) {
                (Ok(li), Ok(ri)) => {
                    Some(Value::Array(merge_lists(&li, &ri, elem_ty(lt, elem), path)))
                }
                _ => Some(r.clone()),
            }
        }
        (Shape::List(li, _, _), _) if r.is_null() && !li.is_empty() => Some(l.clone()),
        _ => Some(r.clone()),
    }
}

/// Orders the merged list like upstream: live items keep their places, applied items follow the
/// configuration's order, and items only in the configuration are inserted where it puts them.
fn merge_lists(
    lhs: &[(PathElement, &Value)],
    rhs: &[(PathElement, &Value)],
    ety: Ty,
    path: &mut Vec<PathElement>,
) -> Vec<Value> {
    let in_rhs = |pe: &PathElement| rhs.iter().any(|(p, _)| p == pe);
    let find_lhs = |pe: &PathElement| lhs.iter().find(|(p, _)| p == pe).map(|(_, v)| *v);
    let shared: Vec<&PathElement> = rhs
        .iter()
        .map(|(p, _)| p)
        .filter(|p| find_lhs(p).is_some())
        .collect();
    let mut next_shared = 0usize;
    let mut merged: Vec<&PathElement> = Vec::new();
    let mut out = Vec::with_capacity(lhs.len().max(rhs.len()));
    let mut push =
        |pe: &PathElement, l: Option<&Value>, r: Option<&Value>, out: &mut Vec<Value>| {
            path.push(pe.clone());
            if let Some(v) = merge_values(l, r, ety, path) {
                out.push(v);
            }
            path.pop();
        };
    let (mut li, mut ri) = (0usize, 0usize);
    while li < lhs.len() || ri < rhs.len() {
        if let (Some((lpe, lv)), Some((rpe, rv))) = (lhs.get(li), rhs.get(ri)) {
            if lpe == rpe {
                push(lpe, Some(lv), Some(rv), &mut out);
                merged.push(lpe);
                li += 1;
                ri += 1;
                if shared.get(next_shared) == Some(&lpe) {
                    next_shared += 1;
                }
                continue;
            }
            if in_rhs(lpe) && shared.get(next_shared).is_some_and(|s| *s != lpe) {
                li += 1;
                continue;
            }
        }
        if let Some((lpe, lv)) = lhs.get(li) {
            if !in_rhs(lpe) {
                push(lpe, Some(lv), None, &mut out);
                li += 1;
                continue;
            }
            if merged.contains(&lpe) || ri >= rhs.len() {
                li += 1;
                continue;
            }
        }
        if let Some((rpe, rv)) = rhs.get(ri) {
            push(rpe, find_lhs(rpe), Some(rv), &mut out);
            merged.push(rpe);
            ri += 1;
            if shared.get(next_shared) == Some(&rpe) {
                next_shared += 1;
            }
        }
    }
    out
}

/// Removes from `v` every field the applier owned last time (`last`) that nobody owns now
/// (`managed`, every manager's set including the applier's new one). A removed field goes with
/// everything below it; a kept one is pruned further down. This is what upstream's `prune`,
/// `addBackOwnedItems` and `addBackDanglingItems` amount to for a single API version.
pub(crate) fn prune(v: &mut Value, ty: Ty, last: &Set, managed: Option<&Set>, depth: usize) {
    if depth > crate::MAX_DEPTH {
        return;
    }
    let owned = |pe: &PathElement| managed.is_some_and(|m| m.touches(pe));
    match (v, ty.object, ty.list) {
        (Value::Object(m), Some(schema), _) => {
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                let pe = PathElement::Field(k.clone());
                if !last.touches(&pe) {
                    continue;
                }
                // Only what the applier owned as a whole may go whole; a node it only owned
                // fields below (e.g. `metadata` for an annotation) is pruned inside.
                if last.is_member(&pe) && !owned(&pe) {
                    m.remove(&k);
                } else if let (Some(lc), Some(child)) = (last.child(&pe), m.get_mut(&k)) {
                    let mc = managed.and_then(|s| s.child(&pe));
                    let was_empty = child.as_object().is_some_and(Map::is_empty);
                    prune(child, Ty::field(schema, &k), lc, mc, depth + 1);
                    // A map emptied by the removal disappears, as Go's `omitempty` drops it.
                    if !was_empty && child.as_object().is_some_and(Map::is_empty) {
                        m.remove(&k);
                    }
                }
            }
        }
        (Value::Array(items), _, Some((lt, elem))) => {
            let ety = elem_ty(lt, elem);
            let mut kept = Vec::with_capacity(items.len());
            for (i, mut item) in std::mem::take(items).into_iter().enumerate() {
                let Ok(pe) = item_element(lt, i, &item) else {
                    kept.push(item);
                    continue;
                };
                if !last.touches(&pe) {
                    kept.push(item);
                    continue;
                }
                if last.is_member(&pe) && !owned(&pe) {
                    continue;
                }
                if let Some(lc) = last.child(&pe) {
                    prune(
                        &mut item,
                        ety,
                        lc,
                        managed.and_then(|s| s.child(&pe)),
                        depth + 1,
                    );
                }
                kept.push(item);
            }
            *items = kept;
        }
        _ => {}
    }
}

/// Adds the fields Go always serializes, as an empty Go object of the kind would have them:
/// non-pointer structs as `{}`, non-omitempty lists as `null`. Upstream compares Go objects, so
/// whether a node was "added" (and gets `.` in an `Update` entry) depends on them; filling both
/// sides of a comparison makes it independent of how the caller stored the object.
pub(crate) fn fill_skeleton(v: &mut Value, schema: &'static Schema, depth: usize) {
    let Value::Object(m) = v else { return };
    if depth > crate::MAX_DEPTH {
        return;
    }
    for f in schema.fields() {
        if !f.always {
            continue;
        }
        match &f.kind {
            FieldKind::Struct(s) => {
                let child = m.entry(f.name).or_insert_with(|| Value::Object(Map::new()));
                fill_skeleton(child, s, depth + 1);
            }
            FieldKind::List(..) => {
                m.entry(f.name).or_insert(Value::Null);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::schema_for;
    use serde_json::json;

    fn pod() -> Ty {
        Ty::root(schema_for("", "v1", "Pod").unwrap_or(&EMPTY))
    }

    fn containers(names: &[&str]) -> Value {
        let items: Vec<Value> = names.iter().map(|n| json!({"name": n})).collect();
        json!({"spec": {"containers": items}})
    }

    fn names(v: &Value) -> Vec<String> {
        v["spec"]["containers"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|c| c["name"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn merged_lists_keep_live_items_and_follow_the_config_order() {
        let cases: &[(&[&str], &[&str], &[&str])] = &[
            (&["a", "b", "c"], &["b", "d"], &["a", "b", "c", "d"]),
            (&["a", "b"], &["b", "a"], &["b", "a"]),
            (&["a"], &["x", "a", "y"], &["x", "a", "y"]),
            (&[], &["a"], &["a"]),
            (&["a", "b"], &[], &["a", "b"]),
            (&["a", "a", "b"], &["b"], &["a", "b"]),
        ];
        for (live, cfg, want) in cases {
            let out = merge(&containers(live), &containers(cfg), pod());
            assert_eq!(names(&out), *want, "{live:?} + {cfg:?}");
        }
    }

    #[test]
    fn merge_replaces_atomic_values_and_merges_granular_ones() {
        let live = json!({"spec": {"tolerations": [{"key": "a"}], "nodeSelector": {"a": "1"},
                          "containers": [{"name": "c", "image": "i", "args": ["x", "y"]}]}});
        let cfg = json!({"spec": {"tolerations": [{"key": "b"}], "nodeSelector": {"b": "2"},
                         "containers": [{"name": "c", "args": ["z"]}]}});
        let out = merge(&live, &cfg, pod());
        assert_eq!(out["spec"]["tolerations"], json!([{"key": "b"}]));
        assert_eq!(out["spec"]["nodeSelector"], json!({"a": "1", "b": "2"}));
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "c", "image": "i", "args": ["z"]}])
        );
    }

    #[test]
    fn compare_reports_added_modified_removed() {
        let old = json!({"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b"}]}});
        let new = json!({"spec": {"containers": [{"name": "a", "image": "2"}, {"name": "c"}]}});
        let c = compare(&old, &new, pod()).expect("compare");
        let text = |s: &Set| s.paths().iter().map(|p| p.to_string()).collect::<Vec<_>>();
        assert_eq!(
            text(&c.added),
            vec![
                ".spec.containers[name=\"c\"]",
                ".spec.containers[name=\"c\"].name"
            ]
        );
        assert_eq!(
            text(&c.modified),
            vec![".spec.containers[name=\"a\"].image"]
        );
        assert_eq!(
            text(&c.removed),
            vec![
                ".spec.containers[name=\"b\"]",
                ".spec.containers[name=\"b\"].name"
            ]
        );
    }

    #[test]
    fn prune_keeps_parents_the_applier_only_owned_fields_below() {
        // The applier owned metadata.annotations.a; after it stops applying it, metadata (and its
        // name, owned by nobody) must stay, only the annotation goes.
        let mut last = Set::new();
        last.insert(&[
            PathElement::Field("metadata".into()),
            PathElement::Field("annotations".into()),
            PathElement::Field("a".into()),
        ]);
        let schema = crate::schema::schema_for("", "v1", "ConfigMap").unwrap();
        let mut v = serde_json::json!({"metadata": {"name": "x", "annotations": {"a": "1"}}, "data": {"k": "v"}});
        prune(&mut v, Ty::root(schema), &last, Some(&Set::new()), 0);
        assert_eq!(
            v,
            serde_json::json!({"metadata": {"name": "x"}, "data": {"k": "v"}})
        );
    }

    #[test]
    fn prune_removes_only_unowned_fields_the_applier_dropped() {
        let f = |n: &str| PathElement::Field(n.to_string());
        let mut obj = json!({"spec": {"a": 1, "b": 2, "c": 3}});
        let mut last = Set::new();
        last.insert(&[f("spec"), f("a")]);
        last.insert(&[f("spec"), f("b")]);
        let mut managed = Set::new();
        managed.insert(&[f("spec"), f("b")]);
        prune(&mut obj, pod(), &last, Some(&managed), 0);
        assert_eq!(obj, json!({"spec": {"b": 2, "c": 3}}));
        // Nobody owns anything under spec any more: what the applier owned goes; fields nobody
        // ever owned stay (upstream removes only the paths the applier stopped applying).
        let mut obj = json!({"spec": {"a": 1, "c": 3}});
        prune(&mut obj, pod(), &last, Some(&Set::new()), 0);
        assert_eq!(obj, json!({"spec": {"c": 3}}));
        let mut obj = json!({"spec": {"a": 1}});
        prune(&mut obj, pod(), &last, Some(&Set::new()), 0);
        assert_eq!(obj, json!({}), "a map the removal emptied goes");
    }

    #[test]
    fn live_lists_that_cannot_be_keyed_are_owned_whole() {
        let v = json!({"spec": {"containers": [{"image": "no-name"}]}});
        assert!(to_set(&v, pod(), true).is_err());
        let set = to_set(&v, pod(), false).expect("lenient");
        let f = |n: &str| PathElement::Field(n.to_string());
        assert!(set.has(&[f("spec"), f("containers")]));
    }
}
