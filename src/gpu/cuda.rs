//! The CUDA backend (feature `cuda`): device discovery, kernel loading and [`GpuBuilder`],
//! PC2's [`TreeBuilder`] on a GPU.
//!
//! Bindings: cudarc with `dynamic-loading`. It `dlopen`s `libcuda` and `libnvrtc` at run
//! time, so a `--features cuda` build needs no CUDA toolkit and runs on machines without a
//! driver (where it reports "no GPU" as an error). cudarc panics when it first touches a
//! library that is absent, so every entry point here checks `is_culib_present` first and
//! runs the driver calls under [`guard`], which turns a panic into an error.
//!
//! Kernels: our own CUDA C (`src/gpu/kernels/`), embedded as source and compiled by NVRTC
//! for the device's compute capability when the builder opens; `SEALKIT_CUDA_MODULE` names
//! a precompiled `.ptx`/`.cubin`/`.fatbin` instead (built by nvcc on the GPU host, say).
//!
//! Overlap: work is cut into batches ([`super::plan`]) on two streams, each with its own
//! pinned host buffers, so the host packs batch `k + 1` (and copies it in) while the device
//! hashes batch `k`.

use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, bail, ensure, Context, Result};
use cudarc::driver::{
    sys::CUdevice_attribute, CudaContext, CudaFunction, CudaSlice, CudaStream, LaunchConfig,
    PinnedHostSlice, PushKernelArg,
};
use cudarc::nvrtc::{compile_ptx_with_opts, CompileOptions, Ptx};

use super::constants::{PoseidonTable, GPU_ARITIES};
use super::plan::{self, batches, bytes_to_words, levels, pack_columns, words_to_bytes};
use crate::merkle::poseidon_tree::tree_len;
use crate::pc2::TreeBuilder;

/// One GPU as the driver reports it.
#[derive(Debug, Clone)]
pub struct DeviceInfo {
    pub ordinal: usize,
    pub name: String,
    pub compute_capability: (i32, i32),
    pub multiprocessors: i32,
    pub memory: usize,
}

impl std::fmt::Display for DeviceInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "GPU {} ({}, sm_{}{}, {} SMs, {} MiB)",
            self.ordinal,
            self.name,
            self.compute_capability.0,
            self.compute_capability.1,
            self.multiprocessors,
            self.memory >> 20
        )
    }
}

/// Runs driver calls, turning a panic inside cudarc (a library or symbol it could not
/// load) into an error.
fn guard<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r.with_context(|| what.to_string()),
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| p.downcast_ref::<&str>().copied())
                .unwrap_or("panic");
            Err(anyhow!("{what}: {msg}"))
        }
    }
}

/// Whether the CUDA driver library can be loaded.
pub fn driver_present() -> bool {
    // SAFETY: only tries to dlopen the driver library by its known names.
    unsafe { cudarc::driver::sys::is_culib_present() }
}

/// Whether NVRTC (the run-time CUDA C compiler) can be loaded.
pub fn nvrtc_present() -> bool {
    // SAFETY: only tries to dlopen the NVRTC library by its known names.
    unsafe { cudarc::nvrtc::sys::is_culib_present() }
}

/// The GPUs of this machine; an error saying why there are none (no driver, no device).
pub fn devices() -> Result<Vec<DeviceInfo>> {
    ensure!(
        driver_present(),
        "no GPU: the CUDA driver library (libcuda.so) is not installed on this machine"
    );
    guard("no GPU: the CUDA driver reports", || {
        let n = CudaContext::device_count()?;
        ensure!(n > 0, "no CUDA device");
        (0..n as usize).map(device_info).collect()
    })
}

fn device_info(ordinal: usize) -> Result<DeviceInfo> {
    let ctx = CudaContext::new(ordinal)?;
    Ok(DeviceInfo {
        ordinal,
        name: ctx.name()?,
        compute_capability: ctx.compute_capability()?,
        multiprocessors: ctx
            .attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)?,
        memory: ctx.total_mem()?,
    })
}

