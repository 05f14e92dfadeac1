//! The `files` capability: host directories preopened for the guest, nothing else.
//!
//! WASI's filesystem is capability-based (cap-std underneath): a guest can only name paths
//! inside a preopened directory, `..` and symlinks cannot climb out of it, and absolute host
//! paths do not exist for it. A directory is read-only unless the grant says `rw`. Opening
//! a FIFO, a device or a socket inside a granted directory is refused (see `special`), and
//! what an attempt may add to a writable one is bounded by its quota (see [`quota`]).

mod config;
pub mod quota;
mod special;

pub(crate) use special::link;

pub use config::{DirGrant, DirGrantError};

use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

/// Preopens each granted directory in the attempt's WASI context.
pub(crate) fn prepare(builder: &mut WasiCtxBuilder, grants: &[DirGrant]) -> anyhow::Result<()> {
    for grant in grants {
        let perms = if grant.writable {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        builder
            .preopened_dir(&grant.host, &grant.guest, perms)
            .map_err(|e| {
                anyhow::anyhow!("failed to open granted directory {:?}: {e}", grant.host)
            })?;
    }
    Ok(())
}
