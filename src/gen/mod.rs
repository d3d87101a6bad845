//! Synthetic export rows for tests and benchmarks (placeholder; see `mde-relay gen`).

use std::io::Write;

/// How much to generate.
#[derive(Debug, Clone, Copy)]
pub enum Limit {
    /// This many rows.
    Rows(u64),
    /// Rows until at least this many bytes were written.
    Bytes(u64),
}

/// Writes synthetic rows of `table` to `out`, deterministic for a given `seed`. Returns the
/// number of rows written.
pub fn generate(table: &str, seed: u64, limit: Limit, out: &mut dyn Write) -> anyhow::Result<u64> {
    let _ = (table, seed, limit, out);
    anyhow::bail!("gen is not implemented yet")
}
