//! Field paths and field sets, and their `fieldsV1` wire encoding, as sigs.k8s.io/structured-merge-diff
//! (`fieldpath`) defines them.
//!
//! A [`Set`] is a trie: at each level, `members` are the path elements owned as a whole ("this node
//! itself", serialized as `{}` or as `".": {}` when it also has children) and `children` are the
//! elements with owned fields below them. Both are ordered the way upstream orders path elements
//! (fields, then keys, then values, then indices), so iteration and serialization match upstream.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Map, Value};

/// One step of a path: a struct or map field, a map-list item by its key fields, a set item by its
/// value, or a list item by index.
#[derive(Debug, Clone)]
pub enum PathElement {
    /// `f:<name>`.
    Field(String),
    /// `k:{...}`: the key fields of a map-list item, sorted by name.
    Key(Vec<(String, Value)>),
    /// `v:<json>`: a set item.
    Value(Value),
    /// `i:<n>`.
    Index(usize),
}

impl PathElement {
    fn rank(&self) -> u8 {
        match self {
            PathElement::Field(_) => 0,
            PathElement::Key(_) => 1,
            PathElement::Value(_) => 2,
            PathElement::Index(_) => 3,
        }
    }

    /// The `fieldsV1` object key of this element.
    pub fn encode(&self) -> String {
        match self {
            PathElement::Field(name) => format!("f:{name}"),
            PathElement::Key(fields) => {
                let mut obj = Map::new();
                for (name, value) in fields {
                    obj.insert(name.clone(), value.clone());
                }
                format!("k:{}", Value::Object(obj))
            }
            PathElement::Value(v) => format!("v:{v}"),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    /// Parses a `fieldsV1` object key.
    pub fn decode(text: &str) -> Result<PathElement, String> {
        let (prefix, rest) = text
            .split_once(':')
            .ok_or_else(|| format!("unknown path element prefix in {text:?}"))?;
        match prefix {
            "f" => Ok(PathElement::Field(rest.to_string())),
            "k" => {
                let value: Value =
                    serde_json::from_str(rest).map_err(|e| format!("invalid key {rest:?}: {e}"))?;
                let Value::Object(obj) = value else {
                    return Err(format!("key {rest:?} is not a JSON object"));
                };
                let mut fields: Vec<(String, Value)> = obj.into_iter().collect();
                fields.sort_by(|a, b| a.0.cmp(&b.0));
                Ok(PathElement::Key(fields))
            }
            "v" => serde_json::from_str(rest)
                .map(PathElement::Value)
                .map_err(|e| format!("invalid value {rest:?}: {e}")),
            "i" => rest
                .parse()
                .map(PathElement::Index)
                .map_err(|e| format!("invalid index {rest:?}: {e}")),
            _ => Err(format!("unknown path element prefix in {text:?}")),
        }
    }
}

/// Upstream's path text (`.spec`, `[name="c"]`, `[=v]`, `[3]`), used in conflict messages.
impl fmt::Display for PathElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(fields) => {
                f.write_str("[")?;
                for (i, (name, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{name}={value}")?;
                }
                f.write_str("]")
            }
            PathElement::Value(v) => write!(f, "[={v}]"),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

impl PartialEq for PathElement {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for PathElement {}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PathElement {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PathElement::Field(a), PathElement::Field(b)) => a.cmp(b),
            (PathElement::Key(a), PathElement::Key(b)) => {
                for ((an, av), (bn, bv)) in a.iter().zip(b.iter()) {
                    let c = an.cmp(bn).then_with(|| compare_values(av, bv));
                    if c != Ordering::Equal {
                        return c;
                    }
                }
                a.len().cmp(&b.len())
            }
            (PathElement::Value(a), PathElement::Value(b)) => compare_values(a, b),
            (PathElement::Index(a), PathElement::Index(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

/// A total order over JSON values, in upstream's type order: numbers, strings, booleans, lists,
/// maps, null.
pub fn compare_values(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Number(_) => 0,
            Value::String(_) => 1,
            Value::Bool(_) => 2,
            Value::Array(_) => 3,
            Value::Object(_) => 4,
            Value::Null => 5,
        }
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => match (x.as_u64(), y.as_u64()) {
                (Some(x), Some(y)) => x.cmp(&y),
                _ => {
                    let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
                    x.partial_cmp(&y).unwrap_or(Ordering::Equal)
                }
            },
        },
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (x, y) in x.iter().zip(y.iter()) {
                let c = compare_values(x, y);
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            for ((xk, xv), (yk, yv)) in x.iter().zip(y.iter()) {
                let c = xk.cmp(yk).then_with(|| compare_values(xv, yv));
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Null, Value::Null) => Ordering::Equal,
        _ => rank(a).cmp(&rank(b)),
    }
}

/// A path from the object root, printed the way upstream prints it in conflicts
/// (`.spec.template.spec.containers[name="c"].image`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Path(pub Vec<PathElement>);

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for pe in &self.0 {
            write!(f, "{pe}")?;
        }
        Ok(())
    }
}

/// A set of field paths, as a trie. Invariant: no child set is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Set {
    members: BTreeSet<PathElement>,
    children: BTreeMap<PathElement, Set>,
}

impl Set {
    /// The empty set.
    pub fn new() -> Set {
        Set::default()
    }

