//! `/v1/workflows` and `/v1/plugins`: what the server offers, and uploading a component.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::App;
use super::catalog::{Rejected, UploadError};
use super::error::{ApiError, ErrorBody};
use super::extract::ApiBytes;
use crate::plugin::Plugin;

// Described as binary: `Vec<u8>` alone would tell clients and fuzzers to send a JSON list
// of numbers. Only documents the body; the handler reads it raw.
/// A WebAssembly component's bytes.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[expect(
    dead_code,
    reason = "describes the upload body for the OpenAPI document"
)]
pub struct ComponentBytes(Vec<u8>);

/// The active workflow versions, and the files that failed to load.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkflowList {
    /// Active versions, by name then version.
    pub workflows: Vec<WorkflowView>,
    /// Files whose latest version was rejected (the previous version, if any, stays active).
    pub rejected: Vec<Rejected>,
}

/// An active workflow version.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkflowView {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// One line for humans.
    pub description: String,
    /// The input schema, if any.
    pub input_schema: Option<Value>,
    /// Its steps, in order.
    pub steps: Vec<WorkflowStepView>,
}

/// A step of a workflow version.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkflowStepView {
    /// Step id.
    pub id: String,
    /// `name@version` of its plugin.
    pub plugin: String,
    /// The sha256 new runs are pinned to.
    pub digest: String,
    /// Its limits.
    pub limits: Value,
}

/// The plugins on offer.
#[derive(Debug, Serialize, ToSchema)]
pub struct PluginList {
    /// By digest.
    pub plugins: Vec<PluginView>,
}

/// A plugin.
#[derive(Debug, Serialize, ToSchema)]
pub struct PluginView {
    /// Its name (from `describe()`).
    pub name: String,
    /// Its version.
    pub version: String,
    /// One line for humans.
    pub description: String,
    /// sha256 of the component.
    pub digest: String,
    /// Component size.
    pub size_bytes: usize,
    /// The interfaces it imports.
    pub imports: Vec<String>,
    /// The capabilities it says it needs.
    pub capabilities: Vec<String>,
    /// Its input schema, if declared.
    pub input_schema: Option<Value>,
    /// Its output schema, if declared.
    pub output_schema: Option<Value>,
}

impl From<&Plugin> for PluginView {
    fn from(plugin: &Plugin) -> Self {
        let meta = plugin.meta();
        Self {
            name: meta.name.clone(),
            version: meta.version.clone(),
            description: meta.description.clone(),
            digest: plugin.digest().to_string(),
            size_bytes: plugin.bytes().len(),
            imports: plugin.imports().to_vec(),
            capabilities: meta.capabilities.clone(),
            input_schema: meta.input_schema.clone(),
            output_schema: meta.output_schema.clone(),
        }
    }
}

/// The active workflow versions.
#[utoipa::path(get, path = "/v1/workflows", operation_id = "listWorkflows", tag = "catalog",
    responses(
        (status = 200, description = "Active workflows and rejected files", body = WorkflowList),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn workflows(State(app): State<App>) -> axum::Json<WorkflowList> {
    let workflows = app
        .catalog
        .workflows()
        .iter()
        .map(|loaded| {
            let wf = &loaded.workflow;
            WorkflowView {
                name: wf.name.clone(),
                version: wf.version.to_string(),
                description: wf.description.clone(),
                input_schema: wf.input_schema.as_ref().map(|s| s.source().clone()),
                steps: wf
                    .steps
                    .iter()
                    .map(|step| {
                        let plugin = &loaded.plugins[&step.id];
                        WorkflowStepView {
                            id: step.id.clone(),
                            plugin: format!("{}@{}", plugin.meta().name, plugin.meta().version),
                            digest: plugin.digest().to_string(),
                            limits: serde_json::to_value(&step.spec.limits).unwrap_or(Value::Null),
                        }
                    })
                    .collect(),
            }
        })
        .collect();
    axum::Json(WorkflowList {
        workflows,
        rejected: app.catalog.rejected(),
    })
}

/// The plugins on offer.
#[utoipa::path(get, path = "/v1/plugins", operation_id = "listPlugins", tag = "catalog",
    responses(
        (status = 200, description = "Plugins", body = PluginList),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn plugins(State(app): State<App>) -> axum::Json<PluginList> {
    axum::Json(PluginList {
        plugins: app.catalog.plugins().iter().map(PluginView::from).collect(),
    })
}

/// Uploads a component (the raw bytes as the body). It is compiled, checked to implement
/// `weir:step`, and stored under its sha256; workflows naming it by `name@version` take it.
#[utoipa::path(post, path = "/v1/plugins", operation_id = "uploadPlugin", tag = "catalog",
    request_body(description = "The component's bytes (under any content type; these two are customary)",
        content((inline(ComponentBytes) = "application/wasm"), (inline(ComponentBytes) = "application/octet-stream"))),
    responses(
        (status = 201, description = "Stored", body = PluginView),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 409, description = "Another component is registered under its name@version", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 422, description = "Not a component implementing weir:step", body = ErrorBody),
        (status = 500, description = "The store failed; nothing was stored", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn upload(
    State(app): State<App>,
    ApiBytes(body): ApiBytes,
) -> Result<(StatusCode, axum::Json<PluginView>), ApiError> {
    let plugin = app
        .catalog
        .upload(body.to_vec())
        .await
        .map_err(|e| match e {
            UploadError::Invalid(e) => ApiError::invalid_input(e.to_string(), Value::Null),
            UploadError::Taken(message) => ApiError::conflict(message),
            UploadError::Store(e) => ApiError::internal(&e),
        })?;
    Ok((StatusCode::CREATED, axum::Json(PluginView::from(&plugin))))
}
