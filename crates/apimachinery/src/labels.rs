//! Label selectors, as upstream's `k8s.io/apimachinery/pkg/labels` (`selector.go`) and
//! `metav1.LabelSelectorAsSelector`: the `labelSelector` query syntax with upstream's lexer,
//! parser and error messages, matching against an object's labels, and the canonical string
//! (requirements sorted by key, values sorted).
//!
//! Three selectors are distinct, as upstream:
//! - the empty selector (`""`, or a `LabelSelector` `{}`) matches everything and is empty;
//! - the nothing selector (a `null` or absent `LabelSelector`) matches nothing and is not empty;
//! - any other selector matches when all its requirements do.

use crate::field::{aggregate_message, FieldError, Path};
use crate::gofmt;
use crate::validation::{is_qualified_name, is_valid_label_value};
use crate::Error;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;

/// A set of labels to match against.
pub trait Labels {
    /// The value of `key`, or `None` when the label is not set.
    fn get(&self, key: &str) -> Option<&str>;
}

impl Labels for BTreeMap<String, String> {
    fn get(&self, key: &str) -> Option<&str> {
        BTreeMap::get(self, key).map(String::as_str)
    }
}

impl<S: std::hash::BuildHasher> Labels for HashMap<String, String, S> {
    fn get(&self, key: &str) -> Option<&str> {
        HashMap::get(self, key).map(String::as_str)
    }
}

/// `metadata.labels` as JSON; a label whose value is not a string counts as unset.
impl Labels for Map<String, Value> {
    fn get(&self, key: &str) -> Option<&str> {
        Map::get(self, key).and_then(Value::as_str)
    }
}

/// A JSON labels object; anything else (e.g. `null` for an object without labels) has none.
impl Labels for Value {
    fn get(&self, key: &str) -> Option<&str> {
        self.as_object().and_then(|m| Labels::get(m, key))
    }
}

impl<L: Labels + ?Sized> Labels for &L {
    fn get(&self, key: &str) -> Option<&str> {
        (**self).get(key)
    }
}

/// Upstream's `selection.Operator`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    In,
    NotIn,
    Equals,
    DoubleEquals,
    NotEquals,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

impl Operator {
    /// Upstream's string for the operator (`in`, `notin`, `=`, `==`, `!=`, `exists`, `!`, `gt`,
    /// `lt`).
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::In => "in",
            Operator::NotIn => "notin",
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::Exists => "exists",
            Operator::DoesNotExist => "!",
            Operator::GreaterThan => "gt",
            Operator::LessThan => "lt",
        }
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `key op values` term of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

impl Requirement {
    /// Builds a checked requirement, as upstream's `NewRequirement`: the key must be a qualified
    /// name, the values valid label values, and their number must suit the operator.
    pub fn new(key: &str, operator: Operator, values: Vec<String>) -> Result<Requirement, Error> {
        Requirement::checked(key, operator, values, &Path::default(), true)
    }

