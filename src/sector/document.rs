//! The sector document: one JSON object that travels through the pipeline.
//!
//! Each phase reads it, checks the fields it needs, adds its outputs and prints it again.
//! Fields a phase does not know are kept as they are (order included), so operators can carry
//! their own metadata. Field names are a contract; `man/sealkit-sector.5` documents them.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{Map, Value};

use super::proof::SealProof;
use super::prover_id::{parse_miner, prover_id_from_actor};
use crate::hex;

/// One piece as recorded in `pieces`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PieceRecord {
    pub comm_p: [u8; 32],
    /// Payload bytes before zero padding (0 for fillers).
    pub payload_size: u64,
    /// Padded size: a power of two.
    pub padded_size: u64,
    /// Padded byte offset of the piece in the sector.
    pub offset: u64,
    /// A zero piece added for alignment or to fill the sector.
    pub filler: bool,
}

impl PieceRecord {
    fn to_json(&self) -> Value {
        use crate::piece::cid::{commitment_to_cid, CommitmentKind};
        let mut m = Map::new();
        m.insert("comm_p".into(), hex::encode(&self.comm_p).into());
        m.insert(
            "piece_cid".into(),
            commitment_to_cid(CommitmentKind::Unsealed, &self.comm_p).into(),
        );
        m.insert("payload_size".into(), self.payload_size.into());
        m.insert(
            "unpadded_size".into(),
            crate::piece::size::unpadded_piece_size(self.padded_size).into(),
        );
        m.insert("padded_size".into(), self.padded_size.into());
        m.insert("offset".into(), self.offset.into());
        if self.filler {
            m.insert("filler".into(), true.into());
        }
        Value::Object(m)
    }
}

/// Fields of a sector that its `update` document inherits: what fixes the proof and the
/// sector's identity.
pub const UPDATE_INHERITS: [&str; 5] = [
    "seal_proof",
    "test_sector_size",
    "miner",
    "prover_id",
    "sector",
];

/// Paths of the sector's files.
#[derive(Debug, Clone)]
pub struct SectorPaths {
    pub unsealed: Option<PathBuf>,
    pub sealed: Option<PathBuf>,
    pub cache: Option<PathBuf>,
}

/// A sector document. Accessors validate what they return and name the field on error.
#[derive(Debug, Clone, PartialEq)]
pub struct SectorDoc {
    fields: Map<String, Value>,
}

