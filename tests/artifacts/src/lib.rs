//! The step plugins of `plugins/`, compiled for `wasm32-wasip2` by this crate's build script.
//!
//! For each plugin crate there is a constant holding the component's absolute path, named
//! after the crate in upper snake case (`hostile-panic` → [`HOSTILE_PANIC`]), and
//! [`foreach_plugin!`] calls a macro once per plugin with its snake-case name, so a test
//! suite can require a test per plugin:
//!
//! ```
//! macro_rules! print_plugin {
//!     ($name:ident) => {
//!         println!("{}", stringify!($name));
//!     };
//! }
//! weir_artifacts::foreach_plugin!(print_plugin);
//! assert!(weir_artifacts::ECHO.ends_with("echo.wasm"));
//! ```

include!(concat!(env!("OUT_DIR"), "/plugins.rs"));