/// The kernels as one NVRTC translation unit: the headers and the kernel file in include
/// order, with `SEALKIT_ONE_SOURCE` telling them not to `#include` each other.
pub fn kernel_source() -> String {
    [
        "#define SEALKIT_ONE_SOURCE 1\n",
        include_str!("kernels/fr.cuh"),
        include_str!("kernels/poseidon.cuh"),
        include_str!("kernels/poseidon.cu"),
    ]
    .concat()
}

/// Compiles the kernels to PTX for compute capability `cc` with NVRTC.
pub fn compile_kernels(cc: (i32, i32)) -> Result<Ptx> {
    ensure!(
        nvrtc_present(),
        "NVRTC (libnvrtc.so) is not installed, so the Poseidon kernels cannot be compiled \
         (install the CUDA toolkit's NVRTC, or set SEALKIT_CUDA_MODULE to a precompiled module)"
    );
    // NVRTC takes the architecture as a static string; a handful of them per process.
    let arch: &'static str = Box::leak(format!("compute_{}{}", cc.0, cc.1).into_boxed_str());
    guard("compiling the Poseidon kernels with NVRTC", || {
        compile_ptx_with_opts(
            kernel_source(),
            CompileOptions {
                arch: Some(arch),
                options: vec!["--std=c++17".into()],
                name: Some("sealkit_poseidon.cu".into()),
                ..Default::default()
            },
        )
        .map_err(|e| match e {
            cudarc::nvrtc::CompileError::CompileError { log, .. } => {
                anyhow!("{}", log.to_string_lossy())
            }
            e => anyhow!("{e:?}"),
        })
    })
}

/// One arity's kernel and its constant table on the device.
struct Kernel {
    arity: usize,
    func: CudaFunction,
    table: CudaSlice<u64>,
    half: i32,
    partial: i32,
}

/// A stream with its own pinned staging buffers and device buffers.
struct Slot {
    stream: Arc<CudaStream>,
    host_in: PinnedHostSlice<u64>,
    dev_in: CudaSlice<u64>,
    dev_out: CudaSlice<u64>,
    host_out: PinnedHostSlice<u64>,
    /// The nodes whose hashes are on their way to `host_out`.
    pending: Option<Range<usize>>,
}

impl Slot {
    fn new(ctx: &Arc<CudaContext>, in_words: usize, out_words: usize) -> Result<Slot> {
        let stream = ctx.new_stream()?;
        // SAFETY: the buffers are written (packed, copied into) before they are read.
        let (host_in, dev_in, dev_out, host_out) = unsafe {
            (
                ctx.alloc_pinned::<u64>(in_words)?,
                stream.alloc::<u64>(in_words)?,
                stream.alloc::<u64>(out_words)?,
                // Read by the host: not write-combined (slow to read).
                ctx.alloc_pinned_with_flags::<u64>(out_words, 0)?,
            )
        };
        Ok(Slot {
            stream,
            host_in,
            dev_in,
            dev_out,
            host_out,
            pending: None,
        })
    }
}

struct Gpu {
    ctx: Arc<CudaContext>,
    kernels: Vec<Kernel>,
    slots: Vec<Slot>,
    /// Set by a kernel that met a non-canonical input.
    bad: CudaSlice<u32>,
}

/// PC2's column hashes and tree rows on one GPU.
pub struct GpuBuilder {
    pub info: DeviceInfo,
    /// Where the kernels came from: "NVRTC" or the module file.
    pub module: String,
    /// Bytes of staging buffers per stream.
    budget: usize,
    gpu: Mutex<Gpu>,
}

/// Threads per block of the hash kernels.
const BLOCK: u32 = 256;

/// Leaves per host-to-device copy when a tree is built (a multiple of every tree arity).
const LEAF_CHUNK: usize = 1 << 20;

