//! The static token file (`--token-auth-file`): upstream's CSV of
//! `token,user,uid[,"group1,group2"]`, read with Go `encoding/csv` rules (quoted fields, `""`
//! escapes, blank lines skipped, no comment syntax, variable field counts) so the same file gives
//! the same users and the same parse errors.

use std::collections::HashMap;

use crate::{Error, UserInfo};

/// Tokens from a token file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenFile {
    tokens: HashMap<String, UserInfo>,
    /// Upstream logs these as warnings (empty and duplicate tokens).
    pub warnings: Vec<String>,
}

impl TokenFile {
    /// Parses the file at `path` (used only in messages) whose contents are `data`.
    pub fn parse(path: &str, data: &str) -> Result<Self, Error> {
        let mut out = TokenFile::default();
        let mut record_num = 0usize;
        for record in read_csv(data)? {
            if record.len() < 3 {
                return Err(Error::TokenFileColumns {
                    path: path.to_string(),
                    found: record.len(),
                });
            }
            record_num += 1;
            let mut fields = record.into_iter();
            let token = fields.next().unwrap_or_default();
            let name = fields.next().unwrap_or_default();
            let uid = fields.next().unwrap_or_default();
            if token.is_empty() {
                out.warnings.push(format!(
                    "empty token has been found in token file '{path}', record number '{record_num}'"
                ));
                continue;
            }
            // Upstream splits even an empty column, yielding one empty group name.
            let groups = fields
                .next()
                .map(|g| g.split(',').map(str::to_string).collect())
                .unwrap_or_default();
            let user = UserInfo {
                name,
                uid,
                groups,
                extra: Default::default(),
            };
            if out.tokens.insert(token, user).is_some() {
                // The later line wins, as in upstream's map assignment.
                out.warnings.push(format!(
                    "duplicate token has been found in token file '{path}', record number '{record_num}'"
                ));
            }
        }
        Ok(out)
    }

    /// The user for a bearer token, if the file lists it.
    pub fn authenticate(&self, token: &str) -> Option<&UserInfo> {
        self.tokens.get(token)
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

/// Go `encoding/csv`'s parse errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsvErrorKind {
    BareQuote,
    Quote,
}

impl std::fmt::Display for CsvErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CsvErrorKind::BareQuote => "bare \" in non-quoted-field",
            CsvErrorKind::Quote => "extraneous or missing \" in quoted-field",
        })
    }
}

/// Formats like Go's `csv.ParseError`.
pub(crate) fn csv_error_message(
    start_line: usize,
    line: usize,
    column: usize,
    kind: CsvErrorKind,
) -> String {
    if start_line != line {
        format!("record on line {start_line}; parse error on line {line}, column {column}: {kind}")
    } else {
        format!("parse error on line {line}, column {column}: {kind}")
    }
}