impl SectorDoc {
    /// Parses one document; `source` names where it came from, for errors.
    pub fn parse(text: &str, source: &str) -> Result<SectorDoc> {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| anyhow!("{source}: not a JSON sector document: {e}"))?;
        SectorDoc::from_value(v, source)
    }

    pub fn from_value(v: Value, source: &str) -> Result<SectorDoc> {
        match v {
            Value::Object(fields) => Ok(SectorDoc { fields }),
            _ => bail!("{source}: a sector document must be a JSON object"),
        }
    }

    /// The document as one line of JSON.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(&self.fields).expect("a JSON map always serialises")
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.fields.get(key).filter(|v| !v.is_null())
    }

    fn required(&self, key: &str) -> Result<&Value> {
        self.get(key)
            .ok_or_else(|| anyhow!("sector document has no {key:?} field"))
    }

    pub fn set(&mut self, key: &str, v: impl Into<Value>) {
        self.fields.insert(key.to_string(), v.into());
    }

    pub fn set_hex(&mut self, key: &str, bytes: &[u8; 32]) {
        self.set(key, hex::encode(bytes));
    }

    /// `seal_proof`: a registered proof name or numeric id; `test_sector_size` (tests only)
    /// moves it to one of the reference's test sizes.
    pub fn seal_proof(&self) -> Result<SealProof> {
        let p = self.registered_proof()?;
        match self.get("test_sector_size") {
            None => Ok(p),
            Some(_) => p
                .with_test_size(self.u64("test_sector_size")?)
                .context("field \"test_sector_size\""),
        }
    }

    fn registered_proof(&self) -> Result<SealProof> {
        match self.required("seal_proof")? {
            Value::String(s) => match s.parse::<u64>() {
                Ok(id) => SealProof::from_id(id),
                Err(_) => SealProof::from_name(s),
            },
            Value::Number(n) => SealProof::from_id(
                n.as_u64()
                    .ok_or_else(|| anyhow!("field \"seal_proof\": {n} is not a proof id"))?,
            ),
            _ => bail!("field \"seal_proof\" must be a proof name or id"),
        }
        .context("field \"seal_proof\"")
    }

    /// The prover id: `prover_id` (64 hex) if present, else derived from `miner`.
    pub fn prover_id(&self) -> Result<[u8; 32]> {
        if self.get("prover_id").is_some() {
            return self.hex32("prover_id");
        }
        if self.get("miner").is_none() {
            bail!("sector document has neither \"miner\" nor \"prover_id\"");
        }
        Ok(prover_id_from_actor(self.miner()?))
    }

    /// `miner`: the miner's actor id (a number or an f0 address).
    pub fn miner(&self) -> Result<u64> {
        Ok(match self.required("miner")? {
            Value::Number(n) => n
                .as_u64()
                .ok_or_else(|| anyhow!("field \"miner\": {n} is not an actor id"))?,
            Value::String(s) => parse_miner(s).context("field \"miner\"")?,
            _ => bail!("field \"miner\" must be an actor id or f0 address"),
        })
    }

    /// `sector`: the sector number.
    pub fn sector(&self) -> Result<u64> {
        self.u64("sector")
    }

    pub fn ticket(&self) -> Result<[u8; 32]> {
        self.hex32("ticket")
    }

    /// A required unsigned integer field.
    pub fn u64(&self, key: &str) -> Result<u64> {
        match self.required(key)? {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
        .ok_or_else(|| anyhow!("field {key:?} must be an unsigned integer"))
    }

    /// A required 32-byte field in hex.
    pub fn hex32(&self, key: &str) -> Result<[u8; 32]> {
        match self.required(key)? {
            Value::String(s) => hex::decode32(s).with_context(|| format!("field {key:?}")),
            _ => bail!("field {key:?} must be a string of 64 hex digits"),
        }
    }

    /// An optional 32-byte field in hex.
    /// A 32-byte hex field an earlier phase adds; `hint` says which phase (for the error).
    pub fn hex32_after(&self, key: &str, hint: &str) -> Result<[u8; 32]> {
        self.hex32_opt(key)?
            .with_context(|| format!("sector document has no \"{key}\": {hint}"))
    }

    pub fn hex32_opt(&self, key: &str) -> Result<Option<[u8; 32]>> {
        match self.get(key) {
            None => Ok(None),
            Some(_) => self.hex32(key).map(Some),
        }
    }

    pub fn paths(&self) -> Result<SectorPaths> {
        let paths = match self.required("paths")? {
            Value::Object(m) => m,
            _ => bail!("field \"paths\" must be an object with unsealed, sealed and cache"),
        };
        let get = |k: &str| -> Result<Option<PathBuf>> {
            match paths.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if !s.is_empty() => Ok(Some(PathBuf::from(s))),
                Some(_) => bail!("field \"paths.{k}\" must be a non-empty string"),
            }
        };
        Ok(SectorPaths {
            unsealed: get("unsealed")?,
            sealed: get("sealed")?,
            cache: get("cache")?,
        })
    }

    /// `paths.unsealed`, required.
    pub fn unsealed_path(&self) -> Result<PathBuf> {
        self.path("unsealed")
    }

    /// `paths.<key>` (`unsealed`, `sealed`, `cache`), required.
    pub fn path(&self, key: &str) -> Result<PathBuf> {
        let p = self.paths()?;
        match key {
            "unsealed" => p.unsealed,
            "sealed" => p.sealed,
            "cache" => p.cache,
            _ => None,
        }
        .ok_or_else(|| anyhow!("sector document has no \"paths.{key}\""))
    }

    /// The sector update (snap deal) as a document of its own: the `update` object, whose
    /// `paths` are the new data (`unsealed`), the update replica (`sealed`) and the update
    /// cache (`cache`), and whose `pieces`, `comm_d`, `comm_r`, … describe the new data and
    /// replica. It inherits the sector's proof and identity ([`UPDATE_INHERITS`]), so every
    /// accessor (and AddPiece) works on it unchanged.
    pub fn update_doc(&self) -> Result<SectorDoc> {
        let mut fields = match self.get("update") {
            Some(Value::Object(m)) => m.clone(),
            Some(_) => bail!("field \"update\" must be an object"),
            None => {
                bail!("sector document has no \"update\" object (the snap deal's paths and pieces)")
            }
        };
        for k in UPDATE_INHERITS {
            if let Some(v) = self.fields.get(k) {
                fields.insert(k.to_string(), v.clone());
            }
        }
        Ok(SectorDoc { fields })
    }

    /// Stores `update` (from [`SectorDoc::update_doc`]) back as the `update` object, without
    /// the inherited fields.
    pub fn set_update_doc(&mut self, update: &SectorDoc) {
        let mut fields = update.fields.clone();
        for k in UPDATE_INHERITS {
            fields.remove(k);
        }
        self.fields.insert("update".into(), Value::Object(fields));
    }

    /// The recorded pieces, in order.
    pub fn pieces(&self) -> Result<Vec<PieceRecord>> {
        let list = match self.get("pieces") {
            None => return Ok(Vec::new()),
            Some(Value::Array(a)) => a,
            Some(_) => bail!("field \"pieces\" must be an array"),
        };
        list.iter()
            .enumerate()
            .map(|(i, v)| {
                let doc = SectorDoc::from_value(v.clone(), "piece")
                    .with_context(|| format!("field \"pieces[{i}]\""))?;
                let rec = (|| -> Result<PieceRecord> {
                    let rec = PieceRecord {
                        comm_p: doc.hex32("comm_p")?,
                        payload_size: doc
                            .get("payload_size")
                            .map_or(Ok(0), |_| doc.u64("payload_size"))?,
                        padded_size: doc.u64("padded_size")?,
                        offset: doc.u64("offset")?,
                        filler: matches!(doc.get("filler"), Some(Value::Bool(true))),
                    };
                    crate::piece::size::check_padded_piece_size(rec.padded_size)?;
                    Ok(rec)
                })()
                .with_context(|| format!("field \"pieces[{i}]\""))?;
                Ok(rec)
            })
            .collect()
    }

    /// Appends pieces to `pieces`, leaving existing entries (and their extra fields) untouched.
    pub fn append_pieces(&mut self, recs: &[PieceRecord]) {
        let entry = self
            .fields
            .entry("pieces")
            .or_insert_with(|| Value::Array(Vec::new()));
        if !entry.is_array() {
            *entry = Value::Array(Vec::new());
        }
        let arr = entry.as_array_mut().expect("just made an array");
        arr.extend(recs.iter().map(PieceRecord::to_json));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> SectorDoc {
        SectorDoc::parse(
            r#"{"seal_proof":"StackedDrg2KiBV1_1","miner":1000,"sector":7,
               "ticket":"0202020202020202020202020202020202020202020202020202020202020202",
               "paths":{"unsealed":"/u","sealed":"/s","cache":"/c"},"mine":{"x":1}}"#,
            "test",
        )
        .unwrap()
    }

    #[test]
    fn accessors() {
        let d = minimal();
        assert_eq!(d.seal_proof().unwrap().id(), 5);
        assert_eq!(d.prover_id().unwrap()[..2], [0xe8, 0x07]);
        assert_eq!(d.sector().unwrap(), 7);
        assert_eq!(d.ticket().unwrap(), [2u8; 32]);
        assert_eq!(d.unsealed_path().unwrap(), PathBuf::from("/u"));
        assert!(d.pieces().unwrap().is_empty());
    }

    #[test]
    fn keeps_unknown_fields_and_order() {
        let mut d = minimal();
        d.set("comm_d", "00");
        let line = d.to_json_line();
        assert!(line.starts_with(r#"{"seal_proof":"StackedDrg2KiBV1_1","miner":1000"#));
        assert!(line.contains(r#""mine":{"x":1}"#));
        assert!(line.ends_with(r#""comm_d":"00"}"#));
    }

    #[test]
    fn errors_name_the_field() {
        let d =
            SectorDoc::parse(r#"{"seal_proof":"Nope","ticket":"12","sector":-1}"#, "t").unwrap();
        assert!(format!("{:#}", d.seal_proof().unwrap_err()).contains("seal_proof"));
        assert!(format!("{:#}", d.ticket().unwrap_err()).contains("ticket"));
        assert!(format!("{:#}", d.sector().unwrap_err()).contains("sector"));
        assert!(format!("{:#}", d.prover_id().unwrap_err()).contains("miner"));
        assert!(SectorDoc::parse("[1]", "t").is_err());
        assert!(SectorDoc::parse("{", "t").is_err());
    }
}
