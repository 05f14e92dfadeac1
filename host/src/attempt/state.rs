//! The data of one attempt's `Store`: WASI and HTTP contexts built from grants only, the
//! memory limiter, the bounded log, the config table and the denials seen.

use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::limiter::MemoryLimiter;
use super::{AttemptContext, StepSpec};
use crate::capabilities::config::StepConfig;
use crate::capabilities::files::quota::QuotaWatch;
use crate::capabilities::http::HttpGate;
use crate::capabilities::log::{LogBuffer, LogLevel, LogLine};
use crate::capabilities::stdio::Capture;
use crate::capabilities::{DenialLog, files, sockets};
use crate::limits::{Limits, MAX_HOST_RESOURCES, MAX_HTTP_FIELDS_BYTES};

/// Everything one attempt's guest can reach, and what the host learns while it runs.
pub struct AttemptState {
    wasi: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    http_gate: HttpGate,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) log: LogBuffer,
    pub(crate) config: StepConfig,
    pub(crate) denials: DenialLog,
    pub(crate) stdout: Capture,
    pub(crate) stderr: Capture,
    pub(crate) deadline: Instant,
    pub(crate) timed_out: bool,
    pub(crate) quota: QuotaWatch,
    /// The deadline is the run's (what was left of it), not the step's own timeout.
    pub(crate) deadline_cut: bool,
    pub(crate) state: crate::capabilities::state::StateScope,
    pub(crate) model: Option<crate::capabilities::model::ModelAccess>,
    ctx: AttemptContext,
}

impl AttemptState {
    /// Builds a fresh, least-privilege state: no env, no args, no inherited stdio, only the
    /// granted directories and hosts.
    pub(crate) fn new(
        spec: &StepSpec,
        limits: &Limits,
        ctx: &AttemptContext,
        deadline: Instant,
    ) -> anyhow::Result<Self> {
        let denials = DenialLog::default();
        let stdout = Capture::new(limits.stdio_bytes);
        let stderr = Capture::new(limits.stdio_bytes);
        let mut builder = WasiCtxBuilder::new();
        builder.stdout(stdout.clone()).stderr(stderr.clone());
        files::prepare(&mut builder, &spec.grants.dirs)?;
        sockets::prepare(&mut builder, &denials);
        crate::replay::sources::prepare(&mut builder, &ctx.deck);
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_HOST_RESOURCES);
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(MAX_HTTP_FIELDS_BYTES);
        Ok(Self {
            wasi: builder.build(),
            table,
            http,
            http_gate: HttpGate::new(
                spec.grants.hosts.clone(),
                denials.clone(),
                limits.http_requests,
                ctx.deck.clone(),
            ),
            limiter: MemoryLimiter::new(limits.memory_bytes),
            log: LogBuffer::new(limits.log_lines, limits.log_bytes),
            config: spec.config.clone(),
            denials,
            stdout,
            stderr,
            deadline,
            timed_out: false,
            quota: QuotaWatch::default(),
            deadline_cut: false,
            state: ctx.state.clone(),
            model: ctx.model.clone(),
            ctx: ctx.clone(),
        })
    }

    /// Where the attempt's clock reads, random bytes and HTTP exchanges come from and go.
    pub(crate) fn deck(&self) -> &crate::replay::Deck {
        &self.ctx.deck
    }

    /// Forwards a kept log line to `tracing`, attributed to this attempt.
    pub(crate) fn emit(&self, line: &LogLine) {
        let AttemptContext {
            run_id,
            step_id,
            attempt,
            ..
        } = &self.ctx;
        let source = format!("{:?}", line.source).to_lowercase();
        // The line goes to a terminal or a log pipeline: one record, one line, nothing that
        // steers the terminal. The report and the journal keep it exact.
        let message = crate::text::escape_for_terminal(&line.message);
        match line.level {
            LogLevel::Trace => {
                tracing::trace!(target: "weir::guest", run_id, step_id, attempt, source, "{message}");
            }
            LogLevel::Debug => {
                tracing::debug!(target: "weir::guest", run_id, step_id, attempt, source, "{message}");
            }
            LogLevel::Info => {
                tracing::info!(target: "weir::guest", run_id, step_id, attempt, source, "{message}");
            }
            LogLevel::Warn => {
                tracing::warn!(target: "weir::guest", run_id, step_id, attempt, source, "{message}");
            }
            LogLevel::Error => {
                tracing::error!(target: "weir::guest", run_id, step_id, attempt, source, "{message}");
            }
        }
    }
}

impl WasiView for AttemptState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for AttemptState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.http_gate,
        }
    }
}
