//! Logs and traces: human-readable or JSON logs on stderr (filtered by `WEIR_LOG`), and,
//! when an OTLP endpoint is configured, every span (run, attempt, …) exported over
//! OTLP/HTTP with the run id, workflow@version and step id as attributes.

use std::io::IsTerminal as _;
use std::sync::OnceLock;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Installs the global subscriber. `otlp_endpoint` is the collector's base URL (e.g.
/// `http://127.0.0.1:4318`); traces go to `<endpoint>/v1/traces`. Call outside any async
/// runtime: the exporter's HTTP client runs on its own thread.
pub fn init(json: bool, otlp_endpoint: Option<&str>) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_env("WEIR_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    // Colour only for a person at a terminal: a log file or a pipe gets plain text.
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(colour);
    let fmt = if json {
        fmt.json().boxed()
    } else {
        fmt.boxed()
    };
    let otel = match otlp_endpoint {
        None => None,
        Some(endpoint) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
                .build()?;
            let provider = SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(Resource::builder().with_service_name("weir").build())
                .build();
            let tracer = provider.tracer("weir");
            let _ = PROVIDER.set(provider);
            // Spans are exported whatever WEIR_LOG says about log lines.
            Some(
                tracing_opentelemetry::layer()
                    .with_tracer(tracer)
                    .with_filter(EnvFilter::new("weir=info")),
            )
        }
    };
    tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .with(otel)
        .try_init()?;
    Ok(())
}

/// Exports the spans still buffered; call before the process exits.
pub fn flush() {
    if let Some(provider) = PROVIDER.get() {
        let _ = provider.force_flush();
        let _ = provider.shutdown();
    }
}