/// Reads all records, following Go's `csv.Reader` with `FieldsPerRecord = -1`.
fn read_csv(data: &str) -> Result<Vec<Vec<String>>, Error> {
    // Go's reader turns `\r\n` into `\n` and drops a lone `\r` at the very end of input.
    let data = data.replace("\r\n", "\n");
    let data = data.strip_suffix('\r').unwrap_or(&data);
    let mut lines = data.split_inclusive('\n');
    let mut line_no = 0usize;
    let mut records = Vec::new();
    while let Some(mut line) = lines.next() {
        line_no += 1;
        if line == "\n" {
            continue;
        }
        let start_line = line_no;
        let mut record = Vec::new();
        // 1-based byte column of the start of `line` within the physical line.
        let mut col = 1usize;
        'fields: loop {
            if !line.starts_with('"') {
                let end = line.find(',');
                let field = match end {
                    Some(i) => line.get(..i).unwrap_or_default(),
                    None => line.strip_suffix('\n').unwrap_or(line),
                };
                if let Some(q) = field.find('"') {
                    return Err(Error::TokenFileParse(csv_error_message(
                        start_line,
                        line_no,
                        col + q,
                        CsvErrorKind::BareQuote,
                    )));
                }
                record.push(field.to_string());
                match end {
                    Some(i) => {
                        line = line.get(i + 1..).unwrap_or_default();
                        col += i + 1;
                        continue 'fields;
                    }
                    None => break 'fields,
                }
            }
            // Quoted field, possibly spanning lines.
            let mut field = String::new();
            line = line.get(1..).unwrap_or_default();
            col += 1;
            loop {
                if let Some(i) = line.find('"') {
                    field.push_str(line.get(..i).unwrap_or_default());
                    line = line.get(i + 1..).unwrap_or_default();
                    col += i + 1;
                    if let Some(rest) = line.strip_prefix('"') {
                        field.push('"');
                        line = rest;
                        col += 1;
                    } else if let Some(rest) = line.strip_prefix(',') {
                        record.push(field);
                        line = rest;
                        col += 1;
                        continue 'fields;
                    } else if line.is_empty() || line == "\n" {
                        record.push(field);
                        break 'fields;
                    } else {
                        return Err(Error::TokenFileParse(csv_error_message(
                            start_line,
                            line_no,
                            col - 1,
                            CsvErrorKind::Quote,
                        )));
                    }
                } else if !line.is_empty() {
                    field.push_str(line);
                    col += line.len();
                    if let Some(next) = lines.next() {
                        line = next;
                        line_no += 1;
                        col = 1;
                    } else {
                        return Err(Error::TokenFileParse(csv_error_message(
                            start_line,
                            line_no,
                            col,
                            CsvErrorKind::Quote,
                        )));
                    }
                } else {
                    return Err(Error::TokenFileParse(csv_error_message(
                        start_line,
                        line_no,
                        col,
                        CsvErrorKind::Quote,
                    )));
                }
            }
        }
        records.push(record);
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, uid: &str, groups: &[&str]) -> UserInfo {
        UserInfo {
            name: name.into(),
            uid: uid.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            extra: Default::default(),
        }
    }

    #[test]
    fn parses_upstream_examples() {
        let data = "token1,user1,uid1\ntoken2,user2,uid2,\"group1,group2\"\n\ntoken3,user3,uid3,group3\r\ntoken4,user4,uid4,\n\"tok\"\"5\",user5,\"uid5\",\"\"\n";
        let file = TokenFile::parse("/tokens.csv", data).expect("parse");
        assert_eq!(file.len(), 5);
        let cases = [
            ("token1", user("user1", "uid1", &[])),
            ("token2", user("user2", "uid2", &["group1", "group2"])),
            ("token3", user("user3", "uid3", &["group3"])),
            ("token4", user("user4", "uid4", &[""])),
            ("tok\"5", user("user5", "uid5", &[""])),
        ];
        for (token, want) in cases {
            assert_eq!(file.authenticate(token), Some(&want), "{token}");
        }
        assert_eq!(file.authenticate("token"), None);
        assert!(file.warnings.is_empty());
    }

    #[test]
    fn duplicates_and_empty_tokens_warn() {
        let data = "a,u1,1\n,u2,2\na,u3,3";
        let file = TokenFile::parse("f.csv", data).expect("parse");
        assert_eq!(file.authenticate("a"), Some(&user("u3", "3", &[])));
        assert_eq!(
            file.warnings,
            vec![
                "empty token has been found in token file 'f.csv', record number '2'",
                "duplicate token has been found in token file 'f.csv', record number '3'",
            ]
        );
    }

    #[test]
    fn errors_match_go() {
        let cases = [
            (
                "a,b\n",
                "token file 'f' must have at least 3 columns (token, user name, user uid), found 2",
            ),
            // No comment syntax: a "#" line is a one-column record.
            (
                "# comment\n",
                "token file 'f' must have at least 3 columns (token, user name, user uid), found 1",
            ),
            (
                "ok,u,1\na\"b,u,1\n",
                "parse error on line 2, column 2: bare \" in non-quoted-field",
            ),
            (
                "\"ab\"c,u,1\n",
                "parse error on line 1, column 4: extraneous or missing \" in quoted-field",
            ),
            (
                "\"multi\nline,u,1\n",
                "record on line 1; parse error on line 2, column 10: extraneous or missing \" in quoted-field",
            ),
        ];
        for (data, want) in cases {
            let err = TokenFile::parse("f", data).expect_err(data);
            assert_eq!(err.to_string(), want, "{data:?}");
        }
    }

    #[test]
    fn quoted_fields_may_span_lines() {
        let file = TokenFile::parse("f", "\"to\nken\",u,1\n").expect("parse");
        assert_eq!(file.authenticate("to\nken"), Some(&user("u", "1", &[])));
    }
}
