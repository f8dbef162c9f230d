//! Container logs as the kubelet serves them (`/containerLogs/<ns>/<pod>/<container>`): the CRI
//! log files the runtime writes (`<RFC3339Nano> <stdout|stderr> <P|F> <text>` per line) turned
//! back into the container's output, with upstream's `PodLogOptions` (`tailLines`,
//! `sinceSeconds`/`sinceTime`, `timestamps`, `limitBytes`, `previous`, `follow`).
//!
//! Partial lines (`P`) are joined with the following pieces up to the closing `F`, so a long line
//! comes back whole; `tailLines` counts such whole lines.

use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset, Utc};

/// Upstream's `PodLogOptions`, as the query of a `containerLogs` request carries them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogOptions {
    pub follow: bool,
    pub previous: bool,
    pub timestamps: bool,
    pub tail_lines: Option<u64>,
    pub since: Option<DateTime<Utc>>,
    pub limit_bytes: Option<u64>,
}

impl LogOptions {
    /// Reads the options from a query string; `now` anchors `sinceSeconds`. Errors are
    /// upstream's validation messages.
    pub fn from_query(query: &str, now: DateTime<Utc>) -> Result<LogOptions, String> {
        let mut options = LogOptions::default();
        let mut since_seconds = None;
        let mut since_time = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(value);
            let flag = |v: &str| matches!(v, "true" | "1" | "True" | "TRUE");
            match key {
                "follow" => options.follow = flag(&value),
                "previous" => options.previous = flag(&value),
                "timestamps" => options.timestamps = flag(&value),
                "tailLines" => {
                    let n: i64 = value
                        .parse()
                        .map_err(|_| format!("tailLines: invalid value {value:?}"))?;
                    if n < 0 {
                        return Err(
                            "tailLines: Invalid value: must be greater than or equal to 0".into(),
                        );
                    }
                    options.tail_lines = Some(n as u64);
                }
                "limitBytes" => {
                    let n: i64 = value
                        .parse()
                        .map_err(|_| format!("limitBytes: invalid value {value:?}"))?;
                    if n < 1 {
                        return Err("limitBytes: Invalid value: must be greater than 0".into());
                    }
                    options.limit_bytes = Some(n as u64);
                }
                "sinceSeconds" => {
                    let n: i64 = value
                        .parse()
                        .map_err(|_| format!("sinceSeconds: invalid value {value:?}"))?;
                    if n < 1 {
                        return Err("sinceSeconds: Invalid value: must be greater than 0".into());
                    }
                    since_seconds = Some(n);
                }
                "sinceTime" => {
                    let t = DateTime::parse_from_rfc3339(&value)
                        .map_err(|_| format!("sinceTime: invalid value {value:?}"))?;
                    since_time = Some(t.with_timezone(&Utc));
                }
                _ => {}
            }
        }
        options.since = match (since_seconds, since_time) {
            (Some(_), Some(_)) => {
                return Err("at most one of sinceTime or sinceSeconds may be specified".into())
            }
            (Some(s), None) => Some(now - chrono::Duration::seconds(s)),
            (None, t) => t,
        };
        Ok(options)
    }
}

fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One line of a CRI log file.
#[derive(Clone, Debug, PartialEq)]
pub struct CriLine<'a> {
    pub timestamp: &'a str,
    pub time: DateTime<FixedOffset>,
    pub stream: &'a str,
    pub partial: bool,
    pub text: &'a str,
}

/// Parses one line (without its newline); `None` for a line that is not CRI format.
pub fn parse_line(line: &str) -> Option<CriLine<'_>> {
    let mut parts = line.splitn(4, ' ');
    let timestamp = parts.next()?;
    let stream = parts.next()?;
    let tag = parts.next()?;
    let text = parts.next().unwrap_or("");
    let time = DateTime::parse_from_rfc3339(timestamp).ok()?;
    if stream != "stdout" && stream != "stderr" {
        return None;
    }
    let partial = match tag.split(':').next() {
        Some("P") => true,
        Some("F") => false,
        _ => return None,
    };
    Some(CriLine {
        timestamp,
        time,
        stream,
        partial,
        text,
    })
}

