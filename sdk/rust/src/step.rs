//! The [`Step`] trait and the types a step author works with.

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::weir::step::types as wit;

/// One workflow step. Implement it and export it with [`export_step!`](crate::export_step).
pub trait Step {
    /// The input, deserialized from the JSON the host passes in. Use
    /// [`serde_json::Value`] to take any JSON.
    type Input: DeserializeOwned;
    /// The output payload, serialized to JSON for the host.
    type Output: Serialize;

    /// Name, version, schemas and wanted capabilities. Called once when the host loads the
    /// plugin.
    fn meta() -> Meta;

    /// Runs the step on one input.
    fn run(ctx: &Context, input: Self::Input) -> Result<Output<Self::Output>, StepError>;
}

/// What a step says about itself; built with [`Meta::new`] and its setters.
#[derive(Debug, Clone)]
pub struct Meta {
    name: String,
    version: String,
    description: String,
    input_schema: Option<serde_json::Value>,
    output_schema: Option<serde_json::Value>,
    capabilities: Vec<String>,
}

impl Meta {
    /// A step called `name` at semantic version `version`.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            description: String::new(),
            input_schema: None,
            output_schema: None,
            capabilities: Vec::new(),
        }
    }

    /// One line for humans.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// The JSON Schema the input must satisfy; the host checks it before the step runs.
    pub fn input_schema(mut self, schema: serde_json::Value) -> Self {
        self.input_schema = Some(schema);
        self
    }

    /// The JSON Schema the output payload satisfies; the host checks it after the step runs.
    pub fn output_schema(mut self, schema: serde_json::Value) -> Self {
        self.output_schema = Some(schema);
        self
    }

    /// A capability the step expects to be granted (`http`, `files`, ...).
    pub fn capability(mut self, capability: impl Into<String>) -> Self {
        self.capabilities.push(capability.into());
        self
    }
}

/// Where the current attempt sits.
#[derive(Debug, Clone)]
pub struct Context {
    /// The run this attempt belongs to.
    pub run_id: String,
    /// The step's id inside its workflow.
    pub step_id: String,
    /// 1 for the first attempt, 2 for the first retry, and so on.
    pub attempt: u32,
    /// Time left before the host stops this attempt, when a deadline is set.
    pub deadline: Option<Duration>,
}

/// A successful result: the payload plus an optional confidence and route label.
#[derive(Debug, Clone)]
pub struct Output<T> {
    payload: T,
    confidence: Option<f64>,
    route: Option<String>,
}

impl<T> Output<T> {
    /// A result carrying `payload`, with no confidence and no route.
    pub fn new(payload: T) -> Self {
        Self {
            payload,
            confidence: None,
            route: None,
        }
    }

    /// How sure the step is, from 0.0 to 1.0 (clamped into that range).
    pub fn confidence(mut self, confidence: f64) -> Self {
        self.confidence = Some(confidence.clamp(0.0, 1.0));
        self
    }

    /// A route label that selects the workflow branch taken next.
    pub fn route(mut self, route: impl Into<String>) -> Self {
        self.route = Some(route.into());
        self
    }
}

impl<T> From<T> for Output<T> {
    fn from(payload: T) -> Self {
        Self::new(payload)
    }
}

/// An error the step reports; the workflow's policies decide what happens next.
#[derive(Debug, Clone, PartialEq)]
pub enum StepError {
    /// The input is malformed; retrying will not help.
    InvalidInput(String),
    /// A passing failure; a retry may succeed.
    Transient(String),
    /// A permanent failure; do not retry.
    Fatal(String),
    /// A human should look at this case.
    NeedsReview(String),
    /// A model call failed and the step cannot do without it.
    Model(crate::model::ModelError),
}

impl StepError {
    /// The input is malformed; retrying will not help.
    pub fn invalid_input(message: impl fmt::Display) -> Self {
        Self::InvalidInput(message.to_string())
    }

    /// A passing failure; a retry may succeed.
    pub fn transient(message: impl fmt::Display) -> Self {
        Self::Transient(message.to_string())
    }

    /// A permanent failure; do not retry.
    pub fn fatal(message: impl fmt::Display) -> Self {
        Self::Fatal(message.to_string())
    }

    /// A human should look at this case.
    pub fn needs_review(message: impl fmt::Display) -> Self {
        Self::NeedsReview(message.to_string())
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidInput(m) => write!(f, "invalid input: {m}"),
            Self::Transient(m) => write!(f, "transient: {m}"),
            Self::Fatal(m) => write!(f, "fatal: {m}"),
            Self::NeedsReview(m) => write!(f, "needs review: {m}"),
            Self::Model(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StepError {}

impl From<StepError> for wit::StepError {
    fn from(error: StepError) -> Self {
        match error {
            StepError::InvalidInput(m) => Self::InvalidInput(m),
            StepError::Transient(m) => Self::Transient(m),
            StepError::Fatal(m) => Self::Fatal(m),
            StepError::NeedsReview(m) => Self::NeedsReview(m),
            StepError::Model(e) => Self::ModelFailed(e.into_wit()),
        }
    }
}

fn schema_text(schema: Option<serde_json::Value>) -> Option<String> {
    schema.map(|s| s.to_string())
}

/// Implements the exported `describe` for `S`.
pub fn describe<S: Step>() -> wit::StepMeta {
    let meta = S::meta();
    wit::StepMeta {
        name: meta.name,
        version: meta.version,
        description: meta.description,
        input_schema: schema_text(meta.input_schema),
        output_schema: schema_text(meta.output_schema),
        capabilities: meta.capabilities,
    }
}

/// Implements the exported `run` for `S`: decodes the input, runs the step, encodes the output.
pub fn run<S: Step>(
    ctx: wit::StepContext,
    input: String,
) -> Result<wit::StepOutput, wit::StepError> {
    let input: S::Input = serde_json::from_str(&input).map_err(|e| {
        wit::StepError::InvalidInput(format!("input does not have the expected shape: {e}"))
    })?;
    let ctx = Context {
        run_id: ctx.run_id,
        step_id: ctx.step_id,
        attempt: ctx.attempt,
        deadline: ctx.deadline_ms.map(Duration::from_millis),
    };
    let output = S::run(&ctx, input)?;
    let payload = serde_json::to_string(&output.payload)
        .map_err(|e| wit::StepError::Fatal(format!("output could not be encoded as JSON: {e}")))?;
    Ok(wit::StepOutput {
        payload,
        confidence: output.confidence,
        route: output.route,
    })
}