    /// `path` is where errors point (upstream's `field.WithPath`, empty here); the bad value of
    /// an empty values list is `null`, as Go marshals a nil slice.
    fn checked(
        key: &str,
        operator: Operator,
        values: Vec<String>,
        path: &Path,
        nil_if_empty: bool,
    ) -> Result<Requirement, Error> {
        let mut errs: Vec<FieldError> = Vec::new();
        errs.extend(validate_label_key(key, path.child("key")));
        let values_path = path.child("values");
        let values_json = || {
            if values.is_empty() && nil_if_empty {
                Value::Null
            } else {
                Value::from(values.clone())
            }
        };
        match operator {
            Operator::In | Operator::NotIn => {
                if values.is_empty() {
                    errs.push(FieldError::invalid(
                        &values_path,
                        values_json(),
                        "for 'in', 'notin' operators, values set can't be empty",
                    ));
                }
            }
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals => {
                if values.len() != 1 {
                    errs.push(FieldError::invalid(
                        &values_path,
                        values_json(),
                        "exact-match compatibility requires one single value",
                    ));
                }
            }
            Operator::Exists | Operator::DoesNotExist => {
                if !values.is_empty() {
                    errs.push(FieldError::invalid(
                        &values_path,
                        values_json(),
                        "values set must be empty for exists and does not exist",
                    ));
                }
            }
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    errs.push(FieldError::invalid(
                        &values_path,
                        values_json(),
                        "for 'Gt', 'Lt' operators, exactly one value is required",
                    ));
                }
                for (i, v) in values.iter().enumerate() {
                    if v.parse::<i64>().is_err() {
                        errs.push(FieldError::invalid(
                            values_path.index(i),
                            v.as_str(),
                            "for 'Gt', 'Lt' operators, the value must be an integer",
                        ));
                    }
                }
            }
        }
        for (i, v) in values.iter().enumerate() {
            let msgs = is_valid_label_value(v);
            if !msgs.is_empty() {
                errs.push(FieldError::invalid(
                    values_path.index(i).key(key),
                    v.as_str(),
                    msgs.join("; "),
                ));
            }
        }
        match aggregate_message(&errs) {
            Some(message) => Err(Error::InvalidLabelSelector { message }),
            None => Ok(Requirement {
                key: key.to_string(),
                operator,
                values,
            }),
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn operator(&self) -> Operator {
        self.operator
    }

    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Whether the labels satisfy this requirement. A missing key satisfies `!=`, `notin` and
    /// `!key`; `>`/`<` need both sides to be integers.
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        let value = labels.get(&self.key);
        let has = |v: &str| self.values.iter().any(|x| x == v);
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => value.is_some_and(has),
            Operator::NotIn | Operator::NotEquals => !value.is_some_and(has),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let Some(Ok(have)) = value.map(str::parse::<i64>) else {
                    return false;
                };
                let [want] = self.values.as_slice() else {
                    return false;
                };
                let Ok(want) = want.parse::<i64>() else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    have > want
                } else {
                    have < want
                }
            }
        }
    }
}

/// `key=value`, `key in (a,b)`, `!key`, ... with values sorted, as upstream prints it.
impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let op = match self.operator {
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => " in ",
            Operator::NotIn => " notin ",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
        };
        f.write_str(op)?;
        let set = matches!(self.operator, Operator::In | Operator::NotIn);
        if set {
            f.write_str("(")?;
        }
        let mut values: Vec<&str> = self.values.iter().map(String::as_str).collect();
        values.sort_unstable();
        f.write_str(&values.join(","))?;
        if set {
            f.write_str(")")?;
        }
        Ok(())
    }
}

fn validate_label_key(key: &str, path: Path) -> Option<FieldError> {
    let msgs = is_qualified_name(key);
    (!msgs.is_empty()).then(|| FieldError::invalid(path, key, msgs.join("; ")))
}

/// A label selector: a conjunction of requirements, or the selector that matches nothing.
/// The default is the empty selector, which matches everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// `None` is upstream's `labels.Nothing()`.
    requirements: Option<Vec<Requirement>>,
}

impl Default for Selector {
    fn default() -> Selector {
        Selector::everything()
    }
}

impl Selector {
    /// Matches every set of labels (`labels.Everything()`).
    pub fn everything() -> Selector {
        Selector {
            requirements: Some(Vec::new()),
        }
    }

    /// Matches no set of labels (`labels.Nothing()`); prints as `""` but is not empty.
    pub fn nothing() -> Selector {
        Selector { requirements: None }
    }

