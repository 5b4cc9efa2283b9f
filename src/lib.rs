//! sealkit: Filecoin sector sealing as Unix-style tools, bit-exact with rust-fil-proofs.
//!
//! A sector travels through the phases as one JSON document ([`sector::document`]):
//!
//! ```text
//! piece bytes ─▶ seal-ap ─▶ unsealed file, pieces, comm_d          (addpiece, piece, merkle)
//!                  ─▶ seal-pc1 ─▶ SDR layers, tree_d, replica_id   (pc1, sdr)
//!                  ─▶ seal-pc2 ─▶ tree_c, tree_r_last, comm_r      (pc2, merkle, hash)
//!                  ─▶ seal-c1 ─▶ vanilla proofs, Commit1 output    (commit)
//!                  ─▶ seal-c2 / seal-verify ─▶ SNARK               (snark)
//! ```
//!
//! The binaries in `src/bin/` only parse arguments and call into these modules.

pub mod addpiece;
pub mod affinity;
pub mod buffer;
pub mod checksum;
pub mod cli;
pub mod commit;
pub mod direct_io;
pub mod durable;
pub mod filecoin;
pub mod fsutil;
pub mod gpu;
pub mod hash;
pub mod hex;
pub mod journal;
pub mod merkle;
pub mod pc1;
pub mod pc2;
pub mod piece;
pub mod progress;
pub mod sched;
pub mod sdr;
pub mod sector;
pub mod snark;
pub mod unseal;
pub mod update;
