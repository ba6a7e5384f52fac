//! The Caddyfile adapter on arbitrary text: it must answer a config or a
//! positioned error, never panic, and whatever it accepts must survive the JSON
//! round trip that `gojinn adapt` and `--config x.json` rely on.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    // A fixed environment, so a run is reproducible from its input alone.
    let env = |name: &str| (name == "FUZZ").then(|| "value".to_owned());
    let Ok(loaded) = gojinn_config::parse_caddyfile(src, Path::new("/fuzz/Caddyfile"), &env) else {
        return;
    };
    let json = serde_json_string(&loaded.config);
    let back = gojinn_config::parse_json(&json, Path::new("/fuzz/config.json"))
        .unwrap_or_else(|e| panic!("adapted config does not load back: {e}\n{json}"));
    // `origin` is not part of the JSON form, so compare the JSON texts.
    assert_eq!(
        json,
        serde_json_string(&back.config),
        "round trip changed the config"
    );
});

fn serde_json_string(config: &gojinn_config::Config) -> String {
    serde_json::to_string_pretty(config).expect("a config serializes")
}
