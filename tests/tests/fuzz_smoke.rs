//! A short, deterministic run of every fuzz target on the stable toolchain: the seeds in
//! `tests/fuzz/seeds`, then mutations of them (bit flips, cut and spliced bytes, and the
//! fragments that broke Hearth before: deep nesting, `1e400`, lone surrogates, huge numbers,
//! long wildcard patterns). The real, coverage-guided runs are `tests/fuzz/run`; this keeps the
//! targets building and catches the obvious in CI. `HEARTH_FUZZ_SMOKE_INPUTS` sets the number of
//! inputs per target (default 20,000).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

const FRAGMENTS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b":",
    b",",
    b"\\ud800",
    b"\\u0000",
    b"1e400",
    b"-0",
    b"99999999999999999999999999",
    b"1.5",
    b"null",
    b"\"*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?\"",
    b"\xff",
    b"\x00",
    b"_",
    b"s",
    b"t",
];

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n.max(1) as u64)).unwrap_or(0)
    }
}

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut data = seed.to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(6) {
            0 if !data.is_empty() => {
                let at = rng.below(data.len());
                data[at] ^= 1 << rng.below(8);
            }
            1 if !data.is_empty() => {
                let at = rng.below(data.len());
                let len = rng.below(16).min(data.len() - at);
                data.drain(at..at + len);
            }
            2 => {
                let at = rng.below(data.len() + 1);
                let fragment = FRAGMENTS[rng.below(FRAGMENTS.len())];
                data.splice(at..at, fragment.iter().copied());
            }
            3 => {
                // Deep nesting, the way it once reached a 500.
                let depth = 90 + rng.below(80);
                let at = rng.below(data.len() + 1);
                let nested: Vec<u8> = std::iter::repeat_n(b'[', depth)
                    .chain(std::iter::repeat_n(b']', depth))
                    .collect();
                data.splice(at..at, nested);
            }
            4 if data.len() > 1 => {
                let at = rng.below(data.len());
                let copy = data[at..(at + rng.below(32)).min(data.len())].to_vec();
                let to = rng.below(data.len() + 1);
                data.splice(to..to, copy);
            }
            _ => data.truncate(rng.below(data.len() + 1)),
        }
    }
    data
}

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| std::fs::read(entry.unwrap().path()).unwrap())
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "no seeds for {target}");
    seeds
}

#[test]
fn every_fuzz_target_survives_a_smoke_run() {
    // libFuzzer counts every panic, caught or not; so does this run.
    let panics = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = panics.clone();
    std::panic::set_hook(Box::new(move |info| {
        counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        eprintln!("panic: {info}");
    }));
    let inputs: usize = std::env::var("HEARTH_FUZZ_SMOKE_INPUTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    for (name, target) in hearth_tests::fuzz::TARGETS {
        let seeds = seeds(name);
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ name.len() as u64);
        for seed in &seeds {
            target(seed);
        }
        for i in 0..inputs {
            let seed = &seeds[i % seeds.len()];
            let input = mutate(&mut rng, seed);
            let before = panics.load(std::sync::atomic::Ordering::Relaxed);
            let outcome = std::panic::catch_unwind(|| target(&input));
            let after = panics.load(std::sync::atomic::Ordering::Relaxed);
            assert!(
                outcome.is_ok() && before == after,
                "fuzz target {name} panicked on input {i}: {:?}",
                String::from_utf8_lossy(&input)
            );
        }
        eprintln!(
            "{name}: {} seeds, {inputs} mutations, no panic",
            seeds.len()
        );
    }
}
