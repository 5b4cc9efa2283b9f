//! Filecoin addresses: `f01234` text ↔ bytes, and the CBOR form the miner actor hashes into
//! seal randomness.
//!
//! Text is a network prefix (`f` mainnet, `t` testnets), a protocol digit, then for ID
//! addresses the decimal actor ID, and for the others lowercase RFC 4648 base32 (no padding)
//! of `payload ‖ checksum`, the checksum being the 4-byte BLAKE2b of `protocol ‖ payload`.
//! Bytes are `protocol ‖ payload`, an ID's payload being its unsigned LEB128 varint.

use std::fmt;

use anyhow::{bail, ensure, Context, Result};

/// Mainnet (`f`) or any test network (`t`): only the text prefix differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    Mainnet,
    Testnet,
}

impl Network {
    fn prefix(self) -> char {
        match self {
            Network::Mainnet => 'f',
            Network::Testnet => 't',
        }
    }

    /// The network of a chain by its `StateNetworkName` (`mainnet`; every other name, such as
    /// `calibrationnet` or a devnet's `localnet-…`, uses `t` addresses).
    pub fn of_name(name: &str) -> Network {
        if name == "mainnet" {
            Network::Mainnet
        } else {
            Network::Testnet
        }
    }
}

/// The address kinds (the protocol byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Id = 0,
    Secp256k1 = 1,
    Actor = 2,
    Bls = 3,
    Delegated = 4,
}

impl Protocol {
    fn from_digit(d: u8) -> Option<Protocol> {
        Some(match d {
            0 => Protocol::Id,
            1 => Protocol::Secp256k1,
            2 => Protocol::Actor,
            3 => Protocol::Bls,
            4 => Protocol::Delegated,
            _ => return None,
        })
    }

    /// The payload length of the key-hash kinds (delegated addresses are variable).
    fn payload_len(self) -> Option<usize> {
        match self {
            Protocol::Secp256k1 | Protocol::Actor => Some(20),
            Protocol::Bls => Some(48),
            Protocol::Id | Protocol::Delegated => None,
        }
    }
}

/// A parsed address (the network prefix is not part of it: bytes carry none).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    protocol: Protocol,
    /// For ID addresses the varint of the ID; else the raw payload.
    payload: Vec<u8>,
}

const CHECKSUM_LEN: usize = 4;
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

impl Address {
    pub fn new_id(id: u64) -> Address {
        Address {
            protocol: Protocol::Id,
            payload: uvarint(id),
        }
    }

    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The actor ID of an ID address.
    pub fn id(&self) -> Option<u64> {
        (self.protocol == Protocol::Id).then(|| read_uvarint(&self.payload).map(|(v, _)| v))?
    }

    /// `protocol ‖ payload`, as the chain stores and hashes it.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = vec![self.protocol as u8];
        b.extend_from_slice(&self.payload);
        b
    }

    /// The CBOR encoding of the address (a byte string of [`Address::to_bytes`]): the
    /// entropy of seal randomness (`rt.message().receiver()` marshalled by the miner actor).
    pub fn to_cbor(&self) -> Vec<u8> {
        let b = self.to_bytes();
        let mut out = Vec::with_capacity(b.len() + 2);
        // CBOR major type 2 (byte string) with its length; addresses are at most 66 bytes.
        if b.len() < 24 {
            out.push(0x40 | b.len() as u8);
        } else {
            out.push(0x58);
            out.push(b.len() as u8);
        }
        out.extend_from_slice(&b);
        out
    }

    /// The address as text on `net`.
    pub fn to_text(&self, net: Network) -> String {
        let mut s = String::new();
        s.push(net.prefix());
        s.push(char::from(b'0' + self.protocol as u8));
        match self.protocol {
            Protocol::Id => s.push_str(&self.id().unwrap_or_default().to_string()),
            _ => {
                let mut data = self.payload.clone();
                data.extend_from_slice(&checksum(&self.to_bytes()));
                s.push_str(&base32(&data));
            }
        }
        s
    }

    /// Parses address text of either network (`f` or `t`, as Lotus accepts both).
    pub fn parse(text: &str) -> Result<Address> {
        let bad = |why: &str| anyhow::anyhow!("address {text:?}: {why}");
        let b = text.as_bytes();
        ensure!(b.len() >= 3, bad("too short"));
        ensure!(matches!(b[0], b'f' | b't'), bad("must start with f or t"));
        let protocol = b[1]
            .checked_sub(b'0')
            .and_then(Protocol::from_digit)
            .ok_or_else(|| bad("unknown protocol (the second character must be 0-4)"))?;
        let rest = &text[2..];
        match protocol {
            Protocol::Id => {
                ensure!(
                    rest.bytes().all(|c| c.is_ascii_digit()) && rest.len() <= 20,
                    bad("an ID address is f0 and a decimal number")
                );
                let id: u64 = rest.parse().map_err(|_| bad("ID out of range"))?;
                Ok(Address::new_id(id))
            }
            Protocol::Delegated => bail!(bad("delegated (f4) addresses are not supported here")),
            _ => {
                let data = unbase32(rest).ok_or_else(|| bad("not lowercase base32"))?;
                ensure!(data.len() > CHECKSUM_LEN, bad("too short"));
                let (payload, sum) = data.split_at(data.len() - CHECKSUM_LEN);
                if let Some(n) = protocol.payload_len() {
                    ensure!(
                        payload.len() == n,
                        bad(&format!("payload must be {n} bytes"))
                    );
                }
                let a = Address {
                    protocol,
                    payload: payload.to_vec(),
                };
                ensure!(
                    checksum(&a.to_bytes()) == sum,
                    bad("checksum does not match")
                );
                Ok(a)
            }
        }
    }

    /// Parses an ID address (`f01000`, or a bare `1000`): the miner is always named by ID.
    pub fn parse_id(text: &str) -> Result<u64> {
        if let Ok(id) = text.parse::<u64>() {
            return Ok(id);
        }
        Address::parse(text)?
            .id()
            .with_context(|| format!("address {text:?} is not an ID address (f0…)"))
    }
}

