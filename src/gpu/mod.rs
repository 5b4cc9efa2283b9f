//! PC2 on a GPU: our own CUDA C Poseidon kernels behind PC2's [`TreeBuilder`] seam.
//!
//! Always built: the kernels' constant tables ([`constants`], from neptune's constants like
//! the CPU code), the host-side plans ([`plan`]) and the choice of builder ([`choice`]), so
//! the default build tests them. The device code is behind the `cuda` feature
//! (`gpu::cuda`, cudarc loading the driver at run time); without it, or without a driver or
//! a device, a GPU request is answered with a one-line reason: an error when the GPU was
//! required, a CPU fall-back otherwise.

pub mod choice;
pub mod constants;
#[cfg(feature = "cuda")]
pub mod cuda;
pub mod plan;

use anyhow::{bail, Result};

use crate::pc2::{CpuBuilder, TreeBuilder};
use choice::Choice;

/// The GPU builder, or why there is none.
#[cfg(feature = "cuda")]
fn open_gpu() -> Result<(Box<dyn TreeBuilder + Send + Sync>, String)> {
    let b = cuda::GpuBuilder::open(0)?;
    let what = format!("{} (kernels: {})", b.info, b.module);
    Ok((Box::new(b), what))
}

#[cfg(not(feature = "cuda"))]
fn open_gpu() -> Result<(Box<dyn TreeBuilder + Send + Sync>, String)> {
    bail!("this sealkit was built without the cuda feature (cargo build --features cuda)")
}

/// Column hashes from one builder, tree rows from another.
pub struct Routed {
    columns: Box<dyn TreeBuilder + Send + Sync>,
    trees: Box<dyn TreeBuilder + Send + Sync>,
    /// One line: which builder does what.
    pub description: String,
}

impl TreeBuilder for Routed {
    fn column_hashes(&self, layers: &[&[u8]], out: &mut [u8]) -> Result<()> {
        self.columns.column_hashes(layers, out)
    }

    fn build_rows(&self, rows: &mut [u8], leaves: usize, arity: usize) -> Result<[u8; 32]> {
        self.trees.build_rows(rows, leaves, arity)
    }
}

/// The builder for `choice`: the CPU unless a GPU is wanted; a GPU that cannot be opened is
/// an error when required, a warning (`warn`) and the CPU otherwise.
pub fn builder_for(choice: Choice, warn: &mut dyn FnMut(&str)) -> Result<Routed> {
    let cpu = "CPU (Poseidon: AVX-512 IFMA where the CPU has it, else neptune)";
    let cpu_routed = |description: String| Routed {
        columns: Box::new(CpuBuilder),
        trees: Box::new(CpuBuilder),
        description,
    };
    if !choice.any_gpu() {
        return Ok(cpu_routed(format!("columns and trees on the {cpu}")));
    }
    let (gpu, what) = match open_gpu() {
        Ok(g) => g,
        Err(e) if choice.required() => bail!("the GPU builder was requested, but {e:#}"),
        Err(e) => {
            warn(&format!(
                "a GPU builder was requested (FIL_PROOFS_USE_GPU_*), but {e:#}; using the CPU"
            ));
            return Ok(cpu_routed(format!("columns and trees on the {cpu}")));
        }
    };
    let gpu: std::sync::Arc<dyn TreeBuilder + Send + Sync> = std::sync::Arc::from(gpu);
    let side = |on_gpu: bool| -> Box<dyn TreeBuilder + Send + Sync> {
        if on_gpu {
            Box::new(Shared(gpu.clone()))
        } else {
            Box::new(CpuBuilder)
        }
    };
    let name = |on_gpu: bool| if on_gpu { what.as_str() } else { "CPU" };
    let description = format!(
        "columns on {}, trees on {}",
        name(choice.columns.gpu()),
        name(choice.trees.gpu())
    );
    Ok(Routed {
        columns: side(choice.columns.gpu()),
        trees: side(choice.trees.gpu()),
        description,
    })
}

/// One GPU builder serving both sides of a [`Routed`].
struct Shared(std::sync::Arc<dyn TreeBuilder + Send + Sync>);

impl TreeBuilder for Shared {
    fn column_hashes(&self, layers: &[&[u8]], out: &mut [u8]) -> Result<()> {
        self.0.column_hashes(layers, out)
    }

    fn build_rows(&self, rows: &mut [u8], leaves: usize, arity: usize) -> Result<[u8; 32]> {
        self.0.build_rows(rows, leaves, arity)
    }
}

#[cfg(test)]
mod tests {
    use super::choice::Want;
    use super::*;

    /// On a machine without a GPU (this build machine, CI): a required GPU is a one-line
    /// error, a requested one falls back to the CPU with a warning, and no request never
    /// looks for a GPU. (On a GPU host the GPU opens instead; the test then checks that.)
    #[test]
    fn no_gpu_is_an_error_or_a_fallback() {
        let required = Choice {
            columns: Want::Gpu { required: true },
            trees: Want::Gpu { required: true },
        };
        let wanted = Choice {
            columns: Want::Gpu { required: false },
            trees: Want::Cpu,
        };
        let mut warnings = Vec::new();
        let none = builder_for(
            Choice {
                columns: Want::Cpu,
                trees: Want::Cpu,
            },
            &mut |w| warnings.push(w.to_string()),
        )
        .unwrap();
        assert!(none.description.starts_with("columns and trees on the CPU"));
        assert!(warnings.is_empty());
        match open_gpu() {
            Err(reason) => {
                let e = builder_for(required, &mut |_| {}).err().expect("an error");
                assert!(format!("{e:#}").contains(&format!("{reason:#}")));
                assert!(!format!("{e:#}").contains('\n'), "one line: {e:#}");
                let r = builder_for(wanted, &mut |w| warnings.push(w.to_string())).unwrap();
                assert!(r.description.contains("CPU"));
                assert_eq!(warnings.len(), 1);
                assert!(warnings[0].contains("using the CPU"));
            }
            Ok(_) => {
                let r = builder_for(wanted, &mut |_| {}).unwrap();
                assert!(r.description.starts_with("columns on GPU"));
            }
        }
    }
}
