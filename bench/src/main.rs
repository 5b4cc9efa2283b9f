//! Runs the reference's phases on a sealkit sector document and prints the time, for the
//! side-by-side scripts in `scripts/`.
//!
//! usage: sealkit-bench pc1 DOC OUTDIR   (reference PC1 into OUTDIR/cache, OUTDIR/sealed)
//!        sealkit-bench pc2 DOC CACHE SEALED
//!        sealkit-bench c1 DOC SEED OUT      (reference C1; its Commit1 JSON into OUT)
//!        sealkit-bench c2 DOC C1FILE        (reference C2 from a Commit1 JSON)
//!        sealkit-bench poseidon [SECONDS]   (Poseidon hashes/s on one core: ours vs neptune)
//!        sealkit-bench ru DOC OUTDIR        (reference encode_into of DOC's update into
//!                                            OUTDIR/update, OUTDIR/update-cache)
//!        sealkit-bench pru1 DOC OUT         (reference vanilla update proofs of DOC's update,
//!                                            as sealkit's list file, into OUT)

use std::fs;
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use filecoin_proofs::constants::SectorShapeBase;
use filecoin_proofs::{seal_pre_commit_phase1, PieceInfo, UnpaddedBytesAmount};
use sealkit::sector::document::SectorDoc;
use sealkit::snark::config::porep_config;
use storage_proofs_core::sector::SectorId;

fn pc1(doc_path: &Path, out: &Path) -> Result<()> {
    let doc = SectorDoc::parse(&fs::read_to_string(doc_path)?, "doc")?;
    let p = doc.seal_proof()?;
    if p.sector_size() >= 32 << 30 {
        bail!("this harness runs the single-tree sizes only");
    }
    let infos: Vec<PieceInfo> = doc
        .pieces()?
        .iter()
        .map(|r| PieceInfo::new(r.comm_p, UnpaddedBytesAmount(r.padded_size / 128 * 127)))
        .collect::<Result<_>>()?;
    let cache = out.join("cache");
    let sealed = out.join("sealed");
    fs::create_dir_all(&cache)?;
    fs::write(&sealed, b"")?;
    let t = Instant::now();
    let o = seal_pre_commit_phase1::<_, _, _, SectorShapeBase>(
        &porep_config(p)?,
        &cache,
        doc.unsealed_path()?,
        &sealed,
        doc.prover_id()?,
        SectorId::from(doc.sector()?),
        doc.ticket()?,
        &infos,
    )?;
    println!("{:.3}", t.elapsed().as_secs_f64());
    eprintln!("reference comm_d {}", sealkit::hex::encode(&o.comm_d));
    Ok(())
}

/// The reference's PC2 on a PC1 cache directory (ours or its own: the files are identical).
fn pc2(doc_path: &Path, cache: &Path, sealed: &Path) -> Result<()> {
    let doc = SectorDoc::parse(&fs::read_to_string(doc_path)?, "doc")?;
    let p = doc.seal_proof()?;
    let comm_d = doc.hex32("comm_d")?;
    let json = sealkit::pc1::reference_pc1_output_json(cache, p, &comm_d)?;
    let pc1_out: filecoin_proofs::SealPreCommitPhase1Output<SectorShapeBase> =
        serde_json::from_str(&json)?;
    let t = Instant::now();
    let o = filecoin_proofs::seal_pre_commit_phase2(&porep_config(p)?, pc1_out, cache, sealed)?;
    println!("{:.3}", t.elapsed().as_secs_f64());
    eprintln!("reference comm_r {}", sealkit::hex::encode(&o.comm_r));
    Ok(())
}

