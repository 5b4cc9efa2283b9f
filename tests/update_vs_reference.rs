//! The sector update (snap deals) against the reference crates: every output file, byte for
//! byte, at every sector size the update proof allows at test scale.

mod common;

use std::fs;
use std::path::Path;

use common::sector::{cc_sealed_sector, doc_hex32, porep_config, with_random_update};
use filecoin_proofs::{PieceInfo, SectorUpdateConfig, UnpaddedBytesAmount};
use rand::Rng;
use sealkit::sector::document::SectorDoc;
use sealkit::sector::proof::SealProof;
use sealkit::update::UpdateFiles;

fn proofs() -> Vec<SealProof> {
    let v1_1 = |id| SealProof::from_id(id).unwrap();
    vec![
        v1_1(5),
        v1_1(5).with_test_size(4 << 10).unwrap(),
        v1_1(5).with_test_size(16 << 10).unwrap(),
        v1_1(5).with_test_size(32 << 10).unwrap(),
        v1_1(6),
    ]
}

fn pieces(u: &SectorDoc) -> Vec<PieceInfo> {
    u.pieces()
        .unwrap()
        .iter()
        .map(|p| PieceInfo::new(p.comm_p, UnpaddedBytesAmount(p.padded_size / 128 * 127)).unwrap())
        .collect()
}

/// Runs the reference's encode_into for the update `doc` describes into `out`
/// (`out/update`, `out/update-cache`).
fn reference_encode(proof: SealProof, doc: &SectorDoc, out: &Path) -> [u8; 32] {
    let u = doc.update_doc().unwrap();
    let f = UpdateFiles::of(doc).unwrap();
    fs::create_dir_all(out.join("update-cache")).unwrap();
    let replica = out.join("update");
    fs::File::create(&replica)
        .unwrap()
        .set_len(proof.sector_size())
        .unwrap();
    // The reference maps the staged data read-write and wants it at least sector-sized.
    let staged = out.join("staged");
    fs::copy(&f.data, &staged).unwrap();
    let st = fs::OpenOptions::new().write(true).open(&staged).unwrap();
    if st.metadata().unwrap().len() < proof.sector_size() {
        st.set_len(proof.sector_size()).unwrap();
    }
    let config = SectorUpdateConfig::from_porep_config(&porep_config(proof));
    let r = (|| -> anyhow::Result<_> {
        sealkit::with_tree_shape!(proof, Tree => {
            filecoin_proofs::encode_into::<Tree>(
                &config,
                &replica,
                &out.join("update-cache"),
                &f.key,
                &f.key_cache,
                &staged,
                &pieces(&u),
            )
        })
    })()
    .unwrap();
    assert_eq!(r.comm_d_new, doc_hex32(&u, "comm_d"));
    r.comm_r_new
}

fn files_of(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        // sealkit's own files (the AddPiece journal, the lock) are not the reference's.
        .filter(|n| !n.starts_with('.') && !n.starts_with("seal"))
        .collect();
    v.sort();
    v
}

#[test]
fn encode_into_equals_reference_at_every_size() {
    let mut rng = common::rng("encode_into_equals_reference_at_every_size");
    for proof in proofs() {
        let tmp = tempfile::tempdir().unwrap();
        let (_, mut doc) = cc_sealed_sector(&tmp.path().join("s"), proof, &mut rng);
        with_random_update(&mut doc, &tmp.path().join("s"), &mut rng);
        let u = doc.update_doc().unwrap();
        let f = UpdateFiles::of(&doc).unwrap();
        let ours = sealkit::update::encode::encode_into(
            &f,
            &doc_hex32(&u, "comm_d"),
            &doc_hex32(&doc, "comm_r"),
            false,
            &sealkit::pc2::CpuBuilder,
        )
        .unwrap();
        let comm_r_new = reference_encode(proof, &doc, &tmp.path().join("ref"));
        assert_eq!(ours.comm_r_new, comm_r_new, "{proof:?} comm_r_new");
        assert_eq!(
            fs::read(&f.replica).unwrap(),
            fs::read(tmp.path().join("ref/update")).unwrap(),
            "{proof:?} update replica"
        );
        let ref_cache = tmp.path().join("ref/update-cache");
        assert_eq!(files_of(&f.cache), files_of(&ref_cache), "{proof:?}");
        for name in files_of(&ref_cache) {
            assert_eq!(
                fs::read(f.cache.join(&name)).unwrap(),
                fs::read(ref_cache.join(&name)).unwrap(),
                "{proof:?} update cache file {name}"
            );
        }
    }
}

