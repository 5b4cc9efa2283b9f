//! Pieces: fr32 padding, piece sizes and alignment, CommP, CommD and commitment CIDs.

pub mod alignment;
pub mod cid;
pub mod comm_d;
pub mod commp;
pub mod fr32;
pub mod size;
