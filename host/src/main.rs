//! The `weir` command: a thin layer over the library's CLI module.

fn main() -> std::process::ExitCode {
    weir::cli::main()
}
