//! seal-aggregate: SnarkPack aggregation of proven sectors. See `man/seal-aggregate.1`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use serde_json::{json, Value};

use sealkit::cli;
use sealkit::filecoin::miner::SNARKPACK_V2;
use sealkit::snark::aggregate::{aggregate, verify};

#[derive(Parser)]
#[command(
    name = "seal-aggregate",
    version,
    about = "Aggregate proven sectors' seal proofs with SnarkPack (one proof per message)",
    after_help = "\
Reads the sector documents of one commit message (from seal-c2; files, or stdin when none is
given): one miner, one seal proof type, 4 to 819 interactive sectors (ProveCommitSectors3) or
1 to 65 NI-PoRep sectors (ProveCommitSectorsNI). Aggregates their Groth16 partition proofs
with the reference's SnarkPack v2 prover, verifies the aggregate, and prints one JSON line:
{\"seal_proof\": NAME, \"miner\": ID (null without one), \"prover_id\": HEX, \"sectors\": [N, ...],
\"aggregate_proof_type\": 1, \"aggregate_proof\": HEX}. The sectors are in ascending order, the order in which the message
must list them; the input order does not matter.

With --check FILE, verifies that aggregate (an earlier output) against the documents instead,
and prints {\"sectors\": [...], \"valid\": true|false}.

The SnarkPack SRS is read from FIL_PROOFS_PARAMETER_CACHE (lotus fetch-params fetches it;
seal-c2 --generate-test-params writes a test one).

Exit status: 0 on success (with --check: the aggregate is valid), 1 when --check finds it
invalid or on an error (a missing field, mixed proof types, a count the actor refuses).

Examples:
  cat proven-*.json | seal-aggregate > aggregate.json
  seal-aggregate --check aggregate.json proven-*.json"
)]
struct Args {
    /// Sector documents ('-' or none: stdin).
    docs: Vec<PathBuf>,

    /// Verify this aggregate (a line seal-aggregate printed) instead of making one.
    #[arg(long, value_name = "FILE")]
    check: Option<PathBuf>,
}

fn main() -> ExitCode {
    cli::run_main("seal-aggregate", || run(Args::parse()))
}

fn run(args: Args) -> Result<()> {
    let docs = cli::read_document_args(&args.docs)?;
    if let Some(path) = &args.check {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let v: Value = serde_json::from_str(text.trim())
            .with_context(|| format!("{}: not a seal-aggregate output", path.display()))?;
        let hex = v
            .get("aggregate_proof")
            .and_then(Value::as_str)
            .with_context(|| format!("{}: no \"aggregate_proof\"", path.display()))?;
        let bytes = sealkit::hex::decode(hex)
            .with_context(|| format!("{}: field \"aggregate_proof\"", path.display()))?;
        let valid = verify(&docs, &bytes)?;
        let mut sectors: Vec<u64> = docs.iter().map(|d| d.sector()).collect::<Result<_>>()?;
        sectors.sort_unstable();
        cli::print_json_line(&json!({"sectors": sectors, "valid": valid}).to_string())?;
        anyhow::ensure!(valid, "the aggregate in {} does not verify", path.display());
        return Ok(());
    }
    let agg = aggregate(&docs)?;
    let out = json!({
        "seal_proof": agg.proof.name(),
        "miner": agg.miner,
        "prover_id": sealkit::hex::encode(&agg.prover_id),
        "sectors": agg.sectors,
        "aggregate_proof_type": SNARKPACK_V2,
        "aggregate_proof": sealkit::hex::encode(&agg.bytes),
    });
    cli::print_json_line(&out.to_string())
}
