//! Groth16 parameter files: where they are, a clear error when one is missing, and insecure
//! test parameters for the small sector sizes.
//!
//! Files live in `FIL_PROOFS_PARAMETER_CACHE` (default `/var/tmp/filecoin-proof-parameters`)
//! as `v28-<cache id>.params / .vk / .meta`, the cache id depending only on the sector size
//! and tree shape (every 2KiB proof type shares one file;
//! docs/sdr-porep.md#groth16-parameter-files).
//!
//! The reference generates missing parameters only when handed an RNG, writes them straight
//! to their final name and treats an existing (possibly half-written) file as "someone else
//! is generating": a kill mid-write leaves a cache that fails forever. Here generation holds
//! a lock file, writes to temp names, fsyncs and renames, and refuses to touch the default
//! (production) directory: random parameters there would make every later proof invalid
//! on chain.

use std::fs::{File, OpenOptions};
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use bellperson::groth16;
use blstrs::Bls12;
use filecoin_proofs::constants::DefaultPieceHasher;
use filecoin_proofs::parameters::setup_params;
use storage_proofs_core::compound_proof::{self, CompoundProof};
use storage_proofs_core::merkle::MerkleTreeTrait;
use storage_proofs_core::parameter_cache::{
    parameter_cache_dir, parameter_cache_metadata_path, parameter_cache_params_path,
    parameter_cache_srs_key_path, parameter_cache_verifying_key_path, CacheableParameters,
};
use storage_proofs_porep::stacked::{StackedCircuit, StackedCompound, StackedDrg};

use super::config::porep_config;
use crate::fsutil::{sync_parent, temp_path};
use crate::sector::proof::SealProof;
use crate::with_tree_shape;

/// The environment variable naming the parameter directory, as in Lotus.
pub const PARAM_ENV: &str = "FIL_PROOFS_PARAMETER_CACHE";
/// Size of the fake SnarkPack SRS written with test parameters: enough for 128 proofs.
const TEST_SRS_SIZE: usize = 256;

/// The parameter files of one proof type.
#[derive(Debug, Clone)]
pub struct ParamFiles {
    pub cache_id: String,
    pub params: PathBuf,
    pub vk: PathBuf,
    pub meta: PathBuf,
    /// The SnarkPack SRS (NI-PoRep aggregation only).
    pub srs: PathBuf,
}

fn compound_params<Tree: 'static + MerkleTreeTrait>(
    proof: SealProof,
) -> Result<compound_proof::PublicParams<'static, StackedDrg<'static, Tree, DefaultPieceHasher>>> {
    let config = porep_config(proof)?;
    <StackedCompound<Tree, DefaultPieceHasher> as CompoundProof<_, _>>::setup(
        &compound_proof::SetupParams {
            vanilla_params: setup_params(&config)?,
            partitions: Some(usize::from(config.partitions)),
            priority: false,
        },
    )
}

/// Where the parameters of `proof` are.
pub fn files(proof: SealProof) -> Result<ParamFiles> {
    with_tree_shape!(proof, Tree => {
        let pp = compound_params::<Tree>(proof)?;
        let id = <StackedCompound<Tree, DefaultPieceHasher> as CacheableParameters<StackedCircuit<Tree, DefaultPieceHasher>, _>>::cache_identifier(
            &pp.vanilla_params,
        );
        Ok(ParamFiles {
            params: parameter_cache_params_path(&id),
            vk: parameter_cache_verifying_key_path(&id),
            meta: parameter_cache_metadata_path(&id),
            srs: parameter_cache_srs_key_path(&id, 0),
            cache_id: id,
        })
    })
}

/// The sector size's name as `lotus fetch-params` takes it.
pub fn size_name(proof: SealProof) -> String {
    let s = proof.sector_size();
    match s {
        s if s >= 1 << 30 => format!("{}GiB", s >> 30),
        s if s >= 1 << 20 => format!("{}MiB", s >> 20),
        s => format!("{}KiB", s >> 10),
    }
}

/// The proof whose parameters `--generate-test-params SIZE` means: a size (`2KiB`, …; the
/// V1_1 proof of that size, since every proof of a size shares its parameters) or an id.
pub fn proof_for_size_arg(s: &str) -> Result<SealProof> {
    if let Ok(id) = s.parse::<u64>() {
        return SealProof::from_id(id);
    }
    SealProof::all()
        .find(|p| p.name() == format!("StackedDrg{s}V1_1"))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "--generate-test-params: unknown sector size {s:?} (2KiB, 8MiB, 512MiB, 32GiB, 64GiB)"
            )
        })
}

/// Fails with an actionable message when a file C2 (`need_srs`: with NI aggregation) or
/// verification needs is missing.
pub fn check_present(proof: SealProof, need_params: bool, need_srs: bool) -> Result<ParamFiles> {
    let f = files(proof)?;
    let mut need = vec![&f.vk];
    if need_params {
        need.push(&f.params);
    }
    if need_srs {
        need.push(&f.srs);
    }
    for p in need {
        if !p.exists() {
            bail!(
                "parameter file {} is missing: fetch the real ones with `lotus fetch-params {}` \
                 (or `curio fetch-params`), or for testing only set {PARAM_ENV} to a scratch \
                 directory and run `seal-c2 --generate-test-params {}`",
                p.display(),
                size_name(proof),
                size_name(proof)
            );
        }
    }
    Ok(f)
}

/// Whether the parameter directory is the default one (production parameters live there).
fn is_default_dir() -> bool {
    std::env::var_os(PARAM_ENV).is_none_or(|v| v.is_empty())
}