/// A whole line of output: its pieces joined, stamped with the first piece's time.
#[derive(Clone, Debug, PartialEq)]
pub struct LogEntry {
    pub timestamp: String,
    pub time: DateTime<FixedOffset>,
    pub text: String,
    /// False while the closing `F` piece has not been written yet.
    pub complete: bool,
}

impl LogEntry {
    /// The entry as the client sees it.
    pub fn render(&self, timestamps: bool) -> String {
        let newline = if self.complete { "\n" } else { "" };
        if timestamps {
            format!("{} {}{newline}", self.timestamp, self.text)
        } else {
            format!("{}{newline}", self.text)
        }
    }
}

/// Joins CRI lines into entries across calls (a follow reads a file in pieces); partial lines
/// are joined per stream, as the runtime splits each stream on its own.
#[derive(Debug, Default)]
pub struct EntryParser {
    pending: Vec<(String, LogEntry)>,
}

impl EntryParser {
    /// Feeds complete file lines (each without its newline); returns the entries they closed.
    pub fn push_line(&mut self, line: &str) -> Option<LogEntry> {
        let parsed = parse_line(line)?;
        let index = self.pending.iter().position(|(s, _)| s == parsed.stream);
        let entry = match index {
            Some(i) => {
                let (_, mut entry) = self.pending.remove(i);
                entry.text.push_str(parsed.text);
                entry
            }
            None => LogEntry {
                timestamp: parsed.timestamp.to_string(),
                time: parsed.time,
                text: parsed.text.to_string(),
                complete: false,
            },
        };
        if parsed.partial {
            self.pending.push((parsed.stream.to_string(), entry));
            None
        } else {
            Some(LogEntry {
                complete: true,
                ..entry
            })
        }
    }

    /// What is still open (a container that died mid-line): shown without a newline.
    pub fn finish(&mut self) -> Vec<LogEntry> {
        self.pending.drain(..).map(|(_, e)| e).collect()
    }
}

/// The complete lines of `data` (up to the last newline) and how many bytes they take.
pub fn complete_lines(data: &[u8]) -> (Vec<String>, usize) {
    let Some(end) = data.iter().rposition(|b| *b == b'\n') else {
        return (Vec::new(), 0);
    };
    let lines = data[..end]
        .split(|b| *b == b'\n')
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    (lines, end + 1)
}

/// The output for a whole file's worth of CRI lines under `options` (no follow), and how many
/// bytes of `data` it consumed.
pub fn render_file(data: &[u8], options: &LogOptions, parser: &mut EntryParser) -> (String, usize) {
    let (lines, consumed) = complete_lines(data);
    let mut entries: Vec<LogEntry> = lines.iter().filter_map(|l| parser.push_line(l)).collect();
    if !options.follow {
        entries.extend(parser.finish());
    }
    if let Some(since) = options.since {
        entries.retain(|e| e.time.with_timezone(&Utc) >= since);
    }
    if let Some(n) = options.tail_lines {
        let skip = entries.len().saturating_sub(n as usize);
        entries.drain(..skip);
    }
    let out = entries
        .iter()
        .map(|e| e.render(options.timestamps))
        .collect();
    (out, consumed)
}

/// Cuts `text` to at most `remaining` bytes (on a character boundary) and counts it down.
pub fn limit(text: String, remaining: &mut Option<u64>) -> String {
    let Some(left) = remaining else {
        return text;
    };
    let mut end = (*left as usize).min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    *left -= end as u64;
    let mut text = text;
    text.truncate(end);
    text
}

