//! The SDR graph of one porep_id and sector size: 6 base parents then 8 expander parents per
//! node, the order in which the parent cache stores them and labeling consumes them.

use super::drg::base_parents;
use super::feistel::{expander_parents, Feistel};
use super::seeds::{drg_seed, feistel_keys};
use super::{BASE_DEGREE, DEGREE, EXP_DEGREE};
use crate::sector::proof::ApiVersion;

#[derive(Debug, Clone)]
pub struct SdrGraph {
    pub nodes: u64,
    pub porep_id: [u8; 32],
    pub api: ApiVersion,
    seed: [u8; 28],
    feistel_keys: [u64; 4],
    feistel: Feistel,
}

impl SdrGraph {
    pub fn new(nodes: u64, porep_id: [u8; 32], api: ApiVersion) -> SdrGraph {
        let keys = feistel_keys(&porep_id);
        SdrGraph {
            nodes,
            porep_id,
            api,
            seed: drg_seed(&porep_id),
            feistel_keys: keys,
            feistel: Feistel::new(keys, nodes * EXP_DEGREE as u64),
        }
    }

    pub fn feistel_keys(&self) -> [u64; 4] {
        self.feistel_keys
    }

    /// `[b0..b5, e0..e7]` of `node`.
    pub fn parents(&self, node: u32) -> [u32; DEGREE] {
        let b = base_parents(&self.seed, self.api, node);
        let e = expander_parents(&self.feistel, self.api, node);
        let mut out = [0u32; DEGREE];
        out[..BASE_DEGREE].copy_from_slice(&b);
        out[BASE_DEGREE..].copy_from_slice(&e);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn porep_id(id: u8) -> [u8; 32] {
        let mut p = [0u8; 32];
        p[0] = id;
        p
    }

    /// Spec Appendix A.3.
    #[test]
    fn known_parents() {
        let g = SdrGraph::new(64, porep_id(5), ApiVersion::V1_1_0);
        assert_eq!(g.parents(0), [0, 0, 0, 0, 0, 0, 4, 9, 60, 1, 14, 26, 26, 4]);
        assert_eq!(
            g.parents(2),
            [1, 1, 1, 0, 1, 0, 30, 28, 55, 63, 63, 36, 37, 36]
        );
        assert_eq!(
            g.parents(63),
            [62, 15, 42, 62, 61, 62, 0, 15, 30, 30, 28, 42, 49, 38]
        );
        let g0 = SdrGraph::new(64, porep_id(0), ApiVersion::V1_0_0);
        assert_eq!(
            g0.parents(2),
            [0, 1, 1, 1, 1, 1, 32, 49, 26, 57, 3, 4, 47, 63]
        );
        let g32 = SdrGraph::new(1 << 30, porep_id(8), ApiVersion::V1_1_0);
        assert_eq!(
            g32.parents(123_456_789),
            [
                123456788, 123452130, 57600536, 121375910, 81802541, 123454429, 756970061,
                978149514, 435142043, 446129461, 759011230, 69080554, 55615519, 90896364
            ]
        );
        let g64 = SdrGraph::new(1 << 31, porep_id(9), ApiVersion::V1_1_0);
        assert_eq!(
            g64.parents((1 << 31) - 1),
            [
                2147483646, 2147483645, 2147473607, 2147483646, 2147483609, 1322413322, 319537050,
                259923117, 180788485, 1838730986, 786079656, 319786570, 1561782586, 1183784015
            ]
        );
    }
}
