//! The Commit1 output: the JSON that the reference's `SealCommitPhase1Output` gives through
//! serde_json (docs/sdr-porep.md#commit1-output), byte for byte, so that any C2 (ours, the
//! reference's, Lotus through filecoin-ffi) proves from it.
//!
//! serde writes every 32-byte value as an array of 32 integers, field names in declaration
//! order, enums externally tagged and `PhantomData` as `null`. Writing it by hand here keeps
//! the format visible and costs one pass over the proofs.

use std::fmt::Write;

use super::vanilla::{ChallengeProof, ColumnOpening};
use crate::merkle::path::{MerklePath, PathLevel};
use crate::sector::proof::TreeShape;

/// What a Commit1 output carries besides the proofs.
pub struct Commit1Header {
    pub comm_r: [u8; 32],
    pub comm_d: [u8; 32],
    pub replica_id: [u8; 32],
    pub seed: [u8; 32],
    pub ticket: [u8; 32],
}

struct Json<'a> {
    out: &'a mut String,
    shape: TreeShape,
}

impl Json<'_> {
    fn bytes(&mut self, b: &[u8; 32]) {
        self.out.push('[');
        for (i, x) in b.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            write!(self.out, "{x}").expect("writing to a String");
        }
        self.out.push(']');
    }

    fn list<T>(&mut self, items: &[T], mut each: impl FnMut(&mut Self, &T)) {
        self.out.push('[');
        for (i, x) in items.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            each(self, x);
        }
        self.out.push(']');
    }

    fn key(&mut self, k: &str) {
        if !self.out.ends_with('{') {
            self.out.push(',');
        }
        write!(self.out, "\"{k}\":").expect("writing to a String");
    }

    fn inclusion_path(&mut self, levels: &[PathLevel]) {
        self.out.push_str("{\"path\":");
        self.list(levels, |j, l| {
            j.out.push_str("{\"hashes\":");
            j.list(&l.siblings, |j, s| j.bytes(s));
            write!(j.out, ",\"index\":{}}}", l.index).expect("writing to a String");
        });
        self.out.push('}');
    }

    /// A binary (tree_d) path is always `Single`.
    fn merkle_proof(&mut self, p: &MerklePath, compound: bool) {
        let (sub, top) = if compound {
            (self.shape.sub > 0, self.shape.top > 0)
        } else {
            (false, false)
        };
        let tail = sub as usize + top as usize;
        let (base, upper) = p.levels.split_at(p.levels.len() - tail);
        self.out.push_str("{\"data\":{");
        if tail == 0 {
            self.out.push_str("\"Single\":{");
            self.key("root");
            self.bytes(&p.root);
            self.key("leaf");
            self.bytes(&p.leaf);
            self.key("path");
            self.inclusion_path(base);
        } else {
            self.out
                .push_str(if top { "\"Top\":{" } else { "\"Sub\":{" });
            self.key("base_proof");
            self.inclusion_path(base);
            self.key("sub_proof");
            self.inclusion_path(&upper[..1]);
            if top {
                self.key("top_proof");
                self.inclusion_path(&upper[1..]);
            }
            self.key("root");
            self.bytes(&p.root);
            self.key("leaf");
            self.bytes(&p.leaf);
        }
        self.out.push_str("}}}");
    }

    fn column_proof(&mut self, c: &ColumnOpening) {
        write!(self.out, "{{\"column\":{{\"index\":{},\"rows\":", c.node)
            .expect("writing to a String");
        self.list(&c.rows, |j, r| j.bytes(r));
        self.out.push_str(",\"_h\":null},\"inclusion_proof\":");
        self.merkle_proof(&c.path, true);
        self.out.push('}');
    }

    fn labeling_proof(&mut self, p: &ChallengeProof, layer: usize) {
        self.out.push_str("{\"parents\":");
        self.list(&p.labeling_parents(layer), |j, b| j.bytes(b));
        write!(
            self.out,
            ",\"layer_index\":{layer},\"node\":{}}}",
            p.challenge
        )
        .expect("writing to a String");
    }

    fn challenge_proof(&mut self, p: &ChallengeProof) {
        self.out.push_str("{\"comm_d_proofs\":");
        self.merkle_proof(&p.tree_d, false);
        self.out.push_str(",\"comm_r_last_proof\":");
        self.merkle_proof(&p.tree_r, true);
        self.out.push_str(",\"replica_column_proofs\":{\"c_x\":");
        self.column_proof(&p.column);
        self.out.push_str(",\"drg_parents\":");
        self.list(&p.parents[..6], |j, c| j.column_proof(c));
        self.out.push_str(",\"exp_parents\":");
        self.list(&p.parents[6..], |j, c| j.column_proof(c));
        self.out.push_str("},\"labeling_proofs\":");
        let layers: Vec<usize> = (1..=p.column.rows.len()).collect();
        self.list(&layers, |j, &l| j.labeling_proof(p, l));
        self.out.push_str(",\"encoding_proof\":");
        self.labeling_proof(p, layers.len());
        self.out.push('}');
    }
}

/// The reference's serde_json form of `SealCommitPhase1Output` for `proofs[partition][i]`.
pub fn commit1_json(shape: TreeShape, proofs: &[Vec<ChallengeProof>], h: &Commit1Header) -> String {
    let mut out = String::with_capacity(proofs.iter().map(Vec::len).sum::<usize>() * (64 << 10));
    let mut j = Json {
        out: &mut out,
        shape,
    };
    j.out.push_str("{\"vanilla_proofs\":");
    j.list(proofs, |j, part| j.list(part, |j, p| j.challenge_proof(p)));
    for (k, v) in [
        ("comm_r", &h.comm_r),
        ("comm_d", &h.comm_d),
        ("replica_id", &h.replica_id),
        ("seed", &h.seed),
        ("ticket", &h.ticket),
    ] {
        j.key(k);
        j.bytes(v);
    }
    j.out.push('}');
    out
}
