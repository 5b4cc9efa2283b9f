//! Reading openings out of a sealed sector's files: tree_d, tree_c and tree_r_last inclusion
//! paths and label columns, with small positioned reads (a 32GiB sector's C1 touches a few
//! MiB of its 400 GiB of cache).
//!
//! tree_r_last files keep only the rows above `rows_to_discard`; as in the reference's
//! `gen_cached_proof`, the discarded rows under a challenged leaf are rebuilt from the
//! replica (`arity^(rows_to_discard+1)` leaves, 16 KiB for 8-ary trees with 2 rows
//! discarded). The number of discarded rows is read off the file's size, so a sector sealed
//! with any `FIL_PROOFS_ROWS_TO_DISCARD` opens correctly.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};

use crate::fsutil::open_regular_read;
use crate::hash::poseidon::hash_children;
use crate::merkle::path::{MerklePath, PathLevel};
use crate::merkle::poseidon_tree::{base_tree_file, build_rows, combine_roots, tree_len};
use crate::merkle::tree_d::TREE_D_FILE;
use crate::pc1::layer_file;
use crate::sector::proof::{SealProof, TreeShape};

/// Rows `first_row..` of a tree over `leaves` leaves of `arity`, stored bottom-up in a file.
struct StoredTree {
    file: File,
    path: PathBuf,
    leaves: usize,
    arity: usize,
    first_row: usize,
}

impl StoredTree {
    fn open(path: PathBuf, leaves: usize, arity: usize, first_row: usize) -> Result<StoredTree> {
        let file =
            open_regular_read(&path).with_context(|| format!("cannot open {}", path.display()))?;
        let t = StoredTree {
            file,
            path,
            leaves,
            arity,
            first_row,
        };
        let want = 32 * (tree_len(leaves, arity) - t.skipped_nodes()) as u64;
        let got = t.file.metadata()?.len();
        ensure!(
            got == want,
            "{} has {got} bytes, expected {want}: PC2 did not finish",
            t.path.display()
        );
        Ok(t)
    }

    fn width(&self, row: usize) -> usize {
        self.leaves / self.arity.pow(row as u32)
    }

    fn skipped_nodes(&self) -> usize {
        (0..self.first_row).map(|r| self.width(r)).sum()
    }

    fn height(&self) -> usize {
        (self.leaves.trailing_zeros() / self.arity.trailing_zeros()) as usize
    }

    /// `count` nodes of `row` from index `start`.
    fn read(&self, row: usize, start: usize, count: usize) -> Result<Vec<u8>> {
        let before: usize = (self.first_row..row).map(|r| self.width(r)).sum();
        let mut buf = vec![0u8; 32 * count];
        self.file
            .read_exact_at(&mut buf, 32 * (before + start) as u64)
            .with_context(|| format!("cannot read {}", self.path.display()))?;
        Ok(buf)
    }

    fn root(&self) -> Result<[u8; 32]> {
        let top = self.read(self.height(), 0, 1)?;
        Ok(top.try_into().expect("one node"))
    }

    /// The leaf at `local` and the path levels up to this tree's root. `lower` holds the rows
    /// below `first_row` of the aligned subtree containing the leaf (built by the caller).
    fn levels(&self, local: usize, lower: Option<&[u8]>) -> Result<([u8; 32], Vec<PathLevel>)> {
        let a = self.arity;
        let mut levels = Vec::with_capacity(self.height());
        let mut leaf = [0u8; 32];
        let span = a.pow(self.first_row as u32);
        let (mut lower_row_start, mut lower_width) = (0usize, span);
        for row in 0..self.height() {
            let pos = local / a.pow(row as u32);
            let group = pos / a * a;
            let nodes = if row < self.first_row {
                let rows = lower.context("rows below the stored ones are needed")?;
                let in_sub = group - (local / span * span) / a.pow(row as u32);
                let at = 32 * (lower_row_start + in_sub);
                let v = rows[at..at + 32 * a].to_vec();
                lower_row_start += lower_width;
                lower_width /= a;
                v
            } else {
                self.read(row, group, a)?
            };
            if row == 0 {
                leaf.copy_from_slice(&nodes[32 * (pos - group)..32 * (pos - group + 1)]);
            }
            levels.push(PathLevel {
                siblings: nodes
                    .chunks_exact(32)
                    .enumerate()
                    .filter(|&(i, _)| i != pos - group)
                    .map(|(_, n)| n.try_into().expect("32 bytes"))
                    .collect(),
                index: pos - group,
            });
        }
        if self.height() == 0 {
            leaf = self.root()?;
        }
        Ok((leaf, levels))
    }
}

