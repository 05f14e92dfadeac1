//! Idempotency keys: a key names one run, of one workflow version, with one input. A
//! submission that brings a key back gets that run only when it asks for the same thing;
//! anything else is a conflict the caller is told about, never another workflow's run.

/// Why a submission's idempotency key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdempotencyError {
    /// An empty key: every client that leaves its key unset would share one run.
    #[error("the idempotency key is empty; give a non-empty key, or none to submit without one")]
    Empty,
    /// The key names a run of another workflow or version.
    #[error(
        "idempotency key {key:?} was already used for run {run_id} of {workflow}@{version}; a key names one run of one workflow version"
    )]
    OtherWorkflow {
        /// The key.
        key: String,
        /// The run it names.
        run_id: String,
        /// That run's workflow.
        workflow: String,
        /// That run's workflow version.
        version: String,
    },
    /// The key names a run of this workflow version with another input.
    #[error("idempotency key {key:?} was already used for run {run_id} with a different input")]
    OtherInput {
        /// The key.
        key: String,
        /// The run it names.
        run_id: String,
        /// That run's workflow.
        workflow: String,
        /// That run's workflow version.
        version: String,
    },
}

impl IdempotencyError {
    /// The existing run a conflict names: its id, workflow and version.
    pub fn existing(&self) -> Option<(&str, &str, &str)> {
        match self {
            Self::Empty => None,
            Self::OtherWorkflow {
                run_id,
                workflow,
                version,
                ..
            }
            | Self::OtherInput {
                run_id,
                workflow,
                version,
                ..
            } => Some((run_id, workflow, version)),
        }
    }
}

/// Refuses an empty key before anything is looked up.
pub(crate) fn check_key(key: &str) -> Result<(), IdempotencyError> {
    if key.is_empty() {
        return Err(IdempotencyError::Empty);
    }
    Ok(())
}

/// The run found under `key` (`id`, workflow, version, input digest) against what a new
/// submission asks for: `Ok` when it is the same run, the conflict otherwise.
pub(crate) fn check_existing(
    key: &str,
    existing: (String, String, String, String),
    run: &super::NewRun,
    input_digest: &str,
) -> Result<String, IdempotencyError> {
    let (run_id, workflow, version, digest) = existing;
    if workflow != run.workflow || version != run.version {
        return Err(IdempotencyError::OtherWorkflow {
            key: key.to_string(),
            run_id,
            workflow,
            version,
        });
    }
    if digest != input_digest {
        return Err(IdempotencyError::OtherInput {
            key: key.to_string(),
            run_id,
            workflow,
            version,
        });
    }
    Ok(run_id)
}