impl GpuBuilder {
    /// Opens GPU `ordinal` (of those this process sees: `CUDA_VISIBLE_DEVICES` applies),
    /// loads the kernels and the constant tables. Any failure is an error saying why.
    pub fn open(ordinal: usize) -> Result<GpuBuilder> {
        let all = devices()?;
        let info = all
            .get(ordinal)
            .cloned()
            .with_context(|| format!("no GPU {ordinal}: this process sees {} GPU(s)", all.len()))?;
        let module_file = std::env::var("SEALKIT_CUDA_MODULE").ok();
        let budget = std::env::var("SEALKIT_GPU_BATCH_MIB")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(256)
            .max(1)
            << 20;
        let ptx = match &module_file {
            Some(path) => Ptx::from_file(path),
            None => compile_kernels(info.compute_capability)?,
        };
        let gpu = guard(&format!("opening {info}"), || {
            let ctx = CudaContext::new(ordinal)?;
            let module = ctx.load_module(ptx)?;
            let stream = ctx.default_stream();
            let mut kernels = Vec::new();
            for arity in GPU_ARITIES {
                let table = PoseidonTable::new(arity).expect("a GPU arity");
                kernels.push(Kernel {
                    arity,
                    func: module.load_function(&format!("sk_poseidon_strided_{arity}"))?,
                    table: stream.clone_htod(&table.words)?,
                    half: table.half_full_rounds as i32,
                    partial: table.partial_rounds as i32,
                });
            }
            let bad = stream.alloc_zeros::<u32>(1)?;
            stream.synchronize()?;
            Ok(Gpu {
                ctx,
                kernels,
                slots: Vec::new(),
                bad,
            })
        })?;
        Ok(GpuBuilder {
            info,
            module: module_file.unwrap_or_else(|| "NVRTC".into()),
            budget,
            gpu: Mutex::new(gpu),
        })
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Gpu>> {
        self.gpu
            .lock()
            .map_err(|_| anyhow!("the GPU builder failed earlier in another thread"))
    }
}

impl Gpu {
    fn kernel(&self, arity: usize) -> Result<usize> {
        self.kernels
            .iter()
            .position(|k| k.arity == arity)
            .ok_or_else(|| anyhow!("no GPU Poseidon kernel of arity {arity}"))
    }

    /// Two slots whose buffers hold at least these many words.
    fn slots(&mut self, in_words: usize, out_words: usize) -> Result<()> {
        let fits = |s: &Slot| s.host_in.len() >= in_words && s.host_out.len() >= out_words;
        if self.slots.len() != 2 || !self.slots.iter().all(fits) {
            self.slots.clear();
            for _ in 0..2 {
                self.slots.push(Slot::new(&self.ctx, in_words, out_words)?);
            }
        }
        Ok(())
    }

    /// Launches kernel `k` on `stream`: `n` hashes of the strided input into `out`.
    #[allow(clippy::too_many_arguments)]
    fn launch(
        &mut self,
        stream: &Arc<CudaStream>,
        k: usize,
        input: &cudarc::driver::CudaView<'_, u64>,
        elem_stride: u64,
        hash_stride: u64,
        n: u64,
        out: &mut cudarc::driver::CudaViewMut<'_, u64>,
    ) -> Result<()> {
        let kernel = &self.kernels[k];
        let cfg = LaunchConfig {
            grid_dim: (n.div_ceil(BLOCK as u64) as u32, 1, 1),
            block_dim: (BLOCK, 1, 1),
            shared_mem_bytes: 0,
        };
        let mut b = stream.launch_builder(&kernel.func);
        b.arg(input)
            .arg(&elem_stride)
            .arg(&hash_stride)
            .arg(&n)
            .arg(&kernel.table)
            .arg(&kernel.half)
            .arg(&kernel.partial)
            .arg(out)
            .arg(&mut self.bad);
        // SAFETY: the arguments match `sk_poseidon_strided_<arity>` in kernels/poseidon.cu
        // one for one (pointers, u64 strides and count, i32 round counts); the input view
        // holds every element the strides reach for `n` hashes and the output 4·n words, as
        // the callers size them.
        unsafe { b.launch(cfg) }?;
        Ok(())
    }