/// A compound Poseidon tree (tree_c or tree_r_last): its base trees and their roots.
struct CompoundTree {
    bases: Vec<StoredTree>,
    base_roots: Vec<[u8; 32]>,
    shape: TreeShape,
    root: [u8; 32],
}

impl CompoundTree {
    fn open(cache: &Path, id: &str, proof: SealProof, first_row: Option<usize>) -> Result<Self> {
        let shape = proof.tree_shape();
        let count = shape.base_trees();
        let per_tree = proof.nodes() as usize / count;
        let bases = (0..count)
            .map(|i| {
                let path = cache.join(base_tree_file(id, i, count));
                let first = match first_row {
                    Some(f) => f,
                    None => discarded_rows(&path, per_tree, shape.base)? + 1,
                };
                StoredTree::open(path, per_tree, shape.base, first)
            })
            .collect::<Result<Vec<_>>>()?;
        let base_roots = bases.iter().map(|b| b.root()).collect::<Result<Vec<_>>>()?;
        let root = combine_roots(&base_roots, shape);
        Ok(CompoundTree {
            bases,
            base_roots,
            shape,
            root,
        })
    }

    fn per_tree(&self) -> usize {
        self.bases[0].leaves
    }

    /// The path of leaf `node`; `lower` as in [`StoredTree::levels`].
    fn path(&self, node: u64, lower: Option<&[u8]>) -> Result<MerklePath> {
        let per = self.per_tree();
        let (b, local) = (node as usize / per, node as usize % per);
        let (leaf, mut levels) = self.bases[b].levels(local, lower)?;
        let mut roots = self.base_roots.clone();
        let mut pos = b;
        for arity in [self.shape.sub, self.shape.top] {
            if arity == 0 {
                continue;
            }
            let group = pos / arity * arity;
            levels.push(PathLevel {
                siblings: (group..group + arity)
                    .filter(|&i| i != pos)
                    .map(|i| roots[i])
                    .collect(),
                index: pos - group,
            });
            roots = roots
                .chunks_exact(arity)
                .map(|g| hash_children(&g.concat()))
                .collect();
            pos /= arity;
        }
        Ok(MerklePath {
            leaf,
            root: self.root,
            levels,
        })
    }
}

/// Rows a LevelCacheStore of `per_tree` leaves dropped, from its file's size.
fn discarded_rows(path: &Path, per_tree: usize, arity: usize) -> Result<usize> {
    let len = std::fs::metadata(path)
        .with_context(|| format!("{} is missing (run seal-pc2 first)", path.display()))?
        .len() as usize;
    let total = tree_len(per_tree, arity);
    let (mut skipped, mut width) = (per_tree, per_tree);
    for rows in 0.. {
        if 32 * (total - skipped) == len {
            return Ok(rows);
        }
        width /= arity;
        if width == 0 {
            break;
        }
        skipped += width;
    }
    bail!(
        "{} has {len} bytes, which fits no row count of a {per_tree}-leaf tree: PC2 did not finish",
        path.display()
    )
}

/// The files of a sealed sector that C1 opens.
pub struct SectorTrees {
    proof: SealProof,
    tree_d: Option<StoredTree>,
    tree_c: Option<CompoundTree>,
    tree_r: CompoundTree,
    layers: Vec<File>,
    replica: File,
}

