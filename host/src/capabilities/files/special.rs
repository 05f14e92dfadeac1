//! Opening a FIFO, a device or a socket found in a granted directory is refused.
//!
//! Such an open can block its host thread for ever (a FIFO with no writer) or reach the
//! host's hardware, and a blocked open cannot be cancelled: the attempt's timeout abandons
//! it, but the thread stays blocked, and the host cannot finish its shutdown. So WASI's
//! `open-at` is wrapped: the path is looked at first, with the guest's own symlink flag, and
//! anything but a regular file, a directory or a symlink is refused with `access` and
//! recorded as a `files` denial. A path that does not exist yet goes on to the real open (the
//! guest may create a regular file; it cannot make a FIFO or a device).

use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::filesystem::WasiFilesystemView as _;
use wasmtime_wasi::p2::bindings::filesystem::types::{
    Descriptor, DescriptorFlags, DescriptorType, ErrorCode, HostDescriptor, OpenFlags, PathFlags,
};

use crate::attempt::AttemptState;
use crate::capabilities::record_denial;

/// The WASI filesystem interface whose `open-at` is wrapped, at the version the host links.
const FILESYSTEM_TYPES: &str = "wasi:filesystem/types@0.2.12";

type OpenResult = Result<Resource<Descriptor>, ErrorCode>;

/// Replaces `[method]descriptor.open-at` with the checked one; shadowing must be allowed.
pub(crate) fn link(linker: &mut Linker<AttemptState>) -> anyhow::Result<()> {
    linker.instance(FILESYSTEM_TYPES)?.func_wrap_async(
        "[method]descriptor.open-at",
        |mut store,
         (dir, path_flags, path, open_flags, flags): (
            Resource<Descriptor>,
            PathFlags,
            String,
            OpenFlags,
            DescriptorFlags,
        )| {
            Box::new(async move {
                let state = store.data_mut();
                let kind = {
                    let mut fs = state.filesystem();
                    let borrowed = Resource::new_borrow(dir.rep());
                    HostDescriptor::stat_at(&mut fs, borrowed, path_flags, path.clone())
                        .await
                        .map(|stat| stat.type_)
                };
                if let Ok(kind) = kind
                    && !matches!(
                        kind,
                        DescriptorType::RegularFile
                            | DescriptorType::Directory
                            | DescriptorType::SymbolicLink
                    )
                {
                    record_denial(
                        &state.denials,
                        "files",
                        path,
                        &format!("opening a {} is not granted", describe(kind)),
                    );
                    return Ok((Err(ErrorCode::Access),));
                }
                let mut fs = state.filesystem();
                let opened: OpenResult = match HostDescriptor::open_at(
                    &mut fs, dir, path_flags, path, open_flags, flags,
                )
                .await
                {
                    Ok(fd) => Ok(fd),
                    Err(e) => Err(e.downcast()?),
                };
                Ok((opened,))
            })
        },
    )?;
    Ok(())
}

fn describe(kind: DescriptorType) -> &'static str {
    match kind {
        DescriptorType::Fifo => "FIFO",
        DescriptorType::CharacterDevice => "character device",
        DescriptorType::BlockDevice => "block device",
        DescriptorType::Socket => "socket",
        // How WASI reports a FIFO or a socket it has no name for.
        _ => "FIFO, device or socket",
    }
}