/// The reference's C1 on a sector after PC2 (ours: the files are identical); writes its
/// Commit1 JSON to OUT.
fn c1(doc_path: &Path, seed: &str, out: &Path) -> Result<()> {
    let doc = SectorDoc::parse(&fs::read_to_string(doc_path)?, "doc")?;
    let p = doc.seal_proof()?;
    let infos: Vec<PieceInfo> = doc
        .pieces()?
        .iter()
        .map(|r| PieceInfo::new(r.comm_p, UnpaddedBytesAmount(r.padded_size / 128 * 127)))
        .collect::<Result<_>>()?;
    let t = Instant::now();
    let o = filecoin_proofs::seal_commit_phase1::<_, SectorShapeBase>(
        &porep_config(p)?,
        doc.path("cache")?,
        doc.path("sealed")?,
        doc.prover_id()?,
        SectorId::from(doc.sector()?),
        doc.ticket()?,
        sealkit::hex::decode32(seed)?,
        filecoin_proofs::SealPreCommitOutput {
            comm_r: doc.hex32("comm_r")?,
            comm_d: doc.hex32("comm_d")?,
        },
        &infos,
    )?;
    println!("{:.3}", t.elapsed().as_secs_f64());
    fs::write(out, serde_json::to_vec(&o)?)?;
    Ok(())
}

/// The reference's C2 on a Commit1 JSON file.
fn c2(doc_path: &Path, c1_path: &Path) -> Result<()> {
    let doc = SectorDoc::parse(&fs::read_to_string(doc_path)?, "doc")?;
    let p = doc.seal_proof()?;
    let c1: filecoin_proofs::SealCommitPhase1Output<SectorShapeBase> =
        serde_json::from_slice(&fs::read(c1_path)?)?;
    let t = Instant::now();
    let o = filecoin_proofs::seal_commit_phase2(
        &porep_config(p)?,
        c1,
        doc.prover_id()?,
        SectorId::from(doc.sector()?),
    )?;
    println!("{:.3}", t.elapsed().as_secs_f64());
    eprintln!("reference proof {} bytes", o.proof.len());
    Ok(())
}

/// Poseidon hashes per second on one core (this thread), our IFMA permutation and neptune
/// (the reference's) side by side on the same preimages, for the arities PC2 uses: 2
/// (comm_r, 2-layer columns), 8 (tree_c, tree_r_last) and 11 (11-layer columns).
fn poseidon(seconds: f64) -> Result<()> {
    use sealkit::hash::poseidon::{hash_many_with, ifma_available, Backend};
    if !ifma_available() {
        bail!("this CPU has no AVX-512 IFMA: only neptune can run");
    }
    // Random canonical nodes: 254-bit values are below p.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let nodes: Vec<u8> = (0..32 * 1024 * 16)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if i % 32 == 31 {
                (x as u8) & 0x3f
            } else {
                x as u8
            }
        })
        .collect();
    let rate = |backend: Backend, arity: usize| -> (f64, Vec<u8>) {
        let mut out = vec![0u8; 32 * 1024];
        let node = |h: usize, i: usize| &nodes[32 * (h * arity + i)..32 * (h * arity + i + 1)];
        let t = Instant::now();
        let mut hashes = 0usize;
        while t.elapsed().as_secs_f64() < seconds {
            hash_many_with(backend, arity, node, &mut out[..32 * 256]);
            hashes += 256;
        }
        let r = hashes as f64 / t.elapsed().as_secs_f64();
        hash_many_with(backend, arity, node, &mut out);
        (r, out)
    };
    println!("Poseidon hashes/s on one core ({seconds} s per measurement)");
    for arity in [2, 8, 11] {
        let (n, a) = rate(Backend::Neptune, arity);
        let (o, b) = rate(Backend::Ifma, arity);
        if a != b {
            bail!("arity {arity}: IFMA and neptune hashes differ");
        }
        println!(
            "arity {arity:2}: neptune {n:9.0}/s | sealkit IFMA {o:9.0}/s | ratio {:.2}x (1024 hashes identical)",
            o / n
        );
    }
    Ok(())
}

