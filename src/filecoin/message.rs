//! A chain message (`[Version, To, From, Nonce, Value, GasLimit, GasFeeCap, GasPremium,
//! Method, Params]`) and its CID: CIDv1, DAG-CBOR codec (0x71), BLAKE2b-256 multihash
//! (0xb220). The CID is what a node answers a push with and what a lookup searches for.

use super::address::Address;
use super::cbor::Cbor;
use super::multiformats::{base32_encode, put_uvarint};

/// An unsigned message (amounts in attoFIL).
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub version: u64,
    pub to: Address,
    pub from: Address,
    pub nonce: u64,
    pub value: u128,
    pub gas_limit: i64,
    pub gas_fee_cap: u128,
    pub gas_premium: u128,
    pub method: u64,
    /// The method's parameters, already CBOR.
    pub params: Vec<u8>,
}

const DAG_CBOR: u64 = 0x71;
const BLAKE2B_256: u64 = 0xb220;

impl Message {
    pub fn to_cbor(&self) -> Vec<u8> {
        Cbor::Array(vec![
            Cbor::Uint(self.version),
            Cbor::Bytes(self.to.to_bytes()),
            Cbor::Bytes(self.from.to_bytes()),
            Cbor::Uint(self.nonce),
            Cbor::big(self.value),
            Cbor::int(self.gas_limit),
            Cbor::big(self.gas_fee_cap),
            Cbor::big(self.gas_premium),
            Cbor::Uint(self.method),
            Cbor::Bytes(self.params.clone()),
        ])
        .encode()
    }

    /// The CID in binary (`0x01 ‖ 0x71 ‖ multihash`).
    pub fn cid_bytes(&self) -> Vec<u8> {
        let digest = blake2b_simd::Params::new()
            .hash_length(32)
            .hash(&self.to_cbor());
        let mut out = Vec::with_capacity(38);
        put_uvarint(&mut out, 1);
        put_uvarint(&mut out, DAG_CBOR);
        put_uvarint(&mut out, BLAKE2B_256);
        put_uvarint(&mut out, 32);
        out.extend_from_slice(digest.as_bytes());
        out
    }

    /// The CID as text (multibase base32, `bafy2bzace…`).
    pub fn cid(&self) -> String {
        format!("b{}", base32_encode(&self.cid_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lotus_documentation_example_message() {
        // The example message of Lotus's API documentation (docs/chain.md#message-cid): its
        // encoding and the CID the documentation prints for it.
        let m = Message {
            version: 42,
            to: Address::new_id(1234),
            from: Address::new_id(1234),
            nonce: 42,
            value: 0,
            gas_limit: 9,
            gas_fee_cap: 0,
            gas_premium: 0,
            method: 1,
            params: b"byte array".to_vec(),
        };
        assert_eq!(
            crate::hex::encode(&m.to_cbor()),
            "8a182a4300d2094300d209182a40094040014a62797465206172726179"
        );
        assert_eq!(
            m.cid(),
            "bafy2bzacebbpdegvr3i4cosewthysg5xkxpqfn2wfcz6mv2hmoktwbdxkax4s"
        );
    }
}
