//! Weir: a host for sandboxed WebAssembly AI workflow steps.
//!
//! A step is a WebAssembly component implementing the `weir:step` world (see `wit/step.wit`).
//! The [`Host`] compiles each plugin once (with a persistent compile cache), then runs every
//! attempt in a fresh, least-privilege sandbox: fuel, wall-clock timeout, memory and output
//! limits, and only the files, hosts and configuration its [`StepSpec`] grants. Every limit
//! hit comes back as a typed [`StepFailure`] with what the attempt consumed.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use weir::{AttemptContext, Host, HostConfig, StepSpec};
//!
//! let host = Host::new(HostConfig::default())?;
//! let plugin = host.load_plugin_file("plugins/echo.wasm".as_ref()).await?;
//! let spec = StepSpec::default();
//! let report = host.run_step(&plugin, &spec, r#"{"hello":"world"}"#, AttemptContext::default()).await?;
//! match &report.outcome {
//!     Ok(output) => println!("{}", output.payload),
//!     Err(failure) => eprintln!("{} ({})", failure, failure.kind()),
//! }
//! # Ok(()) }
//! ```

pub mod attempt;
mod bindings;
pub mod build;
pub mod capabilities;
pub mod cli;
pub mod engine;
pub mod eval;
pub mod failure;
pub mod limits;
pub mod metrics;
pub mod model;
pub mod monitor;
pub mod plugin;
pub mod redaction;
pub mod registry;
pub mod replay;
pub mod retention;
pub mod rollout;
pub mod runner;
pub mod schema;
pub mod serve;
pub mod store;
pub mod telemetry;
pub mod text;
pub mod ui;
pub mod watch;
pub mod workflow;

pub use attempt::{AttemptContext, AttemptReport, StepOutput, StepSpec, Usage};
pub use capabilities::Grants;
pub use engine::{Host, HostConfig};
pub use failure::{FailureKind, StepFailure};
pub use limits::Limits;
pub use plugin::{Plugin, PluginError, StepMeta};
