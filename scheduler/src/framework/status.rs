//! What an extension point answers (upstream's `framework.Status`): a code, the reasons shown
//! to users in `FailedScheduling` events, and the plugin that failed.

use std::fmt;

/// Upstream's status codes, in upstream's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Code {
    #[default]
    Success,
    /// An internal error: the pod is retried with backoff, and the reasons are not a verdict on
    /// the node.
    Error,
    /// The pod does not fit now; preemption may help (e.g. insufficient resources).
    Unschedulable,
    /// The pod does not fit and preemption cannot help (e.g. node affinity).
    UnschedulableAndUnresolvable,
    /// A Permit plugin holds the pod.
    Wait,
    /// The plugin has nothing to do for this pod (PreFilter / PreScore / Bind).
    Skip,
    /// The pod waits for something outside the scheduler (PreEnqueue gates, ...).
    Pending,
}

impl Code {
    /// The name upstream prints.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Success => "Success",
            Code::Error => "Error",
            Code::Unschedulable => "Unschedulable",
            Code::UnschedulableAndUnresolvable => "UnschedulableAndUnresolvable",
            Code::Wait => "Wait",
            Code::Skip => "Skip",
            Code::Pending => "Pending",
        }
    }
}

/// The result of running one plugin (or a whole extension point).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Status {
    code: Code,
    reasons: Vec<String>,
    /// The plugin that produced a non-success status ("" until the framework sets it).
    plugin: &'static str,
}

impl Status {
    pub fn success() -> Status {
        Status::default()
    }

    pub fn new(code: Code, reason: impl Into<String>) -> Status {
        Status {
            code,
            reasons: vec![reason.into()],
            plugin: "",
        }
    }

    pub fn with_reasons(code: Code, reasons: Vec<String>) -> Status {
        Status {
            code,
            reasons,
            plugin: "",
        }
    }

    pub fn error(reason: impl Into<String>) -> Status {
        Status::new(Code::Error, reason)
    }

    pub fn unschedulable(reason: impl Into<String>) -> Status {
        Status::new(Code::Unschedulable, reason)
    }

    pub fn unresolvable(reason: impl Into<String>) -> Status {
        Status::new(Code::UnschedulableAndUnresolvable, reason)
    }

    pub fn skip() -> Status {
        Status {
            code: Code::Skip,
            reasons: Vec::new(),
            plugin: "",
        }
    }

    pub fn code(&self) -> Code {
        self.code
    }

    pub fn reasons(&self) -> &[String] {
        &self.reasons
    }

    pub fn plugin(&self) -> &'static str {
        self.plugin
    }

    /// Names the plugin that produced this status (the framework does this for every plugin).
    pub fn with_plugin(mut self, plugin: &'static str) -> Status {
        self.plugin = plugin;
        self
    }

    pub fn is_success(&self) -> bool {
        self.code == Code::Success
    }

    pub fn is_skip(&self) -> bool {
        self.code == Code::Skip
    }

    pub fn is_wait(&self) -> bool {
        self.code == Code::Wait
    }

    /// Unschedulable or UnschedulableAndUnresolvable (upstream's `IsRejected` minus Pending).
    pub fn is_rejected(&self) -> bool {
        matches!(
            self.code,
            Code::Unschedulable | Code::UnschedulableAndUnresolvable | Code::Pending
        )
    }

    /// The reasons joined as upstream's `Message()` does.
    pub fn message(&self) -> String {
        self.reasons.join(", ")
    }

    /// Upstream's `AsError`: the message for an Error status.
    pub fn as_error(&self) -> Option<anyhow::Error> {
        (self.code == Code::Error).then(|| anyhow::anyhow!("{}", self.message()))
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.reasons.is_empty() {
            f.write_str(self.code.as_str())
        } else {
            f.write_str(&self.message())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_default_status_is_success() {
        assert!(Status::default().is_success());
        assert!(Status::success().reasons().is_empty());
    }

    #[test]
    fn rejections_and_messages() {
        let s = Status::with_reasons(
            Code::Unschedulable,
            vec!["Insufficient cpu".into(), "Insufficient memory".into()],
        )
        .with_plugin("NodeResourcesFit");
        assert!(s.is_rejected());
        assert_eq!(s.message(), "Insufficient cpu, Insufficient memory");
        assert_eq!(s.plugin(), "NodeResourcesFit");
        assert!(Status::unresolvable("x").is_rejected());
        assert!(!Status::error("boom").is_rejected());
        assert_eq!(
            Status::error("boom").as_error().map(|e| e.to_string()),
            Some("boom".to_string())
        );
        assert!(Status::skip().as_error().is_none());
    }
}
