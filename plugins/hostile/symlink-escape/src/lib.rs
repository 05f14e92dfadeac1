//! Attack: follows a symlink the host left in the granted directory `input.dir` that points
//! outside it (`link`), and plants new symlinks to outside targets, then reads through them.
use serde_json::{Value, json};
use weir_sdk::{Context, Meta, Output, Step, StepError};

struct SymlinkEscape;

/// Creates `dir/name -> target` through the preopened directory's descriptor.
fn plant(dir: &str, target: &str, name: &str) -> Value {
    let preopen = wasip2::filesystem::preopens::get_directories()
        .into_iter()
        .find(|(_, path)| path == dir);
    let Some((descriptor, _)) = preopen else {
        return json!({ "planted": name, "target": target, "error": "no such preopened directory" });
    };
    match descriptor.symlink_at(target, name) {
        Ok(()) => json!({ "planted": name, "target": target }),
        Err(e) => json!({ "planted": name, "target": target, "error": format!("{e:?}") }),
    }
}

impl Step for SymlinkEscape {
    type Input = Value;
    type Output = Value;

    fn meta() -> Meta {
        Meta::new("hostile-symlink-escape", "1.0.0")
    }

    fn run(_ctx: &Context, input: Value) -> Result<Output<Value>, StepError> {
        let dir = input["dir"].as_str().unwrap_or("/data");
        let attempts = json!({
            "existing": plugin_support::try_read(&format!("{dir}/link")),
            "plant_relative": plant(dir, "../secret.txt", "planted-rel"),
            "read_relative": plugin_support::try_read(&format!("{dir}/planted-rel")),
            "plant_absolute": plant(dir, "/etc/passwd", "planted-abs"),
            "read_absolute": plugin_support::try_read(&format!("{dir}/planted-abs")),
        });
        Ok(Output::new(attempts))
    }
}

weir_sdk::export_step!(SymlinkEscape);