/// Why a container's log cannot be found (upstream's messages where it has them).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FindError {
    #[error("pod {namespace}/{pod} not found")]
    PodNotFound { namespace: String, pod: String },
    #[error("container {container:?} in pod {pod:?} is not available")]
    ContainerNotFound { pod: String, container: String },
    #[error("previous terminated container {container:?} in pod {pod:?} not found")]
    PreviousNotFound { pod: String, container: String },
}

/// The log file of `container` in the pod: the newest pod directory of that name (a pod
/// recreated under the same name has a new UID), the highest restart (or the one before with
/// `previous`).
pub fn find_log_file(
    logs_root: &Path,
    namespace: &str,
    pod: &str,
    container: &str,
    previous: bool,
) -> Result<PathBuf, FindError> {
    let prefix = format!("{namespace}_{pod}_");
    let mut pod_dirs: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(logs_root)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            e.file_name().to_str().is_some_and(|n| {
                n.strip_prefix(&prefix)
                    .is_some_and(|uid| !uid.contains('_'))
            })
        })
        .map(|e| {
            let modified = e
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            (modified, e.path())
        })
        .collect();
    pod_dirs.sort();
    let Some((_, pod_dir)) = pod_dirs.pop() else {
        return Err(FindError::PodNotFound {
            namespace: namespace.into(),
            pod: pod.into(),
        });
    };
    let mut restarts: Vec<u32> = std::fs::read_dir(pod_dir.join(container))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".log"))
                .and_then(|n| n.parse().ok())
        })
        .collect();
    restarts.sort_unstable();
    let Some(&current) = restarts.last() else {
        return Err(FindError::ContainerNotFound {
            pod: pod.into(),
            container: container.into(),
        });
    };
    let wanted = if previous {
        match current.checked_sub(1).filter(|p| restarts.contains(p)) {
            Some(p) => p,
            None => {
                return Err(FindError::PreviousNotFound {
                    pod: pod.into(),
                    container: container.into(),
                })
            }
        }
    } else {
        current
    };
    Ok(pod_dir.join(container).join(format!("{wanted}.log")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "2026-01-01T00:00:01.000000001Z stdout F one\n\
2026-01-01T00:00:02.5Z stderr F two\n\
2026-01-01T00:00:03Z stdout P thr\n\
2026-01-01T00:00:03.1Z stdout P e\n\
2026-01-01T00:00:03.2Z stdout F e\n\
not a cri line\n\
2026-01-01T00:00:04Z stdout F four\n";

    fn render(options: &LogOptions) -> String {
        render_file(FILE.as_bytes(), options, &mut EntryParser::default()).0
    }

    #[test]
    fn parses_cri_lines() {
        let line = parse_line("2026-01-01T00:00:01.000000001Z stdout F hello world").unwrap();
        assert_eq!(line.stream, "stdout");
        assert!(!line.partial);
        assert_eq!(line.text, "hello world");
        assert_eq!(line.timestamp, "2026-01-01T00:00:01.000000001Z");
        assert!(
            parse_line("2026-01-01T00:00:01Z stdout P ")
                .unwrap()
                .partial
        );
        assert_eq!(
            parse_line("2026-01-01T00:00:01Z stdout F").unwrap().text,
            ""
        );
        assert!(parse_line("garbage stdout F x").is_none());
        assert!(parse_line("2026-01-01T00:00:01Z other F x").is_none());
        assert!(parse_line("2026-01-01T00:00:01Z stdout X x").is_none());
    }

    #[test]
    fn joins_partial_lines_and_skips_garbage() {
        assert_eq!(render(&LogOptions::default()), "one\ntwo\nthree\nfour\n");
    }

    #[test]
    fn timestamps_prefix_the_first_piece_time() {
        let options = LogOptions {
            timestamps: true,
            tail_lines: Some(2),
            ..LogOptions::default()
        };
        assert_eq!(
            render(&options),
            "2026-01-01T00:00:03Z three\n2026-01-01T00:00:04Z four\n"
        );
    }

    #[test]
    fn tail_counts_whole_lines() {
        let tail = |n| {
            render(&LogOptions {
                tail_lines: Some(n),
                ..LogOptions::default()
            })
        };
        assert_eq!(tail(1), "four\n");
        assert_eq!(tail(0), "");
        assert_eq!(tail(100), "one\ntwo\nthree\nfour\n");
    }

    #[test]
    fn since_drops_older_lines() {
        let since = DateTime::parse_from_rfc3339("2026-01-01T00:00:02Z")
            .unwrap()
            .with_timezone(&Utc);
        let options = LogOptions {
            since: Some(since),
            ..LogOptions::default()
        };
        assert_eq!(render(&options), "two\nthree\nfour\n");
    }

    #[test]
    fn an_unfinished_line_waits_when_following() {
        let data = "2026-01-01T00:00:01Z stdout F a\n2026-01-01T00:00:02Z stdout P b\n2026-01-01T00:00:03Z stdout F";
        let mut parser = EntryParser::default();
        let follow = LogOptions {
            follow: true,
            ..LogOptions::default()
        };
        let (out, consumed) = render_file(data.as_bytes(), &follow, &mut parser);
        assert_eq!(out, "a\n");
        assert_eq!(&data[consumed..], "2026-01-01T00:00:03Z stdout F");
        let rest = format!("{} c\n", &data[consumed..]);
        let (out, _) = render_file(rest.as_bytes(), &follow, &mut parser);
        assert_eq!(out, "bc\n");
        // Without follow an unfinished line is shown as it is.
        let (out, _) = render_file(
            data.as_bytes(),
            &LogOptions::default(),
            &mut EntryParser::default(),
        );
        assert_eq!(out, "a\nb");
    }

    #[test]
    fn limit_bytes_cuts_and_counts_down() {
        let mut left = Some(5);
        assert_eq!(limit("abc\n".into(), &mut left), "abc\n");
        assert_eq!(limit("defg\n".into(), &mut left), "d");
        assert_eq!(limit("more".into(), &mut left), "");
        assert_eq!(limit("x".into(), &mut None), "x");
    }

    #[test]
    fn query_options() {
        let now = Utc::now();
        let options = LogOptions::from_query(
            "follow=true&tailLines=3&timestamps=true&limitBytes=10&previous=false&sinceSeconds=5",
            now,
        )
        .unwrap();
        assert!(options.follow && options.timestamps && !options.previous);
        assert_eq!(options.tail_lines, Some(3));
        assert_eq!(options.limit_bytes, Some(10));
        assert_eq!(options.since, Some(now - chrono::Duration::seconds(5)));
        let t = LogOptions::from_query("sinceTime=2026-01-01T00%3A00%3A02Z", now).unwrap();
        assert_eq!(t.since.unwrap().to_rfc3339(), "2026-01-01T00:00:02+00:00");
        assert!(LogOptions::from_query("tailLines=-1", now).is_err());
        assert!(
            LogOptions::from_query("sinceSeconds=1&sinceTime=2026-01-01T00:00:00Z", now).is_err()
        );
    }

    #[test]
    fn finds_current_and_previous_files() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("ns_web_uid1").join("c");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("0.log"), "").unwrap();
        std::fs::write(dir.join("1.log"), "").unwrap();
        let found = find_log_file(root.path(), "ns", "web", "c", false).unwrap();
        assert!(found.ends_with("c/1.log"));
        let previous = find_log_file(root.path(), "ns", "web", "c", true).unwrap();
        assert!(previous.ends_with("c/0.log"));
        assert!(matches!(
            find_log_file(root.path(), "ns", "web", "other", false),
            Err(FindError::ContainerNotFound { .. })
        ));
        assert!(matches!(
            find_log_file(root.path(), "ns", "nope", "c", false),
            Err(FindError::PodNotFound { .. })
        ));
        std::fs::remove_file(dir.join("0.log")).unwrap();
        assert!(matches!(
            find_log_file(root.path(), "ns", "web", "c", true),
            Err(FindError::PreviousNotFound { .. })
        ));
    }
}
