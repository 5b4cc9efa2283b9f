//! A JSON Schema checker for the keywords of Forest's OpenRPC document
//! (`tests/data/forest-openrpc-v1-subset.json`): `$ref` into `#/components/schemas`,
//! `anyOf`, `type` (one name or a list), `enum`, `properties` with `required`, `items`,
//! `minItems`, `minimum`, `maximum`, the `uuid` format, and the boolean schemas (`true`
//! accepts anything). Other keywords (`description`, `default`, the integer formats, whose
//! range `minimum` already states) say nothing about validity here. Extra object keys are
//! allowed, as the document does not forbid them.

use serde_json::Value;

/// Where `$ref`s point: the document's `components.schemas`.
pub struct Schemas<'a>(pub &'a Value);

impl Schemas<'_> {
    /// Why `v` does not satisfy `schema` (the first reason found, with its path), if it does not.
    pub fn check(&self, v: &Value, schema: &Value, at: &str) -> Result<(), String> {
        let s = match schema {
            Value::Bool(true) => return Ok(()),
            Value::Bool(false) => return Err(format!("{at}: nothing is allowed here")),
            Value::Object(s) => s,
            other => return Err(format!("{at}: not a schema: {other}")),
        };
        if let Some(r) = s.get("$ref") {
            let name = r
                .as_str()
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
                .ok_or_else(|| format!("{at}: unsupported $ref {r}"))?;
            let target = self
                .0
                .get(name)
                .ok_or_else(|| format!("{at}: $ref to a missing schema {name}"))?;
            self.check(v, target, &format!("{at}<{name}>"))?;
        }
        if let Some(any) = s.get("anyOf") {
            let reasons: Vec<String> = any
                .as_array()
                .ok_or_else(|| format!("{at}: anyOf is not a list"))?
                .iter()
                .filter_map(|alt| self.check(v, alt, at).err())
                .collect();
            if reasons.len() == any.as_array().map_or(0, Vec::len) {
                return Err(format!("{at}: no alternative fits {v}: {reasons:?}"));
            }
        }
        if let Some(t) = s.get("type") {
            let names: Vec<&str> = match t {
                Value::String(n) => vec![n.as_str()],
                Value::Array(ns) => ns.iter().filter_map(Value::as_str).collect(),
                other => return Err(format!("{at}: unsupported type {other}")),
            };
            if !names.iter().any(|n| is_type(v, n)) {
                return Err(format!("{at}: {v} is not of type {t}"));
            }
        }
        if let Some(e) = s.get("enum") {
            if !e.as_array().is_some_and(|e| e.contains(v)) {
                return Err(format!("{at}: {v} is not one of {e}"));
            }
        }
        if let Some(n) = v.as_f64() {
            if s.get("minimum")
                .and_then(Value::as_f64)
                .is_some_and(|m| n < m)
            {
                return Err(format!("{at}: {v} is below {}", s["minimum"]));
            }
            if s.get("maximum")
                .and_then(Value::as_f64)
                .is_some_and(|m| n > m)
            {
                return Err(format!("{at}: {v} is above {}", s["maximum"]));
            }
        }
        if s.get("format").and_then(Value::as_str) == Some("uuid") {
            if let Some(text) = v.as_str() {
                if !is_uuid(text) {
                    return Err(format!("{at}: {text:?} is not a UUID"));
                }
            }
        }
        if let Value::Object(o) = v {
            for k in s
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let k = k.as_str().unwrap_or_default();
                if !o.contains_key(k) {
                    return Err(format!("{at}: required key {k} is missing from {v}"));
                }
            }
            if let Some(Value::Object(props)) = s.get("properties") {
                for (k, x) in o {
                    if let Some(p) = props.get(k) {
                        self.check(x, p, &format!("{at}.{k}"))?;
                    }
                }
            }
        }
        if let Value::Array(items) = v {
            if let Some(m) = s.get("minItems").and_then(Value::as_u64) {
                if (items.len() as u64) < m {
                    return Err(format!("{at}: fewer than {m} items in {v}"));
                }
            }
            if let Some(item) = s.get("items") {
                for (i, x) in items.iter().enumerate() {
                    self.check(x, item, &format!("{at}[{i}]"))?;
                }
            }
        }
        Ok(())
    }
}

fn is_type(v: &Value, name: &str) -> bool {
    match name {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "string" => v.is_string(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        _ => false,
    }
}

/// `8-4-4-4-12` hexadecimal digits, as Forest's `uuid` crate parses a `MsgUuid`.
fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
}
