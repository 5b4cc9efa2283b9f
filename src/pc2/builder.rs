//! Where PC2's Poseidon work happens.
//!
//! PC2 hands a [`TreeBuilder`] batches of columns and gets column hashes back, and hands it a
//! tree's leaves and gets every row back. Everything else (reading layers, encoding, file
//! formats, roots of compound shapes, p_aux/t_aux) stays in `pc2`, so a GPU backend
//! ([`crate::gpu`]: CUDA through bindings that load the driver at run time, so that a build
//! needs no CUDA toolkit) implements these two calls and nothing else.
//! [`CpuBuilder`] is the default and the reference every other builder is tested against;
//! [`select`] is the one place that chooses the builder PC2 uses.
//!
//! Both calls return a `Result`: a device backend can fail (out of memory, a lost device) and
//! must report it as an error of the phase, never a panic.

use anyhow::Result;
use rayon::prelude::*;

use crate::hash::poseidon::hash_columns;
use crate::merkle::poseidon_tree::build_rows_in_place;

pub trait TreeBuilder: Sync {
    /// Column hashes of consecutive nodes: `layers[l]` holds layer `l + 1`'s labels of those
    /// nodes (32 bytes each, all layers the same length); writes one 32-byte hash per node
    /// into `out`.
    fn column_hashes(&self, layers: &[&[u8]], out: &mut [u8]) -> Result<()>;

    /// Fills every row of an `arity` tree whose `leaves` leaves are already the first row of
    /// `rows` (rows bottom-up, as the reference stores them); returns the root.
    fn build_rows(&self, rows: &mut [u8], leaves: usize, arity: usize) -> Result<[u8; 32]>;
}

/// The builder PC2 uses: [`CpuBuilder`] unless the environment
/// (`FIL_PROOFS_USE_GPU_COLUMN_BUILDER`, `FIL_PROOFS_USE_GPU_TREE_BUILDER`, `SEALKIT_GPU`) or
/// `gpu` (`seal-pc2 --gpu`) asks for the GPU ([`crate::gpu::choice`]); a device backend is
/// chosen here and nowhere else. Says on stderr which builder runs when a GPU was asked for
/// or `verbose`.
pub fn select(gpu: bool, verbose: bool) -> Result<crate::gpu::Routed> {
    let choice = crate::gpu::choice::from_env(gpu);
    let tool = crate::cli::tool_name();
    let routed = crate::gpu::builder_for(choice, &mut |w| eprintln!("{tool}: warning: {w}"))?;
    if verbose || choice.any_gpu() {
        eprintln!("{tool}: tree builder: {}", routed.description);
    }
    Ok(routed)
}

/// Poseidon on every CPU of the rayon pool, eight hashes at a time with AVX-512 IFMA where
/// the CPU has it ([`crate::hash::poseidon::hash_many`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct CpuBuilder;

impl TreeBuilder for CpuBuilder {
    fn column_hashes(&self, layers: &[&[u8]], out: &mut [u8]) -> Result<()> {
        const PER_TASK: usize = 1024;
        out.par_chunks_mut(32 * PER_TASK)
            .enumerate()
            .for_each(|(chunk, out)| {
                let at = chunk * PER_TASK * 32;
                let columns: Vec<&[u8]> = layers.iter().map(|l| &l[at..at + out.len()]).collect();
                hash_columns(&columns, out);
            });
        Ok(())
    }

    fn build_rows(&self, rows: &mut [u8], leaves: usize, arity: usize) -> Result<[u8; 32]> {
        Ok(build_rows_in_place(rows, leaves, arity))
    }
}