/// The reference's bincode of its own partition proofs for the update in `doc` (encoded by
/// us), and whether it verifies ours.
fn reference_vanilla(proof: SealProof, doc: &SectorDoc, ours: &[Vec<u8>]) -> (Vec<Vec<u8>>, bool) {
    let u = doc.update_doc().unwrap();
    let f = UpdateFiles::of(doc).unwrap();
    let config = SectorUpdateConfig::from_porep_config(&porep_config(proof));
    let (comm_r_old, comm_r_new, comm_d_new) = (
        doc_hex32(doc, "comm_r"),
        doc_hex32(&u, "comm_r"),
        doc_hex32(&u, "comm_d"),
    );
    (|| -> anyhow::Result<_> {
        sealkit::with_tree_shape!(proof, Tree => {
            let theirs = filecoin_proofs::generate_partition_proofs::<Tree>(
                config, comm_r_old, comm_r_new, comm_d_new, &f.key, &f.key_cache, &f.replica, &f.cache,
            )?;
            let ours: Vec<storage_proofs_update::PartitionProof<Tree>> = ours
                .iter()
                .map(|b| bincode::deserialize(b).unwrap())
                .collect();
            let ok = filecoin_proofs::verify_partition_proofs::<Tree>(
                config, &ours, comm_r_old, comm_r_new, comm_d_new,
            )?;
            Ok((theirs.iter().map(|p| bincode::serialize(p).unwrap()).collect(), ok))
        })
    })()
    .unwrap()
}

#[test]
fn vanilla_proofs_decode_and_remove_data_equal_reference() {
    use sealkit::update::phase::{prove_replica_update1, read_bincode_list, replica_update};
    let mut rng = common::rng("vanilla_proofs_decode_and_remove_data_equal_reference");
    for proof in proofs() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("s");
        let (s, mut doc) = cc_sealed_sector(&dir, proof, &mut rng);
        with_random_update(&mut doc, &dir, &mut rng);
        replica_update(&mut doc, false).unwrap();
        let path = prove_replica_update1(&mut doc).unwrap();
        let ours = read_bincode_list(&fs::read(path).unwrap()).unwrap();
        let (theirs, verified) = reference_vanilla(proof, &doc, &ours);
        assert_eq!(ours.len(), theirs.len(), "{proof:?} partitions");
        for (k, (o, t)) in ours.iter().zip(&theirs).enumerate() {
            assert_eq!(o, t, "{proof:?} partition {k} bincode");
        }
        assert!(
            verified,
            "{proof:?}: the reference rejects our vanilla proofs"
        );

        // Decode: the whole sector and a random range give the new data back.
        let u = doc.update_doc().unwrap();
        let f = UpdateFiles::of(&doc).unwrap();
        let (comm_d_new, comm_r_old) = (doc_hex32(&u, "comm_d"), doc_hex32(&doc, "comm_r"));
        let nodes = proof.sector_size() / 32;
        let all = sealkit::update::decode::decode_range(
            proof,
            &f.replica,
            &f.key,
            &comm_d_new,
            &comm_r_old,
            0,
            nodes,
        )
        .unwrap();
        let mut data = fs::read(&f.data).unwrap();
        data.resize(proof.sector_size() as usize, 0);
        assert_eq!(all, data, "{proof:?} decode");
        let first = rng.gen_range(0..nodes);
        let count = rng.gen_range(1..=nodes - first);
        let part = sealkit::update::decode::decode_range(
            proof,
            &f.replica,
            &f.key,
            &comm_d_new,
            &comm_r_old,
            first,
            count,
        )
        .unwrap();
        assert_eq!(
            part,
            data[(first * 32) as usize..((first + count) * 32) as usize]
        );

        // Remove data: the sector key comes back byte for byte, with the same p_aux, after
        // the key and its tree_r_last are gone.
        let key = fs::read(s.sealed()).unwrap();
        let p_aux = fs::read(s.cache().join("p_aux")).unwrap();
        fs::remove_file(s.sealed()).unwrap();
        for e in fs::read_dir(s.cache()).unwrap() {
            let e = e.unwrap();
            if e.file_name().to_str().unwrap().contains("tree-r-last") {
                fs::remove_file(e.path()).unwrap();
            }
        }
        sealkit::update::decode::remove_data(
            &f,
            &comm_d_new,
            &comm_r_old,
            false,
            &sealkit::pc2::CpuBuilder,
        )
        .unwrap();
        assert_eq!(
            fs::read(s.sealed()).unwrap(),
            key,
            "{proof:?} regenerated key"
        );
        assert_eq!(fs::read(s.cache().join("p_aux")).unwrap(), p_aux);
    }
}
