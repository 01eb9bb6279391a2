#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| hearth_tests::fuzz::tokens(data));