    /// Parses the `labelSelector` query form, e.g. `app=web,tier in (a,b),!canary,version>2`.
    pub fn parse(selector: &str) -> Result<Selector, Error> {
        let mut requirements = Parser::new(selector).parse()?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Selector {
            requirements: Some(requirements),
        })
    }

    /// `key=value` for every entry (upstream's `SelectorFromSet`, unvalidated).
    pub fn from_set<'a>(set: impl IntoIterator<Item = (&'a str, &'a str)>) -> Selector {
        let mut requirements: Vec<Requirement> = set
            .into_iter()
            .map(|(k, v)| Requirement {
                key: k.to_string(),
                operator: Operator::Equals,
                values: vec![v.to_string()],
            })
            .collect();
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Selector {
            requirements: Some(requirements),
        }
    }

    /// Converts a `metav1.LabelSelector` (`matchLabels` + `matchExpressions`), as upstream's
    /// `LabelSelectorAsSelector`: `null` (an absent selector) matches nothing, `{}` matches
    /// everything.
    pub fn from_label_selector(selector: &Value) -> Result<Selector, Error> {
        let invalid = |message: String| Error::InvalidLabelSelector { message };
        let sel = match selector {
            Value::Null => return Ok(Selector::nothing()),
            Value::Object(sel) => sel,
            other => {
                return Err(invalid(format!(
                    "a label selector must be an object, not {other}"
                )))
            }
        };
        let match_labels = match sel.get("matchLabels") {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(m),
            Some(_) => return Err(invalid("matchLabels must be a map of strings".into())),
        };
        let match_expressions: &[Value] = match sel.get("matchExpressions") {
            None | Some(Value::Null) => &[],
            Some(Value::Array(a)) => a,
            Some(_) => return Err(invalid("matchExpressions must be a list".into())),
        };
        let mut requirements = Vec::new();
        for (k, v) in match_labels.into_iter().flatten() {
            let v = v
                .as_str()
                .ok_or_else(|| invalid(format!("matchLabels[{k}] must be a string")))?;
            requirements.push(Requirement::new(k, Operator::Equals, vec![v.to_string()])?);
        }
        for expr in match_expressions {
            let text = |k: &str| expr.get(k).and_then(Value::as_str).unwrap_or("");
            let operator = match text("operator") {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => {
                    return Err(invalid(format!(
                        "{} is not a valid label selector operator",
                        gofmt::quote(other)
                    )))
                }
            };
            let values = match expr.get("values") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|v| v.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| invalid("matchExpressions values must be strings".into()))?,
                Some(_) => return Err(invalid("matchExpressions values must be a list".into())),
            };
            requirements.push(Requirement::new(text("key"), operator, values)?);
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Selector {
            requirements: Some(requirements),
        })
    }

    /// Adds requirements, keeping them sorted by key.
    pub fn with_requirements(
        mut self,
        requirements: impl IntoIterator<Item = Requirement>,
    ) -> Selector {
        if let Some(reqs) = &mut self.requirements {
            reqs.extend(requirements);
            reqs.sort_by(|a, b| a.key.cmp(&b.key));
        }
        self
    }

    /// Whether the selector places no restriction (matches everything).
    pub fn is_empty(&self) -> bool {
        self.requirements.as_ref().is_some_and(Vec::is_empty)
    }

    /// Whether this is the selector that matches nothing.
    pub fn is_nothing(&self) -> bool {
        self.requirements.is_none()
    }

    /// The requirements, sorted by key (none for the nothing selector).
    pub fn requirements(&self) -> &[Requirement] {
        self.requirements.as_deref().unwrap_or(&[])
    }

    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        match &self.requirements {
            None => false,
            Some(reqs) => reqs.iter().all(|r| r.matches(labels)),
        }
    }

    /// Matches an object's `metadata.labels`.
    pub fn matches_object(&self, object: &Value) -> bool {
        self.matches(object.pointer("/metadata/labels").unwrap_or(&Value::Null))
    }

    /// The single value `label` must have, when the selector pins it (`=`, `==` or a one-value
    /// `in`), e.g. to serve a list from an index.
    pub fn requires_exact_match(&self, label: &str) -> Option<&str> {
        let r = self.requirements().iter().find(|r| r.key == label)?;
        match (r.operator, r.values.as_slice()) {
            (Operator::Equals | Operator::DoubleEquals | Operator::In, [v]) => Some(v),
            _ => None,
        }
    }
}

