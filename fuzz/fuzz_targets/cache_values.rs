//! The decoders of cache values on any bytes: a value that does not parse
//! is a miss (never a panic), and what parses encodes to a value that
//! decodes to the same thing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lupa_core::fuzzing;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else { return };
    for decode in [fuzzing::project_exists, fuzzing::deployment_info] {
        if let Some(encoded) = decode(raw) {
            assert_eq!(decode(&encoded).as_deref(), Some(encoded.as_str()), "re-encoding changed {raw:?}");
        }
    }
    for decode in [fuzzing::project_id, fuzzing::deployment_id] {
        if let Some(id) = decode(raw) {
            assert_eq!(id, raw);
            assert!(lupa_core::ProjectId::new(id).is_ok());
        }
    }
});
