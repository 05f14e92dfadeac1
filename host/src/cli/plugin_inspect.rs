//! `weir plugin inspect`: what a plugin says about itself and what it imports and exports.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::json;

use super::render::{pretty_json, size};
use crate::Host;
use crate::text::{escape_for_terminal as shown, json_for_terminal};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The plugin file.
    plugin: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn execute(host: &Host, args: Args) -> anyhow::Result<ExitCode> {
    let plugin = host.load_plugin_file(&args.plugin).await?;
    let meta = plugin.meta();
    if args.json {
        let doc = json!({
            "path": plugin.origin(),
            "digest": format!("sha256:{}", plugin.digest()),
            "size_bytes": plugin.bytes().len(),
            "meta": meta,
            "imports": plugin.imports(),
            "exports": plugin.exports(),
            "compile_source": plugin.compile_source(),
            "load_time_us": plugin.load_time().as_micros() as u64,
        });
        outln!("{}", pretty_json(&doc)?);
        return Ok(ExitCode::SUCCESS);
    }
    // Everything below but the digest, size and timings is the plugin's own words.
    outln!("{} {}", shown(&meta.name), shown(&meta.version));
    if !meta.description.is_empty() {
        outln!("  {}", shown(&meta.description));
    }
    outln!("digest        sha256:{}", plugin.digest());
    outln!("size          {}", size(plugin.bytes().len() as u64));
    outln!(
        "loaded in     {:.2?} ({:?})",
        plugin.load_time(),
        plugin.compile_source()
    );
    let caps = if meta.capabilities.is_empty() {
        "none".to_string()
    } else {
        shown(&meta.capabilities.join(", ")).into_owned()
    };
    outln!("capabilities  {caps}");
    for (label, schema) in [
        ("input schema", &meta.input_schema),
        ("output schema", &meta.output_schema),
    ] {
        match schema {
            Some(schema) => outln!("{label:<13} {}", json_for_terminal(schema.to_string())),
            None => outln!("{label:<13} none declared"),
        }
    }
    outln!("imports");
    for name in plugin.imports() {
        outln!("  {name}");
    }
    outln!("exports");
    for name in plugin.exports() {
        outln!("  {name}");
    }
    Ok(ExitCode::SUCCESS)
}