    /// Fails if a kernel met a non-canonical node since the last check; clears the flag.
    fn check_inputs(&mut self) -> Result<()> {
        let stream = self.ctx.default_stream();
        let flag = stream.clone_dtoh(&self.bad)?;
        stream.memset_zeros(&mut self.bad)?;
        stream.synchronize()?;
        ensure!(
            flag[0] == 0,
            "a node is not a canonical field element (a layer or replica file is corrupt)"
        );
        Ok(())
    }

    fn column_hashes(&mut self, layers: &[&[u8]], out: &mut [u8], budget: usize) -> Result<()> {
        let arity = layers.len();
        let k = self.kernel(arity)?;
        let n = out.len() / 32;
        ensure!(layers.iter().all(|l| l.len() >= out.len()), "layer lengths");
        if n == 0 {
            return Ok(());
        }
        // At least four batches per call, so the two streams overlap.
        let batch = plan::column_batch(arity, budget).min(n.div_ceil(4).next_multiple_of(1024));
        self.slots(4 * arity * batch, 4 * batch)?;
        for (i, r) in batches(n, batch).enumerate() {
            let mut slot = self.slots.swap_remove(i % 2);
            let result = (|| -> Result<()> {
                drain(&mut slot, out)?;
                pack_columns(layers, r.clone(), slot.host_in.as_mut_slice()?);
                slot.stream.memcpy_htod(&slot.host_in, &mut slot.dev_in)?;
                let stream = slot.stream.clone();
                let input = slot.dev_in.slice(..);
                let mut output = slot.dev_out.slice_mut(..);
                let len = r.len() as u64;
                self.launch(&stream, k, &input, len, 1, len, &mut output)?;
                stream.memcpy_dtoh(&slot.dev_out, &mut slot.host_out)?;
                slot.pending = Some(r);
                Ok(())
            })();
            self.slots.insert(i % 2, slot);
            result?;
        }
        for slot in &mut self.slots {
            drain(slot, out)?;
        }
        self.check_inputs()
    }

    fn build_rows(&mut self, rows: &mut [u8], leaves: usize, arity: usize) -> Result<[u8; 32]> {
        let k = self.kernel(arity)?;
        let len = tree_len(leaves, arity);
        ensure!(rows.len() == 32 * len, "tree buffer size");
        ensure!(leaves > 0, "a tree has leaves");
        if leaves == 1 {
            // The leaf is the root: nothing to hash or copy.
            return Ok(rows[..32].try_into().expect("32 bytes"));
        }
        let stream0 = self.ctx.default_stream();
        let mut tree = stream0
            .alloc_zeros::<u64>(4 * len)
            .with_context(|| format!("allocating {} MiB on the GPU", (32 * len) >> 20))?;
        // Chunks that divide the leaves evenly, so every copy fills its staging buffer.
        let chunk = if leaves.is_multiple_of(LEAF_CHUNK) {
            LEAF_CHUNK
        } else {
            leaves
        };
        ensure!(
            chunk.is_multiple_of(arity),
            "{leaves} leaves do not make an arity-{arity} tree"
        );
        let mut staging = Vec::new();
        for _ in 0..2 {
            let stream = self.ctx.new_stream()?;
            // SAFETY: every staging buffer is filled before it is copied.
            let host = unsafe { self.ctx.alloc_pinned::<u64>(4 * chunk)? };
            staging.push((stream, host));
        }
        let first = levels(leaves, arity).first().copied();
        // Leaves in chunks on alternating streams; each chunk's part of the first row is
        // hashed on the chunk's stream as soon as it has arrived, while the host stages the
        // next chunk in the other buffer.
        for (i, r) in batches(leaves, chunk).enumerate() {
            let (stream, host) = &mut staging[i % 2];
            let stream = stream.clone();
            // Waits until this buffer's previous copy has left it.
            bytes_to_words(&rows[32 * r.start..32 * r.end], host.as_mut_slice()?);
            let mut dst = tree.slice_mut(4 * r.start..4 * r.end);
            stream.memcpy_htod(&*host, &mut dst)?;
            if let Some(l) = first {
                let (lo, mut hi) = tree.split_at_mut(4 * l.dst);
                let input = lo.slice(4 * r.start..4 * r.end);
                let mut output = hi.slice_mut(4 * (r.start / arity)..4 * (r.end / arity));
                let width = (r.len() / arity) as u64;
                self.launch(&stream, k, &input, 1, arity as u64, width, &mut output)?;
            }
        }
        for (stream, _) in &staging {
            stream0.join(stream)?;
        }
        for l in levels(leaves, arity).into_iter().skip(1) {
            let (lo, mut hi) = tree.split_at_mut(4 * l.dst);
            let input = lo.slice(4 * l.src..4 * l.dst);
            let mut output = hi.slice_mut(..4 * l.width);
            self.launch(
                &stream0,
                k,
                &input,
                1,
                arity as u64,
                l.width as u64,
                &mut output,
            )?;
        }
        let upper = stream0.clone_dtoh(&tree.slice(4 * leaves..))?;
        stream0.synchronize()?;
        self.check_inputs()?;
        words_to_bytes(&upper, &mut rows[32 * leaves..]);
        Ok(rows[32 * (len - 1)..].try_into().expect("32 bytes"))
    }
}

/// Copies a slot's finished hashes (if any) into `out`, waiting for them.
fn drain(slot: &mut Slot, out: &mut [u8]) -> Result<()> {
    if let Some(r) = slot.pending.take() {
        let words = &slot.host_out.as_slice()?[..4 * r.len()];
        words_to_bytes(words, &mut out[32 * r.start..32 * r.end]);
    }
    Ok(())
}

impl TreeBuilder for GpuBuilder {
    fn column_hashes(&self, layers: &[&[u8]], out: &mut [u8]) -> Result<()> {
        let mut gpu = self.lock()?;
        guard(&format!("column hashes on {}", self.info), || {
            gpu.column_hashes(layers, out, self.budget)
        })
    }