impl fmt::Display for Address {
    /// Mainnet text; use [`Address::to_text`] for a test network.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text(Network::Mainnet))
    }
}

fn checksum(bytes: &[u8]) -> [u8; CHECKSUM_LEN] {
    let h = blake2b_simd::Params::new()
        .hash_length(CHECKSUM_LEN)
        .hash(bytes);
    h.as_bytes().try_into().expect("4-byte hash")
}

fn uvarint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return out;
        }
        out.push(b | 0x80);
    }
}

fn read_uvarint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &x) in b.iter().enumerate().take(10) {
        v |= u64::from(x & 0x7f).checked_shl(7 * i as u32)?;
        if x & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

fn base32(data: &[u8]) -> String {
    let mut out = String::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in data {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((acc >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(BASE32[((acc << (5 - bits)) & 31) as usize]));
    }
    out
}

fn unbase32(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = BASE32.iter().position(|&x| x == c)? as u32;
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
        acc &= (1 << bits) - 1;
    }
    // Leftover bits must be zero padding of the last character.
    (acc == 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_addresses_have_the_documented_bytes_and_cbor() {
        // docs/chain.md#addresses: f05 = 00 05, f01000 = 00 e8 07; CBOR entropy 43 00 e8 07.
        assert_eq!(Address::new_id(5).to_bytes(), [0x00, 0x05]);
        assert_eq!(Address::new_id(1000).to_bytes(), [0x00, 0xe8, 0x07]);
        assert_eq!(Address::new_id(1000).to_cbor(), [0x43, 0x00, 0xe8, 0x07]);
        // The randomness KAT's entropy: base64 "RACZyzQ=" is the CBOR of f0861593.
        assert_eq!(
            Address::new_id(861593).to_cbor(),
            [0x44, 0x00, 0x99, 0xcb, 0x34]
        );
        let a = Address::parse("f01234").unwrap();
        assert_eq!(a.id(), Some(1234));
        assert_eq!(a.to_text(Network::Testnet), "t01234");
        assert_eq!(Address::parse_id("t01000").unwrap(), 1000);
        assert_eq!(Address::parse_id("1000").unwrap(), 1000);
        assert_eq!(
            Address::new_id(u64::MAX).id(),
            Some(u64::MAX),
            "the largest ID round-trips"
        );
    }

    #[test]
    fn key_addresses_match_published_vectors_and_checksums_are_checked() {
        // Text ↔ bytes vectors published with the Filecoin address format (go-address and
        // other implementations' test tables).
        let vectors = [
            ("f1xcbgdhkgkwht3hrrnui3jdopeejsoatkzmoltqy", "01b882619d46558f3d9e316d11b48dcf211327026a"),
            ("f24vg6ut43yw2h2jqydgbg2xq7x6f4kub3bg6as6i", "02e54dea4f9bc5b47d261819826d5e1fbf8bc5503b"),
            (
                "f3vvmn62lofvhjd2ugzca6sof2j2ubwok6cj4xxbfzz4yuxfkgobpihhd2thlanmsh3w2ptld2gqkn2jvlss4a",
                "03ad58df696e2d4e91ea86c881e938ba4ea81b395e12797b84b9cf314b9546705e839c7a99d606b247ddb4f9ac7a3414dd",
            ),
        ];
        for (text, bytes) in vectors {
            let a = Address::parse(text).unwrap();
            assert_eq!(crate::hex::encode(&a.to_bytes()), bytes, "{text}");
            assert_eq!(a.to_text(Network::Mainnet), text);
        }
        for bad in [
            "",
            "f0",
            "x01",
            "f9abc",
            "f0-1",
            "f018446744073709551616",
            "f1ABC",
            // Checksums that do not match.
            "f24vg6ut43yw2h2jqydgbg2xq7x6f4kub3bg6as66",
            "f3vvmn62lofvhjd2ugzca6sof2j2ubwok6cj4xxbfzz4yuxfkgobpihhd2thlanmsh3w2ptld2gqkn2jvlss44",
        ] {
            assert!(Address::parse(bad).is_err(), "{bad:?}");
        }
    }
}