    /// Whether the set owns nothing.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.is_empty()
    }

    /// Adds `path`; the empty path (the root) cannot be owned and is ignored, as upstream does.
    pub fn insert(&mut self, path: &[PathElement]) {
        let Some((first, rest)) = path.split_first() else {
            return;
        };
        if rest.is_empty() {
            self.members.insert(first.clone());
        } else {
            self.children.entry(first.clone()).or_default().insert(rest);
        }
    }

    /// Whether `path` is a member (owned as a whole).
    pub fn has(&self, path: &[PathElement]) -> bool {
        match path.split_first() {
            None => false,
            Some((first, [])) => self.members.contains(first),
            Some((first, rest)) => self.children.get(first).is_some_and(|c| c.has(rest)),
        }
    }

    /// Whether `pe` is owned, as a member or through fields below it.
    pub(crate) fn touches(&self, pe: &PathElement) -> bool {
        self.members.contains(pe) || self.children.contains_key(pe)
    }

    /// Whether `pe` itself is a member (not only a prefix of owned fields).
    pub(crate) fn is_member(&self, pe: &PathElement) -> bool {
        self.members.contains(pe)
    }

    /// The fields owned below `pe`.
    pub(crate) fn child(&self, pe: &PathElement) -> Option<&Set> {
        self.children.get(pe)
    }

    /// Every path in either set.
    pub fn union(&self, other: &Set) -> Set {
        let mut out = self.clone();
        out.members.extend(other.members.iter().cloned());
        for (pe, child) in &other.children {
            let merged = match out.children.get(pe) {
                Some(mine) => mine.union(child),
                None => child.clone(),
            };
            out.children.insert(pe.clone(), merged);
        }
        out
    }

