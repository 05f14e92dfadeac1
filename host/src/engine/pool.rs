//! How the pooling allocator hands a slot from one attempt to the next.
//!
//! Every attempt is a fresh instance, so a slot's memory is reset after each one. By default
//! wasmtime resets it with `madvise`, which drops the pages from the address space: that
//! costs a system call, a TLB shootdown on every core the process runs on, and a page fault
//! for each page the next attempt touches. Where Linux's `PAGEMAP_SCAN` ioctl exists (6.7
//! and later), wasmtime can instead find the pages the attempt dirtied and reset just those
//! with `memcpy`, keeping them resident: for a small step that halves an attempt's cost
//! (`cargo bench -p weir --bench runtime`). Without the ioctl that reset would `memset` the
//! whole kept region on every attempt, which is slower than `madvise`, so Weir keeps pages
//! resident only where the ioctl is there.

use wasmtime::{Enabled, PoolingAllocationConfig};

/// Bytes of each linear memory an ended attempt leaves resident for the next (only its
/// dirtied pages; the rest is returned with `madvise`). Bounds the memory a slot keeps
/// between attempts: at most this much per slot ever used, `DEFAULT_POOL_INSTANCES` × 2
/// memories at the very most, and only what attempts touched.
pub const KEEP_RESIDENT_MEMORY_BYTES: usize = 1 << 20;
/// The same for each table (a component's tables are small; this covers them whole).
pub const KEEP_RESIDENT_TABLE_BYTES: usize = 64 << 10;

/// Sets `pool` to reset slots by the dirtied pages when this kernel can find them; leaves
/// wasmtime's defaults in place otherwise. Returns whether it did.
pub fn reuse_slots_warm(pool: &mut PoolingAllocationConfig) -> bool {
    if !warm_reuse_available() {
        return false;
    }
    pool.linear_memory_keep_resident(KEEP_RESIDENT_MEMORY_BYTES)
        .table_keep_resident(KEEP_RESIDENT_TABLE_BYTES)
        .pagemap_scan(Enabled::Yes);
    true
}

/// Whether slots can be reset by their dirtied pages here: wasmtime issues the ioctl once to
/// see whether this kernel (and any sandbox around this process) allows it.
pub fn warm_reuse_available() -> bool {
    PoolingAllocationConfig::is_pagemap_scan_available()
}