    fn build_rows(&self, rows: &mut [u8], leaves: usize, arity: usize) -> Result<[u8; 32]> {
        let mut gpu = self.lock()?;
        guard(&format!("tree rows on {}", self.info), || {
            gpu.build_rows(rows, leaves, arity)
        })
    }
}

/// Fails with the reason when no GPU can be used: for callers that want a message.
pub fn require_gpu() -> Result<Vec<DeviceInfo>> {
    let d = devices()?;
    if d.is_empty() {
        bail!("no GPU found");
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without a driver (this build machine, CI) discovery and opening are one-line errors
    /// that say "no GPU", never a panic. `SEALKIT_REQUIRE_GPU=1` (the GPU host) turns the
    /// absence into a failure.
    #[test]
    fn no_driver_is_an_error() {
        if std::env::var("SEALKIT_REQUIRE_GPU").as_deref() == Ok("1") {
            let d = devices().expect("a GPU on this host");
            assert!(!d.is_empty());
            return;
        }
        match devices() {
            Err(e) => {
                let msg = format!("{e:#}");
                assert!(msg.starts_with("no GPU"), "{msg}");
                assert!(!msg.contains('\n'), "{msg}");
                let open = GpuBuilder::open(0).err().expect("no builder without a GPU");
                assert!(format!("{open:#}").starts_with("no GPU"));
            }
            Ok(d) => eprintln!("GPUs here: {d:?}"),
        }
    }

    /// NVRTC compiles the embedded kernels where its library is installed (the PyPI wheel
    /// scripts/test.sh installs, or a CUDA toolkit); skipped otherwise. Needs no GPU.
    #[test]
    fn nvrtc_compiles_the_kernels() {
        if !nvrtc_present() {
            eprintln!("NVRTC not installed: kernels not compiled (scripts/test.sh installs it)");
            return;
        }
        for cc in [(8, 0), (9, 0)] {
            let ptx = compile_kernels(cc).unwrap_or_else(|e| panic!("sm_{}{}: {e:#}", cc.0, cc.1));
            let src = ptx.to_src();
            for arity in GPU_ARITIES {
                assert!(
                    src.contains(&format!(".entry sk_poseidon_strided_{arity}")),
                    "kernel of arity {arity} in the PTX"
                );
            }
        }
    }
}
