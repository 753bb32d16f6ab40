//! Fuzzes decode → add / remove → encode → decode, the path of issue 10's
//! items 6 and 7: the input is a (checksum-fixed) index file followed by a
//! list of operations. Whatever the file (an index decoded from it, or a
//! fresh one when it does not decode), after every operation the index
//! agrees with a model of its live ids, sequential ids are never ones it
//! held, and every encoding decodes again to the same bytes.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use q2key::index::{Index, IndexThresholds};
use std::collections::BTreeSet;

const MAX_OPS: usize = 48;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let split = (usize::from(data[0]) << 8 | usize::from(data[1])).min(data.len() - 2);
    let (file, ops) = data[2..].split_at(split);
    let file = common::with_fixed_checksums(file).unwrap_or_else(|| file.to_vec());
    let mut index = match Index::from_bytes(&file) {
        Ok(index) => index,
        Err(_) => {
            let dim = 1 + usize::from(ops.first().copied().unwrap_or(0) % 40);
            Index::new(dim, IndexThresholds::Gaussian, None).unwrap()
        }
    };
    let dim = index.dim();
    if dim > 4096 {
        return; // a huge (empty) index is valid, but adding rows to it is an allocation test
    }
    let (_, _, ids) = index.arrays().expect("a decoded index has no removed rows");
    let mut alive: BTreeSet<u64> = ids.iter().copied().collect();
    let mut ever = alive.clone();
    // A bounded number of operations keeps executions fast (each may re-encode the index).
    for op in ops.chunks_exact(3).take(MAX_OPS) {
        let (a, b) = (u64::from(op[1]), u64::from(op[2]));
        let row = |salt: u8| -> Vec<f32> { (0..dim).map(|d| ((usize::from(salt) + d) % 7) as f32 - 3.0).collect() };
        match op[0] % 5 {
            0 => {
                let n = 1 + usize::from(op[1] % 4);
                let x: Vec<f32> = (0..n).flat_map(|i| row(op[2].wrapping_add(i as u8))).collect();
                match index.add(&x, None) {
                    Ok(got) => {
                        assert_eq!(got.len(), n);
                        for id in got {
                            assert!(ever.insert(id), "sequential id {id} was held before");
                            alive.insert(id);
                        }
                    }
                    Err(e) => assert!(e.to_string().contains("2^64"), "{e}"),
                }
            }
            1 => {
                let ids = if a == b { vec![a] } else { vec![a, b << 8 | a] };
                let fresh = (ids.len() == 1 || ids[0] != ids[1]) && ids.iter().all(|id| !alive.contains(id));
                let x: Vec<f32> = ids.iter().flat_map(|&id| row(id as u8)).collect();
                assert_eq!(index.add(&x, Some(&ids)).is_ok(), fresh);
                if fresh {
                    alive.extend(&ids);
                    ever.extend(&ids);
                }
            }
            2 => {
                let mut ids = vec![a, b];
                if let Some(&some) = alive.iter().nth(usize::from(op[1]) % alive.len().max(1)) {
                    ids.push(some);
                }
                let distinct: BTreeSet<u64> = ids.iter().copied().collect();
                let expect = distinct.iter().filter(|id| alive.contains(id)).count();
                assert_eq!(index.remove(&ids).unwrap(), expect);
                for id in &ids {
                    alive.remove(id);
                }
            }
            3 => {
                let bytes = index.to_bytes().expect("encodes");
                let mut back = Index::from_bytes(&bytes).expect("what to_bytes wrote decodes");
                assert!(
                    back.to_bytes().unwrap() == bytes,
                    "decode then encode changed the bytes"
                );
                index = back;
            }
            _ => index.compact().unwrap(),
        }
        assert_eq!(index.len(), alive.len());
        for id in &alive {
            assert!(index.contains(*id));
        }
    }
    let bytes = index.to_bytes().expect("encodes");
    let back = q2key::index::format::decode(&bytes, "fuzz").expect("what to_bytes wrote decodes");
    common::assert_valid(&back);
});
