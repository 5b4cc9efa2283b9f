//! The seal randomness draw, as the miner actor computes it from the chain's digest:
//! `BLAKE2b-256( i64_be(tag) ‖ digest ‖ i64_be(epoch) ‖ entropy )`, the entropy being the
//! CBOR of the miner's ID address. The node's `StateGetRandomnessFrom{Tickets,Beacon}`
//! return the same value; drawing it here from `…Digest…` checks the node's answer.

/// Domain separation tags (builtin-actors `DomainSeparationTag`): the two seal uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    /// The PreCommit1 ticket, drawn from the tickets.
    SealRandomness = 5,
    /// The interactive seed of Commit1, drawn from the beacon.
    InteractiveSealChallengeSeed = 6,
}

pub fn draw(tag: Tag, digest: &[u8; 32], epoch: i64, entropy: &[u8]) -> [u8; 32] {
    let mut st = blake2b_simd::Params::new().hash_length(32).to_state();
    st.update(&(tag as i64).to_be_bytes());
    st.update(digest);
    st.update(&epoch.to_be_bytes());
    st.update(entropy);
    st.finalize().as_bytes().try_into().expect("32-byte hash")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filecoin::address::Address;

    fn b64(s: &str) -> Vec<u8> {
        crate::sched::lotus::json::base64_decode(s).unwrap()
    }

    #[test]
    fn the_builtin_actors_known_answer() {
        // builtin-actors runtime/src/runtime/randomness.rs test (docs/chain.md#randomness):
        // digest, tag 5, epoch 2797727, entropy = CBOR(f0861593).
        let digest: [u8; 32] = b64("GOobxkrhS1hiFA1EYUKZM3xsyVfy5Xy3bQ0gLPnecYs=")
            .try_into()
            .unwrap();
        let entropy = Address::new_id(861593).to_cbor();
        assert_eq!(entropy, b64("RACZyzQ="));
        assert_eq!(
            draw(Tag::SealRandomness, &digest, 2797727, &entropy).to_vec(),
            b64("3MCqcLHKZ+pil4MqTS9wjsd+yPvTuTrq8PkGjEo3tYQ=")
        );
    }
}