/// Writes `write` to a temp name next to `path`, fsyncs and renames it into place.
fn write_file(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<()> {
    crate::fsutil::check_replaceable(path)?;
    if let Some(dir) = path.parent() {
        crate::fsutil::remove_dead_temps(dir);
    }
    let tmp = temp_path(path);
    let f = crate::fsutil::create_temp(&tmp)?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    write(&mut w).with_context(|| format!("cannot write {}", tmp.display()))?;
    let f = w.into_inner().map_err(|e| e.into_error())?;
    f.sync_all()?;
    crate::fsutil::rename_into_place(&tmp, path)?;
    sync_parent(path)
}

/// Generates random, insecure Groth16 parameters (and a fake SnarkPack SRS) for `proof`'s
/// sector size into the parameter directory, unless they are there. Returns whether it
/// generated anything.
pub fn generate_test_params(proof: SealProof) -> Result<bool> {
    let f = files(proof)?;
    let mut generated = generate_into(&f, &size_name(proof), "seal-c2", true, || {
        with_tree_shape!(proof, Tree => {
            let pp = compound_params::<Tree>(proof)?;
            let circuit = <StackedCompound<Tree, DefaultPieceHasher> as CompoundProof<_, _>>::blank_circuit(
                &pp.vanilla_params,
            );
            let meta = <StackedCompound<Tree, DefaultPieceHasher> as CacheableParameters<StackedCircuit<Tree, DefaultPieceHasher>, _>>::cache_meta(
                &pp.vanilla_params,
            );
            let params = groth16::generate_random_parameters::<Bls12, _, _>(
                circuit,
                &mut rand::rngs::OsRng,
            )?;
            Ok((params, Some(meta)))
        })
    })?;
    if !f.srs.exists() {
        let srs =
            groth16::aggregate::setup_fake_srs::<Bls12, _>(&mut rand::rngs::OsRng, TEST_SRS_SIZE);
        write_file(&f.srs, |w| srs.write(w))?;
        generated = true;
    }
    Ok(generated)
}

/// Random Groth16 parameters for one circuit and, where the reference writes one, the
/// `.meta` file's contents.
pub type RandomParams = (
    groth16::Parameters<Bls12>,
    Option<storage_proofs_core::parameter_cache::CacheEntryMetadata>,
);

/// Writes `f.params` and `f.vk` (and `f.meta` when `with_meta`; `build` returns its
/// contents) from `build`, under a lock, unless they are all there. `tool` and `size` word the warning. Returns whether it
/// generated them. Refuses the default (production) directory.
pub fn generate_into(
    f: &ParamFiles,
    size: &str,
    tool: &str,
    with_meta: bool,
    build: impl FnOnce() -> Result<RandomParams>,
) -> Result<bool> {
    ensure!(
        !is_default_dir(),
        "refusing to write random test parameters into the default parameter directory {}: \
         set {PARAM_ENV} to a test directory",
        parameter_cache_dir().display()
    );
    std::fs::create_dir_all(f.params.parent().expect("a directory"))?;
    let lock_path = f.params.with_extension("params.lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("cannot open {}", lock_path.display()))?;
    let _held = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| anyhow::anyhow!("cannot lock {}: {e}", lock_path.display()))?;
    if f.params.exists() && f.vk.exists() && (!with_meta || f.meta.exists()) {
        return Ok(false);
    }
    eprintln!(
        "{tool}: WARNING: generating RANDOM, INSECURE Groth16 parameters for {size} sectors \
         into {} (for testing only: proofs made with them are worthless on any real network). \
         This takes minutes and about 1 GB of disk for 2KiB sectors.",
        f.params.parent().expect("a directory").display()
    );
    let t = std::time::Instant::now();
    let (params, meta) = build()?;
    if let Some(meta) = meta {
        write_file(&f.meta, |w| {
            serde_json::to_writer(&mut *w, &meta).map_err(std::io::Error::other)
        })?;
    }
    write_file(&f.params, |w| params.write(w))?;
    write_file(&f.vk, |w| params.vk.write(w))?;
    eprintln!(
        "{tool}: test parameters for {size} written in {:.0} s",
        t.elapsed().as_secs_f64()
    );
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spec Appendix A.5: the production cache ids.
    #[test]
    fn cache_ids() {
        for (id, tail) in [
            (5, "8-0-0-sha256_hasher-032d3138d22506ec0082ed72b2dcba18df18477904e35bafee82b3793b06832f"),
            (6, "8-0-0-sha256_hasher-ecd683648512ab1765faa2a5f14bab48f676e633467f0aa8aad4b55dcb0652bb"),
            (7, "8-0-0-sha256_hasher-6babf46ce344ae495d558e7770a585b2382d54f225af8ed0397b8be7c3fcd472"),
            (8, "8-8-0-sha256_hasher-82a357d2f2ca81dc61bb45f4a762807aedee1b0a53fd6c4e77b46a01bfef7820"),
            (9, "8-8-2-sha256_hasher-96f1b4a04c5c51e4759bbf224bbc2ef5a42c7100f16ec0637123f16a845ddfb2"),
            (10, "8-0-0-sha256_hasher-032d3138d22506ec0082ed72b2dcba18df18477904e35bafee82b3793b06832f"),
            (15, "8-0-0-sha256_hasher-032d3138d22506ec0082ed72b2dcba18df18477904e35bafee82b3793b06832f"),
        ] {
            let f = files(SealProof::from_id(id).unwrap()).unwrap();
            assert_eq!(
                f.cache_id,
                format!("stacked-proof-of-replication-merkletree-poseidon_hasher-{tail}")
            );
            assert!(f.params.to_str().unwrap().ends_with(&format!("v28-{}.params", f.cache_id)));
        }
    }
}