    /// The paths of `self` that are not members of `other` (children of a removed member stay,
    /// exactly like upstream's `Difference`).
    pub fn difference(&self, other: &Set) -> Set {
        let members = self.members.difference(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (pe, child) in &self.children {
            let kept = match other.children.get(pe) {
                Some(theirs) => child.difference(theirs),
                None => child.clone(),
            };
            if !kept.is_empty() {
                children.insert(pe.clone(), kept);
            }
        }
        Set { members, children }
    }

    /// The paths in both sets.
    pub fn intersection(&self, other: &Set) -> Set {
        let members = self.members.intersection(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (pe, child) in &self.children {
            if let Some(theirs) = other.children.get(pe) {
                let both = child.intersection(theirs);
                if !both.is_empty() {
                    children.insert(pe.clone(), both);
                }
            }
        }
        Set { members, children }
    }

    /// The paths of `self` that neither are in `other` nor lie below a member of `other`
    /// (upstream's `RecursiveDifference`, used to exclude reset fields).
    pub fn recursive_difference(&self, other: &Set) -> Set {
        let members = self.members.difference(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (pe, child) in &self.children {
            if other.members.contains(pe) {
                continue;
            }
            let kept = match other.children.get(pe) {
                Some(theirs) => child.recursive_difference(theirs),
                None => child.clone(),
            };
            if !kept.is_empty() {
                children.insert(pe.clone(), kept);
            }
        }
        Set { members, children }
    }

    /// Keeps only the top-level elements `keep` accepts (with everything below them).
    pub(crate) fn retain_top(&self, keep: impl Fn(&PathElement) -> bool) -> Set {
        Set {
            members: self.members.iter().filter(|pe| keep(pe)).cloned().collect(),
            children: self
                .children
                .iter()
                .filter(|(pe, _)| keep(pe))
                .map(|(pe, c)| (pe.clone(), c.clone()))
                .collect(),
        }
    }

    /// Every member path, in upstream's iteration order (a level's members before its children).
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        let mut prefix = Vec::new();
        self.collect_paths(&mut prefix, &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Vec<PathElement>, out: &mut Vec<Path>) {
        for pe in &self.members {
            let mut p = prefix.clone();
            p.push(pe.clone());
            out.push(Path(p));
        }
        for (pe, child) in &self.children {
            prefix.push(pe.clone());
            child.collect_paths(prefix, out);
            prefix.pop();
        }
    }

    /// The `fieldsV1` JSON of this set.
    pub fn to_fields_v1(&self) -> Value {
        Value::Object(self.encode_level(false))
    }

    fn encode_level(&self, include_self: bool) -> Map<String, Value> {
        let mut obj = Map::new();
        if include_self {
            obj.insert(".".to_string(), Value::Object(Map::new()));
        }
        // Members and children are each sorted; merge them so the output follows upstream's order.
        let mut elements: Vec<&PathElement> =
            self.members.iter().chain(self.children.keys()).collect();
        elements.sort();
        elements.dedup();
        for pe in elements {
            let body = match self.children.get(pe) {
                Some(child) => child.encode_level(self.members.contains(pe)),
                None => Map::new(),
            };
            obj.insert(pe.encode(), Value::Object(body));
        }
        obj
    }

    /// Parses `fieldsV1` JSON.
    pub fn from_fields_v1(value: &Value) -> Result<Set, String> {
        let (set, _) = Set::decode_level(value, 0)?;
        Ok(set)
    }

    /// Returns the set and whether the level carried `"."` (its node is itself a member).
    fn decode_level(value: &Value, depth: usize) -> Result<(Set, bool), String> {
        if depth > crate::MAX_DEPTH {
            return Err("fieldsV1 is nested too deeply".to_string());
        }
        let Value::Object(obj) = value else {
            return Err(format!("expected a JSON object in fieldsV1, got {value}"));
        };
        let mut set = Set::new();
        let mut itself = false;
        for (key, body) in obj {
            if key == "." {
                itself = true;
                continue;
            }
            let pe = PathElement::decode(key)?;
            let (child, member) = Set::decode_level(body, depth + 1)?;
            let leaf = matches!(body, Value::Object(o) if o.is_empty());
            if member || leaf {
                set.members.insert(pe.clone());
            }
            if !child.is_empty() {
                set.children.insert(pe, child);
            }
        }
        Ok((set, itself))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(name: &str) -> PathElement {
        PathElement::Field(name.to_string())
    }

    #[test]
    fn fields_v1_round_trips_with_dot_for_owned_parents() {
        let cases = [
            json!({"f:spec": {"f:replicas": {}}}),
            json!({"f:metadata": {"f:labels": {".": {}, "f:app": {}}}}),
            json!({"f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:image": {}, "f:name": {}}}}}),
            json!({"f:metadata": {"f:finalizers": {"v:\"a\"": {}, "v:\"b\"": {}}}}),
            json!({"f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}}),
            json!({"f:args": {"i:0": {}}}),
        ];
        for case in cases {
            let set = Set::from_fields_v1(&case).expect("valid");
            assert_eq!(set.to_fields_v1(), case);
        }
    }

    #[test]
    fn bad_fields_v1_is_an_error() {
        for bad in [
            json!([]),
            json!({"x:1": {}}),
            json!({"f:a": 3}),
            json!({"k:[1]": {}}),
            json!({"i:x": {}}),
        ] {
            assert!(Set::from_fields_v1(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn path_text_matches_upstream() {
        let key = PathElement::Key(vec![
            ("containerPort".into(), json!(80)),
            ("protocol".into(), json!("TCP")),
        ]);
        let p = Path(vec![f("spec"), f("ports"), key, f("name")]);
        assert_eq!(
            p.to_string(),
            ".spec.ports[containerPort=80,protocol=\"TCP\"].name"
        );
        let p = Path(vec![
            f("metadata"),
            f("finalizers"),
            PathElement::Value(json!("x")),
        ]);
        assert_eq!(p.to_string(), ".metadata.finalizers[=\"x\"]");
        assert_eq!(
            Path(vec![f("a"), PathElement::Index(2)]).to_string(),
            ".a[2]"
        );
    }

    #[test]
    fn set_algebra() {
        let mut a = Set::new();
        a.insert(&[f("spec"), f("replicas")]);
        a.insert(&[f("spec"), f("paused")]);
        let mut b = Set::new();
        b.insert(&[f("spec"), f("replicas")]);
        b.insert(&[f("status")]);
        let mut only_paused = Set::new();
        only_paused.insert(&[f("spec"), f("paused")]);
        assert_eq!(a.difference(&b), only_paused);
        assert!(a.intersection(&b).has(&[f("spec"), f("replicas")]));
        assert!(!a.intersection(&b).has(&[f("spec"), f("paused")]));
        assert_eq!(a.union(&b).paths().len(), 3);
        let mut spec = Set::new();
        spec.insert(&[f("spec")]);
        assert!(a.recursive_difference(&spec).is_empty());
        assert_eq!(
            a.difference(&spec),
            a,
            "difference only removes exact members"
        );
        // Members before children, fields in name order.
        let order: Vec<String> = a.union(&b).paths().iter().map(|p| p.to_string()).collect();
        assert_eq!(order, vec![".status", ".spec.paused", ".spec.replicas"]);
    }

    #[test]
    fn element_order_is_fields_keys_values_indices() {
        let mut v = [
            PathElement::Index(0),
            PathElement::Value(json!(1)),
            PathElement::Key(vec![("name".into(), json!("a"))]),
            f("z"),
        ];
        v.sort();
        assert!(matches!(v.first(), Some(PathElement::Field(_))));
        assert!(matches!(v.last(), Some(PathElement::Index(_))));
        assert_eq!(compare_values(&json!(9000), &json!(10000)), Ordering::Less);
        assert_eq!(compare_values(&json!(1), &json!("a")), Ordering::Less);
        assert_eq!(compare_values(&json!({}), &Value::Null), Ordering::Less);
    }
}
