//! How a model call fails, as a step and a workflow's fallback rules see it.

use super::ModelError;

/// Why a call failed, as the step (and the workflow's fallback rules) see it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelFailure {
    /// The step was not granted the alias.
    #[error("{0}")]
    Denied(String),
    /// No provider is configured for the alias.
    #[error("{0}")]
    NotConfigured(String),
    /// The provider's breaker is open, or it kept failing.
    #[error("{0}")]
    Unavailable(String),
    /// Rate limited, by the provider or the host.
    #[error("{0}")]
    RateLimited(String),
    /// A budget cannot cover the call.
    #[error("{0}")]
    BudgetExceeded(String),
    /// No time is left for the call.
    #[error("{0}")]
    DeadlineExceeded(String),
    /// The request is wrong (or the provider says so).
    #[error("{0}")]
    Rejected(String),
}

impl ModelFailure {
    /// The stable name, as in fallback rules (`model.<kind>`) and the journal.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Denied(_) => "denied",
            Self::NotConfigured(_) => "not_configured",
            Self::Unavailable(_) => "unavailable",
            Self::RateLimited(_) => "rate_limited",
            Self::BudgetExceeded(_) => "budget_exceeded",
            Self::DeadlineExceeded(_) => "deadline_exceeded",
            Self::Rejected(_) => "rejected",
        }
    }

    /// The failure of a journaled kind (as [`ModelFailure::kind`] names it), with its message;
    /// an unknown kind reads as `unavailable`.
    pub fn from_kind(kind: &str, message: String) -> Self {
        match kind {
            "denied" => Self::Denied(message),
            "not_configured" => Self::NotConfigured(message),
            "rate_limited" => Self::RateLimited(message),
            "budget_exceeded" => Self::BudgetExceeded(message),
            "deadline_exceeded" => Self::DeadlineExceeded(message),
            "rejected" => Self::Rejected(message),
            _ => Self::Unavailable(message),
        }
    }

    /// Every kind, for checking fallback rules.
    pub const KINDS: &[&str] = &[
        "denied",
        "not_configured",
        "unavailable",
        "rate_limited",
        "budget_exceeded",
        "deadline_exceeded",
        "rejected",
    ];

    pub(super) fn from_gateway(error: ModelError) -> Self {
        let text = error.to_string();
        match error {
            ModelError::RateLimited { .. } | ModelError::Throttled { .. } => {
                Self::RateLimited(text)
            }
            ModelError::Rejected { .. } | ModelError::MissingKey(_) => Self::Rejected(text),
            ModelError::DeadlineExceeded(_) | ModelError::DeadlineCut(_) => {
                Self::DeadlineExceeded(text)
            }
            ModelError::Timeout(_)
            | ModelError::Server { .. }
            | ModelError::Connection(_)
            | ModelError::BadResponse(_)
            | ModelError::Unavailable { .. }
            | ModelError::BudgetUnchecked(_) => Self::Unavailable(text),
            ModelError::OverBudget(_) => Self::BudgetExceeded(text),
        }
    }

    /// Whether the next alias in the fallback chain is worth trying.
    pub(crate) fn falls_through(&self) -> bool {
        matches!(
            self,
            Self::NotConfigured(_)
                | Self::Unavailable(_)
                | Self::RateLimited(_)
                | Self::BudgetExceeded(_)
        )
    }
}