/// The reference's encode_into for the update a document describes (files in OUTDIR).
fn ru(doc_path: &Path, out: &Path) -> Result<()> {
    let doc = SectorDoc::parse(&fs::read_to_string(doc_path)?, "doc")?;
    let p = doc.seal_proof()?;
    let u = doc.update_doc()?;
    let f = sealkit::update::UpdateFiles::of(&doc)?;
    let infos: Vec<PieceInfo> = u
        .pieces()?
        .iter()
        .map(|r| PieceInfo::new(r.comm_p, UnpaddedBytesAmount(r.padded_size / 128 * 127)))
        .collect::<Result<_>>()?;
    fs::create_dir_all(out.join("update-cache"))?;
    fs::File::create(out.join("update"))?.set_len(p.sector_size())?;
    // The reference maps the staged data read-write and wants it at least sector-sized.
    let staged = out.join("staged");
    fs::copy(&f.data, &staged)?;
    let st = fs::OpenOptions::new().write(true).open(&staged)?;
    if st.metadata()?.len() < p.sector_size() {
        st.set_len(p.sector_size())?;
    }
    let config = filecoin_proofs::SectorUpdateConfig::from_porep_config(&porep_config(p)?);
    let t = Instant::now();
    let o = filecoin_proofs::encode_into::<SectorShapeBase>(
        &config,
        &out.join("update"),
        &out.join("update-cache"),
        &f.key,
        &f.key_cache,
        &staged,
        &infos,
    )?;
    println!("{:.3}", t.elapsed().as_secs_f64());
    eprintln!("reference comm_r_new {}", sealkit::hex::encode(&o.comm_r_new));
    fs::remove_file(staged)?;
    Ok(())
}

/// The reference's vanilla update proofs over the files a document names (after seal-ru),
/// written in sealkit's list form.
fn pru1(doc_path: &Path, out: &Path) -> Result<()> {
    let doc = SectorDoc::parse(&fs::read_to_string(doc_path)?, "doc")?;
    let p = doc.seal_proof()?;
    let u = doc.update_doc()?;
    let f = sealkit::update::UpdateFiles::of(&doc)?;
    let config = filecoin_proofs::SectorUpdateConfig::from_porep_config(&porep_config(p)?);
    let t = Instant::now();
    let proofs = filecoin_proofs::generate_partition_proofs::<SectorShapeBase>(
        config,
        doc.hex32("comm_r")?,
        u.hex32("comm_r")?,
        u.hex32("comm_d")?,
        &f.key,
        &f.key_cache,
        &f.replica,
        &f.cache,
    )?;
    println!("{:.3}", t.elapsed().as_secs_f64());
    let bytes = proofs
        .iter()
        .map(bincode::serialize)
        .collect::<Result<Vec<_>, _>>()?;
    fs::write(out, sealkit::update::phase::bincode_list(&bytes))?;
    Ok(())
}

fn main() -> Result<()> {
    let a: Vec<String> = std::env::args().collect();
    match a.get(1).map(String::as_str) {
        Some("pc1") if a.len() == 4 => pc1(Path::new(&a[2]), Path::new(&a[3])),
        Some("pc2") if a.len() == 5 => pc2(Path::new(&a[2]), Path::new(&a[3]), Path::new(&a[4])),
        Some("c1") if a.len() == 5 => c1(Path::new(&a[2]), &a[3], Path::new(&a[4])),
        Some("c2") if a.len() == 4 => c2(Path::new(&a[2]), Path::new(&a[3])),
        Some("ru") if a.len() == 4 => ru(Path::new(&a[2]), Path::new(&a[3])),
        Some("pru1") if a.len() == 4 => pru1(Path::new(&a[2]), Path::new(&a[3])),
        Some("poseidon") if a.len() <= 3 => {
            poseidon(a.get(2).map_or(Ok(2.0), |s| s.parse()).context("SECONDS")?)
        }
        _ => bail!(
            "usage: sealkit-bench pc1 DOC OUTDIR | pc2 DOC CACHE SEALED | c1 DOC SEED OUT | c2 DOC C1FILE | poseidon [SECONDS] | ru DOC OUTDIR | pru1 DOC OUT"
        ),
    }
    .context("reference run")
}