/// The canonical form: requirements sorted by key and joined by `,`; `""` for the empty and the
/// nothing selector.
impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements().iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl FromStr for Selector {
    type Err = Error;
    fn from_str(s: &str) -> Result<Selector, Error> {
        Selector::parse(s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Error,
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

fn keyword(s: &[u8]) -> Option<Token> {
    Some(match s {
        b")" => Token::ClosedPar,
        b"," => Token::Comma,
        b"!" => Token::DoesNotExist,
        b"==" => Token::DoubleEquals,
        b"=" => Token::Equals,
        b">" => Token::GreaterThan,
        b"in" => Token::In,
        b"<" => Token::LessThan,
        b"!=" => Token::NotEquals,
        b"notin" => Token::NotIn,
        b"(" => Token::OpenPar,
        _ => return None,
    })
}

fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

/// Upstream's lexer, byte for byte: a NUL byte ends the input, as in Go.
struct Lexer<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn read(&mut self) -> u8 {
        match self.s.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                b
            }
            None => 0,
        }
    }

    fn unread(&mut self) {
        self.pos -= 1;
    }

    fn text(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).into_owned()
    }

    fn scan_id_or_keyword(&mut self) -> (Token, String) {
        let start = self.pos;
        loop {
            let b = self.read();
            if b == 0 {
                break;
            }
            if is_special(b) || is_whitespace(b) {
                self.unread();
                break;
            }
        }
        let end = if self.pos > start && self.s.get(self.pos - 1) == Some(&0) {
            self.pos - 1
        } else {
            self.pos
        };
        let word = &self.s[start..end];
        (
            keyword(word).unwrap_or(Token::Identifier),
            Lexer::text(word),
        )
    }

    fn scan_special_symbol(&mut self) -> (Token, String) {
        let start = self.pos;
        let mut last: Option<(Token, usize)> = None;
        loop {
            let b = self.read();
            if b == 0 {
                break;
            }
            if !is_special(b) {
                self.unread();
                break;
            }
            match keyword(&self.s[start..self.pos]) {
                Some(t) => last = Some((t, self.pos)),
                None if last.is_some() => {
                    self.unread();
                    break;
                }
                None => {}
            }
        }
        match last {
            Some((t, end)) => (t, Lexer::text(&self.s[start..end])),
            None => (
                Token::Error,
                format!(
                    "error expected: keyword found '{}'",
                    Lexer::text(&self.s[start..self.pos])
                ),
            ),
        }
    }

    fn lex(&mut self) -> (Token, String) {
        let mut b = self.read();
        while is_whitespace(b) {
            b = self.read();
        }
        if b == 0 {
            return (Token::EndOfString, String::new());
        }
        self.unread();
        if is_special(b) {
            self.scan_special_symbol()
        } else {
            self.scan_id_or_keyword()
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

/// Upstream's recursive-descent parser over the scanned tokens.
struct Parser {
    items: Vec<(Token, String)>,
    position: usize,
}

fn parse_error(message: String) -> Error {
    Error::InvalidLabelSelector { message }
}

impl Parser {
    fn new(selector: &str) -> Parser {
        let mut lexer = Lexer {
            s: selector.as_bytes(),
            pos: 0,
        };
        let mut items = Vec::new();
        loop {
            let item = lexer.lex();
            let end = item.0 == Token::EndOfString;
            items.push(item);
            if end {
                break;
            }
        }
        Parser { items, position: 0 }
    }

    fn adjust(tok: Token, context: Context) -> Token {
        match (context, tok) {
            (Context::Values, Token::In | Token::NotIn) => Token::Identifier,
            _ => tok,
        }
    }

    fn lookahead(&self, context: Context) -> (Token, String) {
        let (t, l) = &self.items[self.position];
        (Parser::adjust(*t, context), l.clone())
    }

    fn consume(&mut self, context: Context) -> (Token, String) {
        let (t, l) = self.items[self.position].clone();
        // Upstream never consumes past the end token; stay on it.
        if self.position + 1 < self.items.len() {
            self.position += 1;
        }
        (Parser::adjust(t, context), l)
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, Error> {
        let mut requirements = Vec::new();
        loop {
            let (tok, lit) = self.lookahead(Context::Values);
            match tok {
                Token::Identifier | Token::DoesNotExist => {
                    let r = self.parse_requirement().map_err(|e| {
                        parse_error(format!("unable to parse requirement: {}", e.message()))
                    })?;
                    requirements.push(r);
                    let (t, l) = self.consume(Context::Values);
                    match t {
                        Token::EndOfString => return Ok(requirements),
                        Token::Comma => {
                            let (t2, l2) = self.lookahead(Context::Values);
                            if t2 != Token::Identifier && t2 != Token::DoesNotExist {
                                return Err(parse_error(format!(
                                    "found '{l2}', expected: identifier after ','"
                                )));
                            }
                        }
                        _ => {
                            return Err(parse_error(format!(
                                "found '{l}', expected: ',' or 'end of string'"
                            )))
                        }
                    }
                }
                Token::EndOfString => return Ok(requirements),
                _ => {
                    return Err(parse_error(format!(
                        "found '{lit}', expected: !, identifier, or 'end of string'"
                    )))
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, Error> {
        let (key, operator) = self.parse_key_and_infer_operator()?;
        if let Some(op @ (Operator::Exists | Operator::DoesNotExist)) = operator {
            return Requirement::checked(&key, op, Vec::new(), &Path::default(), false);
        }
        let operator = self.parse_operator()?;
        let values = match operator {
            Operator::In | Operator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        Requirement::checked(
            &key,
            operator,
            values.into_iter().collect(),
            &Path::default(),
            false,
        )
    }

    /// Reads `[!]key`; the operator is inferred as exists / does-not-exist when nothing follows.
    fn parse_key_and_infer_operator(&mut self) -> Result<(String, Option<Operator>), Error> {
        let mut operator = None;
        let (mut tok, mut literal) = self.consume(Context::Values);
        if tok == Token::DoesNotExist {
            operator = Some(Operator::DoesNotExist);
            (tok, literal) = self.consume(Context::Values);
        }
        if tok != Token::Identifier {
            return Err(parse_error(format!(
                "found '{literal}', expected: identifier"
            )));
        }
        // Upstream validates the key against a nil field path, which prints as `<nil>`.
        let msgs = is_qualified_name(&literal);
        if !msgs.is_empty() {
            let e = FieldError::invalid("<nil>", literal.as_str(), msgs.join("; "));
            return Err(parse_error(e.to_string()));
        }
        let (t, _) = self.lookahead(Context::Values);
        if (t == Token::EndOfString || t == Token::Comma) && operator.is_none() {
            operator = Some(Operator::Exists);
        }
        Ok((literal, operator))
    }

    fn parse_operator(&mut self) -> Result<Operator, Error> {
        let (tok, lit) = self.consume(Context::KeyAndOperator);
        Ok(match tok {
            Token::In => Operator::In,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            Token::NotIn => Operator::NotIn,
            Token::NotEquals => Operator::NotEquals,
            _ => {
                return Err(parse_error(format!(
                    "found '{lit}', expected: in, notin, =, ==, !=, gt, lt"
                )))
            }
        })
    }

    /// `(a,b,c)`; empty entries are the empty string, so `()` is `{""}`.
    fn parse_values(&mut self) -> Result<BTreeSet<String>, Error> {
        let (tok, lit) = self.consume(Context::Values);
        if tok != Token::OpenPar {
            return Err(parse_error(format!("found '{lit}' expected: '('")));
        }
        let (tok, lit) = self.lookahead(Context::Values);
        match tok {
            Token::Identifier | Token::Comma => {
                let set = self.parse_identifiers_list()?;
                let (t, _) = self.consume(Context::Values);
                if t != Token::ClosedPar {
                    // Upstream reports the token that followed '(' here.
                    return Err(parse_error(format!("found '{lit}', expected: ')'")));
                }
                Ok(set)
            }
            Token::ClosedPar => {
                self.consume(Context::Values);
                Ok(BTreeSet::from([String::new()]))
            }
            _ => Err(parse_error(format!(
                "found '{lit}', expected: ',', ')' or identifier"
            ))),
        }
    }

    fn parse_identifiers_list(&mut self) -> Result<BTreeSet<String>, Error> {
        let mut set = BTreeSet::new();
        loop {
            let (tok, lit) = self.consume(Context::Values);
            match tok {
                Token::Identifier => {
                    set.insert(lit);
                    let (t2, l2) = self.lookahead(Context::Values);
                    match t2 {
                        Token::Comma => continue,
                        Token::ClosedPar => return Ok(set),
                        _ => {
                            return Err(parse_error(format!("found '{l2}', expected: ',' or ')'")))
                        }
                    }
                }
                Token::Comma => {
                    if set.is_empty() {
                        set.insert(String::new());
                    }
                    let (t2, _) = self.lookahead(Context::Values);
                    if t2 == Token::ClosedPar {
                        set.insert(String::new());
                        return Ok(set);
                    }
                    if t2 == Token::Comma {
                        self.consume(Context::Values);
                        set.insert(String::new());
                    }
                }
                _ => {
                    return Err(parse_error(format!(
                        "found '{lit}', expected: ',', or identifier"
                    )))
                }
            }
        }
    }

    /// The value after `=`, `==`, `!=`, `>` or `<`; nothing at all is the empty string.
    fn parse_exact_value(&mut self) -> Result<BTreeSet<String>, Error> {
        let (tok, _) = self.lookahead(Context::Values);
        if tok == Token::EndOfString || tok == Token::Comma {
            return Ok(BTreeSet::from([String::new()]));
        }
        let (tok, lit) = self.consume(Context::Values);
        if tok == Token::Identifier {
            return Ok(BTreeSet::from([lit]));
        }
        Err(parse_error(format!("found '{lit}', expected: identifier")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NAME_PART_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
    const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_to_canonical_strings() {
        let cases = [
            ("", ""),
            ("x=a", "x=a"),
            ("x==a", "x==a"),
            ("x!=a", "x!=a"),
            ("x=", "x="),
            ("x=,z= ", "x=,z="),
            ("y,x", "x,y"),
            ("!x", "!x"),
            ("x>1", "x>1"),
            ("x<1", "x<1"),
            ("x in (b,a,b)", "x in (a,b)"),
            ("x notin (c)", "x notin (c)"),
            ("x in ()", "x in ()"),
            ("x in (,)", "x in ()"),
            ("x in (a,,b)", "x in (,a,b)"),
            ("x in (,a)", "x in (,a)"),
            ("x in (a,)", "x in (,a)"),
            ("  b = c ,  a != d  ", "a!=d,b=c"),
            ("\tx\tin\t(\ta\t)\n", "x in (a)"),
            ("in in (in)", "in in (in)"),
            ("notin notin (notin)", "notin notin (notin)"),
            ("x=a,x!=b", "x=a,x!=b"),
            ("example.com/app=web", "example.com/app=web"),
            ("g>3,f,!e,c notin (d),a=b", "a=b,c notin (d),!e,f,g>3"),
        ];
        for (input, want) in cases {
            let sel = Selector::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(sel.to_string(), want, "{input:?}");
            // The canonical form parses back to itself.
            assert_eq!(Selector::parse(want).unwrap().to_string(), want);
        }
    }

    #[test]
    fn parse_errors_carry_upstream_messages() {
        let err = |s: &str| Selector::parse(s).unwrap_err().to_string();
        let cases: Vec<(&str, String)> = vec![
            ("x=a,", "found '', expected: identifier after ','".into()),
            ("x=a,,y", "found ',', expected: identifier after ','".into()),
            (",x", "found ',', expected: !, identifier, or 'end of string'".into()),
            ("=a", "found '=', expected: !, identifier, or 'end of string'".into()),
            ("x=a b", "found 'b', expected: ',' or 'end of string'".into()),
            ("x y", "unable to parse requirement: found 'y', expected: in, notin, =, ==, !=, gt, lt".into()),
            ("!", "unable to parse requirement: found '', expected: identifier".into()),
            ("!=a", "found '!=', expected: !, identifier, or 'end of string'".into()),
            ("x in a", "unable to parse requirement: found 'a' expected: '('".into()),
            ("x in (a", "unable to parse requirement: found '', expected: ',' or ')'".into()),
            ("x in (a b)", "unable to parse requirement: found 'b', expected: ',' or ')'".into()),
            ("x in (=)", "unable to parse requirement: found '=', expected: ',', ')' or identifier".into()),
            ("x in (,=)", "unable to parse requirement: found '=', expected: ',', or identifier".into()),
            ("x in (", "unable to parse requirement: found '', expected: ',', ')' or identifier".into()),
            ("x==(", "unable to parse requirement: found '(', expected: identifier".into()),
            ("x=a=b", "found '=', expected: ',' or 'end of string'".into()),
            (
                "a/b/c=d",
                format!(
                    "unable to parse requirement: <nil>: Invalid value: \"a/b/c\": a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                    crate::validation::regex_error("must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character", "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]", &["MyName", "my.name", "123-abc"])
                ),
            ),
            (
                "-x",
                format!("unable to parse requirement: <nil>: Invalid value: \"-x\": {NAME_PART_MSG}"),
            ),
            (
                "x=-a",
                format!("unable to parse requirement: values[0][x]: Invalid value: \"-a\": {LABEL_VALUE_MSG}"),
            ),
            (
                "x>a",
                "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer".into(),
            ),
            (
                "x<-1",
                format!("unable to parse requirement: values[0][x]: Invalid value: \"-1\": {LABEL_VALUE_MSG}"),
            ),
            (
                "x>-a",
                format!("unable to parse requirement: [values[0]: Invalid value: \"-a\": for 'Gt', 'Lt' operators, the value must be an integer, values[0][x]: Invalid value: \"-a\": {LABEL_VALUE_MSG}]"),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(err(input), want, "{input:?}");
        }
    }

    #[test]
    fn matches_like_upstream() {
        let set = labels(&[("app", "web"), ("tier", "front"), ("n", "5"), ("e", "")]);
        let cases = [
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app=db", false),
            ("app!=db", true),
            ("app!=web", false),
            ("missing!=x", true),
            ("app in (db,web)", true),
            ("app in (db)", false),
            ("missing in (x)", false),
            ("app notin (db)", true),
            ("app notin (web)", false),
            ("missing notin (x)", true),
            ("app", true),
            ("missing", false),
            ("!app", false),
            ("!missing", true),
            ("e=", true),
            ("e", true),
            ("missing=", false),
            ("n>4", true),
            ("n>5", false),
            ("n<6", true),
            ("n<5", false),
            ("app>1", false),
            ("missing<1", false),
            ("app=web,tier=front", true),
            ("app=web,tier=back", false),
        ];
        for (sel, want) in cases {
            assert_eq!(Selector::parse(sel).unwrap().matches(&set), want, "{sel:?}");
        }
    }

    #[test]
    fn matches_json_labels() {
        let sel = Selector::parse("app=web,!canary").unwrap();
        let pod = json!({"metadata": {"name": "p", "labels": {"app": "web"}}});
        assert!(sel.matches_object(&pod));
        assert!(sel.matches(&pod["metadata"]["labels"]));
        assert!(sel.matches(pod["metadata"]["labels"].as_object().unwrap()));
        let unlabeled = json!({"metadata": {"name": "p"}});
        assert!(!sel.matches_object(&unlabeled));
        assert!(Selector::parse("!app").unwrap().matches_object(&unlabeled));
        // Non-string label values are not labels.
        assert!(!sel.matches(&json!({"app": 1})));
        let hm: HashMap<String, String> = [("app".to_string(), "web".to_string())].into();
        assert!(sel.matches(&hm));
    }

    #[test]
    fn everything_nothing_and_empty() {
        let everything = Selector::parse("").unwrap();
        assert!(everything.is_empty());
        assert!(everything.matches(&labels(&[])));
        assert_eq!(everything, Selector::everything());
        assert_eq!(Selector::default(), Selector::everything());

        let nothing = Selector::from_label_selector(&Value::Null).unwrap();
        assert!(nothing.is_nothing());
        assert!(!nothing.is_empty());
        assert!(!nothing.matches(&labels(&[])));
        assert!(!nothing.matches(&labels(&[("a", "b")])));
        assert_eq!(nothing.to_string(), "");
        assert_eq!(nothing.clone().with_requirements([]).to_string(), "");

        let empty = Selector::from_label_selector(&json!({})).unwrap();
        assert!(empty.is_empty());
        assert!(empty.matches(&labels(&[("a", "b")])));
        let empty =
            Selector::from_label_selector(&json!({"matchLabels": {}, "matchExpressions": []}))
                .unwrap();
        assert!(empty.is_empty());
    }

    #[test]
    fn converts_label_selectors() {
        let sel = Selector::from_label_selector(&json!({
            "matchLabels": {"app": "web", "tier": "front"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod", "dev"]},
                {"key": "canary", "operator": "DoesNotExist"},
                {"key": "zone", "operator": "NotIn", "values": ["b"]},
                {"key": "gpu", "operator": "Exists", "values": []},
            ]
        }))
        .unwrap();
        assert_eq!(
            sel.to_string(),
            "app=web,!canary,env in (dev,prod),gpu,tier=front,zone notin (b)"
        );
        assert!(sel.matches(&labels(&[
            ("app", "web"),
            ("tier", "front"),
            ("env", "dev"),
            ("gpu", "")
        ])));
        assert!(!sel.matches(&labels(&[
            ("app", "web"),
            ("tier", "front"),
            ("env", "dev")
        ])));
        assert_eq!(sel.requires_exact_match("app"), Some("web"));
        assert_eq!(sel.requires_exact_match("env"), None);
        assert_eq!(sel.requires_exact_match("nope"), None);
        assert_eq!(
            Selector::parse("a in (x)")
                .unwrap()
                .requires_exact_match("a"),
            Some("x")
        );
    }

    #[test]
    fn label_selector_errors() {
        let err = |v: Value| Selector::from_label_selector(&v).unwrap_err().to_string();
        let cases: Vec<(Value, String)> = vec![
            (
                json!({"matchExpressions": [{"key": "a", "operator": "Near"}]}),
                "\"Near\" is not a valid label selector operator".into(),
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}),
                "values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty".into(),
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}),
                "values: Invalid value: [\"x\"]: values set must be empty for exists and does not exist".into(),
            ),
            (
                json!({"matchLabels": {"-a": "b"}}),
                format!("key: Invalid value: \"-a\": {NAME_PART_MSG}"),
            ),
            (
                json!({"matchLabels": {"a": "-b"}}),
                format!("values[0][a]: Invalid value: \"-b\": {LABEL_VALUE_MSG}"),
            ),
            (
                json!({"matchLabels": {"-a": "-b"}}),
                format!("[key: Invalid value: \"-a\": {NAME_PART_MSG}, values[0][-a]: Invalid value: \"-b\": {LABEL_VALUE_MSG}]"),
            ),
            (json!({"matchLabels": {"a": 1}}), "matchLabels[a] must be a string".into()),
            (json!("app=web"), "a label selector must be an object, not \"app=web\"".into()),
        ];
        for (input, want) in cases {
            assert_eq!(err(input.clone()), want, "{input}");
        }
    }

    #[test]
    fn requirements_are_checked() {
        assert!(Requirement::new("a", Operator::Equals, vec!["b".into()]).is_ok());
        assert_eq!(
            Requirement::new("a", Operator::Equals, vec![])
                .unwrap_err()
                .to_string(),
            "values: Invalid value: null: exact-match compatibility requires one single value"
        );
        assert_eq!(
            Requirement::new("a", Operator::GreaterThan, vec!["1".into(), "2".into()])
                .unwrap_err()
                .to_string(),
            "values: Invalid value: [\"1\",\"2\"]: for 'Gt', 'Lt' operators, exactly one value is required"
        );
        let sel = Selector::everything().with_requirements([
            Requirement::new("z", Operator::Exists, vec![]).unwrap(),
            Requirement::new("a", Operator::NotIn, vec!["y".into(), "x".into()]).unwrap(),
        ]);
        assert_eq!(sel.to_string(), "a notin (x,y),z");
        assert_eq!(sel.requirements()[0].operator(), Operator::NotIn);
        assert_eq!(sel.requirements()[0].values(), ["y", "x"]);
        assert_eq!(Operator::GreaterThan.to_string(), "gt");
    }

    #[test]
    fn from_set_is_sorted() {
        let sel = Selector::from_set([("b", "2"), ("a", "1")]);
        assert_eq!(sel.to_string(), "a=1,b=2");
        assert!(Selector::from_set([]).is_empty());
    }

    /// Property: for random selectors built from a small alphabet, parsing the canonical string
    /// gives the same canonical string and the same matching on random label sets.
    #[test]
    fn canonical_form_round_trips() {
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let keys = ["a", "b", "c", "x.io/d"];
        let vals = ["", "1", "2", "v"];
        for _ in 0..500 {
            let mut terms = Vec::new();
            for _ in 0..next(4) {
                let k = keys[next(4) as usize];
                let v = vals[next(4) as usize];
                terms.push(match next(8) {
                    0 => format!("{k}={v}"),
                    1 => format!("{k} == {v}"),
                    2 => format!("{k}!={v}"),
                    3 => format!("{k} in ({v},{})", vals[next(4) as usize]),
                    4 => format!("{k} notin ({v})"),
                    5 => k.to_string(),
                    6 => format!("!{k}"),
                    _ => format!("{k}>{}", next(3)),
                });
            }
            let input = terms.join(" , ");
            let sel = Selector::parse(&input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            let again = Selector::parse(&sel.to_string()).unwrap();
            assert_eq!(again.to_string(), sel.to_string(), "{input:?}");
            for _ in 0..8 {
                let mut set = BTreeMap::new();
                for k in keys {
                    if next(2) == 0 {
                        set.insert(k.to_string(), vals[next(4) as usize].to_string());
                    }
                }
                assert_eq!(sel.matches(&set), again.matches(&set), "{input:?} {set:?}");
            }
        }
    }
}
