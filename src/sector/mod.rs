//! What a sector is: its registered seal proof and derived parameters, the prover id, and the
//! JSON sector document that carries one sector through the pipeline.

pub mod document;
pub mod lock;
pub mod proof;
pub mod prover_id;
pub mod replica_id;