impl SectorTrees {
    /// Opens the trees of a sector after PC2. `with_layers` opens tree_d, tree_c and the
    /// layers too (everything but synthetic C1, which reads its stored proofs instead).
    pub fn open(
        proof: SealProof,
        cache: &Path,
        replica: &Path,
        with_layers: bool,
    ) -> Result<SectorTrees> {
        let nodes = proof.nodes() as usize;
        let replica_file = open_regular_read(replica)
            .with_context(|| format!("cannot open sealed file {}", replica.display()))?;
        let rlen = replica_file.metadata()?.len();
        ensure!(
            rlen == proof.sector_size(),
            "sealed file {} has {rlen} bytes, expected {}",
            replica.display(),
            proof.sector_size()
        );
        let (tree_d, tree_c, layers) = if with_layers {
            let d = StoredTree::open(cache.join(TREE_D_FILE), nodes, 2, 0)?;
            let c = CompoundTree::open(cache, "tree-c", proof, Some(0))?;
            let layers = (1..=proof.layers())
                .map(|l| {
                    let p = cache.join(layer_file(l));
                    let f = open_regular_read(&p).with_context(|| {
                        format!(
                            "layer file {} is missing (were the layers deleted?)",
                            p.display()
                        )
                    })?;
                    let len = f.metadata()?.len();
                    ensure!(
                        len == 32 * nodes as u64,
                        "layer file {} has {len} bytes, expected {}",
                        p.display(),
                        32 * nodes
                    );
                    Ok(f)
                })
                .collect::<Result<Vec<_>>>()?;
            (Some(d), Some(c), layers)
        } else {
            (None, None, Vec::new())
        };
        Ok(SectorTrees {
            proof,
            tree_d,
            tree_c,
            tree_r: CompoundTree::open(cache, "tree-r-last", proof, None)?,
            layers,
            replica: replica_file,
        })
    }

    pub fn proof(&self) -> SealProof {
        self.proof
    }

    /// The same trees with tree_d opened from `cache` alone (a sector update's tree_d lives in
    /// its update cache, without layers or tree_c).
    pub fn with_tree_d(mut self, cache: &Path) -> Result<SectorTrees> {
        let nodes = self.proof.nodes() as usize;
        self.tree_d = Some(StoredTree::open(cache.join(TREE_D_FILE), nodes, 2, 0)?);
        Ok(self)
    }

    /// Rows of tree_r_last below the stored ones, leaves excluded (its rows_to_discard).
    pub fn tree_r_rows_to_discard(&self) -> usize {
        self.tree_r.bases[0].first_row - 1
    }

    pub fn comm_d(&self) -> Result<[u8; 32]> {
        self.tree_d.as_ref().context("tree_d is not open")?.root()
    }

    pub fn comm_c(&self) -> Result<[u8; 32]> {
        Ok(self.tree_c.as_ref().context("tree_c is not open")?.root)
    }

    pub fn comm_r_last(&self) -> [u8; 32] {
        self.tree_r.root
    }

    /// tree_d path of data node `node`.
    pub fn tree_d_path(&self, node: u64) -> Result<MerklePath> {
        let d = self.tree_d.as_ref().context("tree_d is not open")?;
        let (leaf, levels) = d.levels(node as usize, None)?;
        Ok(MerklePath {
            leaf,
            root: d.root()?,
            levels,
        })
    }

    /// `count` nodes of tree_d's row `row` (0: the leaves) from index `start`.
    pub fn tree_d_row(&self, row: usize, start: usize, count: usize) -> Result<Vec<[u8; 32]>> {
        let d = self.tree_d.as_ref().context("tree_d is not open")?;
        Ok(d.read(row, start, count)?
            .chunks_exact(32)
            .map(|n| n.try_into().expect("32 bytes"))
            .collect())
    }

    /// tree_c path of column `node` (the leaf is the column hash).
    pub fn tree_c_path(&self, node: u64) -> Result<MerklePath> {
        self.tree_c
            .as_ref()
            .context("tree_c is not open")?
            .path(node, None)
    }

    /// tree_r_last path of replica node `node`, rebuilding the discarded rows from the replica.
    pub fn tree_r_path(&self, node: u64) -> Result<MerklePath> {
        let t = &self.tree_r;
        let base = &t.bases[node as usize / t.per_tree()];
        let span = base.arity.pow(base.first_row as u32);
        let lower = if base.first_row > 0 {
            let start = node as usize / span * span;
            let mut leaves = vec![0u8; 32 * span];
            self.replica
                .read_exact_at(&mut leaves, 32 * start as u64)
                .context("cannot read the sealed file")?;
            let mut rows = vec![0u8; 32 * tree_len(span, base.arity)];
            build_rows(&leaves, base.arity, &mut rows);
            Some(rows)
        } else {
            None
        };
        t.path(node, lower.as_deref())
    }

    /// The labels of `node` in every layer, layer 1 first.
    pub fn column(&self, node: u64) -> Result<Vec<[u8; 32]>> {
        ensure!(!self.layers.is_empty(), "the layer files are not open");
        self.layers
            .iter()
            .map(|f| {
                let mut b = [0u8; 32];
                f.read_exact_at(&mut b, 32 * node)
                    .context("cannot read a layer file")?;
                Ok(b)
            })
            .collect()
    }
}
