//! `seal-sched`: the sealing scheduler and sector state machine.
//!
//! ```text
//!  sectors pledge/add ─▶ db (sectors) ─▶ engine pass ──────────────────────────────┐
//!                                        │ reap: supervisors' status.json           │
//!                                        │ advance: retries, seeds (chain)          │
//!                                        │ batch: precommit/commit messages (chain) │
//!                                        │ enqueue: one task per sector in a phase  │
//!                                        │ schedule: queue order, admission,        │
//!                                        │   windows, reservations, locality (assign)│
//!                                        └▶ start: task-exec supervisor ─▶ seal-*   ┘
//! ```
//!
//! Pure scheduling logic (task types, the Lotus resource table, admission, queue order, the
//! assignment pass) has no I/O and is unit-tested on its own; the engine feeds it the state.

pub mod admission;
pub mod aggregator;
pub mod alerts;
pub mod assign;
pub mod batch;
pub mod chain;
pub mod child;
pub mod clock;
pub mod config;
pub mod config_edit;
pub mod daemon;
pub mod db;
pub mod demo;
pub mod engine;
pub mod funds;
pub mod gas;
pub mod gpu_assign;
pub mod handoff;
pub mod hostcmd;
pub mod hosts;
pub mod location;
pub mod log;
pub mod lotus;
pub mod numbering;
pub mod observe;
pub mod ops;
pub mod proving;
pub mod queue;
pub mod remote;
pub mod repo;
pub mod report;
pub mod resources;
pub mod shell;
pub mod state;
pub mod storage;
pub mod supervisor;
pub mod sysinfo;
pub mod task_state;
pub mod task_type;
pub mod transfer;
