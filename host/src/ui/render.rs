//! The templates, compiled into the binary and loaded once, and how a page is answered.

use std::sync::OnceLock;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::Environment;

/// (name, source): the `.html` names turn on HTML escaping of every value.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("runs.html", include_str!("templates/runs.html")),
    ("run.html", include_str!("templates/run.html")),
    ("error.html", include_str!("templates/error.html")),
    ("login.html", include_str!("templates/login.html")),
    ("reviews.html", include_str!("templates/reviews.html")),
    ("review.html", include_str!("templates/review.html")),
    ("costs.html", include_str!("templates/costs.html")),
];

/// What every page's frame needs of its viewer: the CSRF token its forms carry, and whether
/// to offer to log out.
pub(super) fn viewer(viewer: &super::session::Viewer) -> minijinja::Value {
    minijinja::context! { csrf => viewer.csrf, session => viewer.session }
}

fn environment() -> &'static Environment<'static> {
    static ENVIRONMENT: OnceLock<Environment<'static>> = OnceLock::new();
    ENVIRONMENT.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        for (name, source) in TEMPLATES {
            // The templates are part of the binary and tested: one that does not compile is
            // a build defect, caught by the dashboard's tests.
            if let Err(e) = env.add_template(name, source) {
                tracing::error!(template = name, error = %e, "dashboard template does not compile");
            }
        }
        env
    })
}

/// Renders `template` with `context` as an HTML page with `status`.
pub(super) fn page(status: StatusCode, template: &str, context: minijinja::Value) -> Response {
    page_part(status, template, None, context)
}

/// Like [`page`], or only the template's `block` when one is named: the part the page's
/// script swaps in.
pub(super) fn page_part(
    status: StatusCode,
    template: &str,
    block: Option<&str>,
    context: minijinja::Value,
) -> Response {
    let rendered = environment()
        .get_template(template)
        .and_then(|t| match block {
            None => t.render(context),
            Some(block) => t
                .render_captured(context)?
                .with_state_mut(|state| state.render_block(block)),
        });
    match rendered {
        Ok(html) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(template, error = %format!("{e:#}"), "dashboard page does not render");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "This page could not be rendered.",
            )
        }
    }
}

/// An error page for people.
pub(super) fn error(status: StatusCode, message: &str) -> Response {
    let context = minijinja::context! { status => status.as_u16(), message => message };
    match environment()
        .get_template("error.html")
        .and_then(|t| t.render(context))
    {
        Ok(html) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html,
        )
            .into_response(),
        Err(_) => (status, message.to_string()).into_response(),
    }
}
